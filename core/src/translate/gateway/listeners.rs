//! A Gateway's listeners as this controller can serve them: which are
//! accepted (a protocol we implement, on a port the data plane serves),
//! which conflict, which certificates resolve, and which route kinds and
//! namespaces each admits. Pure: route attachment and the Gateway's own
//! status both read it, so they cannot disagree.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::reference_grant::{self, To};
use super::{GROUP, Verdict, selector};
use crate::api::gateway::{Gateway, Listener, RouteGroupKind};
use crate::inputs::{NamespaceKind, SecretKind};
use crate::model::{Dependency, ObjectKey, Snapshot, SourceKind, UnitDeps};
use crate::translate::{TranslateConfig, tls};

/// The route kinds this controller attaches, per listener protocol.
pub const HTTP_ROUTE: &str = "HTTPRoute";
pub const GRPC_ROUTE: &str = "GRPCRoute";

/// The listener ports the APISIX data plane serves, per protocol
/// (`--gateway-http-ports`, `--gateway-https-ports`): APISIX's own
/// configuration fixes what it listens on, so a listener on any other port
/// cannot be programmed and says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPorts {
    pub http: Vec<i32>,
    pub https: Vec<i32>,
}

impl Default for ServedPorts {
    /// The chart's data plane Service: 80 and 443, and APISIX's own 9080
    /// and 9443 for Gateways addressed to the pods directly.
    fn default() -> ServedPorts {
        ServedPorts {
            http: vec![80, 9080],
            https: vec![443, 9443],
        }
    }
}

/// One listener, evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerState {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub hostname: Option<String>,
    pub accepted: Verdict,
    pub resolved_refs: Verdict,
    /// `Some` when it conflicts with another listener of the Gateway.
    pub conflicted: Option<Verdict>,
    pub supported_kinds: Vec<RouteGroupKind>,
    /// The Secrets of its certificates (HTTPS), resolved and permitted,
    /// each with the SNIs it serves: the listener's hostname, or without
    /// one the certificate's own DNS names.
    pub certificates: Vec<(ObjectKey, Vec<String>)>,
    allowed_from: AllowedFrom,
}

#[derive(Debug, Clone, PartialEq)]
enum AllowedFrom {
    Same,
    All,
    Selector(LabelSelector),
    /// A selector that cannot be evaluated: admits nothing.
    Invalid,
}

impl ListenerState {
    /// Whether the listener serves traffic: accepted, not conflicted, and
    /// its references resolved.
    pub fn programmed(&self) -> bool {
        self.accepted.ok && self.conflicted.is_none() && self.resolved_refs.ok
    }

    /// Whether a route of `kind` in `namespace` may attach (the Gateway is
    /// in `gateway_namespace`). Selector reads the Namespace's labels.
    pub fn admits(
        &self,
        snapshot: &Snapshot,
        deps: &mut UnitDeps,
        kind: &str,
        namespace: &str,
        gateway_namespace: &str,
    ) -> bool {
        if !self.supported_kinds.iter().any(|k| k.kind == kind) {
            return false;
        }
        match &self.allowed_from {
            AllowedFrom::Same => namespace == gateway_namespace,
            AllowedFrom::All => true,
            AllowedFrom::Invalid => false,
            AllowedFrom::Selector(selector) => {
                let key = ObjectKey::cluster(namespace);
                deps.insert(Dependency::object(NamespaceKind::KIND, key.clone()));
                snapshot
                    .get::<NamespaceKind>(&key)
                    .is_some_and(|ns| selector::matches(selector, ns.metadata.labels.as_ref()))
            }
        }
    }
}

/// Whether [`evaluate`] resolves certificates: the Gateway's own
/// translation does; route attachment does not (whether a route attaches
/// does not depend on them, and reading them would make every Secret
/// rotation translate every route of the Gateway again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificates {
    Resolve,
    Ignore,
}

/// Every listener of `gateway`, in order.
pub fn evaluate(
    config: &TranslateConfig,
    snapshot: &Snapshot,
    deps: &mut UnitDeps,
    gateway: &Gateway,
    certificates: Certificates,
) -> Vec<ListenerState> {
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or("default");
    let mut states: Vec<ListenerState> = gateway
        .spec
        .listeners
        .iter()
        .map(|listener| evaluate_one(config, snapshot, deps, namespace, listener, certificates))
        .collect();
    mark_conflicts(&mut states);
    states
}

fn evaluate_one(
    config: &TranslateConfig,
    snapshot: &Snapshot,
    deps: &mut UnitDeps,
    namespace: &str,
    listener: &Listener,
    resolve: Certificates,
) -> ListenerState {
    let ports = &config.gateway_ports;
    let accepted = match listener.protocol.as_str() {
        "HTTP" if ports.http.contains(&listener.port) => Verdict::yes("Accepted"),
        "HTTPS" if ports.https.contains(&listener.port) => Verdict::yes("Accepted"),
        "HTTP" | "HTTPS" => Verdict::no(
            "PortUnavailable",
            format!(
                "the APISIX data plane serves {} on ports {:?} (--gateway-{}-ports), not {}",
                listener.protocol,
                if listener.protocol == "HTTP" {
                    &ports.http
                } else {
                    &ports.https
                },
                listener.protocol.to_ascii_lowercase(),
                listener.port
            ),
        ),
        other => Verdict::no(
            "UnsupportedProtocol",
            format!(
                "protocol {other} is not supported by this controller yet (HTTP and HTTPS are)"
            ),
        ),
    };
    let (supported_kinds, kinds_verdict) = supported_kinds(listener);
    let (certificates, certs_verdict) =
        if listener.protocol == "HTTPS" && resolve == Certificates::Resolve {
            certificates(snapshot, deps, namespace, listener)
        } else {
            (Vec::new(), Verdict::yes("ResolvedRefs"))
        };
    let resolved_refs = if kinds_verdict.ok {
        certs_verdict
    } else {
        kinds_verdict
    };
    ListenerState {
        name: listener.name.clone(),
        port: listener.port,
        protocol: listener.protocol.clone(),
        hostname: listener.hostname.clone().filter(|h| !h.is_empty()),
        accepted,
        resolved_refs,
        conflicted: None,
        supported_kinds,
        certificates,
        allowed_from: allowed_from(listener),
    }
}

/// The kinds a listener admits: those of `allowedRoutes.kinds` that its
/// protocol supports, or by default every supported one. Asking for an
/// unsupported kind is `ResolvedRefs=False` with `InvalidRouteKinds`.
fn supported_kinds(listener: &Listener) -> (Vec<RouteGroupKind>, Verdict) {
    let protocol_kinds: &[&str] = match listener.protocol.as_str() {
        "HTTP" | "HTTPS" => &[HTTP_ROUTE, GRPC_ROUTE],
        _ => &[],
    };
    let kind = |name: &str| RouteGroupKind {
        group: Some(GROUP.to_string()),
        kind: name.to_string(),
    };
    let Some(asked) = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref())
    else {
        return (
            protocol_kinds.iter().map(|k| kind(k)).collect(),
            Verdict::yes("ResolvedRefs"),
        );
    };
    let (mut supported, mut refused) = (Vec::new(), Vec::new());
    for asked in asked {
        let group_ok = asked.group.as_deref().is_none_or(|g| g == GROUP);
        if group_ok && protocol_kinds.contains(&asked.kind.as_str()) {
            supported.push(kind(&asked.kind));
        } else {
            refused.push(format!(
                "{}/{}",
                asked.group.as_deref().unwrap_or(GROUP),
                asked.kind
            ));
        }
    }
    supported.sort();
    supported.dedup();
    let verdict = if refused.is_empty() {
        Verdict::yes("ResolvedRefs")
    } else {
        Verdict::no(
            "InvalidRouteKinds",
            format!(
                "route kinds {} are not supported on a {} listener",
                refused.join(", "),
                listener.protocol
            ),
        )
    };
    (supported, verdict)
}

fn allowed_from(listener: &Listener) -> AllowedFrom {
    let namespaces = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()) {
        None | Some("Same") => AllowedFrom::Same,
        Some("All") => AllowedFrom::All,
        Some("Selector") => match namespaces.and_then(|n| n.selector.clone()) {
            Some(selector) if selector::is_valid(&selector) => AllowedFrom::Selector(selector),
            _ => AllowedFrom::Invalid,
        },
        Some(_) => AllowedFrom::Invalid,
    }
}

/// An HTTPS listener's certificate Secrets: each must be a core Secret,
/// permitted (a ReferenceGrant across namespaces) and hold a key pair.
fn certificates(
    snapshot: &Snapshot,
    deps: &mut UnitDeps,
    namespace: &str,
    listener: &Listener,
) -> (Vec<(ObjectKey, Vec<String>)>, Verdict) {
    let refs = listener
        .tls
        .as_ref()
        .map(|t| t.certificate_refs.as_slice())
        .unwrap_or_default();
    if listener.tls.as_ref().and_then(|t| t.mode.as_deref()) == Some("Passthrough") {
        return (
            Vec::new(),
            Verdict::no(
                "InvalidCertificateRef",
                "an HTTPS listener terminates TLS: mode Passthrough is for TLS listeners",
            ),
        );
    }
    if refs.is_empty() {
        return (
            Vec::new(),
            Verdict::no(
                "InvalidCertificateRef",
                "an HTTPS listener needs tls.certificateRefs",
            ),
        );
    }
    let mut keys = Vec::new();
    for reference in refs {
        let group = reference.group.as_deref().unwrap_or("");
        let kind = reference.kind.as_deref().unwrap_or("Secret");
        let key = ObjectKey::new(
            reference.namespace.as_deref().unwrap_or(namespace),
            &reference.name,
        );
        if !group.is_empty() || kind != "Secret" {
            return (
                keys,
                Verdict::no(
                    "InvalidCertificateRef",
                    format!("certificateRef {group}/{kind} {key}: only core Secrets are supported"),
                ),
            );
        }
        let from = reference_grant::From {
            group: GROUP,
            kind: "Gateway",
            namespace,
        };
        if !reference_grant::permits(
            snapshot,
            deps,
            from,
            To {
                group: "",
                kind: "Secret",
                key: &key,
            },
        ) {
            return (
                keys,
                Verdict::no(
                    "RefNotPermitted",
                    format!(
                        "certificateRef Secret {key}: no ReferenceGrant in {} allows it",
                        key.namespace
                    ),
                ),
            );
        }
        deps.insert(Dependency::object(SecretKind::KIND, key.clone()));
        match certificate_snis(snapshot, &key, listener) {
            Ok(snis) => keys.push((key, snis)),
            Err(why) => return (keys, Verdict::no("InvalidCertificateRef", why)),
        }
    }
    (keys, Verdict::yes("ResolvedRefs"))
}

/// The SNIs a listener serves with certificate `key`: its hostname, or
/// without one the certificate's own DNS names.
fn certificate_snis(
    snapshot: &Snapshot,
    key: &ObjectKey,
    listener: &Listener,
) -> Result<Vec<String>, String> {
    let (cert, _) = tls::key_pair(snapshot, key).map_err(|e| e.to_string())?;
    if let Some(hostname) = listener.hostname.as_deref().filter(|h| !h.is_empty()) {
        return Ok(vec![hostname.to_string()]);
    }
    let names = tls::certificate_names(&cert).map_err(|e| format!("certificate {key}: {e}"))?;
    if names.is_empty() {
        return Err(format!(
            "certificate {key} names no host APISIX can select it by (SNI), and the listener has no hostname"
        ));
    }
    Ok(names)
}

/// Listeners on one port must agree on the protocol family (HTTP and HTTPS
/// may not share a port) and differ in hostname.
fn mark_conflicts(states: &mut [ListenerState]) {
    let mut by_port: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (index, state) in states.iter().enumerate() {
        by_port.entry(state.port).or_default().push(index);
    }
    for indices in by_port.values() {
        for &i in indices {
            let clash = indices.iter().filter(|&&j| j != i).find_map(|&j| {
                let (a, b) = (&states[i], &states[j]);
                if a.protocol != b.protocol {
                    Some(Verdict::no(
                        "ProtocolConflict",
                        format!("listener {} on port {} uses {}", b.name, b.port, b.protocol),
                    ))
                } else if a.hostname == b.hostname {
                    Some(Verdict::no(
                        "HostnameConflict",
                        format!(
                            "listener {} on port {} has the same hostname",
                            b.name, b.port
                        ),
                    ))
                } else {
                    None
                }
            });
            states[i].conflicted = clash;
        }
    }
}
