//! The Gateway API statuses (pure): translation computes each body without
//! transition times (`translate::gateway::status`); here it is completed
//! against the object's current status before the writer sends it.
//!
//! - [`with_foreign_parents`]: a route's `parents` keeps the entries of
//!   other controllers (the list is atomic: whoever applies it owns it all).
//! - [`stamp`]: every condition gets `lastTransitionTime`, the current one
//!   when its status did not change, else `now`.
//! - [`with_addresses`]: a Gateway's `addresses`, those the Ingresses get
//!   (`--ingress-status-address`, or the `--ingress-publish-service`'s).
//! - [`holds`]: whether the current status already says all that.
//!
//! Array entries are matched by identity, not position: conditions by
//! `type`, listeners by `name`, route parents by `parentRef` and
//! `controllerName`.

use serde_json::{Map, Value};

/// `wanted` (this controller's `parents` entries) with the current
/// entries of other controllers before them.
pub fn with_foreign_parents(wanted: &Value, current: Option<&Value>, controller: &str) -> Value {
    let foreign = current
        .and_then(|c| c["parents"].as_array())
        .into_iter()
        .flatten()
        .filter(|entry| entry["controllerName"].as_str() != Some(controller))
        .cloned();
    let ours = wanted["parents"].as_array().cloned().unwrap_or_default();
    let mut body = wanted.clone();
    body["parents"] = Value::Array(foreign.chain(ours).collect());
    body
}

/// A Gateway's status body with `addresses`: each load-balancer entry as
/// an `IPAddress` or a `Hostname`.
pub fn with_addresses(
    wanted: &Value,
    addresses: &[k8s_openapi::api::networking::v1::IngressLoadBalancerIngress],
) -> Value {
    let entries: Vec<Value> = addresses
        .iter()
        .filter_map(|entry| match (&entry.ip, &entry.hostname) {
            (Some(ip), _) => Some(serde_json::json!({"type": "IPAddress", "value": ip})),
            (None, Some(hostname)) => {
                Some(serde_json::json!({"type": "Hostname", "value": hostname}))
            }
            (None, None) => None,
        })
        .collect();
    let mut body = wanted.clone();
    if !entries.is_empty() {
        body["addresses"] = Value::Array(entries);
    }
    body
}

/// `wanted` with every condition's `lastTransitionTime` set.
pub fn stamp(wanted: &Value, current: Option<&Value>, now: &str) -> Value {
    match wanted {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (name, value) in fields {
                out.insert(
                    name.clone(),
                    stamp(value, current.and_then(|c| c.get(name)), now),
                );
            }
            if is_condition(wanted) {
                let same = current.is_some_and(|c| c["status"] == wanted["status"]);
                let time = match current.and_then(|c| c.get("lastTransitionTime")) {
                    Some(time) if same => time.clone(),
                    _ => Value::String(now.to_string()),
                };
                out.insert("lastTransitionTime".into(), time);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| stamp(item, counterpart(item, current), now))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `current` already holds everything in `wanted` (fields it has
/// beyond those are someone else's; arrays must match entry for entry).
pub fn holds(current: Option<&Value>, wanted: &Value) -> bool {
    let Some(current) = current else {
        return false;
    };
    match (current, wanted) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(name, value)| holds(have.get(name), value)),
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len()
                && want.iter().all(|item| match identity(item) {
                    Some(_) => holds(counterpart(item, Some(current)), item),
                    // Entries without an identity (supportedKinds,
                    // addresses): some entry must hold this one.
                    None => have.iter().any(|entry| holds(Some(entry), item)),
                })
        }
        (have, want) => have == want,
    }
}

fn is_condition(value: &Value) -> bool {
    value.get("type").is_some() && value.get("status").is_some() && value.get("reason").is_some()
}

/// What identifies an array entry: a condition's `type`, a listener's
/// `name`, a route parent's `parentRef` and `controllerName`; `None` for
/// entries that are their own identity (supportedKinds, addresses).
fn identity(value: &Value) -> Option<Value> {
    if is_condition(value) {
        return value.get("type").cloned();
    }
    if let Some(name) = value.get("name") {
        return Some(name.clone());
    }
    value
        .get("parentRef")
        .map(|parent| serde_json::json!([normalized_parent(parent), value.get("controllerName")]))
}

/// The entry of the array `current` with the same identity as `item`.
fn counterpart<'a>(item: &Value, current: Option<&'a Value>) -> Option<&'a Value> {
    let candidates = current?.as_array()?;
    let wanted = identity(item)?;
    candidates
        .iter()
        .find(|c| identity(c).as_ref() == Some(&wanted))
}

/// A parentRef as the API server stores it (defaults filled in), so a
/// stored entry matches the one translation made from the route's spec.
fn normalized_parent(parent: &Value) -> Value {
    let mut parent = parent.clone();
    if let Value::Object(fields) = &mut parent {
        fields
            .entry("group")
            .or_insert_with(|| crate::api::gateway::GROUP.into());
        fields.entry("kind").or_insert_with(|| "Gateway".into());
    }
    parent
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition(kind: &str, status: &str, time: Option<&str>) -> Value {
        let mut c = json!({"type": kind, "status": status, "reason": "R", "message": ""});
        if let Some(time) = time {
            c["lastTransitionTime"] = time.into();
        }
        c
    }

    #[test]
    fn stamps_keep_the_time_of_unchanged_conditions() {
        let current = json!({"conditions": [condition("Programmed", "False", Some("t0")), condition("Accepted", "True", Some("t0"))]});
        let wanted = json!({"conditions": [condition("Accepted", "True", None), condition("Programmed", "True", None)]});
        let stamped = stamp(&wanted, Some(&current), "t1");
        assert_eq!(stamped["conditions"][0]["lastTransitionTime"], "t0");
        assert_eq!(stamped["conditions"][1]["lastTransitionTime"], "t1");
        assert!(holds(Some(&stamped), &stamped));
        assert!(!holds(Some(&current), &stamped));
    }

    #[test]
    fn listeners_match_by_name() {
        let current = json!({"listeners": [
            {"name": "b", "attachedRoutes": 1, "conditions": [condition("Accepted", "True", Some("tb"))]},
            {"name": "a", "attachedRoutes": 2, "conditions": [condition("Accepted", "True", Some("ta"))]},
        ]});
        let wanted = json!({"listeners": [
            {"name": "a", "attachedRoutes": 2, "conditions": [condition("Accepted", "True", None)]},
            {"name": "b", "attachedRoutes": 1, "conditions": [condition("Accepted", "True", None)]},
        ]});
        let kinds = json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                           {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]);
        let (mut current, mut wanted) = (current, wanted);
        for body in [&mut current, &mut wanted] {
            for listener in body["listeners"].as_array_mut().unwrap() {
                listener["supportedKinds"] = kinds.clone();
            }
            body["addresses"] = json!([{"type": "IPAddress", "value": "192.0.2.1"}]);
        }
        let stamped = stamp(&wanted, Some(&current), "now");
        assert_eq!(
            stamped["listeners"][0]["conditions"][0]["lastTransitionTime"],
            "ta"
        );
        assert!(
            holds(Some(&current), &stamped),
            "same content in another order"
        );
        let mut other_kinds = stamped.clone();
        other_kinds["listeners"][0]["supportedKinds"] =
            json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]);
        assert!(!holds(Some(&current), &other_kinds));
        let mut more = stamped.clone();
        more["listeners"][1]["attachedRoutes"] = 2.into();
        assert!(!holds(Some(&current), &more));
    }

    #[test]
    fn addresses_are_typed() {
        let lb: Vec<k8s_openapi::api::networking::v1::IngressLoadBalancerIngress> =
            serde_json::from_value(json!([{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}]))
                .unwrap();
        let body = with_addresses(&json!({"conditions": []}), &lb);
        assert_eq!(
            body["addresses"],
            json!([
                {"type": "IPAddress", "value": "192.0.2.1"},
                {"type": "Hostname", "value": "lb.example.com"},
            ])
        );
        assert!(with_addresses(&json!({}), &[]).get("addresses").is_none());
    }

    #[test]
    fn foreign_parents_are_kept_and_defaults_match() {
        let current = json!({"parents": [
            {"parentRef": {"name": "other"}, "controllerName": "x.io/other", "conditions": []},
            {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
             "controllerName": "us", "conditions": [condition("Accepted", "True", Some("t0"))]},
        ]});
        let wanted = json!({"parents": [
            {"parentRef": {"name": "gw"}, "controllerName": "us", "conditions": [condition("Accepted", "True", None)]},
        ]});
        let body = with_foreign_parents(&wanted, Some(&current), "us");
        assert_eq!(body["parents"].as_array().unwrap().len(), 2);
        assert_eq!(body["parents"][0]["controllerName"], "x.io/other");
        let stamped = stamp(&body, Some(&current), "t1");
        assert_eq!(
            stamped["parents"][1]["conditions"][0]["lastTransitionTime"],
            "t0"
        );
    }
}
