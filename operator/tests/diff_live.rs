//! `diff --live` reads the cluster through the same watches and settings as
//! `run`: against a running operator with a backend subset (Pods), a
//! consumer whose key is in a Secret and a namespace selector, it reports no
//! drift; without the selector it sees the unselected namespace's Ingress as
//! missing (so the scope really is applied); and a list it is not allowed to
//! make is an error with exit status 2, never an empty cluster.

mod common;

use std::path::Path;
use std::time::Duration;

use apisix_operator_testenv::{TestEnv, apisix_schema, create_object, eventually};
use serde_json::{Value, json};

const PREFIX: &str = "/it-diff-live";
const CLUSTER: &str = "difflive";
const SELECTED: &str = "difflive-on";
const UNSELECTED: &str = "difflive-off";
const SELECTOR: &str = "apisix-operator/serve=true";
const GENEROUS: Duration = Duration::from_secs(90);

fn pod(name: &str, version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": SELECTED, "name": name, "labels": {"app": "web", "version": version}},
        "spec": {"containers": [{"name": "web", "image": "web:1"}]}})
}

fn objects() -> Vec<Value> {
    let ingress = |namespace: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": namespace, "name": "web",
                "annotations": {"kubernetes.io/ingress.class": "apisix"}},
            "spec": {"rules": [{"host": format!("{namespace}.example.com"), "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    };
    let service = |namespace: &str| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": namespace, "name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80}]}})
    };
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": SELECTED, "labels": {"apisix-operator/serve": "true"}}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": UNSELECTED}}),
        service(SELECTED),
        service(UNSELECTED),
        // No controller-manager runs here to create it; Pods need it.
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"namespace": SELECTED, "name": "default"}}),
        pod("web-v1", "v1"),
        pod("web-v2", "v2"),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": SELECTED, "name": "web-1",
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": ["10.8.0.1"], "targetRef": {"kind": "Pod", "name": "web-v1", "namespace": SELECTED}},
            {"addresses": ["10.8.0.2"], "targetRef": {"kind": "Pod", "name": "web-v2", "namespace": SELECTED}},
        ]}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixUpstream",
            "metadata": {"namespace": SELECTED, "name": "web"},
            "spec": {"subsets": [{"name": "v2", "labels": {"version": "v2"}}]}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
            "metadata": {"namespace": SELECTED, "name": "canary"},
            "spec": {"http": [{"name": "v2", "match": {"paths": ["/v2/*"]},
                "backends": [{"serviceName": "web", "servicePort": 80, "subset": "v2"}]}]}}),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"namespace": SELECTED, "name": "app-key"},
            "stringData": {"key": "app-key-7f3e"}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixConsumer",
            "metadata": {"namespace": SELECTED, "name": "app"},
            "spec": {"authParameter": {"keyAuth": {"secretRef": {"name": "app-key"}}}}}),
        ingress(SELECTED),
        ingress(UNSELECTED),
    ]
}

fn diff(env: &TestEnv, kubeconfig: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_apisix-operator"))
        .args(["diff", "--live", "--prefix", PREFIX, "--cluster", CLUSTER])
        .arg(format!("--etcd-endpoints={}", env.apisix_etcd.client_url()))
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap()
}

fn shown(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn diff_live_reads_the_cluster_as_run_does() {
    let (env, client) = common::env_with_crds().await;
    for object in objects() {
        eventually("the object to be created", GENEROUS, || {
            let client = client.clone();
            let object = object.clone();
            async move { create_object(&client, &object).await.ok() }
        })
        .await;
    }
    let _operator = common::OperatorRun {
        name: "diff-live",
        prefix: PREFIX,
        cluster: CLUSTER,
        listen: "127.0.0.1:0".into(),
        extra: vec![format!("--namespace-selector={SELECTOR}")],
    }
    .spawn(env)
    .await;

    // The operator wrote the subset upstream (only the v2 Pod), the consumer
    // and the selected namespace's Ingress.
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    eventually("the operator to write every unit", GENEROUS, || {
        let mut etcd = etcd.clone();
        async move {
            let stored = apisix_schema::stored_objects(&mut etcd, PREFIX)
                .await
                .ok()?;
            let subset = stored.values().any(|(value, _)| {
                value["nodes"] == json!([{"host": "10.8.0.2", "port": 8080, "weight": 100}])
            });
            let consumer = stored.keys().any(|key| key.contains("/consumers/"));
            let ingress_route = stored
                .values()
                .any(|(value, _)| value["host"] == format!("{SELECTED}.example.com"));
            (subset && consumer && ingress_route).then_some(())
        }
    })
    .await;
    let stored = apisix_schema::stored_objects(&mut etcd, PREFIX)
        .await
        .unwrap();
    assert!(
        !stored
            .values()
            .any(|(value, _)| value["host"] == format!("{UNSELECTED}.example.com")),
        "the unselected namespace is not served"
    );

    let operator = env.operator_kubeconfig().await.unwrap();
    let same_scope = diff(
        env,
        &operator,
        &[&format!("--namespace-selector={SELECTOR}")],
    );
    assert_eq!(same_scope.status.code(), Some(0), "{}", shown(&same_scope));

    // Without the selector, the other namespace's Ingress is desired too.
    let every_namespace = diff(env, &operator, &[]);
    assert_eq!(
        every_namespace.status.code(),
        Some(2),
        "{}",
        shown(&every_namespace)
    );
    assert!(
        shown(&every_namespace).contains("+ "),
        "{}",
        shown(&every_namespace)
    );

    // A user who may list nothing: an error naming the list, exit status 2.
    let nobody = env.workdir.path().join("nobody.kubeconfig");
    std::fs::write(
        &nobody,
        env.apiserver.kubeconfig_for("nobody", None).unwrap(),
    )
    .unwrap();
    let forbidden = diff(env, &nobody, &[&format!("--namespace-selector={SELECTOR}")]);
    assert_eq!(forbidden.status.code(), Some(2), "{}", shown(&forbidden));
    assert!(
        shown(&forbidden).contains("listing") && shown(&forbidden).contains("failed"),
        "{}",
        shown(&forbidden)
    );
}
