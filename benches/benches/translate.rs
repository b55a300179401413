//! Translating 10,000 Ingress units from scratch (each with its Service and
//! an EndpointSlice of three endpoints), single-threaded; re-translating
//! after one EndpointSlice changed, alone and with what the index task does
//! next (publishing the desired state); building the status view; and
//! 10,000 HTTPRoutes attached to 10 Gateways, from scratch and after one
//! route changed (only that route is translated again).

use apisix_operator::apisix::Ownership;
use apisix_operator::index::ClusterIndex;
use apisix_operator::inputs::{EndpointSliceKind, IngressClassKind, ServiceKind};
use apisix_operator::translate::TranslateConfig;
use apisix_operator::translate::gateway::{GatewayClassKind, GatewayKind, HttpRouteKind};
use apisix_operator::translate::ingress::IngressKind;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;

const UNITS: usize = 10_000;

fn cluster() -> ClusterIndex {
    let mut index = ClusterIndex::new(TranslateConfig::defaults(
        "/apisix",
        Ownership::new("bench").unwrap(),
    ));
    index.apply::<IngressClassKind>(
        serde_json::from_value(json!({
            "metadata": {"name": "apisix", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
            "spec": {"controller": TranslateConfig::DEFAULT_CONTROLLER_NAME},
        }))
        .unwrap(),
    );
    for i in 0..UNITS {
        let ns = format!("team-{}", i % 50);
        service_with_endpoints(&mut index, &ns, i);
        index.apply::<IngressKind>(
            serde_json::from_value(json!({
                "metadata": {"namespace": ns, "name": format!("ing-{i}"),
                    "annotations": {"k8s.apisix.apache.org/enable-cors": "true"}},
                "spec": {"rules": [{"host": format!("app-{i}.example.com"), "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": format!("svc-{i}"), "port": {"number": 80}}}},
                    {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": format!("svc-{i}"), "port": {"name": "http"}}}},
                ]}}]},
            }))
            .unwrap(),
        );
    }
    index
}

/// The services of [`cluster`] and 10 Gateways with 10,000 HTTPRoutes
/// spread over them, instead of the Ingresses.
fn gateway_cluster() -> ClusterIndex {
    let mut index = ClusterIndex::new(TranslateConfig::defaults(
        "/apisix",
        Ownership::new("bench").unwrap(),
    ));
    index.apply::<GatewayClassKind>(
        serde_json::from_value(json!({
            "metadata": {"name": "apisix"},
            "spec": {"controllerName": TranslateConfig::DEFAULT_CONTROLLER_NAME},
        }))
        .unwrap(),
    );
    for g in 0..GATEWAYS {
        index.apply::<GatewayKind>(
            serde_json::from_value(json!({
                "metadata": {"namespace": "gateways", "name": format!("gw-{g}")},
                "spec": {"gatewayClassName": "apisix", "listeners": [
                    {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}},
                ]},
            }))
            .unwrap(),
        );
    }
    for i in 0..UNITS {
        let ns = format!("team-{}", i % 50);
        service_with_endpoints(&mut index, &ns, i);
        index.apply::<HttpRouteKind>(http_route(&ns, i, "/api"));
    }
    index
}

const GATEWAYS: usize = 10;

fn http_route(ns: &str, i: usize, api: &str) -> apisix_operator::api::gateway::HTTPRoute {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": format!("route-{i}"), "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "parentRefs": [{"name": format!("gw-{}", i % GATEWAYS), "namespace": "gateways"}],
            "hostnames": [format!("app-{i}.example.com")],
            "rules": [
                {"backendRefs": [{"name": format!("svc-{i}"), "port": 80}]},
                {"matches": [{"path": {"type": "Exact", "value": api}, "headers": [{"name": "x-version", "value": "2"}]}],
                 "backendRefs": [{"name": format!("svc-{i}"), "port": 80}]},
            ],
        },
    }))
    .unwrap()
}

/// Service `svc-<i>` of `ns` and its EndpointSlice of three endpoints.
fn service_with_endpoints(index: &mut ClusterIndex, ns: &str, i: usize) {
    index.apply::<ServiceKind>(
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": format!("svc-{i}")},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        }))
        .unwrap(),
    );
    index.apply::<EndpointSliceKind>(slice(ns, i, 3));
}

fn slice(ns: &str, i: usize, endpoints: usize) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let endpoints: Vec<_> = (0..endpoints)
        .map(|e| json!({"addresses": [format!("10.{}.{}.{}", i / 250 % 250, i % 250, e + 1)], "conditions": {"ready": true}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": format!("svc-{i}-abc"), "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn bench_translate(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate");
    group.sample_size(10);
    let cold = cluster();
    group.bench_function("10k_ingress_units_from_scratch", |b| {
        b.iter_batched(
            || cold.clone(),
            |mut index| {
                let outcomes = index.flush();
                assert_eq!(outcomes.len(), UNITS);
                index
            },
            BatchSize::LargeInput,
        )
    });
    let mut warm = cluster();
    warm.flush();
    group.bench_function("one_endpoint_slice_change_among_10k", |b| {
        b.iter_batched(
            || {
                let mut index = warm.clone();
                index.apply::<EndpointSliceKind>(slice("team-7", 7, 4));
                index
            },
            |mut index| {
                assert_eq!(index.flush().len(), 1);
                index
            },
            BatchSize::LargeInput,
        )
    });
    // What the index task does after each batch of changes: flush, then
    // publish the desired state to the sync engine only when it changed.
    let published = std::sync::Arc::new(warm.desired().clone());
    group.bench_function("flush_and_publish_one_change_among_10k", |b| {
        b.iter_batched(
            || {
                let mut index = warm.clone();
                index.apply::<EndpointSliceKind>(slice("team-7", 7, 4));
                index
            },
            |mut index| {
                assert_eq!(index.flush().len(), 1);
                let desired = index.desired();
                assert!(*published != *desired);
                let next = std::sync::Arc::new(desired.clone());
                (index, next)
            },
            BatchSize::LargeInput,
        )
    });
    // The status view the index task rebuilds when the status revision
    // moves (not after endpoint churn).
    group.bench_function("status_view_of_10k", |b| b.iter(|| warm.status_view(None)));
    let cold = gateway_cluster();
    group.bench_function("10k_http_routes_on_10_gateways_from_scratch", |b| {
        b.iter_batched(
            || cold.clone(),
            |mut index| {
                let outcomes = index.flush();
                assert_eq!(outcomes.len(), UNITS + GATEWAYS + 1);
                assert!(index.errors().is_empty());
                index
            },
            BatchSize::LargeInput,
        )
    });
    let mut warm = gateway_cluster();
    warm.flush();
    group.bench_function("one_http_route_change_among_10k", |b| {
        b.iter_batched(
            || {
                let mut index = warm.clone();
                index.apply::<HttpRouteKind>(http_route("team-7", 7, "/api/v2"));
                index
            },
            |mut index| {
                assert_eq!(index.flush().len(), 1, "only the changed route");
                index
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_translate);
criterion_main!(benches);
