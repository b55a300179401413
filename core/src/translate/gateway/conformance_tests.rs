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

    /// `(status, reason)` of condition `kind` of the HTTPRoute's entry for
    /// parent `gateway`.
    fn route_condition(
        &self,
        namespace: &str,
        route: &str,
        gateway: &str,
        kind: &str,
    ) -> (String, String) {
        self.route_condition_of("HTTPRoute", namespace, route, gateway, kind)
    }

    /// [`World::route_condition`] of a route of `route_kind`.
    fn route_condition_of(
        &self,
        route_kind: &'static str,
        namespace: &str,
        route: &str,
        gateway: &str,
        kind: &str,
    ) -> (String, String) {
        let report = self.report(route_kind, Some(namespace), route);
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

/// A Namespace with the labels the API server and the suite give it.
fn namespace(name: &str, label: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"gateway-conformance": label, "kubernetes.io/metadata.name": name}}})
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

fn v(name: &str) -> Option<Got> {
    Some(backend(&format!("infra-backend-{name}")))
}

fn rule(matches: Value, backend: &str) -> Value {
    json!({"matches": matches, "backendRefs": to(backend)})
}

fn prefix(path: &str) -> Value {
    json!({"path": {"type": "PathPrefix", "value": path}})
}

fn exact(path: &str) -> Value {
    json!({"path": {"type": "Exact", "value": path}})
}

fn headers(pairs: &[(&str, &str)]) -> Value {
    let headers: Vec<Value> = pairs
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    json!({"headers": headers})
}

fn query(pairs: &[(&str, &str)]) -> Value {
    let params: Vec<Value> = pairs
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    json!({"queryParams": params})
}

/// Merges match fragments (`prefix`, `headers`, `query`, a method).
fn all(parts: &[Value]) -> Value {
    let mut merged = serde_json::Map::new();
    for part in parts {
        merged.extend(part.as_object().unwrap().clone());
    }
    Value::Object(merged)
}

fn method(name: &str) -> Value {
    json!({"method": name})
}

fn same_namespace_route(name: &str, rules: Value) -> Value {
    http_route(INFRA, name, parent("same-namespace"), json!([]), rules)
}

fn accepted_and_resolved(world: &World, namespace: &str, route: &str, gateway: &str) {
    assert_eq!(
        world.route_condition(namespace, route, gateway, "Accepted"),
        holds("Accepted"),
        "{route}"
    );
    assert_eq!(
        world.route_condition(namespace, route, gateway, "ResolvedRefs"),
        holds("ResolvedRefs"),
        "{route}"
    );
}

/// HTTPRouteExactPathMatching (core).
#[test]
fn http_route_exact_path_matching() {
    let mut world = World::new();
    world.apply(&[same_namespace_route(
        "exact-matching",
        json!([
            rule(json!([exact("/one")]), "infra-backend-v1"),
            rule(json!([exact("/two")]), "infra-backend-v2"),
        ]),
    )]);
    accepted_and_resolved(&world, INFRA, "exact-matching", "same-namespace");
    world.expect(&[
        (get("", "/one"), v("v1")),
        (get("", "/two"), v("v2")),
        (get("", "/"), None),
        (get("", "/one/example"), None),
        (get("", "/two/"), None),
        (get("", "/Two"), None),
    ]);
}

/// HTTPRouteMatching (core): paths and headers, ORed matches.
#[test]
fn http_route_matching() {
    let mut world = World::new();
    world.apply(&[same_namespace_route(
        "matching",
        json!([
            rule(
                json!([prefix("/"), headers(&[("version", "one")])]),
                "infra-backend-v1"
            ),
            rule(
                json!([prefix("/v2"), headers(&[("version", "two")])]),
                "infra-backend-v2"
            ),
        ]),
    )]);
    accepted_and_resolved(&world, INFRA, "matching", "same-namespace");
    world.expect(&[
        (get("", "/"), v("v1")),
        (get("", "/example"), v("v1")),
        (get("", "/").header("Version", "one"), v("v1")),
        (get("", "/v2"), v("v2")),
        (get("", "/v2/example"), v("v2")),
        (get("", "/").header("Version", "two"), v("v2")),
        (get("", "/v2/"), v("v2")),
        (get("", "/v2example"), v("v1")),
        (get("", "/foo/v2/example"), v("v1")),
    ]);
}

/// HTTPRouteMatchingAcrossRoutes (core): precedence across two routes.
#[test]
fn http_route_matching_across_routes() {
    let mut world = World::new();
    world.apply(&[
        http_route(
            INFRA,
            "matching-part1",
            parent("same-namespace"),
            json!(["example.com", "example.net"]),
            json!([rule(
                json!([prefix("/"), headers(&[("version", "one")])]),
                "infra-backend-v1"
            )]),
        ),
        http_route(
            INFRA,
            "matching-part2",
            parent("same-namespace"),
            json!(["example.com"]),
            json!([rule(
                json!([prefix("/v2"), headers(&[("version", "two")])]),
                "infra-backend-v2"
            )]),
        ),
    ]);
    for route in ["matching-part1", "matching-part2"] {
        accepted_and_resolved(&world, INFRA, route, "same-namespace");
    }
    world.expect(&[
        (get("example.com", "/"), v("v1")),
        (get("example.com", "/example"), v("v1")),
        (get("example.net", "/example"), v("v1")),
        (
            get("example.com", "/example").header("Version", "one"),
            v("v1"),
        ),
        (get("example.com", "/v2"), v("v2")),
        (get("example.net", "/v2"), v("v1")),
        (get("example.com", "/v2/example"), v("v2")),
        (get("example.com", "/").header("Version", "two"), v("v2")),
    ]);
}

/// HTTPRouteHeaderMatching (core): more header matches win, then rule order.
#[test]
fn http_route_header_matching() {
    let mut world = World::new();
    world.apply(&[same_namespace_route(
        "header-matching",
        json!([
            rule(json!([headers(&[("version", "one")])]), "infra-backend-v1"),
            rule(json!([headers(&[("version", "two")])]), "infra-backend-v2"),
            rule(
                json!([headers(&[("version", "two"), ("color", "orange")])]),
                "infra-backend-v1"
            ),
            rule(
                json!([
                    headers(&[("color", "blue")]),
                    headers(&[("color", "green")])
                ]),
                "infra-backend-v1"
            ),
            rule(
                json!([
                    headers(&[("color", "red")]),
                    headers(&[("color", "yellow")])
                ]),
                "infra-backend-v2"
            ),
        ]),
    )]);
    accepted_and_resolved(&world, INFRA, "header-matching", "same-namespace");
    let with = |pairs: &[(&str, &str)]| pairs.iter().fold(get("", "/"), |r, (n, v)| r.header(n, v));
    world.expect(&[
        (with(&[("Version", "one")]), v("v1")),
        (with(&[("Version", "two")]), v("v2")),
        (with(&[("Version", "two"), ("Color", "orange")]), v("v1")),
        (with(&[("Version", "two"), ("Color", "blue")]), v("v2")),
        (with(&[("Color", "orange")]), None),
        (with(&[("Some-Other-Header", "one")]), None),
        (with(&[("Color", "blue")]), v("v1")),
        (with(&[("Color", "green")]), v("v1")),
        (with(&[("Color", "red")]), v("v2")),
        (with(&[("Color", "yellow")]), v("v2")),
        (with(&[("Color", "purple")]), None),
    ]);
}

/// HTTPRouteQueryParamMatching (extended: SupportHTTPRouteQueryParamMatching).
#[test]
fn http_route_query_param_matching() {
    let mut world = World::new();
    let h = |n, v| headers(&[(n, v)]);
    world.apply(&[same_namespace_route(
        "query-param-matching",
        json!([
            rule(json!([query(&[("animal", "whale")])]), "infra-backend-v1"),
            rule(json!([query(&[("animal", "dolphin")])]), "infra-backend-v2"),
            rule(
                json!([
                    query(&[("animal", "dolphin"), ("color", "blue")]),
                    query(&[("ANIMAL", "Whale")])
                ]),
                "infra-backend-v3"
            ),
            rule(
                json!([all(&[prefix("/path1"), query(&[("animal", "whale")])])]),
                "infra-backend-v1"
            ),
            rule(
                json!([all(&[h("version", "one"), query(&[("animal", "whale")])])]),
                "infra-backend-v2"
            ),
            rule(
                json!([all(&[
                    prefix("/path2"),
                    h("version", "two"),
                    query(&[("animal", "whale")])
                ])]),
                "infra-backend-v3"
            ),
            rule(
                json!([
                    all(&[prefix("/path3"), query(&[("animal", "shark")])]),
                    all(&[
                        prefix("/path4"),
                        h("version", "three"),
                        query(&[("animal", "kraken")])
                    ])
                ]),
                "infra-backend-v1"
            ),
            rule(json!([prefix("/path5")]), "infra-backend-v1"),
            rule(json!([query(&[("animal", "hydra")])]), "infra-backend-v2"),
            rule(json!([h("version", "four")]), "infra-backend-v3"),
        ]),
    )]);
    accepted_and_resolved(&world, INFRA, "query-param-matching", "same-namespace");
    world.expect(&[
        (get("", "/?animal=whale"), v("v1")),
        (get("", "/?animal=dolphin"), v("v2")),
        (get("", "/?animal=dolphin&color=blue"), v("v3")),
        (get("", "/?ANIMAL=Whale"), v("v3")),
        (get("", "/?animal=whale&otherparam=irrelevant"), v("v1")),
        (get("", "/?animal=dolphin&color=yellow"), v("v2")),
        (get("", "/?color=blue"), None),
        (get("", "/?animal=dog"), None),
        (get("", "/?animal=whaledolphin"), None),
        (get("", "/"), None),
        (get("", "/path1?animal=whale"), v("v1")),
        (get("", "/?animal=whale").header("version", "one"), v("v2")),
        (
            get("", "/path2?animal=whale").header("version", "two"),
            v("v3"),
        ),
        (get("", "/path3?animal=shark"), v("v1")),
        (
            get("", "/path4?animal=kraken").header("version", "three"),
            v("v1"),
        ),
        (get("", "/?animal=shark"), None),
        (get("", "/path4?animal=kraken"), None),
        (get("", "/path5?animal=hydra"), v("v1")),
        (get("", "/?animal=hydra").header("version", "four"), v("v3")),
    ]);
}

/// HTTPRouteMethodMatching (extended: SupportHTTPRouteMethodMatching).
#[test]
fn http_route_method_matching() {
    let mut world = World::new();
    let h = |n, v| headers(&[(n, v)]);
    world.apply(&[same_namespace_route(
        "method-matching",
        json!([
            rule(json!([method("POST")]), "infra-backend-v1"),
            rule(json!([method("GET")]), "infra-backend-v2"),
            rule(
                json!([all(&[prefix("/path1"), method("GET")])]),
                "infra-backend-v1"
            ),
            rule(
                json!([all(&[h("version", "one"), method("PUT")])]),
                "infra-backend-v2"
            ),
            rule(
                json!([all(&[
                    prefix("/path2"),
                    h("version", "two"),
                    method("POST")
                ])]),
                "infra-backend-v3"
            ),
            rule(
                json!([
                    all(&[prefix("/path3"), method("PATCH")]),
                    all(&[prefix("/path4"), h("version", "three"), method("DELETE")])
                ]),
                "infra-backend-v1"
            ),
            rule(json!([prefix("/path5")]), "infra-backend-v1"),
            rule(json!([method("PATCH")]), "infra-backend-v2"),
            rule(json!([h("version", "four")]), "infra-backend-v3"),
        ]),
    )]);
    accepted_and_resolved(&world, INFRA, "method-matching", "same-namespace");
    world.expect(&[
        (get("", "/").method("POST"), v("v1")),
        (get("", "/"), v("v2")),
        (get("", "/").method("HEAD"), None),
        (get("", "/path1"), v("v1")),
        (get("", "/").method("PUT").header("version", "one"), v("v2")),
        (
            get("", "/path2").method("POST").header("version", "two"),
            v("v3"),
        ),
        (get("", "/path3").method("PATCH"), v("v1")),
        (
            get("", "/path4")
                .method("DELETE")
                .header("version", "three"),
            v("v1"),
        ),
        (get("", "/").method("PUT"), None),
        (get("", "/path4").method("DELETE"), None),
        (get("", "/path5").method("PATCH"), v("v1")),
        (
            get("", "/").method("PATCH").header("version", "four"),
            v("v2"),
        ),
    ]);
}

/// HTTPRoutePathMatchOrder (core): exact before prefix, longest prefix.
#[test]
fn http_route_path_match_order() {
    let mut world = World::new();
    world.apply(&[same_namespace_route(
        "path-matching-order",
        json!([
            rule(json!([exact("/match")]), "infra-backend-v1"),
            rule(json!([exact("/match/exact")]), "infra-backend-v2"),
            rule(json!([exact("/match/exact/one")]), "infra-backend-v3"),
            rule(json!([prefix("/match/")]), "infra-backend-v3"),
            rule(json!([prefix("/match/prefix/")]), "infra-backend-v1"),
            rule(json!([prefix("/match/prefix/one")]), "infra-backend-v2"),
        ]),
    )]);
    world.expect(&[
        (get("", "/match/exact/one"), v("v3")),
        (get("", "/match/exact"), v("v2")),
        (get("", "/match"), v("v1")),
        (get("", "/match/prefix/one/any"), v("v2")),
        (get("", "/match/prefix/any"), v("v1")),
        (get("", "/match/any"), v("v3")),
    ]);
}

/// HTTPRouteHostnameIntersection (core).
#[test]
fn http_route_hostname_intersection() {
    let mut world = World::new();
    let listener = |name: &str, host: Option<&str>| json!({"name": name, "protocol": "HTTP", "port": 80, "hostname": host, "allowedRoutes": {"namespaces": {"from": "Same"}}});
    let gw = "httproute-hostname-intersection";
    let to_gw = json!([{"name": gw, "namespace": INFRA}]);
    let route = |name: &str, hosts: Value, path: &str, backend: &str| {
        http_route(
            INFRA,
            name,
            to_gw.clone(),
            hosts,
            json!([rule(json!([prefix(path)]), backend)]),
        )
    };
    world.apply(&[
        gateway(
            INFRA,
            gw,
            json!([
                listener("listener-1", Some("very.specific.com")),
                listener("listener-2", Some("*.wildcard.io")),
                listener("listener-3", Some("*.anotherwildcard.io"))
            ]),
        ),
        gateway(
            INFRA,
            "httproute-hostname-intersection-all",
            json!([listener("listener-1", None)]),
        ),
        route(
            "specific-host-matches-listener-specific-host",
            json!([
                "non.matching.com",
                "*.nonmatchingwildcard.io",
                "very.specific.com"
            ]),
            "/s1",
            "infra-backend-v1",
        ),
        route(
            "specific-host-matches-listener-wildcard-host",
            json!([
                "non.matching.com",
                "wildcard.io",
                "foo.wildcard.io",
                "bar.wildcard.io",
                "foo.bar.wildcard.io"
            ]),
            "/s2",
            "infra-backend-v2",
        ),
        route(
            "wildcard-host-matches-listener-specific-host",
            json!(["non.matching.com", "*.specific.com"]),
            "/s3",
            "infra-backend-v3",
        ),
        route(
            "wildcard-host-matches-listener-wildcard-host",
            json!(["*.anotherwildcard.io"]),
            "/s4",
            "infra-backend-v1",
        ),
        route(
            "no-intersecting-hosts",
            json!(["specific.but.wrong.com", "wildcard.io"]),
            "/s5",
            "infra-backend-v2",
        ),
        http_route(
            INFRA,
            "httproute-hostname-intersection-all",
            json!([{"name": "httproute-hostname-intersection-all", "namespace": INFRA}]),
            json!(["first.com", "sub.first.com", "second.com", "sub.second.com"]),
            json!([{"backendRefs": to("infra-backend-v2")}]),
        ),
    ]);
    for route in [
        "specific-host-matches-listener-specific-host",
        "specific-host-matches-listener-wildcard-host",
        "wildcard-host-matches-listener-specific-host",
        "wildcard-host-matches-listener-wildcard-host",
    ] {
        accepted_and_resolved(&world, INFRA, route, gw);
    }
    assert_eq!(
        world.route_condition(INFRA, "no-intersecting-hosts", gw, "Accepted"),
        fails("NoMatchingListenerHostname")
    );
    let status = world.report("Gateway", Some(INFRA), gw);
    let attached: Vec<i64> = status["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attachedRoutes"].as_i64().unwrap())
        .collect();
    assert_eq!(
        attached,
        [2, 1, 1],
        "a route that is not accepted is not counted"
    );
    world.expect(&[
        (get("very.specific.com", "/s1"), v("v1")),
        (get("very.specific.com:1234", "/s1"), v("v1")),
        (get("non.matching.com", "/s1"), None),
        (get("foo.nonmatchingwildcard.io", "/s1"), None),
        (get("foo.wildcard.io", "/s1"), None),
        (get("very.specific.com", "/non-matching-prefix"), None),
        (get("foo.wildcard.io", "/s2"), v("v2")),
        (get("bar.wildcard.io", "/s2"), v("v2")),
        (get("foo.bar.wildcard.io", "/s2"), v("v2")),
        (get("non.matching.com", "/s2"), None),
        (get("wildcard.io", "/s2"), None),
        (get("very.specific.com", "/s2"), None),
        (get("very.specific.com", "/s3"), v("v3")),
        (get("non.matching.com", "/s3"), None),
        (get("foo.specific.com", "/s3"), None),
        (get("foo.wildcard.io", "/s3"), None),
        (get("foo.anotherwildcard.io", "/s4"), v("v1")),
        (get("bar.anotherwildcard.io", "/s4"), v("v1")),
        (get("foo.bar.anotherwildcard.io", "/s4"), v("v1")),
        (get("anotherwildcard.io", "/s4"), None),
        (get("foo.wildcard.io", "/s4"), None),
        (get("very.specific.com", "/s4"), None),
        (get("specific.but.wrong.com", "/s5"), None),
        (get("wildcard.io", "/s5"), None),
        (get("first.com", "/"), v("v2")),
        (get("sub.first.com", "/"), v("v2")),
        (get("second.com", "/"), v("v2")),
        (get("sub.second.com", "/"), v("v2")),
        (get("third.com", "/"), None),
        (get("sub.third.com", "/"), None),
    ]);
}

/// HTTPRouteListenerHostnameMatching (core): sectionName picks listeners.
#[test]
fn http_route_listener_hostname_matching() {
    let mut world = World::new();
    let gw = "httproute-listener-hostname-matching";
    let listener = |name: &str, host: &str| json!({"name": name, "protocol": "HTTP", "port": 80, "hostname": host, "allowedRoutes": {"namespaces": {"from": "Same"}}});
    let section = |names: &[&str]| -> Value {
        names
            .iter()
            .map(|s| json!({"name": gw, "namespace": INFRA, "sectionName": s}))
            .collect()
    };
    world.apply(&[
        gateway(
            INFRA,
            gw,
            json!([
                listener("listener-1", "bar.com"),
                listener("listener-2", "foo.bar.com"),
                listener("listener-3", "*.bar.com"),
                listener("listener-4", "*.foo.com")
            ]),
        ),
        http_route(
            INFRA,
            "backend-v1",
            section(&["listener-1"]),
            json!([]),
            json!([{"backendRefs": to("infra-backend-v1")}]),
        ),
        http_route(
            INFRA,
            "backend-v2",
            section(&["listener-2"]),
            json!([]),
            json!([{"backendRefs": to("infra-backend-v2")}]),
        ),
        http_route(
            INFRA,
            "backend-v3",
            section(&["listener-3", "listener-4"]),
            json!([]),
            json!([{"backendRefs": to("infra-backend-v3")}]),
        ),
    ]);
    let parents = world.report("HTTPRoute", Some(INFRA), "backend-v3")["parents"].clone();
    assert_eq!(
        parents.as_array().unwrap().len(),
        2,
        "one entry per parentRef"
    );
    for parent in parents.as_array().unwrap() {
        assert_eq!(
            condition_of(&parent["conditions"], "Accepted"),
            holds("Accepted")
        );
    }
    world.expect(&[
        (get("bar.com", "/"), v("v1")),
        (get("foo.bar.com", "/"), v("v2")),
        (get("baz.bar.com", "/"), v("v3")),
        (get("boo.bar.com", "/"), v("v3")),
        (get("multiple.prefixes.bar.com", "/"), v("v3")),
        (get("multiple.prefixes.foo.com", "/"), v("v3")),
        (get("foo.com", "/"), None),
        (get("no.matching.host", "/"), None),
    ]);
}

/// HTTPRouteCrossNamespace (core): a Selector listener admits the route.
#[test]
fn http_route_cross_namespace() {
    let mut world = World::new();
    world.apply(&[http_route(
        WEB,
        "cross-namespace",
        parent("backend-namespaces"),
        json!([]),
        json!([{"backendRefs": to("web-backend")}]),
    )]);
    accepted_and_resolved(&world, WEB, "cross-namespace", "backend-namespaces");
    world.expect(&[(get("", "/"), Some(backend(&format!("{WEB}/web-backend"))))]);
}

fn cross_namespace_backend(namespace: &str) -> Value {
    json!([{"name": "web-backend", "namespace": namespace, "port": 8080}])
}

/// HTTPRouteReferenceGrant and HTTPRouteInvalidCrossNamespaceBackendRef
/// (SupportReferenceGrant): a backend across namespaces needs a grant, and
/// deleting the grant takes the backend away (500).
#[test]
fn http_route_reference_grant() {
    let mut world = World::new();
    world.apply(&[same_namespace_route(
        "reference-grant",
        json!([{"backendRefs": cross_namespace_backend(WEB)}]),
    )]);
    assert_eq!(
        world.route_condition(INFRA, "reference-grant", "same-namespace", "Accepted"),
        holds("Accepted")
    );
    assert_eq!(
        world.route_condition(INFRA, "reference-grant", "same-namespace", "ResolvedRefs"),
        fails("RefNotPermitted")
    );
    world.expect(&[(get("", "/"), Some(Got::Status(500)))]);

    let grant = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ReferenceGrant",
        "metadata": {"namespace": WEB, "name": "reference-grant"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": INFRA}],
                 "to": [{"group": "", "kind": "Service", "name": "web-backend"}]}});
    world.apply(std::slice::from_ref(&grant));
    accepted_and_resolved(&world, INFRA, "reference-grant", "same-namespace");
    world.expect(&[(get("", "/"), Some(backend(&format!("{WEB}/web-backend"))))]);

    let kind =
        registry::kind_of_manifest("gateway.networking.k8s.io/v1", "ReferenceGrant").unwrap();
    world
        .index
        .delete_object(kind, &crate::model::ObjectKey::new(WEB, "reference-grant"));
    world.index.flush();
    world.expect(&[(get("", "/"), Some(Got::Status(500)))]);
}

/// HTTPRouteInvalidBackendRefUnknownKind and
/// HTTPRouteInvalidNonExistentBackendRef (core): 500 and the reason.
#[test]
fn http_route_invalid_backend_refs() {
    let mut world = World::new();
    world.apply(&[
        same_namespace_route("invalid-backend-ref-unknown-kind", json!([{"backendRefs":
            [{"group": "unknownkind.example.com", "kind": "NonExistent", "name": "infra-backend-v1", "port": 8080}]}])),
        http_route(INFRA, "invalid-nonexistent-backend-ref", parent("same-namespace"), json!(["nonexistent.example"]),
            json!([{"backendRefs": [{"name": "nonexistent", "namespace": INFRA, "port": 8080}]}])),
    ]);
    let gw = "same-namespace";
    assert_eq!(
        world.route_condition(INFRA, "invalid-backend-ref-unknown-kind", gw, "Accepted"),
        holds("Accepted")
    );
    assert_eq!(
        world.route_condition(
            INFRA,
            "invalid-backend-ref-unknown-kind",
            gw,
            "ResolvedRefs"
        ),
        fails("InvalidKind")
    );
    assert_eq!(
        world.route_condition(INFRA, "invalid-nonexistent-backend-ref", gw, "ResolvedRefs"),
        fails("BackendNotFound")
    );
    world.expect(&[
        (get("", "/v2"), Some(Got::Status(500))),
        (get("nonexistent.example", "/"), Some(Got::Status(500))),
    ]);
}

/// HTTPRouteInvalidCrossNamespaceParentRef,
/// HTTPRouteInvalidParentRefNotMatchingSectionName,
/// HTTPRouteInvalidParentRefNotMatchingListenerPort (core/extended) and
/// HTTPRouteDisallowedKind: not accepted, with the spec's reason, refs
/// still resolved, nothing attached and nothing written.
#[test]
fn http_route_invalid_parent_refs() {
    let mut world = World::new();
    let to_same = |extra: Value| {
        let mut parent = json!({"name": "same-namespace", "namespace": INFRA});
        parent
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!([parent])
    };
    world.apply(&[
        gateway(INFRA, "tlsroutes-only", json!([{"name": "tls", "protocol": "TLS", "port": 443,
            "tls": {"mode": "Passthrough"}, "allowedRoutes": {"namespaces": {"from": "Same"}, "kinds": [{"kind": "TLSRoute"}]}}])),
        http_route(WEB, "invalid-cross-namespace-parent-ref", to_same(json!({})), json!([]), json!([{"backendRefs": to("web-backend")}])),
        http_route(INFRA, "not-matching-section-name", to_same(json!({"port": 80, "sectionName": "http1"})), json!([]),
            json!([{"backendRefs": to("infra-backend-v1")}])),
        http_route(INFRA, "not-matching-route-port", to_same(json!({"port": 81})), json!([]),
            json!([{"backendRefs": to("infra-backend-v1")}])),
        http_route(INFRA, "disallowed-kind", parent("tlsroutes-only"), json!([]), json!([{"backendRefs": to("infra-backend-v1")}])),
    ]);
    let cases = [
        (
            WEB,
            "invalid-cross-namespace-parent-ref",
            "same-namespace",
            "NotAllowedByListeners",
        ),
        (
            INFRA,
            "not-matching-section-name",
            "same-namespace",
            "NoMatchingParent",
        ),
        (
            INFRA,
            "not-matching-route-port",
            "same-namespace",
            "NoMatchingParent",
        ),
        (
            INFRA,
            "disallowed-kind",
            "tlsroutes-only",
            "NotAllowedByListeners",
        ),
    ];
    for (namespace, route, gw, reason) in cases {
        assert_eq!(
            world.route_condition(namespace, route, gw, "Accepted"),
            fails(reason),
            "{route}"
        );
        assert_eq!(
            world.route_condition(namespace, route, gw, "ResolvedRefs"),
            holds("ResolvedRefs"),
            "{route}"
        );
    }
    assert!(
        world.routes().is_empty(),
        "nothing is written for routes no listener accepts"
    );
    let status = world.report("Gateway", Some(INFRA), "same-namespace");
    assert_eq!(status["listeners"][0]["attachedRoutes"], 0);
}

/// HTTPRouteRedirectScheme, HTTPRouteRedirectHostAndStatus,
/// HTTPRouteRedirectPath and HTTPRouteRedirectPort (core and extended).
#[test]
fn http_route_redirects() {
    let mut world = World::new();
    let redirect = |path: &str, settings: Value| json!({"matches": [prefix(path)], "filters": [{"type": "RequestRedirect", "requestRedirect": settings}]});
    let replace_prefix =
        json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/replacement-prefix"});
    world.apply(&[same_namespace_route("redirects", json!([
        redirect("/scheme", json!({"scheme": "https"})),
        redirect("/scheme-and-host", json!({"hostname": "example.org", "scheme": "https"})),
        redirect("/scheme-and-status", json!({"scheme": "https", "statusCode": 301})),
        redirect("/hostname-redirect", json!({"hostname": "example.org"})),
        redirect("/host-and-status", json!({"hostname": "example.org", "statusCode": 301})),
        redirect("/original-prefix", json!({"path": replace_prefix})),
        redirect("/full", json!({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/full-path-replacement"}})),
        redirect("/path-and-host", json!({"hostname": "example.org", "path": replace_prefix})),
        redirect("/path-and-status", json!({"path": replace_prefix, "statusCode": 301})),
        redirect("/port", json!({"port": 8083})),
        redirect("/port-and-host-and-status", json!({"port": 8083, "hostname": "example.org", "statusCode": 302})),
    ]))]);
    accepted_and_resolved(&world, INFRA, "redirects", "same-namespace");
    let to = |code: i64, location: &str| Some(Got::Redirect(code, location.to_string()));
    world.expect(&[
        (
            get("gw.example", "/scheme"),
            to(302, "https://gw.example/scheme"),
        ),
        (
            get("gw.example", "/scheme-and-host"),
            to(302, "https://example.org/scheme-and-host"),
        ),
        (
            get("gw.example", "/scheme-and-status"),
            to(301, "https://gw.example/scheme-and-status"),
        ),
        (
            get("gw.example", "/hostname-redirect"),
            to(302, "http://example.org/hostname-redirect"),
        ),
        (
            get("gw.example", "/host-and-status"),
            to(301, "http://example.org/host-and-status"),
        ),
        (
            get("gw.example", "/original-prefix/lemon"),
            to(302, "http://gw.example/replacement-prefix/lemon"),
        ),
        (
            get("gw.example", "/full/path/original"),
            to(302, "http://gw.example/full-path-replacement"),
        ),
        (
            get("gw.example", "/path-and-host"),
            to(302, "http://example.org/replacement-prefix"),
        ),
        (
            get("gw.example", "/path-and-status"),
            to(301, "http://gw.example/replacement-prefix"),
        ),
        (
            get("gw.example", "/port"),
            to(302, "http://gw.example:8083/port"),
        ),
        (
            get("gw.example", "/port-and-host-and-status"),
            to(302, "http://example.org:8083/port-and-host-and-status"),
        ),
    ]);
}

/// HTTPRouteRewritePath, HTTPRouteRewriteHost, HTTPRouteRequestHeaderModifier,
/// HTTPRouteResponseHeaderModifier and HTTPRouteRequestMirror (core and
/// extended): the plugins each rule gets (the data plane applies them).
#[test]
fn http_route_rewrites_header_modifiers_and_mirrors() {
    let mut world = World::new();
    let modify = json!({"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
        "add": [{"name": "X-Header-Add", "value": "header-val-1"}],
        "remove": ["X-Header-Remove"]}});
    let rewrite = |path: Value| json!({"type": "URLRewrite", "urlRewrite": {"path": path}});
    world.apply(&[http_route(INFRA, "rewrites", parent("same-namespace"), json!(["rewrite.example"]), json!([
        {"matches": [prefix("/prefix/one")], "filters": [rewrite(json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}))], "backendRefs": to("infra-backend-v1")},
        {"matches": [prefix("/strip-prefix")], "filters": [rewrite(json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}))], "backendRefs": to("infra-backend-v1")},
        {"matches": [prefix("/full/one")], "filters": [rewrite(json!({"type": "ReplaceFullPath", "replaceFullPath": "/one"})), modify], "backendRefs": to("infra-backend-v1")},
        {"matches": [prefix("/host")], "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "one.example.org"}}], "backendRefs": to("infra-backend-v1")},
        {"matches": [prefix("/response")], "filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}], "add": [{"name": "X-Header-Add", "value": "add-appends-values"}], "remove": ["X-Header-Remove"]}}],
         "backendRefs": to("infra-backend-v1")},
        {"matches": [prefix("/mirror")], "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "infra-backend-v2", "namespace": INFRA, "port": 8080}}}],
         "backendRefs": to("infra-backend-v1")},
    ]))]);
    accepted_and_resolved(&world, INFRA, "rewrites", "same-namespace");
    let plugins_for = |path: &str| {
        let routes = world.routes();
        matcher::pick(&routes, &get("rewrite.example", path)).unwrap()["plugins"].clone()
    };
    assert_eq!(
        plugins_for("/prefix/one/two")["proxy-rewrite"]["regex_uri"],
        json!(["^/prefix/one/(.*)$", "/one/$1", "^/prefix/one$", "/one"])
    );
    assert_eq!(
        plugins_for("/strip-prefix/three")["proxy-rewrite"]["regex_uri"],
        json!(["^/strip\\-prefix/(.*)$", "/$1", "^/strip\\-prefix$", "/"])
    );
    let full = plugins_for("/full/one/two");
    assert_eq!(full["proxy-rewrite"]["uri"], "/one");
    assert_eq!(
        full["proxy-rewrite"]["headers"]["set"]["X-Header-Set"],
        "set-overwrites-values"
    );
    assert_eq!(
        full["proxy-rewrite"]["headers"]["remove"],
        json!(["X-Header-Remove"])
    );
    assert_eq!(
        plugins_for("/host")["proxy-rewrite"]["host"],
        "one.example.org"
    );
    assert_eq!(
        plugins_for("/response")["response-rewrite"]["headers"]["add"],
        json!(["X-Header-Add: add-appends-values"])
    );
    assert_eq!(
        plugins_for("/mirror")["proxy-mirror"]["host"],
        "http://10.96.1.2:8080"
    );
    world.expect(&[(get("rewrite.example", "/mirror"), v("v1"))]);
}

/// HTTPRouteWeight (core): 70/30/0 → a split over two backends.
#[test]
fn http_route_weight() {
    let mut world = World::new();
    world.apply(&[same_namespace_route(
        "weighted-backends",
        json!([{"backendRefs": [
            {"name": "infra-backend-v1", "port": 8080, "weight": 70},
            {"name": "infra-backend-v2", "port": 8080, "weight": 30},
            {"name": "infra-backend-v3", "port": 8080, "weight": 0},
        ]}]),
    )]);
    world.expect(&[(
        get("", "/"),
        Some(Got::Split(vec![
            ("infra-backend-v2".into(), 30),
            ("infra-backend-v1".into(), 70),
        ])),
    )]);
}

fn tls_secret(namespace: &str, name: &str, hosts: &[&str]) -> Value {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": namespace, "name": name},
           "type": "kubernetes.io/tls", "stringData": {"tls.crt": cert.pem(), "tls.key": key.serialize_pem()}})
}

fn https_gateway(name: &str, certificate: Value) -> Value {
    gateway(
        INFRA,
        name,
        json!([{"name": "https", "protocol": "HTTPS", "port": 443,
        "allowedRoutes": {"namespaces": {"from": "All"}}, "tls": {"certificateRefs": [certificate]}}]),
    )
}

fn listener_condition(world: &World, gateway: &str, kind: &str) -> (String, String) {
    let status = world.report("Gateway", Some(INFRA), gateway);
    condition_of(&status["listeners"][0]["conditions"], kind)
}

/// GatewaySecretMissingReferenceGrant, GatewaySecretReferenceGrantSpecific,
/// GatewaySecretReferenceGrantAllInNamespace (SupportReferenceGrant) and
/// GatewayInvalidTLSConfiguration (core).
#[test]
fn gateway_certificates() {
    let mut world = World::new();
    let web_certificate =
        json!({"group": "", "kind": "Secret", "name": "certificate", "namespace": WEB});
    let grant = |name: &str, to: Value| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ReferenceGrant",
        "metadata": {"namespace": WEB, "name": name},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": INFRA}], "to": [to]}})
    };
    let mut malformed = tls_secret(INFRA, "malformed-certificate", &["x.example"]);
    malformed["stringData"] = json!({"tls.crt": "Hello world\n", "tls.key": "Hello world\n"});
    world.apply(&[
        tls_secret(WEB, "certificate", &["*.example.com", "example.com"]),
        tls_secret(INFRA, "tls-validity-checks-certificate", &["*.org"]),
        malformed,
        https_gateway("gateway-secret-missing-reference-grant", web_certificate.clone()),
        gateway(INFRA, "gateway-secret-reference-grant-specific", json!([])),
        https_gateway("gateway-certificate-nonexistent-secret", json!({"group": "", "kind": "Secret", "name": "nonexistent-certificate"})),
        https_gateway("gateway-certificate-unsupported-group", json!({"group": "wrong.group.company.io", "kind": "Secret", "name": "tls-validity-checks-certificate"})),
        https_gateway("gateway-certificate-unsupported-kind", json!({"group": "", "kind": "WrongKind", "name": "tls-validity-checks-certificate"})),
        https_gateway("gateway-certificate-malformed-secret", json!({"group": "", "kind": "Secret", "name": "malformed-certificate"})),
    ]);
    assert_eq!(
        listener_condition(
            &world,
            "gateway-secret-missing-reference-grant",
            "ResolvedRefs"
        ),
        fails("RefNotPermitted")
    );
    for gw in [
        "gateway-certificate-nonexistent-secret",
        "gateway-certificate-unsupported-group",
        "gateway-certificate-unsupported-kind",
        "gateway-certificate-malformed-secret",
    ] {
        assert_eq!(
            listener_condition(&world, gw, "ResolvedRefs"),
            fails("InvalidCertificateRef"),
            "{gw}"
        );
        assert_eq!(
            world.report("Gateway", Some(INFRA), gw)["listeners"][0]["attachedRoutes"],
            0
        );
    }
    assert!(
        world
            .index
            .desired()
            .in_dir(ApisixDir::Ssls)
            .next()
            .is_none(),
        "no certificate resolves yet"
    );

    world.apply(&[
        grant(
            "reference-grant-specific",
            json!({"group": "", "kind": "Secret", "name": "certificate"}),
        ),
        https_gateway("gateway-secret-reference-grant-specific", web_certificate),
    ]);
    assert_eq!(
        listener_condition(
            &world,
            "gateway-secret-reference-grant-specific",
            "Programmed"
        ),
        holds("Programmed")
    );
    assert_eq!(
        listener_condition(
            &world,
            "gateway-secret-reference-grant-specific",
            "ResolvedRefs"
        ),
        holds("ResolvedRefs")
    );
    let status = world.report(
        "Gateway",
        Some(INFRA),
        "gateway-secret-reference-grant-specific",
    );
    assert_eq!(
        status["listeners"][0]["supportedKinds"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}, {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}])
    );
    let ssls: Vec<Value> = world
        .index
        .desired()
        .in_dir(ApisixDir::Ssls)
        .map(|(_, v)| v.value.to_json())
        .collect();
    assert_eq!(
        ssls.len(),
        2,
        "both Gateways naming the Secret now resolve it: {ssls:?}"
    );
    assert_eq!(
        ssls[0]["snis"],
        json!(["*.example.com", "example.com"]),
        "a listener without hostname serves the certificate's names"
    );

    // GatewaySecretReferenceGrantAllInNamespace: a grant naming no Secret
    // allows every Secret of its namespace (the specific grant above does
    // not cover this one).
    let other = json!({"group": "", "kind": "Secret", "name": "certificate-2", "namespace": WEB});
    world.apply(&[
        tls_secret(WEB, "certificate-2", &["shop.example"]),
        https_gateway("gateway-secret-reference-grant-all-in-namespace", other),
    ]);
    let gw = "gateway-secret-reference-grant-all-in-namespace";
    assert_eq!(
        listener_condition(&world, gw, "ResolvedRefs"),
        fails("RefNotPermitted")
    );
    world.apply(&[grant(
        "reference-grant-all-in-namespace",
        json!({"group": "", "kind": "Secret"}),
    )]);
    assert_eq!(
        listener_condition(&world, gw, "ResolvedRefs"),
        holds("ResolvedRefs")
    );
    assert_eq!(
        listener_condition(&world, gw, "Programmed"),
        holds("Programmed")
    );
}

/// GatewayInvalidRouteKind (core): unsupported kinds are refused.
#[test]
fn gateway_invalid_route_kind() {
    let mut world = World::new();
    let with_kinds = |kinds: Value| {
        json!([{"name": "http", "protocol": "HTTP", "port": 80,
        "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": kinds}}])
    };
    world.apply(&[
        gateway(
            INFRA,
            "gateway-only-invalid-route-kind",
            with_kinds(json!([{"kind": "InvalidRoute"}])),
        ),
        gateway(
            INFRA,
            "gateway-supported-and-invalid-route-kind",
            with_kinds(json!([{"kind": "InvalidRoute"}, {"kind": "HTTPRoute"}])),
        ),
    ]);
    let only = world.report("Gateway", Some(INFRA), "gateway-only-invalid-route-kind");
    assert_eq!(only["listeners"][0]["supportedKinds"], json!([]));
    assert_eq!(
        listener_condition(&world, "gateway-only-invalid-route-kind", "ResolvedRefs"),
        fails("InvalidRouteKinds")
    );
    let both = world.report(
        "Gateway",
        Some(INFRA),
        "gateway-supported-and-invalid-route-kind",
    );
    assert_eq!(
        both["listeners"][0]["supportedKinds"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}])
    );
    assert_eq!(
        listener_condition(
            &world,
            "gateway-supported-and-invalid-route-kind",
            "ResolvedRefs"
        ),
        fails("InvalidRouteKinds")
    );
    assert_eq!(condition_of(&both["conditions"], "Accepted").0, "True");
}

/// GatewayWithAttachedRoutes (core) and GatewayModifyListeners (core):
/// attachedRoutes counts accepted routes per listener, also on a listener
/// whose certificate does not resolve, and follows listener changes.
#[test]
fn gateway_attached_routes() {
    let mut world = World::new();
    let selector = json!({"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": INFRA}}});
    let listener = |host: Option<&str>| {
        json!({"name": "http", "protocol": "HTTP", "port": 80, "hostname": host,
        "allowedRoutes": {"namespaces": selector, "kinds": [{"kind": "HTTPRoute"}]}})
    };
    let to_gw = |gw: &str| json!([{"kind": "Gateway", "name": gw, "namespace": INFRA}]);
    let simple = |name: &str, gw: &str, hosts: Value| {
        http_route(
            INFRA,
            name,
            to_gw(gw),
            hosts,
            json!([{"backendRefs": to("infra-backend-v1")}]),
        )
    };
    world.apply(&[
        gateway(INFRA, "gateway-with-one-attached-route", json!([listener(None)])),
        gateway(INFRA, "gateway-with-two-attached-routes", json!([listener(Some("foo.example.com"))])),
        gateway(INFRA, "unresolved-gateway", json!([{"name": "tls", "protocol": "HTTPS", "port": 443,
            "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "does-not-exist"}]},
            "allowedRoutes": {"namespaces": selector, "kinds": [{"kind": "HTTPRoute"}]}}])),
        simple("http-route-1", "gateway-with-one-attached-route", json!([])),
        simple("http-route-2", "gateway-with-two-attached-routes", json!([])),
        simple("http-route-3", "gateway-with-two-attached-routes", json!([])),
        simple("http-route-not-accepted", "gateway-with-two-attached-routes", json!(["not-accepted.test.com"])),
        http_route(INFRA, "http-route-4", json!([{"kind": "Gateway", "name": "unresolved-gateway", "namespace": INFRA, "sectionName": "tls"}]),
            json!([]), json!([{"backendRefs": to("does-not-exist")}])),
    ]);
    let attached = |gw: &str| {
        world.report("Gateway", Some(INFRA), gw)["listeners"][0]["attachedRoutes"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(attached("gateway-with-one-attached-route"), 1);
    assert_eq!(attached("gateway-with-two-attached-routes"), 2);
    assert_eq!(attached("unresolved-gateway"), 1);
    assert_eq!(
        listener_condition(&world, "unresolved-gateway", "Programmed").0,
        "False"
    );
    assert_eq!(
        listener_condition(&world, "unresolved-gateway", "ResolvedRefs").0,
        "False"
    );
    assert_eq!(
        world.route_condition(
            INFRA,
            "http-route-not-accepted",
            "gateway-with-two-attached-routes",
            "Accepted"
        ),
        fails("NoMatchingListenerHostname")
    );
    assert_eq!(
        world
            .route_condition(INFRA, "http-route-4", "unresolved-gateway", "ResolvedRefs")
            .0,
        "False"
    );

    // GatewayModifyListeners: a listener added counts the route without a
    // sectionName too; one removed leaves no status behind.
    world.apply(&[gateway(
        INFRA,
        "gateway-with-one-attached-route",
        json!([listener(None),
        {"name": "extra", "protocol": "HTTP", "port": 80, "hostname": "data.test.com",
         "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    )]);
    let status = world.report("Gateway", Some(INFRA), "gateway-with-one-attached-route");
    let counts: Vec<(String, i64)> = status["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["attachedRoutes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("http".to_string(), 1), ("extra".to_string(), 1)]);
    world.apply(&[gateway(
        INFRA,
        "gateway-with-one-attached-route",
        json!([{"name": "extra", "protocol": "HTTP", "port": 80,
        "hostname": "data.test.com", "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    )]);
    let status = world.report("Gateway", Some(INFRA), "gateway-with-one-attached-route");
    assert_eq!(status["listeners"].as_array().unwrap().len(), 1);
    assert_eq!(status["listeners"][0]["attachedRoutes"], 1);
}

/// GatewayClassObservedGenerationBump and HTTPRouteObservedGenerationBump
/// (core): conditions carry the generation they describe.
#[test]
fn observed_generations() {
    let mut world = World::new();
    let class = |generation: i64| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "gatewayclass-observed-generation-bump", "generation": generation},
        "spec": {"controllerName": "apisix.apache.org/apisix-operator", "description": "old"}})
    };
    world.apply(&[class(1)]);
    let status = world.report(
        "GatewayClass",
        None,
        "gatewayclass-observed-generation-bump",
    );
    assert_eq!(
        condition_of(&status["conditions"], "Accepted"),
        holds("Accepted")
    );
    assert_eq!(status["conditions"][0]["observedGeneration"], 1);
    world.apply(&[class(2)]);
    let status = world.report(
        "GatewayClass",
        None,
        "gatewayclass-observed-generation-bump",
    );
    assert_eq!(status["conditions"][0]["observedGeneration"], 2);

    let mut route = same_namespace_route(
        "observed-generation-bump",
        json!([{"backendRefs": to("infra-backend-v1")}]),
    );
    world.apply(std::slice::from_ref(&route));
    route["metadata"]["generation"] = 2.into();
    route["spec"]["rules"][0]["backendRefs"][0]["name"] = "infra-backend-v2".into();
    world.apply(&[route]);
    let status = world.report("HTTPRoute", Some(INFRA), "observed-generation-bump");
    for condition in status["parents"][0]["conditions"].as_array().unwrap() {
        assert_eq!(condition["observedGeneration"], 2, "{condition}");
    }
    world.expect(&[(get("", "/"), v("v2"))]);
}

/// A GatewayClass of another controller, and its Gateways and routes, are
/// left alone: no objects, no status.
#[test]
fn other_controllers_are_left_alone() {
    let mut world = World::new();
    world.apply(&[
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "other"},
               "spec": {"controllerName": "example.com/other"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"namespace": INFRA, "name": "theirs"},
               "spec": {"gatewayClassName": "other", "listeners": [http_listener("http", json!({"from": "All"}))]}}),
        http_route(INFRA, "theirs", parent("theirs"), json!([]), json!([{"backendRefs": to("infra-backend-v1")}])),
    ]);
    assert!(world.routes().is_empty());
    assert!(
        !world.has_parent(INFRA, "theirs", "theirs"),
        "no entry for a parent of another controller"
    );
    assert!(
        world
            .index
            .status()
            .reports
            .get(&UnitKey::new("GatewayClass", None, "other"))
            .is_none()
    );
    assert!(
        world
            .index
            .status()
            .reports
            .get(&UnitKey::new("Gateway", Some(INFRA), "theirs"))
            .is_none()
    );
}

/// Unsupported features are reported, never dropped silently: the rule
/// answers 500 and the route is PartiallyInvalid (Accepted=False when no
/// rule is left).
#[test]
fn unsupported_features_are_reported() {
    let mut world = World::new();
    world.apply(&[
        same_namespace_route("partly", json!([
            {"matches": [prefix("/ok")], "backendRefs": to("infra-backend-v1")},
            {"matches": [prefix("/ext")], "filters": [{"type": "ExtensionRef", "extensionRef": {"group": "example.com", "kind": "Filter", "name": "f"}}],
             "backendRefs": to("infra-backend-v1")},
        ])),
        http_route(INFRA, "wholly", parent("same-namespace"), json!(["wholly.example"]),
            json!([{"sessionPersistence": {"sessionName": "s"}, "backendRefs": to("infra-backend-v1")}])),
    ]);
    assert_eq!(
        world.route_condition(INFRA, "partly", "same-namespace", "Accepted"),
        holds("Accepted")
    );
    assert_eq!(
        world.route_condition(INFRA, "partly", "same-namespace", "PartiallyInvalid"),
        holds("UnsupportedValue")
    );
    assert_eq!(
        world.route_condition(INFRA, "wholly", "same-namespace", "Accepted"),
        fails("UnsupportedValue")
    );
    world.expect(&[
        (get("", "/ok"), v("v1")),
        (get("", "/ext"), Some(Got::Status(500))),
        (get("wholly.example", "/"), Some(Got::Status(500))),
    ]);
}

/// Beyond the suite: an HTTPRoute and an Ingress on the same Service port
/// share one upstream key (one write per endpoint change, whoever routes).
#[test]
fn http_routes_and_ingresses_share_upstreams() {
    let mut world = World::new();
    world.apply(&[
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "apisix"},
               "spec": {"controller": "apisix.apache.org/apisix-operator"}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"namespace": INFRA, "name": "legacy"},
               "spec": {"ingressClassName": "apisix", "rules": [{"host": "legacy.example", "http": {"paths": [
                   {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "infra-backend-v1", "port": {"number": 8080}}}}]}}]}}),
        same_namespace_route("modern", json!([{"backendRefs": to("infra-backend-v1")}])),
    ]);
    assert_eq!(
        world.index.desired().in_dir(ApisixDir::Upstreams).count(),
        1
    );
    world.expect(&[
        (get("legacy.example", "/"), v("v1")),
        (get("modern.example", "/"), v("v1")),
    ]);
}

/// Beyond the suite: routes attached only to the HTTP or only to the HTTPS
/// listener of one Gateway answer only on that scheme.
#[test]
fn listeners_of_one_gateway_keep_their_schemes() {
    let mut world = World::new();
    let listeners = json!([
        {"name": "http", "protocol": "HTTP", "port": 80, "hostname": "shop.example"},
        {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": "shop.example",
         "tls": {"certificateRefs": [{"name": "shop-tls"}]}},
    ]);
    let section = |name: &str| json!([{"name": "both", "sectionName": name}]);
    world.apply(&[
        tls_secret(INFRA, "shop-tls", &["shop.example"]),
        gateway(INFRA, "both", listeners),
        http_route(INFRA, "to-https", section("http"), json!([]), json!([{"filters": [
            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}])),
        http_route(INFRA, "secure", section("https"), json!([]), json!([{"backendRefs": to("infra-backend-v1")}])),
    ]);
    world.expect(&[
        (
            get("shop.example", "/cart"),
            Some(Got::Redirect(301, "https://shop.example/cart".into())),
        ),
        (get("shop.example", "/cart").https(), v("v1")),
    ]);
    let ssls: Vec<Value> = world
        .index
        .desired()
        .in_dir(ApisixDir::Ssls)
        .map(|(_, v)| v.value.to_json())
        .collect();
    assert_eq!(ssls.len(), 1);
    assert_eq!(ssls[0]["snis"], json!(["shop.example"]));
}

fn grpc_route(
    namespace: &str,
    name: &str,
    parents: Value,
    hostnames: Value,
    rules: Value,
) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
           "metadata": {"namespace": namespace, "name": name, "generation": 1,
                        "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"parentRefs": parents, "hostnames": hostnames, "rules": rules}})
}

/// A gRPC call: a POST to `/<service>/<method>`.
fn call(host: &str, service: &str, method: &str) -> Request {
    get(host, &format!("/{service}/{method}"))
        .method("POST")
        .header("content-type", "application/grpc")
}

fn grpc_method(service: Option<&str>, method: Option<&str>) -> Value {
    json!({"method": {"service": service, "method": method}})
}

/// GRPCRouteExactMethodMatching and GRPCRouteHeaderMatching (GRPCRoute
/// core): exact service and method, then headers; an unknown method
/// matches nothing. Beyond the suite: a whole service and a method of any
/// service, in the spec's order, and the upstream speaks gRPC.
#[test]
fn grpc_route_method_and_header_matching() {
    let mut world = World::new();
    let with_header = |service, method, value| {
        let mut m = grpc_method(Some(service), Some(method));
        m["headers"] = json!([{"name": "version", "value": value}]);
        m
    };
    world.apply(&[grpc_route(INFRA, "exact-matching", parent("same-namespace"), json!([]), json!([
        {"matches": [grpc_method(Some("main.GrpcEcho"), Some("Echo"))], "backendRefs": to("infra-backend-v1")},
        {"matches": [grpc_method(Some("main.GrpcEcho"), Some("EchoTwo"))], "backendRefs": to("infra-backend-v2")},
        {"matches": [with_header("main.GrpcEcho", "EchoTwo", "three")], "backendRefs": to("infra-backend-v3")},
        {"matches": [grpc_method(Some("other.Service"), None)], "backendRefs": to("infra-backend-v3")},
        {"matches": [grpc_method(None, Some("Health"))], "backendRefs": to("infra-backend-v2")},
    ]))]);
    assert_eq!(
        world.route_condition_of(
            "GRPCRoute",
            INFRA,
            "exact-matching",
            "same-namespace",
            "Accepted"
        ),
        holds("Accepted")
    );
    assert_eq!(
        world.route_condition_of(
            "GRPCRoute",
            INFRA,
            "exact-matching",
            "same-namespace",
            "ResolvedRefs"
        ),
        holds("ResolvedRefs")
    );
    world.expect(&[
        (call("", "main.GrpcEcho", "Echo"), v("v1")),
        (call("", "main.GrpcEcho", "EchoTwo"), v("v2")),
        (
            call("", "main.GrpcEcho", "EchoTwo").header("version", "three"),
            v("v3"),
        ),
        (call("", "main.GrpcEcho", "EchoThree"), None),
        (call("", "other.Service", "Anything"), v("v3")),
        (call("", "other.Service", "Health"), v("v3")),
        (call("", "third.Service", "Health"), v("v2")),
    ]);
    let schemes: Vec<Value> = world
        .index
        .desired()
        .in_dir(ApisixDir::Upstreams)
        .map(|(_, v)| v.value.to_json()["scheme"].clone())
        .collect();
    assert!(schemes.iter().all(|s| s == "grpc"), "{schemes:?}");
}

/// GRPCRouteListenerHostnameMatching (GRPCRoute core), in short: sectionName
/// and listener hostnames as for HTTPRoutes; the Gateway counts both kinds.
#[test]
fn grpc_route_listener_hostname_matching() {
    let mut world = World::new();
    let gw = "grpcroute-listener-hostname-matching";
    let listener = |name: &str, host: &str| json!({"name": name, "protocol": "HTTP", "port": 80, "hostname": host, "allowedRoutes": {"namespaces": {"from": "Same"}}});
    let section = |s: &str| json!([{"name": gw, "namespace": INFRA, "sectionName": s}]);
    world.apply(&[
        gateway(
            INFRA,
            gw,
            json!([
                listener("listener-1", "bar.com"),
                listener("listener-2", "*.bar.com")
            ]),
        ),
        grpc_route(
            INFRA,
            "backend-v1",
            section("listener-1"),
            json!([]),
            json!([{"backendRefs": to("infra-backend-v1")}]),
        ),
        grpc_route(
            INFRA,
            "backend-v2",
            section("listener-2"),
            json!([]),
            json!([{"backendRefs": to("infra-backend-v2")}]),
        ),
        http_route(
            INFRA,
            "web",
            section("listener-2"),
            json!([]),
            json!([{"matches": [prefix("/web")], "backendRefs": to("infra-backend-v3")}]),
        ),
    ]);
    world.expect(&[
        (call("bar.com", "main.GrpcEcho", "Echo"), v("v1")),
        (call("foo.bar.com", "main.GrpcEcho", "Echo"), v("v2")),
        (get("foo.bar.com", "/web"), v("v3")),
        (call("foo.com", "main.GrpcEcho", "Echo"), None),
    ]);
    let status = world.report("Gateway", Some(INFRA), gw);
    assert_eq!(
        status["listeners"][1]["attachedRoutes"], 2,
        "a GRPCRoute and an HTTPRoute"
    );
}

/// Beyond the suite: the status the leader writes on a Gateway, echoed by
/// the watch, translates the Gateway again but none of its routes; a
/// listener change translates them all.
#[test]
fn a_gateway_status_echo_does_not_translate_its_routes() {
    let mut world = World::new();
    let routes: Vec<Value> = (0..20)
        .map(|i| {
            http_route(
                INFRA,
                &format!("r{i}"),
                parent("same-namespace"),
                json!([format!("r{i}.example")]),
                json!([{"backendRefs": to("infra-backend-v1")}]),
            )
        })
        .collect();
    world.apply(&routes);
    let gw = gateway(
        INFRA,
        "same-namespace",
        json!([http_listener("http", json!({"from": "Same"}))]),
    );
    let mut echoed = gw.clone();
    let written = world.report("Gateway", Some(INFRA), "same-namespace");
    echoed["status"] = crate::status::gateway::stamp(&written, None, "2026-12-02T00:00:00Z");
    let kind = registry::kind_of_manifest("gateway.networking.k8s.io/v1", "Gateway").unwrap();
    let apply = |world: &mut World, object: &Value| {
        let decoded = kind.decode(object.clone()).unwrap();
        let key = kind.key_of(&decoded);
        world.index.apply_object(kind, key, decoded);
        world.index.flush().len()
    };
    assert_eq!(apply(&mut world, &echoed), 1, "only the Gateway itself");
    let mut changed = gw.clone();
    changed["spec"]["listeners"][0]["hostname"] = "*.example".into();
    assert_eq!(
        apply(&mut world, &changed),
        21,
        "the Gateway and its 20 routes"
    );
}

/// Beyond the suite: a rule is counted once however many matches it has, so
/// a route with one unsupported rule and one good one stays Accepted.
#[test]
fn an_unsupported_rule_counts_once() {
    let mut world = World::new();
    world.apply(&[same_namespace_route("mixed", json!([
        {"matches": [prefix("/a"), prefix("/b")], "filters": [{"type": "CORS", "cors": {}}], "backendRefs": to("infra-backend-v1")},
        {"matches": [prefix("/ok")], "backendRefs": to("infra-backend-v2")},
    ]))]);
    assert_eq!(
        world.route_condition(INFRA, "mixed", "same-namespace", "Accepted"),
        holds("Accepted")
    );
    let status = world.report("HTTPRoute", Some(INFRA), "mixed");
    let partial = status["parents"][0]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PartiallyInvalid")
        .unwrap()
        .clone();
    assert_eq!(
        partial["message"]
            .as_str()
            .unwrap()
            .matches("rule 0")
            .count(),
        1,
        "{partial}"
    );
    world.expect(&[
        (get("", "/a"), Some(Got::Status(500))),
        (get("", "/ok"), v("v2")),
    ]);
}
