//! Property test: for generated valid Ingress / Service / EndpointSlice sets,
//! translation succeeds, is deterministic, and every value passes APISIX's
//! schemas (checked with `validate.py` on the merged output of all cases).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::fixtures::*;

/// (address byte, ready, serving, terminating).
type GenEndpoint = (u8, Option<bool>, Option<bool>, Option<bool>);
use super::{TranslateConfig, TranslateInput, ingress};
use crate::apisix::Ownership;
use crate::model::Snapshot;

#[derive(Debug, Clone)]
struct GenService {
    named_port: bool,
    port: i32,
    endpoints: Vec<GenEndpoint>,
}

#[derive(Debug, Clone)]
struct GenPath {
    path: String,
    path_type: &'static str,
    service: usize,
    by_name: bool,
}

#[derive(Debug, Clone)]
struct GenIngress {
    host: Option<String>,
    paths: Vec<GenPath>,
    default_backend: Option<usize>,
}

fn service_strategy() -> impl Strategy<Value = GenService> {
    (
        any::<bool>(),
        prop::sample::select(vec![80, 443, 8080]),
        prop::collection::vec(
            (
                1..250u8,
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
            ),
            0..5,
        ),
    )
        .prop_map(|(named_port, port, endpoints)| GenService {
            named_port,
            port,
            endpoints,
        })
}

fn ingress_strategy(services: usize) -> impl Strategy<Value = GenIngress> {
    let path = (
        prop::sample::select(vec![
            "/", "/api", "/api/v1", "/static/", "/a-b_c.d", "/x/y/z",
        ]),
        prop::sample::select(vec!["Exact", "Prefix", "ImplementationSpecific"]),
        0..services,
        any::<bool>(),
    )
        .prop_map(|(path, path_type, service, by_name)| GenPath {
            path: path.to_string(),
            path_type,
            service,
            by_name,
        });
    (
        prop::option::of(prop::sample::select(vec![
            "example.com",
            "*.example.com",
            "a.b-c.example.org",
        ])),
        prop::collection::vec(path, 1..4),
        prop::option::of(0..services),
    )
        .prop_map(|(host, paths, default_backend)| GenIngress {
            host: host.map(str::to_string),
            paths,
            default_backend,
        })
}

fn scenario() -> impl Strategy<Value = (Vec<GenService>, Vec<GenIngress>)> {
    prop::collection::vec(service_strategy(), 1..4).prop_flat_map(|services| {
        let n = services.len();
        (
            Just(services),
            prop::collection::vec(ingress_strategy(n), 1..4),
        )
    })
}

fn build(
    services: &[GenService],
    ingresses: &[GenIngress],
) -> (Snapshot, Vec<k8s_openapi::api::networking::v1::Ingress>) {
    let mut snapshot = Snapshot::default();
    snapshot.apply::<IngressClassKind>(mk_class(
        "apisix",
        TranslateConfig::DEFAULT_CONTROLLER_NAME,
        true,
    ));
    for (i, svc) in services.iter().enumerate() {
        let name = format!("svc{i}");
        let port_name = if svc.named_port {
            json!("web")
        } else {
            Value::Null
        };
        snapshot.apply::<ServiceKind>(mk_service(
            "ns",
            &name,
            json!([{"name": port_name, "port": svc.port}]),
        ));
        let addresses: Vec<String> = svc
            .endpoints
            .iter()
            .map(|(n, ..)| format!("10.0.{i}.{n}"))
            .collect();
        let refs: Vec<TestEndpoint<'_>> = svc
            .endpoints
            .iter()
            .zip(&addresses)
            .map(|((_, r, s, t), a)| (a.as_str(), *r, *s, *t))
            .collect();
        snapshot.apply::<EndpointSliceKind>(mk_slice(
            "ns",
            &format!("{name}-1"),
            &name,
            json!([{"name": port_name, "port": 9000 + i}]),
            &refs,
        ));
    }
    let backend = |service: usize, by_name: bool| {
        let svc = &services[service];
        let port = if by_name && svc.named_port {
            json!({"name": "web"})
        } else {
            json!({"number": svc.port})
        };
        json!({"service": {"name": format!("svc{service}"), "port": port}})
    };
    let objects = ingresses
        .iter()
        .enumerate()
        .map(|(i, ing)| {
            let paths: Vec<Value> = ing
                .paths
                .iter()
                .map(|p| json!({"path": p.path, "pathType": p.path_type, "backend": backend(p.service, p.by_name)}))
                .collect();
            let mut spec = json!({"rules": [{"host": ing.host, "http": {"paths": paths}}]});
            if let Some(d) = ing.default_backend {
                spec["defaultBackend"] = backend(d, false);
            }
            mk_ingress("ns", &format!("ing{i}"), json!({}), spec)
        })
        .collect();
    (snapshot, objects)
}

#[test]
fn generated_ingresses_translate_deterministically_into_valid_apisix_objects() {
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    let merged = std::cell::RefCell::new(BTreeMap::<String, Value>::new());
    let case = std::cell::Cell::new(0usize);
    runner
        .run(&scenario(), |(services, ingresses)| {
            let n = case.get();
            case.set(n + 1);
            // A cluster name per case keeps the merged dump's ids apart.
            let config = TranslateConfig {
                prefix: "/apisix".into(),
                ownership: Ownership::new(&format!("p{n}")).unwrap(),
                controller_name: TranslateConfig::DEFAULT_CONTROLLER_NAME.into(),
                ingress_class: "apisix".into(),
                keyring: None,
                schemas: None,
                copy_ingress_labels: false,
                gateway_ports: Default::default(),
            };
            let (snapshot, objects) = build(&services, &ingresses);
            for object in &objects {
                let input = TranslateInput {
                    config: &config,
                    snapshot: &snapshot,
                };
                let first = ingress::translate(input, object).result;
                let second = ingress::translate(input, object).result;
                prop_assert_eq!(&first, &second);
                let objects = first.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut merged = merged.borrow_mut();
                for (key, value) in objects.objects {
                    merged.insert(key.as_str().to_string(), value.to_json());
                }
            }
            Ok(())
        })
        .unwrap();
    let merged = merged.into_inner();
    assert!(!merged.is_empty());
    {
        let report = apisix_operator_testenv::apisix_schema::validate(&merged, "/apisix").unwrap();
        assert!(report.passed, "{}", report.output);
    }
}
