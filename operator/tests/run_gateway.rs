//! `apisix-operator run` with the Gateway API CRDs (v1.5.1, from the pinned
//! Go module) on a real API server, as the chart's ServiceAccount: the
//! examples land in etcd exactly as `translate` prints them; the
//! GatewayClass, the Gateway (attached routes per listener, the status
//! address), the HTTPRoutes and the GRPCRoute get the spec's status; a ReferenceGrant created later lets a
//! route of another namespace reach a Service (its objects and status follow);
//! another controller's parent entry survives our writes; a deleted route
//! takes its keys and its count with it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apisix_operator::cli::translate::dump;
use apisix_operator::index::watch::Namespaces;
use apisix_operator::index::{ClusterIndex, load_cluster};
use apisix_operator::translate::TranslateConfig;
use apisix_operator_testenv::{apisix_schema, apply_all, create_object, eventually, gateway_api};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

const PREFIX: &str = "/it-gateway";
const CLUSTER: &str = "gateway";
const GENEROUS: Duration = Duration::from_secs(90);
const CONTROLLER: &str = "apisix.apache.org/apisix-operator";

fn with_files(objects: &[Value]) -> Vec<(PathBuf, Value)> {
    objects
        .iter()
        .map(|o| (PathBuf::from("test"), o.clone()))
        .collect()
}

fn example_objects() -> Vec<(PathBuf, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    common::objects_of(&[
        root.join("examples/ingress/shop.yaml"),
        root.join("examples/gateway/shop-gateway.yaml"),
    ])
}

fn expected(objects: &[(PathBuf, Value)]) -> BTreeMap<String, Value> {
    common::translation_of(objects, PREFIX, CLUSTER)
}

async fn etcd_values(etcd: &mut etcd_client::Client) -> BTreeMap<String, Value> {
    common::etcd_values(etcd, PREFIX).await
}

/// The translation of the live cluster, read as `run` reads it: route
/// priorities depend on creation times, which only the API server knows.
async fn live_translation(client: &kube::Client) -> BTreeMap<String, Value> {
    let config = TranslateConfig::defaults(
        PREFIX,
        apisix_operator::apisix::Ownership::new(CLUSTER).unwrap(),
    );
    let loaded = load_cluster(
        client,
        &Namespaces::All,
        ClusterIndex::new(config),
        GENEROUS,
    )
    .await
    .unwrap();
    let mut index = loaded.index;
    index.flush();
    dump(&index)
}

/// Waits until etcd holds exactly the live cluster's translation, whose
/// keys are those of `offline` (the files' translation).
async fn converge(
    etcd: &etcd_client::Client,
    client: &kube::Client,
    offline: BTreeMap<String, Value>,
    what: &str,
) {
    eventually(what, GENEROUS, || {
        let mut etcd = etcd.clone();
        let offline = offline.clone();
        let client = client.clone();
        async move {
            let have = etcd_values(&mut etcd).await;
            let live = live_translation(&client).await;
            (have == live && have.keys().eq(offline.keys())).then_some(())
        }
    })
    .await;
}

fn gateway_api(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

async fn status_of(
    client: &kube::Client,
    (kind, plural): (&str, &str),
    namespace: Option<&str>,
    name: &str,
) -> Option<Value> {
    let resource = gateway_api(kind, plural);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let object = api.get(name).await.ok()?;
    object.data.get("status").cloned()
}

fn condition<'a>(conditions: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == kind)
}

fn holds(conditions: &Value, kind: &str, reason: &str) -> bool {
    condition(conditions, kind).is_some_and(|c| c["status"] == "True" && c["reason"] == reason)
}

const CLASSES: (&str, &str) = ("GatewayClass", "gatewayclasses");
const GATEWAYS: (&str, &str) = ("Gateway", "gateways");
const ROUTES: (&str, &str) = ("HTTPRoute", "httproutes");
const GRPC_ROUTES: (&str, &str) = ("GRPCRoute", "grpcroutes");

/// Our parent entry of an HTTPRoute's status.
fn our_parent(status: &Value) -> Option<&Value> {
    status["parents"]
        .as_array()?
        .iter()
        .find(|p| p["controllerName"] == CONTROLLER)
}

fn attached(status: &Value, listener: &str) -> Option<i64> {
    status["listeners"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == listener)?["attachedRoutes"]
        .as_i64()
}

/// An HTTPRoute of namespace `partner` to the shop's `api` Service.
fn partner_route() -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"namespace": "partner", "name": "partner-api"},
           "spec": {"parentRefs": [{"name": "public", "namespace": "shop", "sectionName": "https"}],
                    "hostnames": ["partner.shop.example.com"],
                    "rules": [{"backendRefs": [{"name": "api", "namespace": "shop", "port": 80}]}]}})
}

fn grant() -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ReferenceGrant",
           "metadata": {"namespace": "shop", "name": "partner-to-api"},
           "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "partner"}],
                    "to": [{"group": "", "kind": "Service", "name": "api"}]}})
}

#[tokio::test]
async fn gateway_api_objects_are_served_and_report_their_status() {
    let (env, client) = common::env_with_crds().await;
    let crds = gateway_api::crds().unwrap_or_else(|e| panic!("{e}"));
    apply_all(&client, &crds, GENEROUS).await;
    let mut objects = example_objects();
    objects.push((
        PathBuf::from("test"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "partner"}}),
    ));
    common::create_each(&client, objects.iter().map(|(_, o)| o.clone())).await;
    let _operator = common::OperatorRun {
        name: "gateway",
        prefix: PREFIX,
        cluster: CLUSTER,
        listen: "127.0.0.1:0".into(),
        extra: vec!["--ingress-status-address=192.0.2.30".into()],
    }
    .spawn(env)
    .await;

    let etcd = env.apisix_etcd_client().await.unwrap();
    let want = expected(&objects);
    assert!(
        want.values()
            .any(|v| v["labels"]["k8s-kind"] == "HTTPRoute"),
        "the examples hold HTTPRoutes"
    );
    assert!(want.values().any(|v| v["labels"]["k8s-kind"] == "Gateway"));
    converge(
        &etcd,
        &client,
        want,
        "etcd to equal the translation of the examples",
    )
    .await;
    apisix_schema::assert_prefix_valid(&mut etcd.clone(), PREFIX).await;

    eventually("the GatewayClass to be Accepted", GENEROUS, || {
        let client = client.clone();
        async move {
            let status = status_of(&client, CLASSES, None, "apisix").await?;
            holds(&status["conditions"], "Accepted", "Accepted").then_some(())
        }
    })
    .await;
    eventually("the Gateway's status", GENEROUS, || {
        let client = client.clone();
        async move {
            let status = status_of(&client, GATEWAYS, Some("shop"), "public").await?;
            (holds(&status["conditions"], "Programmed", "Programmed")
                && attached(&status, "http") == Some(1)
                && attached(&status, "https") == Some(3)
                && status["addresses"] == json!([{"type": "IPAddress", "value": "192.0.2.30"}]))
            .then_some(())
        }
    })
    .await;
    eventually("the HTTPRoutes' status", GENEROUS, || {
        let client = client.clone();
        async move {
            let routes = [
                (ROUTES, "to-https"),
                (ROUTES, "www"),
                (ROUTES, "beta"),
                (GRPC_ROUTES, "api-grpc"),
            ];
            for (kind, name) in routes {
                let status = status_of(&client, kind, Some("shop"), name).await?;
                let parent = our_parent(&status)?;
                let ok = holds(&parent["conditions"], "Accepted", "Accepted")
                    && holds(&parent["conditions"], "ResolvedRefs", "ResolvedRefs")
                    && condition(&parent["conditions"], "Accepted")?["lastTransitionTime"]
                        .is_string()
                    && condition(&parent["conditions"], "Accepted")?["observedGeneration"] == 1;
                if !ok {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;

    // A route of another namespace to the shop's Service: refused until a
    // ReferenceGrant allows it, then served.
    create_object(&client, &partner_route()).await.unwrap();
    eventually("RefNotPermitted on the partner's route", GENEROUS, || {
        let client = client.clone();
        async move {
            let status = status_of(&client, ROUTES, Some("partner"), "partner-api").await?;
            let resolved = condition(&our_parent(&status)?["conditions"], "ResolvedRefs")?;
            (resolved["status"] == "False" && resolved["reason"] == "RefNotPermitted").then_some(())
        }
    })
    .await;
    let mut with_partner = objects.clone();
    with_partner.extend(with_files(&[partner_route()]));
    converge(
        &etcd,
        &client,
        expected(&with_partner),
        "the partner's route to answer 500",
    )
    .await;
    create_object(&client, &grant()).await.unwrap();
    with_partner.extend(with_files(&[grant()]));
    converge(
        &etcd,
        &client,
        expected(&with_partner),
        "the granted route to reach the Service",
    )
    .await;
    eventually("ResolvedRefs on the partner's route", GENEROUS, || {
        let client = client.clone();
        async move {
            let status = status_of(&client, ROUTES, Some("partner"), "partner-api").await?;
            holds(
                &our_parent(&status)?["conditions"],
                "ResolvedRefs",
                "ResolvedRefs",
            )
            .then_some(())
        }
    })
    .await;

    // Another controller's entry in a route's parents survives our writes.
    let routes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "shop",
        &gateway_api("HTTPRoute", "httproutes"),
    );
    let mut status = status_of(&client, ROUTES, Some("shop"), "beta")
        .await
        .unwrap();
    status["parents"].as_array_mut().unwrap().push(json!({
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "elsewhere"},
        "controllerName": "example.com/other-controller",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}],
    }));
    routes
        .patch_status(
            "beta",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    routes
        .patch(
            "beta",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"rules": [{"backendRefs": [{"name": "storefront", "port": 80}]}]}}),
            ),
        )
        .await
        .unwrap();
    eventually(
        "our entry for generation 2, beside the other's",
        GENEROUS,
        || {
            let client = client.clone();
            async move {
                let status = status_of(&client, ROUTES, Some("shop"), "beta").await?;
                let ours = condition(&our_parent(&status)?["conditions"], "Accepted")?;
                let theirs = status["parents"]
                    .as_array()?
                    .iter()
                    .any(|p| p["controllerName"] == "example.com/other-controller");
                (ours["observedGeneration"] == 2 && theirs).then_some(())
            }
        },
    )
    .await;

    // Deleting a route removes its keys and its attachment.
    routes
        .delete("www", &DeleteParams::default())
        .await
        .unwrap();
    eventually("www's routes to leave etcd", GENEROUS, || {
        let mut etcd = etcd.clone();
        async move {
            let values = etcd_values(&mut etcd).await;
            (!values.values().any(|v| v["labels"]["k8s-name"] == "www")).then_some(())
        }
    })
    .await;
    eventually(
        "the https listener to count one route less",
        GENEROUS,
        || {
            let client = client.clone();
            async move {
                let status = status_of(&client, GATEWAYS, Some("shop"), "public").await?;
                // beta, api-grpc and partner-api remain on https.
                (attached(&status, "https") == Some(3) && attached(&status, "http") == Some(1))
                    .then_some(())
            }
        },
    )
    .await;
}
