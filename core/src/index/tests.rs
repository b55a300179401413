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
fn a_recompute_part_marks_only_units_that_still_exist() {
    let mut index = ClusterIndex::new(config());
    index.apply::<IngressClassKind>(mk_class(
        "apisix",
        TranslateConfig::DEFAULT_CONTROLLER_NAME,
        true,
    ));
    index.apply::<IngressKind>(mk_ingress("ns", "a", json!({}), simple_spec("/", "Prefix")));
    index.apply::<IngressKind>(mk_ingress("ns", "b", json!({}), simple_spec("/", "Prefix")));
    index.flush();
    let units = index.unit_keys();
    assert_eq!(units.len(), 2);
    index.delete::<IngressKind>(&crate::model::ObjectKey::new("ns", "b"));
    index.flush();
    assert!(!index.has_dirty());
    // The part was taken before b went away: only a is translated again.
    index.mark_existing(units);
    let outcomes = index.flush();
    assert_eq!(outcomes.len(), 1);
    let unit = match &outcomes[0] {
        UnitOutcome::Translated { unit, .. } | UnitOutcome::Failed { unit, .. } => unit,
        removed => panic!("{removed:?}"),
    };
    assert_eq!(unit.to_string(), "Ingress/ns/a");
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
fn the_kept_status_view_equals_the_rebuilt_one_and_ignores_endpoint_churn() {
    let mut index = ClusterIndex::new(config());
    let check = |index: &ClusterIndex| assert_eq!(index.status(), &index.status_view(None));
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
    check(&index);
    let settled = index.status_revision();
    assert_eq!(index.status().served_ingresses.len(), 1);

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
    check(&index);
    // A full recompute that changes nothing changes no revision either.
    let desired = index.desired().revision();
    let units = index.unit_keys();
    index.mark_existing(units);
    index.flush();
    assert_eq!(index.status_revision(), settled);
    assert_eq!(index.desired().revision(), desired);

    // An Ingress update that fails: the view shows the failure.
    index.apply::<IngressKind>(mk_ingress(
        "ns",
        "a",
        json!({"k8s.apisix.apache.org/upstream-retries": "many"}),
        simple_spec("/", "Prefix"),
    ));
    index.flush();
    let failed = index.status_revision();
    assert!(failed > settled);
    assert_eq!(index.status().failures.len(), 1);
    check(&index);
    // Fixed: the failure is gone.
    index.apply::<IngressKind>(mk_ingress("ns", "a", json!({}), simple_spec("/", "Prefix")));
    index.flush();
    assert!(index.status_revision() > failed);
    assert!(index.status().failures.is_empty());
    check(&index);
    // Our class disappears: the Ingress is no longer served.
    let before = index.status_revision();
    index.delete::<IngressClassKind>(&crate::model::ObjectKey::cluster("apisix"));
    index.flush();
    assert!(index.status_revision() > before);
    assert!(index.status().served_ingresses.is_empty());
    check(&index);
}

#[test]
fn an_apisix_upstream_is_programmed_with_the_routes_that_use_it() {
    let mut index = ClusterIndex::new(config());
    let check = |index: &ClusterIndex| assert_eq!(index.status(), &index.status_view(None));
    index.apply::<ServiceKind>(mk_service(
        "ns",
        "web",
        json!([{"name": "http", "port": 80}]),
    ));
    index.apply::<ApisixUpstreamKind>(object("ApisixUpstream", "web", json!({"retries": 2})));
    index.flush();
    let unit = crate::model::UnitKey::new("ApisixUpstream", Some("ns"), "web");
    assert!(index.status().crs[&unit].units.is_empty());
    check(&index);
    let route = |name: &str| -> crate::api::ApisixRoute {
        object(
            "ApisixRoute",
            name,
            json!({"http": [{"name": "a", "match": {"paths": ["/*"]},
                "backends": [{"serviceName": "web", "servicePort": 80}]}]}),
        )
    };
    index.apply::<ApisixRouteKind>(route("r1"));
    index.apply::<ApisixRouteKind>(route("r2"));
    index.flush();
    assert_eq!(index.status().crs[&unit].units.len(), 2);
    check(&index);
    // A route that fails no longer counts; one deleted neither.
    index.apply::<ApisixRouteKind>(object(
        "ApisixRoute",
        "r1",
        json!({"http": [{"name": "a", "match": {"paths": ["/*"]},
            "backends": [{"serviceName": "web", "servicePort": 81}]}]}),
    ));
    index.delete::<ApisixRouteKind>(&crate::model::ObjectKey::new("ns", "r2"));
    index.flush();
    assert!(index.status().crs[&unit].units.is_empty());
    check(&index);
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
        status: None,
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

mod kept_view {
    //! Property: whatever sequence of changes arrives, the view the index
    //! keeps incrementally equals the one rebuilt from scratch.

    use super::*;
    use crate::model::ObjectKey;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Ingress { name: u8, service: u8, bad: bool },
        DeleteIngress(u8),
        Route { name: u8, service: u8, port: u16 },
        DeleteRoute(u8),
        Upstream { service: u8, bad: bool },
        DeleteUpstream(u8),
        Service(u8),
        DeleteService(u8),
        Slice { service: u8, address: u8 },
        Class(bool),
        Flush,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3u8, 0..3u8, any::<bool>()).prop_map(|(name, service, bad)| Op::Ingress {
                name,
                service,
                bad
            }),
            (0..3u8).prop_map(Op::DeleteIngress),
            (0..3u8, 0..3u8, prop::sample::select(vec![80u16, 81])).prop_map(
                |(name, service, port)| Op::Route {
                    name,
                    service,
                    port
                }
            ),
            (0..3u8).prop_map(Op::DeleteRoute),
            (0..3u8, any::<bool>()).prop_map(|(service, bad)| Op::Upstream { service, bad }),
            (0..3u8).prop_map(Op::DeleteUpstream),
            (0..3u8).prop_map(Op::Service),
            (0..3u8).prop_map(Op::DeleteService),
            (0..3u8, 0..4u8).prop_map(|(service, address)| Op::Slice { service, address }),
            any::<bool>().prop_map(Op::Class),
            Just(Op::Flush),
        ]
    }

    fn apply(index: &mut ClusterIndex, op: Op) {
        let svc = |n: u8| format!("svc-{n}");
        match op {
            Op::Ingress { name, service, bad } => {
                let annotations = if bad {
                    json!({"k8s.apisix.apache.org/upstream-retries": "many"})
                } else {
                    json!({})
                };
                let mut spec = simple_spec("/", "Prefix");
                spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
                    json!(svc(service));
                index.apply::<IngressKind>(mk_ingress(
                    "ns",
                    &format!("i{name}"),
                    annotations,
                    spec,
                ));
            }
            Op::DeleteIngress(name) => {
                index.delete::<IngressKind>(&ObjectKey::new("ns", &format!("i{name}")))
            }
            Op::Route {
                name,
                service,
                port,
            } => index.apply::<ApisixRouteKind>(object(
                "ApisixRoute",
                &format!("r{name}"),
                json!({"http": [{"name": "a", "match": {"paths": ["/*"]},
                    "backends": [{"serviceName": svc(service), "servicePort": port}]}]}),
            )),
            Op::DeleteRoute(name) => {
                index.delete::<ApisixRouteKind>(&ObjectKey::new("ns", &format!("r{name}")))
            }
            Op::Upstream { service, bad } => {
                let spec = if bad {
                    json!({"passHost": "rewrite"})
                } else {
                    json!({"retries": 1})
                };
                index.apply::<ApisixUpstreamKind>(object("ApisixUpstream", &svc(service), spec))
            }
            Op::DeleteUpstream(service) => {
                index.delete::<ApisixUpstreamKind>(&ObjectKey::new("ns", &svc(service)))
            }
            Op::Service(n) => index.apply::<ServiceKind>(mk_service(
                "ns",
                &svc(n),
                json!([{"name": "http", "port": 80}]),
            )),
            Op::DeleteService(n) => index.delete::<ServiceKind>(&ObjectKey::new("ns", &svc(n))),
            Op::Slice { service, address } => index.apply::<EndpointSliceKind>(mk_slice(
                "ns",
                &format!("{}-1", svc(service)),
                &svc(service),
                json!([{"name": "http", "port": 8080}]),
                &[(&format!("10.0.0.{address}"), None, None, None)],
            )),
            Op::Class(default) => index.apply::<IngressClassKind>(mk_class(
                "apisix",
                TranslateConfig::DEFAULT_CONTROLLER_NAME,
                default,
            )),
            Op::Flush => {
                index.flush();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_kept_view_is_the_rebuilt_view(ops in prop::collection::vec(op(), 1..40)) {
            let mut index = ClusterIndex::new(config());
            for op in ops {
                apply(&mut index, op);
                if !index.has_dirty() {
                    prop_assert_eq!(index.status(), &index.status_view(None));
                }
            }
            index.flush();
            prop_assert_eq!(index.status(), &index.status_view(None));
        }

        #[test]
        fn flushing_in_parts_gives_what_one_flush_gives(
            ops in prop::collection::vec(op(), 1..40),
            part in 1..4usize,
        ) {
            let (mut whole, mut parts) = (ClusterIndex::new(config()), ClusterIndex::new(config()));
            for op in ops {
                if matches!(op, Op::Flush) {
                    whole.flush();
                    while parts.has_dirty() {
                        prop_assert!(parts.flush_at_most(part).len() <= part);
                    }
                    prop_assert_eq!(whole.desired(), parts.desired());
                    prop_assert_eq!(whole.status(), parts.status());
                } else {
                    apply(&mut whole, op.clone());
                    apply(&mut parts, op);
                }
            }
        }
    }
}
