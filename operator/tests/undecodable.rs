//! One bad stored object never stalls the operator. Reproduced the way a
//! user migrating from the reference controller meets it: objects stored
//! under older, looser CRDs (here: fields of the wrong type), then this
//! project's CRDs applied over them (the API server does not revalidate
//! stored objects), then the operator started beside valid objects. Every
//! valid object converges, each bad one gets a Warning Event naming the
//! field and (where the kind has a status) `Accepted=False`, `/readyz` is
//! 200, and the credential inside the bad consumer never reaches the log.
//! Then a valid object becomes undecodable while the operator runs: it is
//! reported too, and its last good objects stay in etcd.

mod common;

use std::time::Duration;

use apisix_operator::api::all_crds;
use apisix_operator_testenv::{
    TestEnv, apisix_schema, create_object, eventually, http, ports, server_side_apply,
};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

const PREFIX: &str = "/it-undecodable";
const CLUSTER: &str = "undecodable";
const NS: &str = "migrated";
const SECRET: &str = "hunter2-must-not-leak";
const GENEROUS: Duration = Duration::from_secs(90);

/// Our CRDs, loosened as an older release might have shipped them: any spec.
fn permissive_crds() -> Vec<Value> {
    all_crds()
        .into_iter()
        .map(|crd| {
            let mut crd = serde_json::to_value(crd).unwrap();
            for version in crd["spec"]["versions"].as_array_mut().unwrap() {
                version["schema"]["openAPIV3Schema"] = json!({
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    },
                });
                version["additionalPrinterColumns"] = json!([]);
            }
            crd
        })
        .collect()
}

fn strict_crds() -> Vec<Value> {
    all_crds()
        .into_iter()
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect()
}

fn cr(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "apisix.apache.org/v2", "kind": kind,
           "metadata": {"namespace": NS, "name": name}, "spec": spec})
}

fn route(name: &str, port: Value) -> Value {
    cr(
        "ApisixRoute",
        name,
        json!({"http": [{"name": "main", "match": {"paths": [format!("/{name}/*")]},
            "backends": [{"serviceName": "web", "servicePort": port}]}]}),
    )
}

/// (kind, name, object, the path its Event must name).
fn malformed() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        (
            "ApisixRoute",
            "bad-route",
            route("bad-route", json!({})),
            "spec.http[0].backends[0].servicePort",
        ),
        (
            "ApisixUpstream",
            "bad-upstream",
            cr("ApisixUpstream", "bad-upstream", json!({"retries": "many"})),
            "spec.retries",
        ),
        (
            "ApisixConsumer",
            "bad-consumer",
            cr(
                "ApisixConsumer",
                "bad-consumer",
                json!({"authParameter": {"keyAuth": {"value": {"key": {"secret": SECRET}}}}}),
            ),
            "spec.authParameter.keyAuth.value.key",
        ),
        (
            "ApisixTls",
            "bad-tls",
            cr(
                "ApisixTls",
                "bad-tls",
                json!({"hosts": "not-a-list", "secret": {"name": "x", "namespace": NS}}),
            ),
            "spec.hosts",
        ),
    ]
}

fn valid() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": NS, "name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": NS, "name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["10.6.0.1"]}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": NS, "name": "web",
                "annotations": {"kubernetes.io/ingress.class": "apisix"}},
            "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        route("good-route", json!(80)),
    ]
}

async fn apply_crds(client: &kube::Client, crds: &[Value]) {
    for crd in crds {
        eventually("the CRD to be applied", GENEROUS, || async {
            server_side_apply(client, crd, "undecodable-test")
                .await
                .ok()
        })
        .await;
    }
}

async fn create_all(client: &kube::Client, objects: &[Value]) {
    for object in objects {
        eventually("the object to be created", GENEROUS, || async {
            create_object(client, object).await.ok()
        })
        .await;
    }
}

/// The Warning Event on `kind`/`name`, if there is one.
async fn warning(client: &kube::Client, kind: &str, name: &str) -> Option<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let list = events.list(&ListParams::default()).await.ok()?;
    list.items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| e.involved_object.kind.as_deref() == Some(kind))
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .find_map(|e| e.message)
}

async fn accepted(client: &kube::Client, kind: &str, name: &str) -> Option<Value> {
    let gvk = kube::api::GroupVersionKind::gvk("apisix.apache.org", "v2", kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.ok()?;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
    let object = api.get(name).await.ok()?;
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Accepted")
        .cloned()
}

async fn stored_hosts(etcd: &mut etcd_client::Client) -> Vec<Value> {
    apisix_schema::stored_objects(etcd, PREFIX)
        .await
        .unwrap()
        .into_values()
        .map(|(value, _)| value)
        .collect()
}

#[tokio::test]
async fn one_bad_stored_object_never_stalls_the_others() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    apply_crds(&client, &permissive_crds()).await;
    let bad: Vec<Value> = malformed().into_iter().map(|(_, _, o, _)| o).collect();
    create_all(&client, &bad).await;
    apply_crds(&client, &strict_crds()).await;
    create_all(&client, &valid()).await;

    let port = ports::free_port().unwrap();
    let operator = common::OperatorRun {
        name: "undecodable",
        prefix: PREFIX,
        cluster: CLUSTER,
        listen: format!("127.0.0.1:{port}"),
        extra: vec![],
    }
    .spawn(env)
    .await;

    eventually("/readyz to answer 200", GENEROUS, || async {
        matches!(http::get(port, "/readyz"), Some((200, _))).then_some(())
    })
    .await;
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    eventually(
        "the valid Ingress and ApisixRoute in etcd",
        GENEROUS,
        || {
            let mut etcd = etcd.clone();
            async move {
                let values = stored_hosts(&mut etcd).await;
                let ingress = values.iter().any(|v| v["host"] == "web.example.com");
                let route = values.iter().any(|v| v["uris"] == json!(["/good-route/*"]));
                (ingress && route).then_some(())
            }
        },
    )
    .await;
    for (kind, name, _, path) in malformed() {
        let message = eventually(
            &format!("a Warning Event on {kind} {name}"),
            GENEROUS,
            || {
                let client = client.clone();
                async move { warning(&client, kind, name).await }
            },
        )
        .await;
        assert!(
            message.contains(path) && message.contains("does not decode"),
            "{kind} {name}: {message}"
        );
        assert!(!message.contains(SECRET), "{message}");
        let condition = eventually(&format!("{kind} {name} Accepted=False"), GENEROUS, || {
            let client = client.clone();
            async move {
                accepted(&client, kind, name)
                    .await
                    .filter(|c| c["status"] == "False")
            }
        })
        .await;
        assert!(
            condition["message"].as_str().unwrap().contains(path),
            "{condition}"
        );
    }

    // A valid object becomes undecodable while the operator runs (its CRD
    // loosened again, then the object updated): it is reported, and its
    // last good objects stay.
    let before = stored_hosts(&mut etcd).await;
    apply_crds(&client, &permissive_crds()).await;
    let mut broken = route("good-route", json!({}));
    broken["metadata"]["name"] = json!("good-route");
    eventually("the update to be stored", GENEROUS, || async {
        server_side_apply(&client, &broken, "undecodable-test")
            .await
            .ok()
    })
    .await;
    let message = eventually("a Warning Event on good-route", GENEROUS, || {
        let client = client.clone();
        async move { warning(&client, "ApisixRoute", "good-route").await }
    })
    .await;
    assert!(message.contains("servicePort"), "{message}");
    assert_eq!(stored_hosts(&mut etcd).await, before);
    assert!(matches!(http::get(port, "/readyz"), Some((200, _))));

    let log = std::fs::read_to_string(operator.log_path()).unwrap();
    assert!(!log.contains(SECRET), "the consumer's key reached the log");
    apply_crds(&client, &strict_crds()).await;
}
