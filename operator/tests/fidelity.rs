//! Translation fidelity on the real API server: a backend subset whose
//! EndpointSlice names no `targetRef` follows the Pods' IPs as the kubelet
//! would set them (through the status subresource), and the ApisixRoute's
//! and ApisixUpstream's labels reach the route and the upstream in etcd.

mod common;

use std::time::Duration;

use apisix_operator_testenv::{apisix_schema, create_object, eventually};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const PREFIX: &str = "/it-fidelity";
const NS: &str = "fidelity";
const GENEROUS: Duration = Duration::from_secs(90);

fn objects() -> Vec<Value> {
    let pod = |name: &str, version: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": NS, "name": name, "labels": {"app": "web", "version": version}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}})
    };
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"namespace": NS, "name": "default"}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": NS, "name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80}]}}),
        // Mirrored from hand-made Endpoints: no targetRef.
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": NS, "name": "web-1",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["10.7.0.1"]}, {"addresses": ["10.7.0.2"]}]}),
        pod("web-v1", "v1"),
        pod("web-v2", "v2"),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixUpstream",
            "metadata": {"namespace": NS, "name": "web", "labels": {"team": "payments"}},
            "spec": {"subsets": [{"name": "v2", "labels": {"version": "v2"}}]}}),
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
            "metadata": {"namespace": NS, "name": "canary", "labels": {"team": "checkout", "tier": ""}},
            "spec": {"http": [{"name": "v2", "match": {"paths": ["/*"]},
                "backends": [{"serviceName": "web", "servicePort": 80, "subset": "v2"}]}]}}),
    ]
}

async fn set_ip(client: &kube::Client, pod: &str, ip: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let status = json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}});
    pods.patch_status(pod, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

async fn stored(etcd: &mut etcd_client::Client) -> Vec<Value> {
    apisix_schema::stored_objects(etcd, PREFIX)
        .await
        .unwrap()
        .into_values()
        .map(|(value, _)| value)
        .collect()
}

fn upstream_hosts(values: &[Value]) -> Option<Vec<String>> {
    let upstream = values.iter().find(|v| v.get("nodes").is_some())?;
    Some(
        upstream["nodes"]
            .as_array()?
            .iter()
            .filter_map(|n| n["host"].as_str().map(str::to_string))
            .collect(),
    )
}

#[tokio::test]
async fn subsets_follow_pod_ips_and_cr_labels_reach_etcd() {
    let (env, client) = common::env_with_crds().await;
    for object in objects() {
        eventually("the object to be created", GENEROUS, || async {
            create_object(&client, &object).await.ok()
        })
        .await;
    }
    let _operator = common::OperatorRun {
        name: "fidelity",
        prefix: PREFIX,
        cluster: "fidelity",
        listen: "127.0.0.1:0".into(),
        extra: vec![],
    }
    .spawn(env)
    .await;
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    // No Pod has an IP yet: the subset has no endpoint.
    eventually("the subset upstream, empty", GENEROUS, || {
        let mut etcd = etcd.clone();
        async move { (upstream_hosts(&stored(&mut etcd).await)? == Vec::<String>::new()).then_some(()) }
    })
    .await;
    // The kubelet reports the Pods' IPs.
    set_ip(&client, "web-v1", "10.7.0.1").await;
    set_ip(&client, "web-v2", "10.7.0.2").await;
    eventually("the v2 Pod's endpoint in the subset", GENEROUS, || {
        let mut etcd = etcd.clone();
        async move { (upstream_hosts(&stored(&mut etcd).await)? == ["10.7.0.2"]).then_some(()) }
    })
    .await;
    // The v2 Pod moves to the other address.
    set_ip(&client, "web-v2", "10.7.0.1").await;
    set_ip(&client, "web-v1", "10.7.0.9").await;
    eventually("the subset to follow the IP", GENEROUS, || {
        let mut etcd = etcd.clone();
        async move { (upstream_hosts(&stored(&mut etcd).await)? == ["10.7.0.1"]).then_some(()) }
    })
    .await;
    // Labels: the route's (not its empty one), the ApisixUpstream's on the upstream.
    let values = stored(&mut etcd).await;
    let route = values.iter().find(|v| v.get("uris").is_some()).unwrap();
    assert_eq!(route["labels"]["team"], "checkout", "{route}");
    assert!(route["labels"].get("tier").is_none(), "{route}");
    let upstream = values.iter().find(|v| v.get("nodes").is_some()).unwrap();
    assert_eq!(upstream["labels"]["team"], "payments", "{upstream}");
    apisix_schema::assert_prefix_valid(&mut etcd, PREFIX).await;
}
