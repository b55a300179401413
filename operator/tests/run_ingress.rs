//! `apisix-operator run` end to end against the real test environment:
//! applying the example Ingresses, Services, EndpointSlices and Secrets
//! yields exactly `translate`'s output in etcd (which passes validate.py);
//! scaling endpoints rewrites only the upstream; a bad annotation keeps the
//! last good objects and raises a Warning Event; deleting an Ingress removes
//! exactly its keys; served Ingresses get the load-balancer status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apisix_operator::cli::translate::{apply_object, dump, read_objects};
use apisix_operator::index::ClusterIndex;
use apisix_operator::translate::TranslateConfig;
use apisix_operator_testenv::{TestEnv, apisix_schema, create_object, eventually};
use etcd_client::GetOptions;
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const PREFIX: &str = "/it-run";
const CLUSTER: &str = "run";
const GENEROUS: Duration = Duration::from_secs(90);

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ingress/shop.yaml")
}

fn config() -> TranslateConfig {
    TranslateConfig::defaults(
        PREFIX,
        apisix_operator::apisix::Ownership::new(CLUSTER).unwrap(),
    )
}

/// What `translate` makes of the example file (optionally edited).
fn expected(edit: impl Fn(&mut Vec<Value>)) -> BTreeMap<String, Value> {
    let mut objects = read_objects(&examples()).unwrap();
    edit(&mut objects);
    let mut index = ClusterIndex::new(config());
    for object in objects {
        apply_object(&mut index, &examples(), object).unwrap();
    }
    index.flush();
    dump(&index)
}

async fn etcd_dump(etcd: &mut etcd_client::Client) -> BTreeMap<String, (Value, i64)> {
    let response = etcd
        .get(format!("{PREFIX}/"), Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    response
        .kvs()
        .iter()
        .map(|kv| {
            let mut value: Value = serde_json::from_slice(kv.value()).unwrap();
            let map = value.as_object_mut().unwrap();
            assert!(map.remove("create_time").is_some() && map.remove("update_time").is_some());
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                (value, kv.mod_revision()),
            )
        })
        .collect()
}

async fn wait_for(
    etcd: &etcd_client::Client,
    want: &BTreeMap<String, Value>,
    what: &str,
) -> BTreeMap<String, (Value, i64)> {
    eventually(what, GENEROUS, || {
        let mut etcd = etcd.clone();
        async move {
            let have = etcd_dump(&mut etcd).await;
            let values: BTreeMap<&String, &Value> = have.iter().map(|(k, (v, _))| (k, v)).collect();
            let wanted: BTreeMap<&String, &Value> = want.iter().collect();
            (values == wanted).then_some(have)
        }
    })
    .await
}

async fn create_all(client: &kube::Client, objects: Vec<Value>) {
    for object in objects {
        create_object(client, &object).await.unwrap();
    }
}

#[tokio::test]
async fn the_operator_keeps_etcd_equal_to_the_translation_of_the_cluster() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    create_all(&client, read_objects(&examples()).unwrap()).await;

    let mut args: Vec<String> = vec![
        "run".into(),
        format!("--etcd-endpoints={}", env.apisix_etcd.client_url()),
        format!("--prefix={PREFIX}"),
        format!("--cluster={CLUSTER}"),
        "--fence-prefix=/operator-it-run".into(),
        "--lease-name=it-run".into(),
        "--lease-namespace=default".into(),
        "--identity=run-a".into(),
        "--ingress-status-address=192.0.2.10".into(),
        "--listen-address=127.0.0.1:0".into(),
    ];
    // Check plugin configurations against APISIX 3.18's schemas when present.
    {
        let schema = apisix_schema::control_api_schema_path();
        args.push(format!("--apisix-schema={}", schema.display()));
    }
    // As the chart's ServiceAccount, with the chart's RBAC.
    let operator = env
        .spawn_operator(
            "operator-run",
            Path::new(env!("CARGO_BIN_EXE_apisix-operator")),
            &args,
        )
        .await
        .unwrap();

    // 1. etcd converges to exactly what `translate` prints.
    let want = expected(|_| {});
    let first = wait_for(&etcd, &want, "etcd to equal the translation").await;
    apisix_schema::assert_prefix_valid(&mut etcd, PREFIX).await;

    // 2. Served Ingresses get the load-balancer status.
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "shop");
    eventually("the load-balancer status", GENEROUS, || {
        let ingresses = ingresses.clone();
        async move {
            let list = ingresses.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .all(|i| {
                    i.status
                        .as_ref()
                        .and_then(|s| s.load_balancer.as_ref())
                        .and_then(|lb| lb.ingress.as_ref())
                        .is_some_and(|lb| {
                            lb.len() == 1 && lb[0].ip.as_deref() == Some("192.0.2.10")
                        })
                })
                .then_some(())
        }
    })
    .await;

    // 3. Scaling endpoints rewrites the storefront upstreams only.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "shop");
    let mut slice = slices.get("storefront-abc12").await.unwrap();
    slice.endpoints.push(
        serde_json::from_value(
            json!({"addresses": ["10.244.4.13"], "conditions": {"ready": true}}),
        )
        .unwrap(),
    );
    slices
        .replace("storefront-abc12", &PostParams::default(), &slice)
        .await
        .unwrap();
    let want_scaled = expected(|objects| {
        for object in objects.iter_mut() {
            if object["metadata"]["name"] == "storefront-abc12" {
                object["endpoints"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"addresses": ["10.244.4.13"], "conditions": {"ready": true}}));
            }
        }
    });
    let scaled = wait_for(&etcd, &want_scaled, "the scaled upstream").await;
    for (key, (_, revision)) in &scaled {
        let moved = first[key].1 != *revision;
        assert_eq!(
            moved,
            key.contains("/upstreams/") && first[key].0 != scaled[key].0,
            "{key} moved={moved}"
        );
        if moved {
            assert!(key.contains("/upstreams/"), "{key} was rewritten");
        }
    }

    // 4. A bad annotation: Warning Event, last good objects stay.
    let patch =
        json!({"metadata": {"annotations": {"k8s.apisix.apache.org/upstream-retries": "many"}}});
    ingresses
        .patch("api", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    eventually("a Warning Event for the bad annotation", GENEROUS, || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.involved_object.name.as_deref() == Some("api")
                        && e.message
                            .as_deref()
                            .is_some_and(|m| m.contains("upstream-retries"))
                })
                .then_some(())
        }
    })
    .await;
    let after_bad = etcd_dump(&mut etcd).await;
    assert_eq!(after_bad, scaled, "a bad annotation changed etcd");

    // 5. Deleting an Ingress removes exactly its keys.
    ingresses
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    let want_deleted = expected(|objects| {
        objects.retain(|o| !(o["kind"] == "Ingress" && o["metadata"]["name"] == "api"));
        for object in objects.iter_mut() {
            if object["metadata"]["name"] == "storefront-abc12" {
                object["endpoints"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"addresses": ["10.244.4.13"], "conditions": {"ready": true}}));
            }
        }
    });
    let deleted = wait_for(&etcd, &want_deleted, "the deleted Ingress's keys to go").await;
    for (key, value) in &deleted {
        assert_eq!(
            scaled.get(key),
            Some(value),
            "{key} changed when another Ingress was deleted"
        );
    }
    drop(operator);
}
