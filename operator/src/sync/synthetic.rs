//! Synthetic desired states for tests, benchmarks and chaos tests: each
//! unit is an upstream and a route pointing at it, all valid APISIX objects
//! owned by the given cluster. Not used by the operator itself.

use serde_json::json;

use super::{DesiredState, UnitKey};
use crate::apisix::{ApisixDir, CanonicalValue, EtcdKey};

/// `units` units under `prefix`, owned by `cluster`. `generation` is part of
/// every route's URI, so a new generation rewrites every route (and only the
/// routes).
pub fn synthetic_state(prefix: &str, cluster: &str, units: usize, generation: u64) -> DesiredState {
    let mut state = DesiredState::new();
    for i in 0..units {
        let unit = UnitKey::new("Synthetic", Some("default"), &format!("u{i}"));
        let up_id = format!("ao_{cluster}_u{i}");
        let route_id = format!("ao_{cluster}_r{i}");
        let upstream = json!({
            "id": up_id, "type": "roundrobin",
            "nodes": [{"host": "127.0.0.1", "port": 8080, "weight": 1}],
            "labels": {"managed-by": "apisix-operator"},
        });
        let route = json!({
            "id": route_id, "uri": format!("/svc-{i}/v{generation}"), "upstream_id": up_id,
            "labels": {"managed-by": "apisix-operator"},
        });
        state.insert(
            EtcdKey::new(prefix, ApisixDir::Upstreams, &up_id).expect("synthetic ids are valid"),
            CanonicalValue::from_json(upstream).expect("an object"),
            unit.clone(),
        );
        state.insert(
            EtcdKey::new(prefix, ApisixDir::Routes, &route_id).expect("synthetic ids are valid"),
            CanonicalValue::from_json(route).expect("an object"),
            unit,
        );
    }
    state
}
