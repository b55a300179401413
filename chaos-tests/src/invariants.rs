//! The invariants a chaos run must keep, checked from its full etcd history
//! (pure: the history and the expected state in, the violations out). Each
//! check can be shown to fail: [`inject`] plants one violation of each kind
//! into a recorded history, and the tests see it caught.
//!
//! 1. **Convergence**: after the faults heal, the keys under the prefix
//!    equal the translation of the final Kubernetes state.
//! 2. **No regression**: a key never returns to a value it held before
//!    another one (the workload never reverts a value).
//! 3. **No transient loss**: a key desired throughout the run is never
//!    deleted.
//! 4. **Single writer**: fence claims only grow, and the fence is never
//!    deleted; every write compares the fence's revision, so once a claim
//!    commits no write under an older claim can.
//! 5. **No write amplification**: no put rewrites a key with the value it
//!    already holds.
//!
//! Values are compared without `create_time`/`update_time`, which the
//! writer stamps.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::history::{Event, History};

/// What a run is checked against.
pub struct Expected<'a> {
    /// The APISIX prefix of the run, e.g. `/chaos-x` (with no trailing `/`).
    pub prefix: &'a str,
    /// The fence key.
    pub fence: &'a str,
    /// The translation of the final Kubernetes state: key → value.
    pub desired: &'a BTreeMap<String, Value>,
    /// Keys desired from before the first fault to the end.
    pub stable: &'a BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    NotConverged {
        key: String,
        what: &'static str,
    },
    Regression {
        key: String,
        revision: i64,
    },
    Lost {
        key: String,
        revision: i64,
    },
    FenceRegressed {
        revision: i64,
        token: i64,
        before: i64,
    },
    FenceDeleted {
        revision: i64,
    },
    NoOpWrite {
        key: String,
        revision: i64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotConverged { key, what } => write!(f, "convergence: {key} is {what}"),
            Violation::Regression { key, revision } => {
                write!(
                    f,
                    "regression: {key} returned to an older value at revision {revision}"
                )
            }
            Violation::Lost { key, revision } => {
                write!(
                    f,
                    "transient loss: {key}, desired throughout, deleted at revision {revision}"
                )
            }
            Violation::FenceRegressed {
                revision,
                token,
                before,
            } => write!(
                f,
                "single writer: the fence went from token {before} to {token} at revision {revision}"
            ),
            Violation::FenceDeleted { revision } => {
                write!(
                    f,
                    "single writer: the fence was deleted at revision {revision}"
                )
            }
            Violation::NoOpWrite { key, revision } => write!(
                f,
                "write amplification: {key} rewritten with its own value at revision {revision}"
            ),
        }
    }
}

/// A stored value without the writer's timestamps (non-JSON kept as text).
pub fn content(value: &str) -> Value {
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(mut map)) => {
            map.remove("create_time");
            map.remove("update_time");
            Value::Object(map)
        }
        Ok(other) => other,
        Err(_) => Value::String(value.to_string()),
    }
}

/// Every violation in `history`.
pub fn check(history: &History, expected: &Expected<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    let owned = |key: &str| key.starts_with(&format!("{}/", expected.prefix));
    violations.extend(convergence(history, expected, owned));
    violations.extend(per_key(history, expected, owned));
    violations.extend(fence(history, expected.fence));
    violations
}

fn convergence(
    history: &History,
    expected: &Expected<'_>,
    owned: impl Fn(&str) -> bool,
) -> Vec<Violation> {
    let have: BTreeMap<String, Value> = history
        .final_state()
        .into_iter()
        .filter(|(key, _)| owned(key))
        .map(|(key, value)| (key, content(&value)))
        .collect();
    let keys: BTreeSet<&String> = have.keys().chain(expected.desired.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let what = match (have.get(key), expected.desired.get(key)) {
                (None, Some(_)) => "missing",
                (Some(_), None) => "left over",
                (Some(a), Some(b)) if a != b => "different",
                _ => return None,
            };
            Some(Violation::NotConverged {
                key: key.clone(),
                what,
            })
        })
        .collect()
}

/// Regressions, losses and no-op writes: each key's events in order.
fn per_key(
    history: &History,
    expected: &Expected<'_>,
    owned: impl Fn(&str) -> bool,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    // Per key: its current value and the values it held before.
    let mut keys: BTreeMap<&str, (Option<Value>, BTreeSet<String>)> = BTreeMap::new();
    for event in history.events.iter().filter(|e| owned(&e.key)) {
        let (current, earlier) = keys.entry(&event.key).or_default();
        match &event.value {
            None => {
                if expected.stable.contains(&event.key) {
                    violations.push(Violation::Lost {
                        key: event.key.clone(),
                        revision: event.revision,
                    });
                }
                if let Some(old) = current.take() {
                    earlier.insert(old.to_string());
                }
            }
            Some(value) => {
                let value = content(value);
                if current.as_ref() == Some(&value) {
                    violations.push(Violation::NoOpWrite {
                        key: event.key.clone(),
                        revision: event.revision,
                    });
                    continue;
                }
                if earlier.contains(&value.to_string()) {
                    violations.push(Violation::Regression {
                        key: event.key.clone(),
                        revision: event.revision,
                    });
                }
                if let Some(old) = current.replace(value) {
                    earlier.insert(old.to_string());
                }
            }
        }
    }
    violations
}

/// The fence's tokens (`<zero-padded token>:<holder>`) only grow.
fn fence(history: &History, fence: &str) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut last: Option<i64> = None;
    for event in history.events.iter().filter(|e| e.key == fence) {
        let Some(value) = &event.value else {
            violations.push(Violation::FenceDeleted {
                revision: event.revision,
            });
            continue;
        };
        let token = value
            .split_once(':')
            .and_then(|(token, _)| token.parse::<i64>().ok())
            .unwrap_or(-1);
        if let Some(before) = last.filter(|before| token <= *before) {
            violations.push(Violation::FenceRegressed {
                revision: event.revision,
                token,
                before,
            });
        }
        last = Some(last.map_or(token, |before| before.max(token)));
    }
    violations
}

/// The kinds of violation [`inject`] can plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    Divergence,
    Regression,
    Loss,
    StaleFence,
    NoOpWrite,
}

impl Injection {
    pub const ALL: [Injection; 5] = [
        Injection::Divergence,
        Injection::Regression,
        Injection::Loss,
        Injection::StaleFence,
        Injection::NoOpWrite,
    ];
}

/// `history` with one violation of `kind` planted (at its end, as a late
/// stale write would be), or `None` when the history has nothing to build it
/// from (a key changed twice, a stable key, a fence claim).
pub fn inject(history: &History, expected: &Expected<'_>, kind: Injection) -> Option<History> {
    let mut planted = history.clone();
    let revision = history.events.last().map_or(1, |e| e.revision) + 1;
    let owned = |e: &&Event| e.key.starts_with(&format!("{}/", expected.prefix));
    let event = |key: &str, value: Option<String>| Event {
        revision,
        key: key.to_string(),
        value,
        seen: None,
    };
    let planted_event = match kind {
        Injection::Divergence => {
            let key = expected.desired.keys().next()?;
            event(key, Some("{\"id\":\"foreign\"}".into()))
        }
        Injection::Regression => {
            // A key's first value, written again after it changed.
            let changed = history.events.iter().filter(owned).find(|first| {
                history
                    .events
                    .iter()
                    .any(|later| later.key == first.key && later.revision > first.revision)
            })?;
            event(&changed.key, changed.value.clone())
        }
        Injection::Loss => event(expected.stable.iter().next()?, None),
        Injection::StaleFence => {
            // A claim with a token below the first one.
            history.events.iter().find(|e| e.key == expected.fence)?;
            event(expected.fence, Some(format!("{:020}:stale", 0)))
        }
        Injection::NoOpWrite => {
            let state = history.final_state();
            let (key, value) = state
                .iter()
                .find(|(key, _)| expected.desired.contains_key(*key))?;
            event(key, Some(value.clone()))
        }
    };
    planted.events.push(planted_event);
    Some(planted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/chaos";
    const FENCE: &str = "/operator/chaos/fence";

    fn put(revision: i64, key: &str, value: &str) -> Event {
        Event {
            revision,
            key: key.into(),
            value: Some(value.into()),
            seen: None,
        }
    }

    /// A fence claim, a stable route, and a route that changes and goes.
    fn clean() -> (History, BTreeMap<String, Value>, BTreeSet<String>) {
        let history = History {
            events: vec![
                put(2, FENCE, "00000000000000000001:a"),
                put(
                    3,
                    "/chaos/routes/r1",
                    r#"{"id":"r1","uri":"/a","update_time":1}"#,
                ),
                put(
                    4,
                    "/chaos/routes/r2",
                    r#"{"id":"r2","uri":"/v1","update_time":1}"#,
                ),
                put(5, FENCE, "00000000000000000002:b"),
                put(
                    6,
                    "/chaos/routes/r2",
                    r#"{"id":"r2","uri":"/v2","update_time":2}"#,
                ),
                put(7, "/chaos/routes/r3", r#"{"id":"r3"}"#),
                Event {
                    revision: 8,
                    key: "/chaos/routes/r3".into(),
                    value: None,
                    seen: None,
                },
                // Another prefix is not ours.
                put(9, "/other/routes/x", r#"{"id":"x"}"#),
            ],
        };
        let desired = BTreeMap::from([
            (
                "/chaos/routes/r1".to_string(),
                serde_json::json!({"id": "r1", "uri": "/a"}),
            ),
            (
                "/chaos/routes/r2".to_string(),
                serde_json::json!({"id": "r2", "uri": "/v2"}),
            ),
        ]);
        let stable = BTreeSet::from(["/chaos/routes/r1".to_string()]);
        (history, desired, stable)
    }

    fn expectations<'a>(
        desired: &'a BTreeMap<String, Value>,
        stable: &'a BTreeSet<String>,
    ) -> Expected<'a> {
        Expected {
            prefix: PREFIX,
            fence: FENCE,
            desired,
            stable,
        }
    }

    #[test]
    fn a_clean_history_keeps_every_invariant() {
        let (history, desired, stable) = clean();
        let expected = expectations(&desired, &stable);
        assert_eq!(check(&history, &expected), vec![]);
    }

    #[test]
    fn every_injected_violation_is_caught() {
        let (history, desired, stable) = clean();
        let expected = expectations(&desired, &stable);
        for kind in Injection::ALL {
            let planted = inject(&history, &expected, kind).unwrap_or_else(|| panic!("{kind:?}"));
            let found = check(&planted, &expected);
            let caught = found.iter().any(|v| match kind {
                Injection::Divergence => matches!(
                    v,
                    Violation::NotConverged {
                        what: "different",
                        ..
                    }
                ),
                Injection::Regression => matches!(v, Violation::Regression { .. }),
                Injection::Loss => matches!(v, Violation::Lost { .. }),
                Injection::StaleFence => matches!(v, Violation::FenceRegressed { .. }),
                Injection::NoOpWrite => matches!(v, Violation::NoOpWrite { .. }),
            });
            assert!(caught, "{kind:?} not caught: {found:?}");
        }
    }

    #[test]
    fn a_deleted_fence_and_a_missing_key_are_violations() {
        let (mut history, desired, stable) = clean();
        history.events.push(Event {
            revision: 10,
            key: FENCE.into(),
            value: None,
            seen: None,
        });
        history.events.retain(|e| e.key != "/chaos/routes/r2");
        let expected = expectations(&desired, &stable);
        let found = check(&history, &expected);
        assert!(
            found.contains(&Violation::FenceDeleted { revision: 10 }),
            "{found:?}"
        );
        assert!(found.contains(&Violation::NotConverged {
            key: "/chaos/routes/r2".into(),
            what: "missing"
        }));
    }
}
