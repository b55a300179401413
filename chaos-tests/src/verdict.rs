//! From a recorded history to a scenario's figures and invariants (pure):
//! the failover gap, the puts, each history invariant held or not, and the
//! proof that the checker is live on this very history.

use std::time::Instant;

use crate::history::History;
use crate::invariants::{self, Expected, Injection, Violation};

/// What the history says about one scenario.
pub struct Verdict {
    /// The fault → the first write under a fence claim made after it.
    pub failover_gap_ms: Option<u64>,
    /// Puts under the prefix.
    pub puts: u64,
    /// Invariants 1–5 by name, each with whether it held.
    pub invariants: Vec<(String, bool)>,
    pub violations: Vec<Violation>,
}

/// Checks `history`; `fault_revision` is the newest revision before the
/// fault, seen at `fault_at`. Panics if a violation planted into the
/// history is not caught (a checker that cannot fail proves nothing).
pub fn judge(
    history: &History,
    expected: &Expected<'_>,
    fault_revision: i64,
    fault_at: Instant,
) -> Verdict {
    for kind in Injection::ALL {
        let planted = invariants::inject(history, expected, kind)
            .unwrap_or_else(|| panic!("nothing to plant {kind:?} in"));
        assert!(
            !invariants::check(&planted, expected).is_empty(),
            "a planted {kind:?} was not caught"
        );
    }
    let violations = invariants::check(history, expected);
    let held = |f: fn(&Violation) -> bool| !violations.iter().any(f);
    let owned = format!("{}/", expected.prefix);
    let new_claim = history
        .events
        .iter()
        .find(|e| e.revision > fault_revision && e.key == expected.fence);
    let gap = history
        .events
        .iter()
        .filter(|e| e.key.starts_with(&owned))
        .find(|e| new_claim.is_some_and(|claim| e.revision > claim.revision))
        .and_then(|e| e.seen)
        .map(|seen| seen.saturating_duration_since(fault_at));
    let puts = history
        .events
        .iter()
        .filter(|e| e.key.starts_with(&owned) && e.value.is_some() && e.seen.is_some())
        .count();
    let invariants = vec![
        (
            "convergence",
            held(|v| matches!(v, Violation::NotConverged { .. })),
        ),
        (
            "no regression",
            held(|v| matches!(v, Violation::Regression { .. })),
        ),
        (
            "no transient loss",
            held(|v| matches!(v, Violation::Lost { .. })),
        ),
        (
            "single writer",
            held(|v| {
                matches!(
                    v,
                    Violation::FenceRegressed { .. } | Violation::FenceDeleted { .. }
                )
            }),
        ),
        (
            "no write amplification",
            held(|v| matches!(v, Violation::NoOpWrite { .. })),
        ),
    ];
    Verdict {
        failover_gap_ms: gap.map(|g| u64::try_from(g.as_millis()).unwrap_or(u64::MAX)),
        puts: puts as u64,
        invariants: invariants
            .into_iter()
            .map(|(n, h)| (n.to_string(), h))
            .collect(),
        violations,
    }
}
