//! Upstreams are shared: every unit that needs the same Service port with
//! the same settings produces the same key with the same value, which the
//! desired state then owns jointly. So one EndpointSlice change behind a
//! Service used by many routes rewrites one upstream, not one per route, and
//! the data plane rebuilds one.
//!
//! The id names the Service (or ApisixUpstream) and port, how endpoints are
//! picked (granularity, subset), and a digest of everything else in the
//! value except its nodes, which follow the endpoints. A unit whose settings
//! differ (other annotations, say) therefore gets a key of its own. Labels
//! name the Service the upstream stands for, never one unit.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::TranslateConfig;
use crate::apisix::{IdKind, object_id};

/// What picks an upstream's nodes, besides the digest of its settings.
pub struct UpstreamSource<'a> {
    pub namespace: &'a str,
    /// The Service (or, for external upstreams, the ApisixUpstream).
    pub name: &'a str,
    /// `Service` or `ApisixUpstream`, for the labels.
    pub kind: &'a str,
    pub port: i32,
    /// `endpoint`, `service` (cluster IP) or `external`.
    pub granularity: &'a str,
    pub subset: Option<&'a str>,
}

/// The labels of a shared upstream: those of the ApisixUpstream that
/// decorates it (shared by every unit using the Service), then who manages
/// it and what it stands for.
pub fn labels(
    config: &TranslateConfig,
    source: &UpstreamSource<'_>,
    decoration: Option<&std::collections::BTreeMap<String, String>>,
    warnings: &mut Vec<String>,
) -> Value {
    let owner = format!("ApisixUpstream {}/{}", source.namespace, source.name);
    let mut labels = super::copied_labels(decoration, &owner, warnings);
    for (key, value) in [
        ("managed-by", "apisix-operator"),
        ("apisix-operator-cluster", config.ownership.cluster()),
        ("k8s-kind", source.kind),
        ("k8s-namespace", source.namespace),
        ("k8s-name", source.name),
    ] {
        labels.insert(key.into(), value.into());
    }
    Value::Object(labels)
}

/// Gives `upstream` (without an `id`) its shared id; returns the id.
pub fn assign_id(
    config: &TranslateConfig,
    source: &UpstreamSource<'_>,
    upstream: &mut Map<String, Value>,
) -> String {
    let mut settings = upstream.clone();
    settings.remove("id");
    settings.remove("nodes");
    // serde_json's maps are sorted, so equal settings serialize equally.
    let text = serde_json::to_string(&settings).expect("JSON serializes");
    let digest = Sha256::digest(text.as_bytes());
    let digest: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let identity = format!(
        "upstream/{}/{}/{}/{}/{}/{digest}",
        source.namespace,
        source.name,
        source.port,
        source.granularity,
        source.subset.unwrap_or("")
    );
    let id = object_id(&config.ownership, IdKind::Upstream, &identity);
    upstream.insert("id".into(), id.clone().into());
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(port: i32) -> UpstreamSource<'static> {
        UpstreamSource {
            namespace: "ns",
            name: "web",
            kind: "Service",
            port,
            granularity: "endpoint",
            subset: None,
        }
    }

    #[test]
    fn the_id_follows_the_settings_not_the_nodes() {
        let config = crate::fixtures::config();
        let value = |nodes: Value, retries: u32| -> Map<String, Value> {
            json!({"type": "roundrobin", "nodes": nodes, "retries": retries})
                .as_object()
                .unwrap()
                .clone()
        };
        let mut a = value(json!([{"host": "10.0.0.1"}]), 1);
        let mut b = value(json!([{"host": "10.0.0.2"}]), 1);
        let mut c = value(json!([{"host": "10.0.0.1"}]), 2);
        let (ida, idb, idc) = (
            assign_id(&config, &source(80), &mut a),
            assign_id(&config, &source(80), &mut b),
            assign_id(&config, &source(80), &mut c),
        );
        assert_eq!(ida, idb);
        assert_ne!(ida, idc);
        assert_eq!(a["id"], json!(ida));
        let mut d = value(json!([]), 1);
        assert_ne!(assign_id(&config, &source(81), &mut d), ida);
    }
}
