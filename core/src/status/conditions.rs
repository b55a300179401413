//! The status of an APISIX CR (pure): `Accepted` (translated and valid, or
//! why not) and `Programmed` (its objects are in etcd; the message names the
//! etcd revision of the unit's newest key other than its upstreams, which
//! only moves when the unit's own objects change, so neither unrelated
//! writes nor endpoint churn touch its status).

use crate::api::{ApisixStatus, Condition};
use crate::apisix::ApisixDir;
use crate::model::{DesiredState, UnitKey};
use crate::plan::MirrorState;

use crate::model::CrStatusInput;

pub const ACCEPTED: &str = "Accepted";
pub const PROGRAMMED: &str = "Programmed";

/// Whether the objects of all `units` are in etcd (the newest revision of
/// them); `Nothing` when none has objects.
pub fn programmed_units(
    desired: &DesiredState,
    mirror: &MirrorState,
    units: &[UnitKey],
) -> ProgrammedState {
    let mut state = ProgrammedState::Nothing;
    for unit in units {
        state = match (state, programmed_state(desired, mirror, unit)) {
            (_, ProgrammedState::Pending) | (ProgrammedState::Pending, _) => {
                return ProgrammedState::Pending;
            }
            (
                ProgrammedState::Written { revision: a },
                ProgrammedState::Written { revision: b },
            ) => ProgrammedState::Written { revision: a.max(b) },
            (ProgrammedState::Written { revision }, ProgrammedState::Nothing)
            | (ProgrammedState::Nothing, ProgrammedState::Written { revision }) => {
                ProgrammedState::Written { revision }
            }
            (ProgrammedState::Nothing, ProgrammedState::Nothing) => ProgrammedState::Nothing,
        };
    }
    state
}

/// Whether a unit's desired objects are in etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgrammedState {
    /// Every object is stored as desired; the newest at this revision.
    Written { revision: i64 },
    /// The unit produces no objects (not selected, or nothing to write).
    Nothing,
    /// Not (all) written yet.
    Pending,
}

pub fn programmed_state(
    desired: &DesiredState,
    mirror: &MirrorState,
    unit: &UnitKey,
) -> ProgrammedState {
    // Upstreams follow the endpoints (and may be shared by many units): they
    // must be stored as desired, but the revision named is that of the
    // unit's own objects, so endpoint churn never rewrites statuses.
    let mut newest_own: Option<i64> = None;
    let mut newest_upstream: Option<i64> = None;
    for key in desired.keys_of(unit) {
        let want = desired.get(key).map(|d| &d.value);
        match mirror.get(key.as_str()) {
            Some(stored) if stored.canonical() == want => {
                let newest = if key.dir() == ApisixDir::Upstreams {
                    &mut newest_upstream
                } else {
                    &mut newest_own
                };
                *newest = Some(newest.map_or(stored.mod_revision, |r| r.max(stored.mod_revision)));
            }
            _ => return ProgrammedState::Pending,
        }
    }
    match newest_own.or(newest_upstream) {
        Some(revision) => ProgrammedState::Written { revision },
        None => ProgrammedState::Nothing,
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: None,
    }
}

/// The status the CR should have. `now` (RFC 3339) stamps conditions whose
/// status changed; unchanged conditions keep their transition time.
pub fn desired_conditions(
    input: &CrStatusInput,
    programmed: ProgrammedState,
    now: &str,
) -> ApisixStatus {
    let generation = input.generation;
    let accepted = match &input.error {
        None => condition(
            ACCEPTED,
            true,
            "Translated",
            "translated and valid".into(),
            generation,
        ),
        Some(error) => condition(
            ACCEPTED,
            false,
            "TranslationFailed",
            error.clone(),
            generation,
        ),
    };
    let kept = if input.error.is_some() {
        "the last good objects stay "
    } else {
        ""
    };
    let programmed = match programmed {
        ProgrammedState::Written { revision } => condition(
            PROGRAMMED,
            true,
            "Written",
            format!("{kept}written to etcd at revision {revision}"),
            generation,
        ),
        ProgrammedState::Nothing => condition(
            PROGRAMMED,
            true,
            "NothingToWrite",
            "no APISIX objects to write".into(),
            generation,
        ),
        ProgrammedState::Pending => condition(
            PROGRAMMED,
            false,
            "Pending",
            "not written to etcd yet".into(),
            generation,
        ),
    };
    let mut conditions = vec![accepted, programmed];
    for condition in &mut conditions {
        let previous = input
            .current
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition.type_));
        condition.last_transition_time = match previous {
            Some(p) if p.status == condition.status => p.last_transition_time.clone(),
            _ => Some(now.to_string()),
        };
    }
    ApisixStatus {
        conditions,
        observed_generation: generation,
    }
}

/// Whether the stored status differs from `wanted` (transition times aside).
pub fn needs_update(current: Option<&ApisixStatus>, wanted: &ApisixStatus) -> bool {
    let strip = |status: &ApisixStatus| {
        let mut status = status.clone();
        for c in &mut status.conditions {
            c.last_transition_time = None;
        }
        status
    };
    current.map(strip) != Some(strip(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apisix::{ApisixDir, CanonicalValue, EtcdKey, StoredValue};
    use crate::plan::MirroredKey;
    use serde_json::json;

    fn input(error: Option<&str>, current: Option<ApisixStatus>) -> CrStatusInput {
        CrStatusInput {
            object: Default::default(),
            api_resource: kube_core::discovery::ApiResource::erase::<crate::api::ApisixTls>(&()),
            generation: Some(3),
            current,
            error: error.map(str::to_string),
            units: Vec::new(),
        }
    }

    #[test]
    fn programmed_needs_every_object_stored_as_desired() {
        let unit = UnitKey::new("ApisixTls", Some("ns"), "t");
        let key = EtcdKey::new("/apisix", ApisixDir::Ssls, "ao_c_s1").unwrap();
        let value = CanonicalValue::from_json(json!({"id": "ao_c_s1"})).unwrap();
        let mut desired = DesiredState::new();
        desired.insert(key.clone(), value.clone(), unit.clone());
        let mut keys = std::collections::BTreeMap::new();
        let empty = MirrorState::from_list(keys.clone(), 1);
        assert_eq!(
            programmed_state(&desired, &empty, &unit),
            ProgrammedState::Pending
        );
        keys.insert(
            key.as_str().to_string(),
            MirroredKey {
                value: StoredValue::parse(&value.stamped(1, 1)),
                mod_revision: 7,
                create_revision: 7,
            },
        );
        let stored = MirrorState::from_list(keys, 9);
        assert_eq!(
            programmed_state(&desired, &stored, &unit),
            ProgrammedState::Written { revision: 7 }
        );
        assert_eq!(
            programmed_state(&desired, &stored, &UnitKey::new("X", None, "none")),
            ProgrammedState::Nothing
        );
    }

    #[test]
    fn conditions_tell_the_truth_and_keep_transition_times() {
        let first = desired_conditions(
            &input(None, None),
            ProgrammedState::Written { revision: 7 },
            "t1",
        );
        assert_eq!(first.conditions[0].status, "True");
        assert_eq!(first.conditions[1].message, "written to etcd at revision 7");
        assert_eq!(first.observed_generation, Some(3));
        // The same state later: nothing to update, times kept.
        let again = desired_conditions(
            &input(None, Some(first.clone())),
            ProgrammedState::Written { revision: 7 },
            "t2",
        );
        assert!(!needs_update(Some(&first), &again));
        assert_eq!(
            again.conditions[0].last_transition_time.as_deref(),
            Some("t1")
        );
        // A failure: Accepted flips (new time), Programmed tells the last good objects stay.
        let failed = desired_conditions(
            &input(Some("secret gone"), Some(first.clone())),
            ProgrammedState::Written { revision: 7 },
            "t3",
        );
        assert!(needs_update(Some(&first), &failed));
        assert_eq!(failed.conditions[0].status, "False");
        assert_eq!(failed.conditions[0].message, "secret gone");
        assert_eq!(
            failed.conditions[0].last_transition_time.as_deref(),
            Some("t3")
        );
        assert_eq!(
            failed.conditions[1].message,
            "the last good objects stay written to etcd at revision 7"
        );
        assert_eq!(
            failed.conditions[1].last_transition_time.as_deref(),
            Some("t1")
        );
        let pending = desired_conditions(&input(None, None), ProgrammedState::Pending, "t4");
        assert_eq!(pending.conditions[1].status, "False");
    }
}

#[cfg(test)]
mod units_tests {
    use super::*;
    use crate::apisix::{ApisixDir, CanonicalValue, EtcdKey, StoredValue};
    use crate::plan::MirroredKey;
    use serde_json::json;

    #[test]
    fn several_units_are_programmed_when_all_are() {
        let (a, b) = (UnitKey::new("X", None, "a"), UnitKey::new("X", None, "b"));
        let key = |id: &str| EtcdKey::new("/apisix", ApisixDir::Routes, id).unwrap();
        let value = CanonicalValue::from_json(json!({"v": 1})).unwrap();
        let mut desired = DesiredState::new();
        desired.insert(key("ao_c_a"), value.clone(), a.clone());
        desired.insert(key("ao_c_b"), value.clone(), b.clone());
        let stored = |rev| MirroredKey {
            value: StoredValue::parse(&value.stamped(1, 1)),
            mod_revision: rev,
            create_revision: rev,
        };
        let mut keys = std::collections::BTreeMap::new();
        keys.insert("/apisix/routes/ao_c_a".to_string(), stored(4));
        let half = MirrorState::from_list(keys.clone(), 9);
        assert_eq!(
            programmed_units(&desired, &half, std::slice::from_ref(&a)),
            ProgrammedState::Written { revision: 4 }
        );
        assert_eq!(
            programmed_units(&desired, &half, &[a.clone(), b.clone()]),
            ProgrammedState::Pending
        );
        keys.insert("/apisix/routes/ao_c_b".to_string(), stored(6));
        let full = MirrorState::from_list(keys, 9);
        assert_eq!(
            programmed_units(&desired, &full, &[a, b]),
            ProgrammedState::Written { revision: 6 }
        );
        assert_eq!(
            programmed_units(&desired, &full, &[]),
            ProgrammedState::Nothing
        );
    }
}
