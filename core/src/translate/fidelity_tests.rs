//! Translation fidelity: the CRs' labels reach the APISIX objects made from
//! them (a label APISIX would refuse is left out with a warning, and our
//! ownership labels win), Ingresses' only when asked; backend subsets find
//! an endpoint's Pod by its IP when the slice names no `targetRef`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::apisix::ApisixDir;
use crate::fixtures::*;
use crate::index::ClusterIndex;
use crate::inputs::PodSummary;
use crate::model::TranslateConfig;
use crate::translate::consumer::ApisixConsumerKind;

fn cr(kind: &str, name: &str, labels: Value, spec: Value) -> Value {
    json!({"apiVersion": "apisix.apache.org/v2", "kind": kind,
           "metadata": {"namespace": "ns", "name": name, "labels": labels}, "spec": spec})
}

fn typed<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// An index with Service `web` (port 80) and two ready endpoints.
fn index(config: TranslateConfig) -> ClusterIndex {
    let mut index = ClusterIndex::new(config);
    index.apply::<IngressClassKind>(mk_class(
        "apisix",
        TranslateConfig::DEFAULT_CONTROLLER_NAME,
        true,
    ));
    index.apply::<ServiceKind>(mk_service(
        "ns",
        "web",
        json!([{"name": "http", "port": 80}]),
    ));
    index.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "web-1",
        "web",
        json!([{"name": "http", "port": 8080}]),
        &[
            ("10.0.0.1", None, None, None),
            ("10.0.0.2", None, None, None),
        ],
    ));
    index
}

fn labels_of(index: &ClusterIndex, dir: ApisixDir) -> Vec<BTreeMap<String, String>> {
    index
        .desired()
        .iter()
        .filter(|(key, _)| key.dir() == dir)
        .map(|(_, v)| serde_json::from_value(v.value.to_json()["labels"].clone()).unwrap())
        .collect()
}

fn route_cr(name: &str, labels: Value) -> crate::api::ApisixRoute {
    typed(cr(
        "ApisixRoute",
        name,
        labels,
        json!({"http": [{"name": "a", "match": {"paths": ["/*"]},
            "backends": [{"serviceName": "web", "servicePort": 80}]}]}),
    ))
}

/// Labels of an ApisixRoute, the labels its route must carry, whether a warning is due.
type LabelCase = (Value, Vec<(&'static str, &'static str)>, bool);

/// A slice's endpoints (address, targetRef Pod) and the subset's expected nodes.
type SubsetCase = (Vec<(&'static str, Option<&'static str>)>, Vec<&'static str>);

#[test]
fn cr_labels_reach_their_apisix_objects_except_what_apisix_refuses() {
    // (labels of the ApisixRoute, labels its route must carry, warned).
    let cases: Vec<LabelCase> = vec![
        (
            json!({"team": "payments"}),
            vec![("team", "payments")],
            false,
        ),
        (
            json!({"team": "payments", "app.kubernetes.io/name": "shop"}),
            vec![("team", "payments"), ("app.kubernetes.io/name", "shop")],
            false,
        ),
        // Kubernetes allows an empty value; APISIX does not: left out.
        (
            json!({"team": "payments", "tier": ""}),
            vec![("team", "payments")],
            true,
        ),
        // Ours win over a user label of the same key.
        (
            json!({"managed-by": "someone-else"}),
            vec![("managed-by", "apisix-operator")],
            false,
        ),
        (json!({}), vec![], false),
    ];
    for (user, expected, warned) in cases {
        let mut index = index(config());
        index.apply::<ApisixRouteKind>(route_cr("r", user.clone()));
        index.flush();
        let routes = labels_of(&index, ApisixDir::Routes);
        assert_eq!(routes.len(), 1);
        for (key, value) in &expected {
            assert_eq!(
                routes[0].get(*key).map(String::as_str),
                Some(*value),
                "{user}"
            );
        }
        assert!(!routes[0].contains_key("tier"), "{user}");
        assert_eq!(routes[0]["k8s-kind"], "ApisixRoute");
        let unit = crate::model::UnitKey::new("ApisixRoute", Some("ns"), "r");
        assert_eq!(index.warnings().contains_key(&unit), warned, "{user}");
        if warned {
            assert!(
                index.warnings()[&unit][0].contains("label tier"),
                "{:?}",
                index.warnings()
            );
            // Reported, never failing the unit.
            assert!(index.errors().is_empty());
            assert_eq!(index.status().warnings.len(), 1);
        }
    }
}

#[test]
fn apisix_upstream_plugin_config_and_consumer_labels_are_copied() {
    let mut index = index(config());
    index.apply::<ApisixUpstreamKind>(typed(cr(
        "ApisixUpstream",
        "web",
        json!({"team": "payments"}),
        json!({"retries": 1}),
    )));
    index.apply::<ApisixRouteKind>(route_cr("r", json!({"team": "checkout"})));
    index.apply::<ApisixPluginConfigKind>(typed(cr(
        "ApisixPluginConfig",
        "pc",
        json!({"team": "edge"}),
        json!({"plugins": [{"name": "echo", "config": {"body": "hi"}}]}),
    )));
    index.apply::<SecretKind>(
        serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "key"}, "stringData": {"key": "k-1"}}))
        .unwrap(),
    );
    index.apply::<ApisixConsumerKind>(typed(cr(
        "ApisixConsumer",
        "c",
        json!({"team": "mobile"}),
        json!({"authParameter": {"keyAuth": {"secretRef": {"name": "key"}}}}),
    )));
    index.flush();
    assert!(index.errors().is_empty(), "{:?}", index.errors());
    // The upstream carries its ApisixUpstream's labels (shared by every
    // route on the Service), not the route's.
    let upstreams = labels_of(&index, ApisixDir::Upstreams);
    assert_eq!(upstreams[0]["team"], "payments");
    assert_eq!(upstreams[0]["k8s-kind"], "Service");
    assert_eq!(labels_of(&index, ApisixDir::Routes)[0]["team"], "checkout");
    assert_eq!(
        labels_of(&index, ApisixDir::PluginConfigs)[0]["team"],
        "edge"
    );
    assert_eq!(labels_of(&index, ApisixDir::Consumers)[0]["team"], "mobile");
}

#[test]
fn ingress_labels_are_copied_only_when_asked() {
    let ingress = || {
        let mut ingress = mk_ingress("ns", "i", json!({}), simple_spec("/", "Prefix"));
        ingress.metadata.labels = Some([("team".to_string(), "web".to_string())].into());
        ingress
    };
    let mut off = index(config());
    off.apply::<IngressKind>(ingress());
    off.flush();
    assert!(!labels_of(&off, ApisixDir::Routes)[0].contains_key("team"));
    let mut copying = config();
    copying.copy_ingress_labels = true;
    let mut on = index(copying);
    on.apply::<IngressKind>(ingress());
    on.flush();
    assert_eq!(labels_of(&on, ApisixDir::Routes)[0]["team"], "web");
    // Never into the upstream, which other Ingresses may share.
    assert!(!labels_of(&on, ApisixDir::Upstreams)[0].contains_key("team"));
}

fn pod(name: &str, ip: &str, version: &str) -> PodSummary {
    typed(json!({
        "metadata": {"namespace": "ns", "name": name, "labels": {"version": version}},
        "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
    }))
}

fn subset_nodes(index: &ClusterIndex) -> Vec<String> {
    let upstream = index
        .desired()
        .iter()
        .find(|(key, _)| key.dir() == ApisixDir::Upstreams)
        .map(|(_, v)| v.value.to_json())
        .unwrap();
    upstream["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["host"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn subsets_match_pods_by_ip_when_the_slice_names_no_target() {
    // (endpoints: address and targetRef Pod, expected subset v2 nodes).
    let cases: Vec<SubsetCase> = vec![
        // No targetRef at all: by IP.
        (
            vec![("10.0.0.1", None), ("10.0.0.2", None)],
            vec!["10.0.0.2"],
        ),
        // targetRef wins over the IP.
        (
            vec![("10.0.0.1", Some("b")), ("10.0.0.2", Some("a"))],
            vec!["10.0.0.1"],
        ),
        // An address no Pod has: dropped.
        (
            vec![("10.0.0.9", None), ("10.0.0.2", None)],
            vec!["10.0.0.2"],
        ),
    ];
    for (endpoints, expected) in cases {
        let mut index = index(config());
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(address, target)| match target {
                Some(pod) => json!({"addresses": [address],
                    "targetRef": {"kind": "Pod", "name": pod, "namespace": "ns"}}),
                None => json!({"addresses": [address]}),
            })
            .collect();
        index.apply::<EndpointSliceKind>(typed(json!({
            "metadata": {"namespace": "ns", "name": "web-1",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": endpoints,
        })));
        index.apply::<PodKind>(pod("a", "10.0.0.1", "v1"));
        index.apply::<PodKind>(pod("b", "10.0.0.2", "v2"));
        index.apply::<ApisixUpstreamKind>(typed(cr(
            "ApisixUpstream",
            "web",
            json!({}),
            json!({"subsets": [{"name": "v2", "labels": {"version": "v2"}}]}),
        )));
        index.apply::<ApisixRouteKind>(typed(cr(
            "ApisixRoute",
            "r",
            json!({}),
            json!({"http": [{"name": "a", "match": {"paths": ["/*"]},
                "backends": [{"serviceName": "web", "servicePort": 80, "subset": "v2"}]}]}),
        )));
        index.flush();
        assert_eq!(subset_nodes(&index), expected, "{endpoints:?}");
        // A Pod's IP changes: the routes using subsets follow.
        if expected == ["10.0.0.2"] && endpoints.iter().all(|e| e.get("targetRef").is_none()) {
            index.apply::<PodKind>(pod("b", "10.0.0.7", "v2"));
            index.apply::<PodKind>(pod("a", "10.0.0.2", "v2"));
            assert_eq!(index.flush().len(), 1);
            assert_eq!(subset_nodes(&index), ["10.0.0.2"]);
        }
    }
}
