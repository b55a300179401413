//! The CRDs: `crds/` is what `apisix-operator crds` prints; the real API
//! server accepts them, serves them, accepts valid objects and itself
//! rejects what the schemas forbid.

use std::path::Path;
use std::time::Duration;

use apisix_operator::api::all_crds;
use apisix_operator_testenv::TestEnv;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

const CRDS_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crds/apisix-operator-crds.yaml"
);

#[test]
fn the_checked_in_crds_are_up_to_date() {
    let generated = apisix_operator::api::crds_yaml();
    let checked_in = std::fs::read_to_string(CRDS_FILE).unwrap_or_default();
    if generated != checked_in && std::env::var_os("UPDATE_CRDS").is_some() {
        std::fs::write(CRDS_FILE, &generated).unwrap();
        return;
    }
    assert!(
        generated == checked_in,
        "{} is stale: run `cargo run -p apisix-operator -- crds > crds/apisix-operator-crds.yaml` (or UPDATE_CRDS=1 cargo test --test crds)",
        Path::new(CRDS_FILE).display()
    );
}

async fn create(client: &kube::Client, namespace: &str, object: Value) -> Result<(), kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap();
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = if object["kind"] == "ApisixClusterConfig" {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    };
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .map(|_| ())
}

#[tokio::test]
async fn the_api_server_serves_the_crds_and_enforces_their_validation() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in all_crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{} refused: {e}",
                    crd.metadata.name.as_deref().unwrap_or_default()
                )
            });
    }
    // Wait until every kind is served.
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got = crds.get(&name).await.unwrap();
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} not established"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "crd-test"}})).unwrap();
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;

    let valid = [
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": "canary"}, "spec": {"http": [{
            "name": "rule1", "match": {"paths": ["/api/*"], "hosts": ["*.example.com"], "methods": ["GET", "POST"],
                "remoteAddrs": ["10.0.0.0/8", "192.168.1.1"],
                "exprs": [{"subject": {"scope": "Header", "name": "X-Canary"}, "op": "Equal", "value": "yes"},
                          {"subject": {"scope": "Query", "name": "v"}, "op": "In", "set": ["1", "2"]}]},
            "backends": [{"serviceName": "web", "servicePort": 80, "weight": 90}, {"serviceName": "web-canary", "servicePort": "http", "weight": 10}],
            "plugins": [{"name": "cors", "enable": true, "config": {"allow_origins": "*"}}],
            "authentication": {"enable": true, "type": "keyAuth", "keyAuth": {"header": "apikey"}}}],
            "stream": [{"name": "tcp", "protocol": "TCP", "match": {"ingressPort": 9100}, "backend": {"serviceName": "db", "servicePort": 5432}}]}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixUpstream", "metadata": {"name": "web"}, "spec": {
            "loadbalancer": {"type": "chash", "hashOn": "header", "key": "X-User"}, "scheme": "https", "retries": 2,
            "timeout": {"connect": "5s", "read": "10s"},
            "healthCheck": {"active": {"type": "http", "httpPath": "/healthz", "healthy": {"interval": "2s", "successes": 2}}, "passive": {"unhealthy": {"httpCodes": [502], "httpFailures": 3}}},
            "subsets": [{"name": "v2", "labels": {"version": "v2"}}],
            "portLevelSettings": [{"port": 8080, "scheme": "grpc"}]}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixTls", "metadata": {"name": "site"}, "spec": {
            "hosts": ["example.com", "*.example.com"], "secret": {"name": "site-tls", "namespace": "crd-test"},
            "client": {"caSecret": {"name": "ca", "namespace": "crd-test"}, "depth": 2}}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixConsumer", "metadata": {"name": "jack"}, "spec": {
            "authParameter": {"keyAuth": {"value": {"key": "jack-key"}}}}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixPluginConfig", "metadata": {"name": "shared"}, "spec": {
            "plugins": [{"name": "limit-count", "config": {"count": 10, "time_window": 60}}]}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixGlobalRule", "metadata": {"name": "everywhere"}, "spec": {
            "plugins": [{"name": "request-id"}]}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixClusterConfig", "metadata": {"name": "default"}, "spec": {
            "monitoring": {"prometheus": {"enable": true}}}}),
    ];
    for object in valid {
        create(&client, "crd-test", object.clone())
            .await
            .unwrap_or_else(|e| panic!("a valid {} was refused: {e}", object["kind"]));
    }

    let invalid = [
        (
            "a route without rules",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": "empty"}, "spec": {}}),
        ),
        (
            "duplicate rule names",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": "dup"}, "spec": {"http": [
            {"name": "a", "match": {"paths": ["/"]}, "backends": [{"serviceName": "s", "servicePort": 80}]},
            {"name": "a", "match": {"paths": ["/x"]}, "backends": [{"serviceName": "s", "servicePort": 80}]}]}}),
        ),
        (
            "an unknown method",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": "m"}, "spec": {"http": [
            {"name": "a", "match": {"paths": ["/"], "methods": ["FETCH"]}, "backends": [{"serviceName": "s", "servicePort": 80}]}]}}),
        ),
        (
            "a bad remote address",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": "ra"}, "spec": {"http": [
            {"name": "a", "match": {"paths": ["/"], "remoteAddrs": ["not-an-ip"]}, "backends": [{"serviceName": "s", "servicePort": 80}]}]}}),
        ),
        (
            "In without set",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": "ex"}, "spec": {"http": [
            {"name": "a", "match": {"paths": ["/"], "exprs": [{"subject": {"scope": "Header", "name": "h"}, "op": "In", "value": "x"}]}, "backends": [{"serviceName": "s", "servicePort": 80}]}]}}),
        ),
        (
            "chash without hashOn",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixUpstream", "metadata": {"name": "ch"}, "spec": {"loadbalancer": {"type": "chash"}}}),
        ),
        (
            "a passive check alone",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixUpstream", "metadata": {"name": "pc"}, "spec": {"healthCheck": {"passive": {}}}}),
        ),
        (
            "two auth methods",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixConsumer", "metadata": {"name": "two"}, "spec": {"authParameter": {
            "keyAuth": {"value": {"key": "k"}}, "basicAuth": {"value": {"username": "u", "password": "p"}}}}}),
        ),
        (
            "value and secretRef",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixConsumer", "metadata": {"name": "both"}, "spec": {"authParameter": {
            "keyAuth": {"value": {"key": "k"}, "secretRef": {"name": "s"}}}}}),
        ),
        (
            "a TLS without hosts",
            json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixTls", "metadata": {"name": "nohosts"}, "spec": {"hosts": [], "secret": {"name": "s", "namespace": "n"}}}),
        ),
    ];
    for (what, object) in invalid {
        match create(&client, "crd-test", object).await {
            Err(kube::Error::Api(status)) if status.code == 422 => {}
            other => panic!("{what}: expected the API server to reject it, got {other:?}"),
        }
    }
}
