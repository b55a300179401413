//! The index's incremental behaviour: only dependents re-translate, failed
//! units keep their last good objects, the status revision ignores endpoint
//! churn, subsets follow Pod labels.

use serde_json::{Value, json};

use super::{ClusterIndex, UnitOutcome};
use crate::apisix::ApisixDir;
use crate::fixtures::*;
use crate::inputs::PodSummary;
use crate::model::TranslateConfig;

fn object<T: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: Value) -> T {
    serde_json::from_value(json!({
        "apiVersion": "apisix.apache.org/v2", "kind": kind,
        "metadata": {"namespace": "ns", "name": name}, "spec": spec,
    }))
    .unwrap()
}

#[test]
fn the_index_retranslates_only_dependents_and_keeps_last_good_objects() {
    let mut index = ClusterIndex::new(config());
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
    index.apply::<ServiceKind>(mk_service(
        "ns",
        "other",
        json!([{"name": "http", "port": 80}]),
    ));
    index.apply::<IngressKind>(mk_ingress("ns", "a", json!({}), simple_spec("/", "Prefix")));
    let mut b_spec = simple_spec("/b", "Prefix");
    b_spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("other");
    index.apply::<IngressKind>(mk_ingress("ns", "b", json!({}), b_spec));
    assert_eq!(index.flush().len(), 2);
    let before = index.desired().clone();

    // Endpoints of `web` change: only Ingress a is retranslated, and only
    // its upstream value changes.
    index.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "web-1",
        "web",
        json!([{"name": "http", "port": 8080}]),
        &[("10.9.9.9", None, None, None)],
    ));
    let outcomes = index.flush();
    assert_eq!(outcomes.len(), 1);
    assert!(
        matches!(&outcomes[0], UnitOutcome::Translated { unit, .. } if unit.to_string() == "Ingress/ns/a")
    );
    let changed: Vec<_> = index
        .desired()
        .iter()
        .filter(|(k, v)| before.get(k).map(|b| &b.value) != Some(&v.value))
        .map(|(k, _)| k.dir())
        .collect();
    assert_eq!(changed, vec![ApisixDir::Upstreams]);

    // A bad annotation: error reported, last good objects kept.
    let good = index.desired().clone();
    index.apply::<IngressKind>(mk_ingress(
        "ns",
        "a",
        json!({"k8s.apisix.apache.org/upstream-retries": "many"}),
        simple_spec("/", "Prefix"),
    ));
    let outcomes = index.flush();
    assert!(matches!(&outcomes[0], UnitOutcome::Failed { .. }));
    assert_eq!(index.desired(), &good);
    assert_eq!(index.errors().len(), 1);

    // Deleting the Ingress removes exactly its keys.
    index.delete::<IngressKind>(&crate::model::ObjectKey::new("ns", "a"));
    index.flush();
    assert!(
        index
            .desired()
            .iter()
            .all(|(_, v)| v.unit.to_string() == "Ingress/ns/b")
    );
    assert!(index.errors().is_empty());
}

#[test]
fn the_status_revision_ignores_endpoint_churn_and_follows_what_status_reads() {
    let mut index = ClusterIndex::new(config());
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
    index.apply::<IngressKind>(mk_ingress("ns", "a", json!({}), simple_spec("/", "Prefix")));
    index.flush();
    let settled = index.status_revision();
    let view = index.status_view(None);

    // New endpoints: a new upstream value, the same status view.
    for address in ["10.9.9.9", "10.9.9.10"] {
        index.apply::<EndpointSliceKind>(mk_slice(
            "ns",
            "web-1",
            "web",
            json!([{"name": "http", "port": 8080}]),
            &[(address, None, None, None)],
        ));
        assert_eq!(index.flush().len(), 1);
        assert_eq!(index.status_revision(), settled);
    }
    assert_eq!(index.status_view(None), view);
    // A full recompute that changes nothing changes no revision either.
    let desired = index.desired().revision();
    index.mark_all();
    index.flush();
    assert_eq!(index.status_revision(), settled);
    assert_eq!(index.desired().revision(), desired);

    // An Ingress update that fails: the revision moves, and the view shows
    // the failure.
    index.apply::<IngressKind>(mk_ingress(
        "ns",
        "a",
        json!({"k8s.apisix.apache.org/upstream-retries": "many"}),
        simple_spec("/", "Prefix"),
    ));
    index.flush();
    let failed = index.status_revision();
    assert!(failed > settled);
    assert_eq!(index.status_view(None).failures.len(), 1);
    // Fixed: it moves again and the failure is gone.
    index.apply::<IngressKind>(mk_ingress("ns", "a", json!({}), simple_spec("/", "Prefix")));
    index.flush();
    assert!(index.status_revision() > failed);
    assert!(index.status_view(None).failures.is_empty());
    // Services and IngressClasses are read by the view (publish Service,
    // class selection): they move it.
    let before = index.status_revision();
    index.apply::<ServiceKind>(mk_service(
        "ns",
        "web",
        json!([{"name": "http", "port": 81}]),
    ));
    assert!(index.status_revision() > before);
    let before = index.status_revision();
    index.delete::<IngressClassKind>(&crate::model::ObjectKey::cluster("apisix"));
    index.flush();
    assert!(index.status_revision() > before);
    assert!(index.status_view(None).served_ingresses.is_empty());
}

#[test]
fn subsets_select_endpoints_by_pod_labels_and_follow_label_changes() {
    let mut index = ClusterIndex::new(config());
    index.apply::<ServiceKind>(mk_service(
        "ns",
        "web",
        json!([{"name": "http", "port": 80}]),
    ));
    let slice: k8s_openapi::api::discovery::v1::EndpointSlice = serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": ["10.2.0.1"], "targetRef": {"kind": "Pod", "name": "web-v1", "namespace": "ns"}},
            {"addresses": ["10.2.0.2"], "targetRef": {"kind": "Pod", "name": "web-v2", "namespace": "ns"}},
            {"addresses": ["10.2.0.3"]},
        ],
    }))
    .unwrap();
    index.apply::<EndpointSliceKind>(slice);
    let pod = |name: &str, version: &str| PodSummary {
        metadata: serde_json::from_value(
            json!({"namespace": "ns", "name": name, "labels": {"app": "web", "version": version}}),
        )
        .unwrap(),
    };
    index.apply::<PodKind>(pod("web-v1", "v1"));
    index.apply::<PodKind>(pod("web-v2", "v2"));
    index.apply::<ApisixUpstreamKind>(object(
        "ApisixUpstream",
        "web",
        json!({"subsets": [{"name": "v2", "labels": {"version": "v2"}}]}),
    ));
    let route: crate::api::ApisixRoute = object(
        "ApisixRoute",
        "r",
        json!({"http": [{
        "name": "a", "match": {"paths": ["/*"]}, "backends": [{"serviceName": "web", "servicePort": 80, "subset": "v2"}]}]}),
    );
    index.apply::<ApisixRouteKind>(route);
    index.flush();
    let nodes = |index: &ClusterIndex| -> Value {
        index
            .desired()
            .iter()
            .find(|(k, _)| k.dir() == crate::apisix::ApisixDir::Upstreams)
            .map(|(_, v)| v.value.to_json()["nodes"].clone())
            .unwrap()
    };
    assert_eq!(
        nodes(&index),
        json!([{"host": "10.2.0.2", "port": 8080, "weight": 100}])
    );
    // web-v1 is relabelled v2: the route's upstream follows.
    index.apply::<PodKind>(pod("web-v1", "v2"));
    let outcomes = index.flush();
    assert!(
        matches!(&outcomes[..], [UnitOutcome::Translated { unit, .. }] if unit.to_string() == "ApisixRoute/ns/r")
    );
    assert_eq!(
        nodes(&index),
        json!([{"host": "10.2.0.1", "port": 8080, "weight": 100}, {"host": "10.2.0.2", "port": 8080, "weight": 100}])
    );
    // An undefined subset is an error for the route; its last good objects stay.
    let route: crate::api::ApisixRoute = object(
        "ApisixRoute",
        "r",
        json!({"http": [{
        "name": "a", "match": {"paths": ["/*"]}, "backends": [{"serviceName": "web", "servicePort": 80, "subset": "v3"}]}]}),
    );
    let before = index.desired().clone();
    index.apply::<ApisixRouteKind>(route);
    let outcomes = index.flush();
    assert!(
        matches!(&outcomes[..], [UnitOutcome::Failed { error, .. }] if error.to_string().contains("subset \"v3\" is not defined"))
    );
    assert_eq!(index.desired(), &before);
}
