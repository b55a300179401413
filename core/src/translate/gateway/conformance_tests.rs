//! Table tests derived from the Gateway API conformance suite (v1.5): for
//! each test covered, the objects it applies, the status it expects, and
//! which backend each of its requests reaches, checked on the translated
//! APISIX routes by `matcher` (APISIX's routing rules) instead of a data
//! plane. The README's Gateway API section lists what is covered and what
//! is not, with why.

use serde_json::{Value, json};

use super::matcher::{self, Outcome, Request};
use crate::apisix::ApisixDir;
use crate::index::ClusterIndex;
use crate::model::UnitKey;
use crate::registry;

const INFRA: &str = "gateway-conformance-infra";
const WEB: &str = "gateway-conformance-web-backend";
const APP: &str = "gateway-conformance-app-backend";

/// The cluster of one test: the conformance suite's base objects (its
/// namespaces, GatewayClass, Gateways and backends) plus the test's own.
struct World {
    index: ClusterIndex,
}

/// What a request got.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    /// The backend Service (`name` in the infra namespace, else `ns/name`).
    Backend(String),
    /// Split between backends, with weights.
    Split(Vec<(String, i64)>),
    Status(i64),
    Redirect(i64, String),
}

fn backend(name: &str) -> Got {
    Got::Backend(name.to_string())
}

impl World {
    fn new() -> World {
        let mut config = crate::fixtures::config();
        config.schemas = Some(crate::fixtures::shipped_schemas());
        config.controller_name = "apisix.apache.org/apisix-operator".into();
        let mut world = World {
            index: ClusterIndex::new(config),
        };
        world.apply(&base_objects());
        world
    }

    fn apply(&mut self, objects: &[Value]) {
        for object in objects {
            let kind = registry::kind_of_manifest(
                object["apiVersion"].as_str().unwrap(),
                object["kind"].as_str().unwrap(),
            )
            .unwrap_or_else(|| panic!("no registered kind for {object}"));
            let decoded = kind.decode(object.clone()).unwrap();
            let key = kind.key_of(&decoded);
            self.index.apply_object(kind, key, decoded);
        }
        self.index.flush();
        assert!(self.index.errors().is_empty(), "{:?}", self.index.errors());
    }

    fn routes(&self) -> Vec<Value> {
        self.index
            .desired()
            .in_dir(ApisixDir::Routes)
            .map(|(_, v)| v.value.to_json())
            .collect()
    }

    fn service_of(&self, upstream_id: &str) -> String {
        let (_, upstream) = self
            .index
            .desired()
            .in_dir(ApisixDir::Upstreams)
            .find(|(_, v)| v.value.to_json()["id"] == upstream_id)
            .unwrap_or_else(|| panic!("upstream {upstream_id} is not desired"));
        let labels = &upstream.value.to_json()["labels"];
        let (ns, name) = (
            labels["k8s-namespace"].as_str().unwrap(),
            labels["k8s-name"].as_str().unwrap(),
        );
        if ns == INFRA {
            name.to_string()
        } else {
            format!("{ns}/{name}")
        }
    }

    fn send(&self, request: &Request) -> Option<Got> {
        match matcher::outcome(&self.routes(), request) {
            Outcome::NoRoute => None,
            Outcome::Status(code) => Some(Got::Status(code)),
            Outcome::Redirect { code, location } => Some(Got::Redirect(code, location)),
            Outcome::Upstreams(split) if split.len() == 1 => {
                Some(Got::Backend(self.service_of(&split[0].0)))
            }
            Outcome::Upstreams(split) => Some(Got::Split(
                split
                    .iter()
                    .map(|(id, w)| (self.service_of(id), *w))
                    .collect(),
            )),
        }
    }

    /// Checks every (request, expected answer; `None`: no route, 404).
    fn expect(&self, cases: &[(Request, Option<Got>)]) {
        for (request, want) in cases {
            assert_eq!(&self.send(request), want, "{request:?}");
        }
    }

    fn report(&self, kind: &'static str, namespace: Option<&str>, name: &str) -> Value {
        let unit = UnitKey::new(kind, namespace, name);
        self.index
            .status()
            .reports
            .get(&unit)
            .unwrap_or_else(|| panic!("no status for {unit}"))
            .wanted
            .clone()
    }

    /// `(status, reason)` of condition `kind` of the route's entry for
    /// parent `gateway`.
    fn route_condition(
        &self,
        namespace: &str,
        route: &str,
        gateway: &str,
        kind: &str,
    ) -> (String, String) {
        let report = self.report("HTTPRoute", Some(namespace), route);
        let parent = report["parents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["parentRef"]["name"] == gateway)
            .unwrap_or_else(|| panic!("no parent {gateway} in {report}"));
        condition_of(&parent["conditions"], kind)
    }

    fn has_parent(&self, namespace: &str, route: &str, gateway: &str) -> bool {
        let report = self.report("HTTPRoute", Some(namespace), route);
        report["parents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["parentRef"]["name"] == gateway)
    }
}

fn condition_of(conditions: &Value, kind: &str) -> (String, String) {
    let condition = conditions
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {conditions}"));
    (
        condition["status"].as_str().unwrap().into(),
        condition["reason"].as_str().unwrap().into(),
    )
}

fn holds(reason: &str) -> (String, String) {
    ("True".into(), reason.into())
}

fn fails(reason: &str) -> (String, String) {
    ("False".into(), reason.into())
}

fn get(host: &str, path: &str) -> Request {
    Request::get(host, path)
}

// --- The base objects -------------------------------------------------------

fn namespace(name: &str, label: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"gateway-conformance": label}}})
}

fn service(namespace: &str, name: &str, address: &str) -> [Value; 2] {
    [
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"namespace": namespace, "name": name},
               "spec": {"clusterIP": format!("10.96.{address}"), "ports": [{"name": "http", "port": 8080, "targetPort": 3000}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"namespace": namespace, "name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
               "addressType": "IPv4",
               "ports": [{"name": "http", "port": 3000}],
               "endpoints": [{"addresses": [format!("10.244.{address}")], "conditions": {"ready": true}}]}),
    ]
}

fn gateway(namespace: &str, name: &str, listeners: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"namespace": namespace, "name": name, "generation": 1},
           "spec": {"gatewayClassName": "apisix", "listeners": listeners}})
}

fn http_listener(name: &str, from: Value) -> Value {
    json!({"name": name, "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": from}})
}

fn base_objects() -> Vec<Value> {
    let mut objects = vec![
        namespace(INFRA, "infra"),
        namespace(APP, "backend"),
        namespace(WEB, "backend"),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "apisix", "generation": 1},
               "spec": {"controllerName": "apisix.apache.org/apisix-operator"}}),
        gateway(
            INFRA,
            "same-namespace",
            json!([http_listener("http", json!({"from": "Same"}))]),
        ),
        gateway(
            INFRA,
            "all-namespaces",
            json!([http_listener("http", json!({"from": "All"}))]),
        ),
        gateway(
            INFRA,
            "backend-namespaces",
            json!([http_listener(
                "http",
                json!({"from": "Selector", "selector": {"matchLabels": {"gateway-conformance": "backend"}}})
            )]),
        ),
    ];
    for (ns, name, address) in [
        (INFRA, "infra-backend-v1", "1.1"),
        (INFRA, "infra-backend-v2", "1.2"),
        (INFRA, "infra-backend-v3", "1.3"),
        (APP, "app-backend-v1", "2.1"),
        (APP, "app-backend-v2", "2.2"),
        (WEB, "web-backend", "3.1"),
    ] {
        objects.extend(service(ns, name, address));
    }
    objects
}

/// An HTTPRoute of `namespace` attached to `parents`.
fn http_route(
    namespace: &str,
    name: &str,
    parents: Value,
    hostnames: Value,
    rules: Value,
) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"namespace": namespace, "name": name, "generation": 1,
                        "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"parentRefs": parents, "hostnames": hostnames, "rules": rules}})
}

fn parent(name: &str) -> Value {
    json!([{"name": name, "namespace": INFRA}])
}

fn to(name: &str) -> Value {
    json!([{"name": name, "port": 8080}])
}

// --- Tests ------------------------------------------------------------------

/// HTTPRouteSimpleSameNamespace (core): one rule, one backend.
#[test]
fn http_route_simple_same_namespace() {
    let mut world = World::new();
    world.apply(&[http_route(
        INFRA,
        "gateway-conformance-infra-test",
        parent("same-namespace"),
        json!([]),
        json!([{"backendRefs": to("infra-backend-v1")}]),
    )]);
    world.expect(&[(get("example.com", "/"), Some(backend("infra-backend-v1")))]);
    let (route, gw) = ("gateway-conformance-infra-test", "same-namespace");
    assert_eq!(
        world.route_condition(INFRA, route, gw, "Accepted"),
        holds("Accepted")
    );
    assert_eq!(
        world.route_condition(INFRA, route, gw, "ResolvedRefs"),
        holds("ResolvedRefs")
    );
    let status = world.report("HTTPRoute", Some(INFRA), route);
    assert_eq!(
        status["parents"][0]["controllerName"],
        "apisix.apache.org/apisix-operator"
    );
    assert_eq!(
        status["parents"][0]["conditions"][0]["observedGeneration"],
        1
    );
}
