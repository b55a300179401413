//! `apisix-operator run` with the APISIX CRDs installed: ApisixConsumer,
//! ApisixPluginConfig (referenced by an Ingress), ApisixGlobalRule, ApisixTls
//! and ApisixClusterConfig land in etcd exactly as `translate` prints them;
//! a consumer whose Secret disappears keeps its last good object and gets a
//! Warning Event.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apisix_operator_testenv::{apisix_schema, create_object, eventually};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;

const PREFIX: &str = "/it-crds";
const CLUSTER: &str = "crds";
const GENEROUS: Duration = Duration::from_secs(90);

fn objects() -> Vec<(PathBuf, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    common::objects_of(&[
        root.join("examples/ingress/shop.yaml"),
        root.join("examples/apisix/shop-apisix.yaml"),
    ])
}

fn expected(objects: &[(PathBuf, Value)]) -> BTreeMap<String, Value> {
    common::translation_of(objects, PREFIX, CLUSTER)
}

async fn etcd_values(etcd: &mut etcd_client::Client) -> BTreeMap<String, Value> {
    common::etcd_values(etcd, PREFIX).await
}

#[tokio::test]
async fn apisix_crs_land_in_etcd_as_translate_prints_them() {
    let (env, client) = common::env_with_crds().await;
    let objects = objects();
    // CRs need their CRDs served; retry until discovery knows them.
    for (_, object) in &objects {
        eventually("the object to be created", GENEROUS, || {
            let client = client.clone();
            let object = object.clone();
            async move { create_object(&client, &object).await.ok() }
        })
        .await;
    }

    let schema = apisix_schema::control_api_schema_path();
    let _operator = common::OperatorRun {
        name: "crds",
        prefix: PREFIX,
        cluster: CLUSTER,
        listen: "127.0.0.1:0".into(),
        extra: vec![format!("--apisix-schema={}", schema.display())],
    }
    .spawn(env)
    .await;

    let mut etcd = env.apisix_etcd_client().await.unwrap();
    let want = expected(&objects);
    assert!(want.keys().any(|k| k.contains("/consumers/")));
    assert!(want.keys().any(|k| k.contains("/plugin_configs/")));
    assert!(want.keys().any(|k| k.contains("/stream_routes/")));
    assert_eq!(
        want.keys().filter(|k| k.contains("/global_rules/")).count(),
        2
    );
    let converged = eventually("etcd to equal the translation", GENEROUS, || {
        let mut etcd = etcd.clone();
        let want = want.clone();
        async move {
            let have = etcd_values(&mut etcd).await;
            (have == want).then_some(have)
        }
    })
    .await;
    apisix_schema::assert_prefix_valid(&mut etcd, PREFIX).await;

    // Every CR tells the truth in its status.
    for (kind, namespace, name) in [
        ("ApisixRoute", Some("shop"), "checkout-canary"),
        ("ApisixUpstream", Some("shop"), "api"),
        ("ApisixConsumer", Some("shop"), "mobile-app"),
        ("ApisixPluginConfig", Some("shop"), "rate-limited"),
        ("ApisixGlobalRule", Some("shop"), "request-ids"),
        ("ApisixTls", Some("shop"), "api-cert"),
        ("ApisixClusterConfig", None, "default"),
    ] {
        eventually(
            &format!("{kind} {name} to be Accepted and Programmed"),
            GENEROUS,
            || {
                let client = client.clone();
                async move {
                    let status = cr_status(&client, kind, namespace, name).await?;
                    let accepted = condition(&status, "Accepted")?;
                    let programmed = condition(&status, "Programmed")?;
                    (accepted["status"] == "True"
                        && programmed["status"] == "True"
                        && programmed["message"]
                            .as_str()?
                            .contains("written to etcd at revision")
                        && status["observedGeneration"] == 1)
                        .then_some(())
                }
            },
        )
        .await;
    }

    // `diff --live` computes the same desired state from the cluster: no drift.
    let diff = std::process::Command::new(env!("CARGO_BIN_EXE_apisix-operator"))
        .args(["diff", "--live", "--prefix", PREFIX, "--cluster", CLUSTER])
        .arg(format!("--etcd-endpoints={}", env.apisix_etcd.client_url()))
        .env("KUBECONFIG", env.operator_kubeconfig().await.unwrap())
        .output()
        .unwrap();
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );

    // The consumer's Secret disappears: a Warning Event, and the consumer
    // keeps serving with its last good credentials.
    Api::<Secret>::namespaced(client.clone(), "shop")
        .delete("mobile-app-key", &DeleteParams::default())
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    eventually("a Warning Event on the consumer", GENEROUS, || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.involved_object.kind.as_deref() == Some("ApisixConsumer")
                        && e.message
                            .as_deref()
                            .is_some_and(|m| m.contains("mobile-app-key not found"))
                })
                .then_some(())
        }
    })
    .await;
    assert_eq!(etcd_values(&mut etcd).await, converged);
    eventually(
        "the consumer's status to report the failure",
        GENEROUS,
        || {
            let client = client.clone();
            async move {
                let status =
                    cr_status(&client, "ApisixConsumer", Some("shop"), "mobile-app").await?;
                let accepted = condition(&status, "Accepted")?;
                let programmed = condition(&status, "Programmed")?;
                (accepted["status"] == "False"
                    && accepted["message"]
                        .as_str()?
                        .contains("mobile-app-key not found")
                    && programmed["status"] == "True"
                    && programmed["message"]
                        .as_str()?
                        .starts_with("the last good objects stay"))
                .then_some(())
            }
        },
    )
    .await;
}

async fn cr_status(
    client: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Option<Value> {
    let gvk = kube::api::GroupVersionKind::gvk("apisix.apache.org", "v2", kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.ok()?;
    let api: Api<kube::api::DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let object = api.get(name).await.ok()?;
    object.data.get("status").cloned()
}

fn condition(status: &Value, type_: &str) -> Option<Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}
