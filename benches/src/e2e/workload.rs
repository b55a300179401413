//! The objects of the end-to-end benchmark, and the changes made to them:
//! N ApisixRoutes, each with a headless Service and a 3-endpoint
//! EndpointSlice, plus M Ingresses on those Services (every tenth with a TLS
//! Secret). The same objects feed an in-process index, whose desired state
//! is what etcd must end up holding, and which names the keys each change
//! must rewrite.

use std::collections::BTreeSet;

use apisix_operator::api::ApisixRoute;
use apisix_operator::index::ClusterIndex;
use apisix_operator::inputs::{EndpointSliceKind, IngressClassKind, SecretKind, ServiceKind};
use apisix_operator::translate::TranslateConfig;
use apisix_operator::translate::apisix_route::ApisixRouteKind;
use apisix_operator::translate::ingress::IngressKind;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::json;

/// Namespaces the objects are spread over.
pub const NAMESPACES: usize = 20;

/// The size of one run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Scale {
    pub routes: usize,
    pub ingresses: usize,
}

pub fn namespace(i: usize) -> String {
    format!("bench-{}", i % NAMESPACES)
}

pub fn class() -> IngressClass {
    serde_json::from_value(json!({
        "metadata": {"name": "apisix",
            "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": TranslateConfig::DEFAULT_CONTROLLER_NAME},
    }))
    .expect("a valid IngressClass")
}

pub fn service(i: usize) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace(i), "name": format!("svc-{i}")},
        "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
    }))
    .expect("a valid Service")
}

/// Service `i`'s slice, with `endpoints` endpoints; `generation` changes
/// their addresses.
pub fn slice(i: usize, endpoints: usize, generation: usize) -> EndpointSlice {
    let endpoints: Vec<_> = (0..endpoints)
        .map(|e| {
            json!({"addresses": [format!("10.{}.{}.{}", (i / 250) % 250, i % 250, (e + generation * 7) % 250 + 1)],
                   "conditions": {"ready": true}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace(i), "name": format!("svc-{i}-a"),
            "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": endpoints,
    }))
    .expect("a valid EndpointSlice")
}

/// ApisixRoute `i`; `version` is part of its path.
pub fn route(i: usize, version: usize) -> ApisixRoute {
    serde_json::from_value(json!({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
        "metadata": {"namespace": namespace(i), "name": format!("route-{i}")},
        "spec": {"http": [{"name": "main",
            "match": {"hosts": [format!("app-{i}.example.com")], "paths": [format!("/v{version}/*")]},
            "backends": [{"serviceName": format!("svc-{i}"), "servicePort": 80}]}]},
    }))
    .expect("a valid ApisixRoute")
}

/// The Service Ingress `j` uses (in Ingress `j`'s namespace).
fn ingress_service(j: usize, scale: Scale) -> usize {
    // Same namespace as Ingress j: services whose index ≡ j mod NAMESPACES.
    let candidates = scale.routes.div_ceil(NAMESPACES).max(1);
    let k = (j / NAMESPACES) % candidates;
    (k * NAMESPACES + j % NAMESPACES).min(scale.routes.saturating_sub(1))
}

pub fn has_tls(j: usize) -> bool {
    j.is_multiple_of(10)
}

/// Ingress `j`; `websocket` toggles an annotation.
pub fn ingress(j: usize, scale: Scale, websocket: bool) -> Ingress {
    let service = ingress_service(j, scale);
    let mut spec = json!({"rules": [{"host": format!("ing-{j}.example.com"), "http": {"paths": [
        {"path": "/", "pathType": "Prefix",
         "backend": {"service": {"name": format!("svc-{service}"), "port": {"number": 80}}}}]}}]});
    if has_tls(j) {
        spec["tls"] =
            json!([{"hosts": [format!("ing-{j}.example.com")], "secretName": format!("tls-{j}")}]);
    }
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace(j), "name": format!("ing-{j}"),
            "annotations": {"k8s.apisix.apache.org/enable-websocket": websocket.to_string()}},
        "spec": spec,
    }))
    .expect("a valid Ingress")
}

/// A certificate and key for the TLS Secrets (two, to rotate between).
pub struct Certificates {
    pairs: [(String, String); 2],
}

impl Certificates {
    pub fn new() -> Certificates {
        let pair = || {
            let key = rcgen::KeyPair::generate().expect("a key");
            let cert = rcgen::CertificateParams::new(vec!["example.com".to_string()])
                .expect("params")
                .self_signed(&key)
                .expect("a certificate");
            (cert.pem(), key.serialize_pem())
        };
        Certificates {
            pairs: [pair(), pair()],
        }
    }

    pub fn secret(&self, j: usize, rotation: usize) -> Secret {
        let (cert, key) = &self.pairs[rotation % 2];
        serde_json::from_value(json!({
            "metadata": {"namespace": namespace(j), "name": format!("tls-{j}")},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": cert, "tls.key": key},
        }))
        .expect("a valid Secret")
    }
}

impl Default for Certificates {
    fn default() -> Self {
        Certificates::new()
    }
}

/// One change of the latency scenario.
#[derive(Debug, Clone)]
pub enum Change {
    RoutePath { route: usize, version: usize },
    IngressAnnotation { ingress: usize, websocket: bool },
    SliceScale { service: usize, endpoints: usize },
    SecretRotation { ingress: usize, rotation: usize },
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::RoutePath { .. } => "ApisixRoute path",
            Change::IngressAnnotation { .. } => "Ingress annotation",
            Change::SliceScale { .. } => "EndpointSlice scale",
            Change::SecretRotation { .. } => "Secret rotation",
        }
    }

    /// The same change with the other value, for when the object already
    /// holds this one (so every measured change rewrites something).
    pub fn flipped(&self) -> Change {
        match *self {
            Change::RoutePath { route, version } => Change::RoutePath {
                route,
                version: version + 1,
            },
            Change::IngressAnnotation { ingress, websocket } => Change::IngressAnnotation {
                ingress,
                websocket: !websocket,
            },
            Change::SliceScale { service, endpoints } => Change::SliceScale {
                service,
                endpoints: if endpoints == 4 { 5 } else { 4 },
            },
            Change::SecretRotation { ingress, rotation } => Change::SecretRotation {
                ingress,
                rotation: rotation + 1,
            },
        }
    }

    /// The `n`th change of a run: kinds in turn, objects spread out.
    pub fn nth(n: usize, scale: Scale) -> Change {
        let tls_ingresses = scale.ingresses.div_ceil(10).max(1);
        match n % 4 {
            0 => Change::RoutePath {
                route: (n * 7919) % scale.routes,
                version: n + 2,
            },
            1 => Change::IngressAnnotation {
                ingress: (n * 104_729) % scale.ingresses.max(1),
                websocket: (n / 4).is_multiple_of(2),
            },
            2 => Change::SliceScale {
                service: (n * 15_485_863) % scale.routes,
                endpoints: 3 + (n / 4) % 2 + 1,
            },
            _ => Change::SecretRotation {
                ingress: ((n * 31) % tls_ingresses) * 10,
                rotation: n / 4 + 1,
            },
        }
    }
}

/// The workload's objects, and an index holding the same ones.
pub struct Workload {
    pub scale: Scale,
    pub certificates: Certificates,
    pub index: ClusterIndex,
}

impl Workload {
    pub fn new(scale: Scale, config: TranslateConfig) -> Workload {
        let certificates = Certificates::new();
        let mut index = ClusterIndex::new(config);
        index.apply::<IngressClassKind>(class());
        for i in 0..scale.routes {
            index.apply::<ServiceKind>(service(i));
            index.apply::<EndpointSliceKind>(slice(i, 3, 0));
            index.apply::<ApisixRouteKind>(route(i, 1));
        }
        for j in 0..scale.ingresses {
            if has_tls(j) {
                index.apply::<SecretKind>(certificates.secret(j, 0));
            }
            index.apply::<IngressKind>(ingress(j, scale, false));
        }
        index.flush();
        Workload {
            scale,
            certificates,
            index,
        }
    }

    /// Applies `change` to the index; the etcd keys it rewrites.
    pub fn expect(&mut self, change: &Change) -> BTreeSet<String> {
        let before = self.index.desired().clone();
        match change {
            Change::RoutePath { route: i, version } => {
                self.index.apply::<ApisixRouteKind>(route(*i, *version))
            }
            Change::IngressAnnotation {
                ingress: j,
                websocket,
            } => self
                .index
                .apply::<IngressKind>(ingress(*j, self.scale, *websocket)),
            Change::SliceScale { service, endpoints } => self
                .index
                .apply::<EndpointSliceKind>(slice(*service, *endpoints, 0)),
            Change::SecretRotation {
                ingress: j,
                rotation,
            } => self
                .index
                .apply::<SecretKind>(self.certificates.secret(*j, *rotation)),
        }
        self.index.flush();
        self.index
            .desired()
            .changed_keys(&before)
            .map(|key| key.as_str().to_string())
            .collect()
    }
}
