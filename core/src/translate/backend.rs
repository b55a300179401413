//! A Service backend → the nodes and scheme of an APISIX upstream.
//!
//! Nodes come from the Service's EndpointSlices: ready endpoints (an unset
//! `ready` counts as ready); when none is ready, the endpoints that are still
//! serving while terminating, so a rollout's last pods keep traffic. The
//! endpoint port is the slice port whose name equals the Service port's
//! name. ExternalName Services become one node with the external host.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use serde_json::{Value, json};

use super::TranslateError;
use crate::inputs::{EndpointSliceKind, PodKind, ServiceKind};
use crate::model::{ObjectKey, Snapshot, SourceKind};

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
    selector: Option<&BTreeMap<String, String>>,
) -> Result<ResolvedBackend, TranslateError> {
    let service = snapshot.get::<ServiceKind>(service_key).ok_or_else(|| {
        TranslateError::missing(
            ServiceKind::KIND,
            service_key,
            backend_error(service_key, "not found").to_string(),
        )
    })?;
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
    let nodes = if spec.type_.as_deref() == Some("ExternalName") {
        let host = spec
            .external_name
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                backend_error(service_key, "is of type ExternalName without externalName")
            })?;
        vec![Node {
            host,
            port: service_port.port,
        }]
    } else {
        endpoint_nodes(snapshot, service_key, service_port, selector)
    };
    Ok(ResolvedBackend {
        service_port: service_port.port,
        nodes,
        scheme,
        websocket,
    })
}

/// The nodes of a Service port from its EndpointSlices: the ready ones, or
/// when none is ready those still serving while terminating.
fn endpoint_nodes(
    snapshot: &Snapshot,
    service_key: &ObjectKey,
    service_port: &ServicePort,
    selector: Option<&BTreeMap<String, String>>,
) -> Vec<Node> {
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    let slices = snapshot
        .store::<EndpointSliceKind>()
        .into_iter()
        .flat_map(|store| store.of_service(service_key));
    for slice in slices.filter(|slice| slice.address_type != "FQDN") {
        let Some(port_number) = slice_port(slice, service_port) else {
            continue;
        };
        let selected = slice.endpoints.iter().filter(|endpoint| {
            selector.is_none_or(|selector| {
                in_subset(snapshot, &service_key.namespace, endpoint, selector)
            })
        });
        for endpoint in selected {
            let conditions = endpoint.conditions.clone().unwrap_or_default();
            let target = if conditions.ready != Some(false) {
                &mut ready
            } else if conditions.serving == Some(true) && conditions.terminating == Some(true) {
                &mut terminating
            } else {
                continue;
            };
            target.extend(endpoint.addresses.iter().map(|address| Node {
                host: address.clone(),
                port: port_number,
            }));
        }
    }
    let nodes = if ready.is_empty() { terminating } else { ready };
    nodes.into_iter().collect()
}

/// The port number of a slice's port whose name equals the Service port's.
fn slice_port(slice: &EndpointSlice, service_port: &ServicePort) -> Option<i32> {
    let wanted = service_port.name.as_deref().unwrap_or("");
    slice
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref().unwrap_or("") == wanted)?
        .port
}

/// Whether an endpoint's Pod carries every label of `selector`. The Pod is
/// the endpoint's `targetRef`, else the Pod whose IP is its address.
fn in_subset(
    snapshot: &Snapshot,
    namespace: &str,
    endpoint: &Endpoint,
    selector: &BTreeMap<String, String>,
) -> bool {
    let Some(pods) = snapshot.store::<PodKind>() else {
        return false;
    };
    let by_target = endpoint
        .target_ref
        .as_ref()
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| r.name.as_deref())
        .map(|name| pods.labels(&ObjectKey::new(namespace, name)));
    let labels = match by_target {
        Some(labels) => labels,
        None => endpoint
            .addresses
            .iter()
            .find_map(|address| pods.labels_by_ip(namespace, address)),
    };
    labels.is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
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
