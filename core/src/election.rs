//! The Lease election's decisions, as a pure function: what the Lease says,
//! what this replica believes, and the monotonic time → what to do. The
//! elector in the operator crate only performs the calls and feeds their
//! results back.
//!
//! Rules (client-go's, with the fence in mind):
//! - a holder's Lease expires when it has stayed unchanged for its duration
//!   on *our* monotonic clock (clock skew between nodes does not matter);
//! - a free, expired or missing Lease is taken (with a resourceVersion
//!   check, so a race ends in a conflict, never two holders), unless this
//!   replica is retiring (it received SIGTERM) or holding off (it just lost
//!   the fence);
//! - our own name on a Lease we do not lead is a previous life of this
//!   replica (a restart): taken over with a new term at once;
//! - a leader renews; one that has not renewed within the renew deadline,
//!   or sees another holder or another term, steps down at once;
//! - a token, once led with and lost, is never led with again: leading
//!   again takes a new acquisition (a new, higher term);
//! - a replica that cannot reach etcd never takes the Lease, and a leader
//!   that has not reached it for the renew deadline hands the Lease over
//!   (it could not write anyway; a replica that can should lead).

use std::time::{Duration, Instant};

/// The election's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
}

/// The Lease as read from the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub holder: Option<String>,
    /// `leaseTransitions`: the term of the current holder.
    pub transitions: i64,
    pub resource_version: String,
    /// The holder's `leaseDurationSeconds` (ours when unset).
    pub duration: Duration,
}

/// What this replica believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElectorState {
    /// While leading: our term (the fence token).
    pub leading: Option<i64>,
    /// While leading: the last successful renewal.
    pub renewed_at: Option<Instant>,
    /// The Lease's resourceVersion and when we first saw it.
    pub observed: Option<(String, Instant)>,
    /// After losing the fence: do not take the Lease before this.
    pub hold_off_until: Option<Instant>,
    /// After SIGTERM: never take the Lease again.
    pub retiring: bool,
    /// The highest term this replica led with and lost: never led again.
    pub lost_term: Option<i64>,
    /// Since when etcd has been unreachable (the mirror's watch is down).
    pub etcd_lost_since: Option<Instant>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// There is no Lease: create one holding it.
    Create,
    /// Take the Lease over (it is free, expired, or ours from a previous
    /// life), with a term above `transitions`.
    Acquire { transitions: i64 },
    /// We lead: renew.
    Renew,
    /// Someone else leads (or nobody, and we may not take it): follow.
    Follow { holder: Option<String> },
    /// We believed we led, but do not (any more): stop leading now.
    StepDown { holder: Option<String> },
}

/// The decision for one step. `lease` is `None` when the Lease does not
/// exist. Updates `state.observed` (when the Lease's version is first seen).
pub fn decide(
    timings: Timings,
    identity: &str,
    state: &mut ElectorState,
    lease: Option<&LeaseView>,
    now: Instant,
) -> Action {
    if let Some(token) = state.leading {
        return decide_as_leader(timings, identity, state, token, lease, now);
    }
    let may_take = !state.retiring
        && state.etcd_lost_since.is_none()
        && state.hold_off_until.is_none_or(|until| now >= until);
    let Some(lease) = lease else {
        return if may_take {
            Action::Create
        } else {
            Action::Follow { holder: None }
        };
    };
    let since = match &state.observed {
        Some((version, since)) if *version == lease.resource_version => *since,
        _ => {
            state.observed = Some((lease.resource_version.clone(), now));
            now
        }
    };
    let expired = now.saturating_duration_since(since) > lease.duration;
    let ours = lease.holder.as_deref() == Some(identity);
    if may_take && (lease.holder.is_none() || ours || expired) {
        Action::Acquire {
            transitions: lease.transitions,
        }
    } else {
        Action::Follow {
            holder: lease.holder.clone(),
        }
    }
}

fn decide_as_leader(
    timings: Timings,
    identity: &str,
    state: &ElectorState,
    token: i64,
    lease: Option<&LeaseView>,
    now: Instant,
) -> Action {
    let overdue = state
        .renewed_at
        .is_none_or(|at| now.saturating_duration_since(at) > timings.renew_deadline);
    match lease {
        Some(lease)
            if lease.holder.as_deref() == Some(identity)
                && lease.transitions == token
                && !overdue =>
        {
            Action::Renew
        }
        Some(lease) => Action::StepDown {
            holder: lease.holder.clone(),
        },
        None => Action::StepDown { holder: None },
    }
}

/// After a renewal attempt failed (the API server is unreachable, say):
/// whether the leader must step down now (its renew deadline passed).
pub fn overdue(timings: Timings, state: &ElectorState, now: Instant) -> bool {
    state.leading.is_some()
        && state
            .renewed_at
            .is_none_or(|at| now.saturating_duration_since(at) > timings.renew_deadline)
}

/// Whether the leader must hand the Lease over because etcd has been
/// unreachable for longer than the renew deadline.
pub fn must_hand_over(timings: Timings, state: &ElectorState, now: Instant) -> bool {
    state.leading.is_some()
        && state
            .etcd_lost_since
            .is_some_and(|since| now.saturating_duration_since(since) > timings.renew_deadline)
}

/// The term to acquire with: above the Lease's transitions, the fence's
/// stored token (a deleted and recreated Lease restarts its count at 0) and
/// any term this replica lost.
pub fn next_term(transitions: i64, fenced: i64, state: &ElectorState) -> i64 {
    transitions.max(fenced).max(state.lost_term.unwrap_or(0)) + 1
}

impl ElectorState {
    /// We won the Lease with `term`, at `now`.
    pub fn won(&mut self, term: i64, now: Instant) {
        self.leading = Some(term);
        self.renewed_at = Some(now);
        self.observed = None;
    }

    pub fn renewed(&mut self, now: Instant) {
        self.renewed_at = Some(now);
    }

    /// We stopped leading (stepped down, lost the fence, or released).
    pub fn stopped_leading(&mut self) {
        if let Some(term) = self.leading.take() {
            self.lost_term = Some(self.lost_term.map_or(term, |t| t.max(term)));
        }
        self.renewed_at = None;
    }

    /// A newer leader holds the fence: stop leading, and leave the Lease
    /// alone for `hold_off` so the newer leader keeps it.
    pub fn lost_fence(&mut self, now: Instant, hold_off: Duration) {
        self.stopped_leading();
        self.hold_off_until = Some(now + hold_off);
    }

    /// What the etcd mirror reports: reachable or not, at `now`.
    pub fn etcd_reachable(&mut self, reachable: bool, now: Instant) {
        if reachable {
            self.etcd_lost_since = None;
        } else {
            self.etcd_lost_since.get_or_insert(now);
        }
    }

    /// SIGTERM: keep leading until released, never take the Lease again.
    pub fn retire(&mut self) {
        self.retiring = true;
    }

    /// Whether a Lease event calls for a step at once: a follower seeing
    /// the Lease released, or a leader seeing another holder.
    pub fn urgent(&self, identity: &str, lease: &LeaseView) -> bool {
        let ours = lease.holder.as_deref() == Some(identity);
        match self.leading {
            Some(_) => !ours,
            None => lease.holder.is_none() && !self.retiring,
        }
    }

    /// When another holder's Lease expires (for a follower's next wake).
    pub fn expiry(&self, lease_duration: Duration) -> Option<Instant> {
        match (&self.observed, self.leading) {
            (Some((_, since)), None) => Some(*since + lease_duration + Duration::from_millis(1)),
            _ => None,
        }
    }
}

#[cfg(test)]
// The code under test takes the time as input; the tests need a base instant.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    const ME: &str = "me";
    const TIMINGS: Timings = Timings {
        lease_duration: Duration::from_secs(5),
        renew_deadline: Duration::from_secs(3),
    };

    fn lease(holder: Option<&str>, transitions: i64, version: &str) -> LeaseView {
        LeaseView {
            holder: holder.map(str::to_string),
            transitions,
            resource_version: version.into(),
            duration: TIMINGS.lease_duration,
        }
    }

    fn secs(start: Instant, s: u64) -> Instant {
        start + Duration::from_secs(s)
    }

    #[test]
    fn a_missing_lease_is_created_unless_retiring_or_holding_off() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        assert_eq!(decide(TIMINGS, ME, &mut state, None, t0), Action::Create);
        state.retire();
        assert_eq!(
            decide(TIMINGS, ME, &mut state, None, t0),
            Action::Follow { holder: None }
        );
        let mut state = ElectorState::default();
        state.lost_fence(t0, TIMINGS.lease_duration);
        assert_eq!(
            decide(TIMINGS, ME, &mut state, None, secs(t0, 1)),
            Action::Follow { holder: None }
        );
        assert_eq!(
            decide(TIMINGS, ME, &mut state, None, secs(t0, 6)),
            Action::Create
        );
    }

    #[test]
    fn without_etcd_the_lease_is_not_taken_and_a_leader_hands_it_over() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        state.etcd_reachable(false, t0);
        let free = lease(None, 3, "1");
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&free), t0),
            Action::Follow { holder: None }
        );
        assert_eq!(
            decide(TIMINGS, ME, &mut state, None, t0),
            Action::Follow { holder: None }
        );
        state.etcd_reachable(true, secs(t0, 1));
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&free), secs(t0, 1)),
            Action::Acquire { transitions: 3 }
        );
        // A leader: etcd lost at t=10 (reported again at t=11: the first
        // loss counts), handed over once the renew deadline has passed.
        state.won(4, secs(t0, 2));
        state.etcd_reachable(false, secs(t0, 10));
        state.etcd_reachable(false, secs(t0, 11));
        assert!(!must_hand_over(TIMINGS, &state, secs(t0, 13)));
        assert!(must_hand_over(TIMINGS, &state, secs(t0, 14)));
        // Back in time: nothing to hand over.
        state.etcd_reachable(true, secs(t0, 13));
        assert!(!must_hand_over(TIMINGS, &state, secs(t0, 20)));
        // A follower never hands over.
        state.stopped_leading();
        state.etcd_reachable(false, secs(t0, 20));
        assert!(!must_hand_over(TIMINGS, &state, secs(t0, 40)));
    }

    #[test]
    fn a_free_lease_is_taken_and_a_held_one_followed_until_it_expires() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        let free = lease(None, 3, "1");
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&free), t0),
            Action::Acquire { transitions: 3 }
        );
        let mut state = ElectorState::default();
        let held = lease(Some("other"), 4, "2");
        let follow = Action::Follow {
            holder: Some("other".into()),
        };
        assert_eq!(decide(TIMINGS, ME, &mut state, Some(&held), t0), follow);
        // Unchanged for less than its duration (on our clock): still held.
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&held), secs(t0, 5)),
            follow
        );
        // Renewed (a new version): the clock restarts.
        let renewed = lease(Some("other"), 4, "3");
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&renewed), secs(t0, 5)),
            follow
        );
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&renewed), secs(t0, 10)),
            follow
        );
        // Unchanged past its duration: expired, taken.
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&renewed), secs(t0, 11)),
            Action::Acquire { transitions: 4 }
        );
    }

    #[test]
    fn our_name_on_a_lease_we_do_not_lead_is_taken_over_at_once() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        let previous_life = lease(Some(ME), 7, "9");
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&previous_life), t0),
            Action::Acquire { transitions: 7 }
        );
    }

    #[test]
    fn a_retiring_replica_never_takes_the_lease() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        state.retire();
        for lease in [lease(None, 1, "1"), lease(Some(ME), 1, "1")] {
            assert!(matches!(
                decide(TIMINGS, ME, &mut state, Some(&lease), t0),
                Action::Follow { .. }
            ));
        }
        let held = lease(Some("other"), 1, "2");
        decide(TIMINGS, ME, &mut state, Some(&held), t0);
        assert!(matches!(
            decide(TIMINGS, ME, &mut state, Some(&held), secs(t0, 60)),
            Action::Follow { .. }
        ));
        assert!(!state.urgent(ME, &lease(None, 1, "3")));
    }

    #[test]
    fn a_leader_renews_its_own_term_and_steps_down_otherwise() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        state.won(5, t0);
        let ours = lease(Some(ME), 5, "10");
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&ours), secs(t0, 1)),
            Action::Renew
        );
        // Another holder, another term, no Lease: step down at once.
        for (lease, holder) in [
            (
                Some(lease(Some("other"), 6, "11")),
                Some("other".to_string()),
            ),
            (Some(lease(Some(ME), 6, "11")), Some(ME.to_string())),
            (None, None),
        ] {
            let mut state = state.clone();
            assert_eq!(
                decide(TIMINGS, ME, &mut state, lease.as_ref(), secs(t0, 1)),
                Action::StepDown { holder }
            );
        }
        // Not renewed within the renew deadline: step down even if the
        // Lease still names us.
        assert_eq!(
            decide(TIMINGS, ME, &mut state, Some(&ours), secs(t0, 4)),
            Action::StepDown {
                holder: Some(ME.into())
            }
        );
        assert!(overdue(TIMINGS, &state, secs(t0, 4)));
        state.renewed(secs(t0, 3));
        assert!(!overdue(TIMINGS, &state, secs(t0, 4)));
    }

    #[test]
    fn a_lost_term_is_never_led_with_again() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        state.won(5, t0);
        state.lost_fence(secs(t0, 1), TIMINGS.lease_duration);
        assert_eq!(state.leading, None);
        assert_eq!(state.lost_term, Some(5));
        // Even if the Lease still says term 5 is ours, the next term is higher.
        assert_eq!(next_term(5, 0, &state), 6);
        assert_eq!(next_term(3, 4, &state), 6);
        assert_eq!(next_term(9, 4, &state), 10);
        // And the fence's token wins over a recreated Lease's count.
        assert_eq!(next_term(0, 12, &ElectorState::default()), 13);
    }

    #[test]
    fn events_that_call_for_acting_at_once() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        assert!(state.urgent(ME, &lease(None, 1, "1")));
        assert!(!state.urgent(ME, &lease(Some("other"), 1, "1")));
        state.won(2, t0);
        assert!(state.urgent(ME, &lease(Some("other"), 3, "2")));
        assert!(!state.urgent(ME, &lease(Some(ME), 2, "2")));
    }

    #[test]
    fn a_follower_wakes_when_the_holders_lease_expires() {
        let t0 = Instant::now();
        let mut state = ElectorState::default();
        decide(
            TIMINGS,
            ME,
            &mut state,
            Some(&lease(Some("other"), 1, "1")),
            t0,
        );
        let expiry = state.expiry(TIMINGS.lease_duration).unwrap();
        assert!(expiry > secs(t0, 5) && expiry < secs(t0, 6));
        state.won(2, t0);
        assert_eq!(state.expiry(TIMINGS.lease_duration), None);
    }
}
