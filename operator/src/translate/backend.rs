//! A Service backend → the nodes and scheme of an APISIX upstream.
//!
//! Nodes come from the Service's EndpointSlices: ready endpoints (an unset
//! `ready` counts as ready); when none is ready, the endpoints that are still
//! serving while terminating, so a rollout's last pods keep traffic. The
//! endpoint port is the slice port whose name equals the Service port's
//! name. ExternalName Services become one node with the external host.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use serde_json::{Value, json};

use super::TranslateError;
use crate::index::{ObjectKey, Snapshot};

/// How an Ingress or route names the Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

/// What an upstream needs from its Service.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedBackend {
    /// The Service port number (part of the upstream's identity).
    pub service_port: i32,
    /// Sorted, deduplicated nodes.
    pub nodes: Vec<Node>,
    /// From the port's `appProtocol`, when it names a scheme.
    pub scheme: Option<&'static str>,
    /// `appProtocol` asks for WebSocket (`kubernetes.io/ws`, `kubernetes.io/wss`).
    pub websocket: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    pub host: String,
    pub port: i32,
}

impl Node {
    pub fn to_json(&self, weight: u32) -> Value {
        json!({"host": self.host, "port": self.port, "weight": weight})
    }
}

fn backend_error(service: &ObjectKey, reason: impl Into<String>) -> TranslateError {
    TranslateError::Backend {
        service: service.to_string(),
        reason: reason.into(),
    }
}

/// Resolves `service`'s `port` to upstream nodes.
pub fn resolve(
    snapshot: &Snapshot,
    service_key: &ObjectKey,
    port: &PortRef,
) -> Result<ResolvedBackend, TranslateError> {
    resolve_selected(snapshot, service_key, port, None)
}

/// Like [`resolve`], keeping only endpoints whose Pod carries every label
/// of `selector` (a subset); endpoints without a known Pod are dropped.
pub fn resolve_selected(
    snapshot: &Snapshot,
    service_key: &ObjectKey,
    port: &PortRef,
    selector: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<ResolvedBackend, TranslateError> {
    let service = snapshot
        .service(service_key)
        .ok_or_else(|| backend_error(service_key, "not found"))?;
    let spec = service
        .spec
        .as_ref()
        .ok_or_else(|| backend_error(service_key, "has no spec"))?;
    let service_port = find_port(service, port).ok_or_else(|| {
        backend_error(
            service_key,
            match port {
                PortRef::Number(n) => format!("has no port {n}"),
                PortRef::Name(name) => format!("has no port named {name:?}"),
            },
        )
    })?;
    let (scheme, websocket) = app_protocol(service_port.app_protocol.as_deref());

    if spec.type_.as_deref() == Some("ExternalName") {
        let host = spec
            .external_name
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                backend_error(service_key, "is of type ExternalName without externalName")
            })?;
        return Ok(ResolvedBackend {
            service_port: service_port.port,
            nodes: vec![Node {
                host,
                port: service_port.port,
            }],
            scheme,
            websocket,
        });
    }

    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    for slice in snapshot.endpoint_slices(service_key) {
        if slice.address_type == "FQDN" {
            continue;
        }
        let Some(endpoint_port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == service_port.name.as_deref().unwrap_or("")
        }) else {
            continue;
        };
        let Some(port_number) = endpoint_port.port else {
            continue;
        };
        for endpoint in &slice.endpoints {
            if let Some(selector) = selector {
                let pod = endpoint
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| r.name.as_deref())
                    .and_then(|name| {
                        snapshot.pod_labels(&ObjectKey::new(&service_key.namespace, name))
                    });
                let selected = pod
                    .is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
                if !selected {
                    continue;
                }
            }
            let conditions = endpoint.conditions.clone().unwrap_or_default();
            let is_ready = conditions.ready != Some(false);
            let serving_while_terminating =
                conditions.serving == Some(true) && conditions.terminating == Some(true);
            for address in &endpoint.addresses {
                let node = Node {
                    host: address.clone(),
                    port: port_number,
                };
                if is_ready {
                    ready.insert(node);
                } else if serving_while_terminating {
                    terminating.insert(node);
                }
            }
        }
    }
    let nodes = if ready.is_empty() { terminating } else { ready };
    Ok(ResolvedBackend {
        service_port: service_port.port,
        nodes: nodes.into_iter().collect(),
        scheme,
        websocket,
    })
}

fn find_port<'a>(service: &'a Service, port: &PortRef) -> Option<&'a ServicePort> {
    let ports = service.spec.as_ref()?.ports.as_ref()?;
    match port {
        PortRef::Number(n) => ports.iter().find(|p| p.port == *n),
        PortRef::Name(name) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str())),
    }
}

/// `appProtocol` → (upstream scheme, websocket).
fn app_protocol(value: Option<&str>) -> (Option<&'static str>, bool) {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("http") | Some("kubernetes.io/h2c") => (Some("http"), false),
        Some("https") => (Some("https"), false),
        Some("grpc") => (Some("grpc"), false),
        Some("grpcs") => (Some("grpcs"), false),
        Some("kubernetes.io/ws") | Some("ws") => (Some("http"), true),
        Some("kubernetes.io/wss") | Some("wss") => (Some("https"), true),
        _ => (None, false),
    }
}
