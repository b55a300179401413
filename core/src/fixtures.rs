//! Builders of Kubernetes objects and settings for the unit tests.

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::{Value, json};

use crate::apisix::Ownership;
use crate::model::TranslateConfig;

pub(crate) fn config() -> TranslateConfig {
    TranslateConfig::defaults("/apisix", Ownership::new("test").unwrap())
}

pub(crate) fn mk_class(name: &str, controller: &str, default: bool) -> IngressClass {
    let mut annotations = json!({});
    if default {
        annotations = json!({"ingressclass.kubernetes.io/is-default-class": "true"});
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"controller": controller},
    }))
    .unwrap()
}

pub(crate) fn mk_service(ns: &str, name: &str, ports: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name},
        "spec": {"ports": ports},
    }))
    .unwrap()
}

/// An endpoint: (address, ready, serving, terminating); None = unset.
pub(crate) type TestEndpoint<'a> = (&'a str, Option<bool>, Option<bool>, Option<bool>);

/// A slice of `service` with `ports` and `endpoints`.
pub(crate) fn mk_slice(
    ns: &str,
    name: &str,
    service: &str,
    ports: Value,
    endpoints: &[TestEndpoint<'_>],
) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(addr, ready, serving, terminating)| {
            json!({"addresses": [addr], "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

pub(crate) fn mk_ingress(ns: &str, name: &str, annotations: Value, spec: Value) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "annotations": annotations},
        "spec": spec,
    }))
    .unwrap()
}

/// The APISIX schema snapshot shipped with the project.
pub(crate) fn shipped_schemas() -> std::sync::Arc<crate::apisix::ApisixSchemas> {
    std::sync::Arc::new(crate::apisix::ApisixSchemas::shipped().clone())
}

pub(crate) fn test_cert() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

pub(crate) fn mk_tls_secret(ns: &str, name: &str, cert: &str, key: &str) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": cert, "tls.key": key},
    }))
    .unwrap()
}

pub(crate) fn mk_plugin_config(ns: &str, name: &str) -> crate::api::ApisixPluginConfig {
    serde_json::from_value(json!({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixPluginConfig",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"plugins": []},
    }))
    .unwrap()
}

pub(crate) use crate::inputs::{
    EndpointSliceKind, IngressClassKind, PodKind, SecretKind, ServiceKind,
};
pub(crate) use crate::translate::apisix_route::ApisixRouteKind;
pub(crate) use crate::translate::apisix_upstream::ApisixUpstreamKind;
pub(crate) use crate::translate::ingress::IngressKind;
pub(crate) use crate::translate::plugin_sets::ApisixPluginConfigKind;

/// A backend of Service `web` on `port`.
pub(crate) fn backend(port: Value) -> Value {
    json!({"service": {"name": "web", "port": port}})
}

pub(crate) fn simple_spec(path: &str, path_type: &str) -> Value {
    json!({"rules": [{"host": "example.com", "http": {"paths": [
        {"path": path, "pathType": path_type, "backend": backend(json!({"number": 80}))}
    ]}}]})
}
