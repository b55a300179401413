//! The status bodies of the Gateway API kinds, as translation computes them:
//! conditions with `observedGeneration` and without `lastTransitionTime`,
//! which the status writer stamps (keeping the current time of a condition
//! whose status did not change, see `crate::status::gateway`). Route
//! bodies hold only this controller's `parents` entries; a Gateway's
//! listeners say `attachedRoutes: 0`, which the index fills in from the
//! routes attached.

use serde_json::{Value, json};

use super::Verdict;
use super::attachment::Parent;
use super::listeners::ListenerState;
use crate::translate::TranslateConfig;

/// One condition.
pub fn condition(
    kind: &str,
    holds: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Value {
    let mut condition = json!({
        "type": kind,
        "status": if holds { "True" } else { "False" },
        "reason": reason,
        "message": message,
    });
    if let Some(generation) = generation {
        condition["observedGeneration"] = generation.into();
    }
    condition
}

fn verdict(kind: &str, verdict: &Verdict, generation: Option<i64>) -> Value {
    condition(
        kind,
        verdict.ok,
        verdict.reason,
        &verdict.message,
        generation,
    )
}

/// A GatewayClass of ours.
pub fn gateway_class(accepted: &Verdict, generation: Option<i64>) -> Value {
    json!({"conditions": [verdict("Accepted", accepted, generation)]})
}

/// A Gateway of ours: its conditions and every listener's.
pub fn gateway(
    class_accepted: bool,
    listeners: &[ListenerState],
    generation: Option<i64>,
) -> Value {
    let valid = listeners.iter().filter(|l| l.accepted.ok).count();
    let programmed = listeners.iter().filter(|l| l.programmed()).count();
    let accepted = if !class_accepted {
        Verdict::no("Pending", "its GatewayClass is not accepted")
    } else if listeners.is_empty() || valid == listeners.len() {
        Verdict::yes("Accepted")
    } else if valid > 0 {
        Verdict {
            ok: true,
            reason: "ListenersNotValid",
            message: format!(
                "{} of {} listeners are not valid",
                listeners.len() - valid,
                listeners.len()
            ),
        }
    } else {
        Verdict::no("ListenersNotValid", "no listener is valid")
    };
    let programmed = if accepted.ok && programmed > 0 {
        Verdict::yes("Programmed")
    } else {
        Verdict::no("Invalid", "no listener can be programmed")
    };
    json!({
        "conditions": [verdict("Accepted", &accepted, generation), verdict("Programmed", &programmed, generation)],
        "listeners": listeners.iter().map(|l| listener(l, generation)).collect::<Vec<_>>(),
    })
}

fn listener(state: &ListenerState, generation: Option<i64>) -> Value {
    let programmed = if state.programmed() {
        Verdict::yes("Programmed")
    } else {
        Verdict::no(
            "Invalid",
            "the listener is not accepted, conflicts, or its references do not resolve",
        )
    };
    let conflicted = match &state.conflicted {
        Some(clash) => condition("Conflicted", true, clash.reason, &clash.message, generation),
        None => condition("Conflicted", false, "NoConflicts", "", generation),
    };
    json!({
        "name": state.name,
        "supportedKinds": state.supported_kinds,
        "attachedRoutes": 0,
        "conditions": [
            verdict("Accepted", &state.accepted, generation),
            verdict("Programmed", &programmed, generation),
            verdict("ResolvedRefs", &state.resolved_refs, generation),
            conflicted,
        ],
    })
}

/// A route's entries for the parents that are ours.
pub fn route(
    config: &TranslateConfig,
    generation: Option<i64>,
    parents: &[Parent],
    unresolved: Option<&Verdict>,
    unsupported: &[String],
    rules: usize,
) -> Value {
    let resolved = unresolved
        .cloned()
        .unwrap_or_else(|| Verdict::yes("ResolvedRefs"));
    let none_left = rules > 0 && unsupported.len() >= rules;
    let entries: Vec<Value> = parents
        .iter()
        .map(|parent| {
            let accepted = match (&parent.accepted, none_left) {
                (accepted, _) if !accepted.ok => accepted.clone(),
                (_, true) => Verdict::no("UnsupportedValue", unsupported.join("; ")),
                (accepted, false) => accepted.clone(),
            };
            let mut conditions = vec![
                verdict("Accepted", &accepted, generation),
                verdict("ResolvedRefs", &resolved, generation),
            ];
            if accepted.ok && !unsupported.is_empty() {
                conditions.push(condition(
                    "PartiallyInvalid",
                    true,
                    "UnsupportedValue",
                    &unsupported.join("; "),
                    generation,
                ));
            }
            json!({
                "parentRef": parent.parent_ref,
                "controllerName": config.controller_name,
                "conditions": conditions,
            })
        })
        .collect();
    json!({"parents": entries})
}
