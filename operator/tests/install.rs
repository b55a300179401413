//! The plain manifests (`deploy/manifests`): the API server accepts them with
//! server-side apply, and the operator runs as their ServiceAccount
//! (impersonation), so a missing permission fails this test; permissions
//! beyond what the operator needs are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apisix_operator::cli::translate::{apply_object, dump, read_objects};
use apisix_operator::index::ClusterIndex;
use apisix_operator::translate::TranslateConfig;
use apisix_operator_testenv::{ManagedProcess, TestEnv, create_object, eventually};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const GENEROUS: Duration = Duration::from_secs(90);
const SERVICE_ACCOUNT: &str = "system:serviceaccount:apisix-operator:apisix-operator";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_manifests_carry_the_current_crds() {
    let manifests = std::fs::read_to_string(root().join("deploy/manifests/crds.yaml")).unwrap();
    let crds = std::fs::read_to_string(root().join("crds/apisix-operator-crds.yaml")).unwrap();
    assert!(
        manifests == crds,
        "deploy/manifests/crds.yaml is stale: copy crds/apisix-operator-crds.yaml"
    );
}

/// The resources of the kustomization, in order.
fn manifest_objects() -> Vec<Value> {
    let dir = root().join("deploy/manifests");
    let kustomization: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    let namespace = kustomization["namespace"].as_str().unwrap().to_string();
    let mut objects = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        for mut object in read_objects(&dir.join(file.as_str().unwrap())).unwrap() {
            // translate's reader defaults namespaces; kustomize sets them.
            if object["metadata"]["namespace"] == "default" {
                object["metadata"]["namespace"] = namespace.clone().into();
            }
            objects.push(object);
        }
    }
    objects
}

async fn server_side_apply(client: &kube::Client, object: &Value) -> Result<(), kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk).await?;
    let name = object["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = match capabilities.scope {
        kube::discovery::Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            object["metadata"]["namespace"].as_str().unwrap(),
            &resource,
        ),
        kube::discovery::Scope::Cluster => {
            let mut object = object.clone();
            object["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("namespace");
            return Api::<DynamicObject>::all_with(client.clone(), &resource)
                .patch(
                    name,
                    &PatchParams::apply("apisix-operator-install-test").force(),
                    &Patch::Apply(&object),
                )
                .await
                .map(|_| ());
        }
    };
    api.patch(
        name,
        &PatchParams::apply("apisix-operator-install-test").force(),
        &Patch::Apply(object),
    )
    .await
    .map(|_| ())
}

async fn allowed(
    client: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
) -> bool {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": SERVICE_ACCOUNT, "groups": ["system:serviceaccounts", "system:authenticated"],
                 "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace}}
    }))
    .unwrap();
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.is_some_and(|s| s.allowed)
}

#[tokio::test]
async fn the_operator_runs_with_exactly_the_manifests_permissions() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    for object in manifest_objects() {
        eventually(
            &format!(
                "{} {} to be applied",
                object["kind"], object["metadata"]["name"]
            ),
            GENEROUS,
            || {
                let client = client.clone();
                let object = object.clone();
                async move { server_side_apply(&client, &object).await.ok() }
            },
        )
        .await;
    }

    // Nothing beyond the operator's needs.
    for (verb, group, resource) in [
        ("delete", "", "secrets"),
        ("create", "", "services"),
        ("update", "networking.k8s.io", "ingresses"),
        ("delete", "apisix.apache.org", "apisixroutes"),
        ("create", "", "pods"),
    ] {
        assert!(
            !allowed(&client, verb, group, resource, "shop").await,
            "{verb} {resource} should be refused"
        );
    }
    assert!(
        !allowed(&client, "update", "coordination.k8s.io", "leases", "shop").await,
        "Leases only in its own namespace"
    );

    // Apply the examples; serve only namespaces labelled for it.
    let files = [
        root().join("examples/ingress/shop.yaml"),
        root().join("examples/apisix/shop-apisix.yaml"),
    ];
    let objects: Vec<(PathBuf, Value)> = files
        .iter()
        .flat_map(|f| {
            read_objects(f)
                .unwrap()
                .into_iter()
                .map(move |o| (f.clone(), o))
        })
        .collect();
    for (_, object) in &objects {
        if object["kind"] == "IngressClass" {
            continue; // the manifests install it
        }
        eventually("an example to be created", GENEROUS, || {
            let client = client.clone();
            let object = object.clone();
            async move { create_object(&client, &object).await.ok() }
        })
        .await;
    }
    let label = json!({"metadata": {"labels": {"apisix-operator/serve": "true"}}});
    Api::<Namespace>::all(client.clone())
        .patch("shop", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();

    let kubeconfig = env.workdir.path().join("operator-sa.kubeconfig");
    std::fs::write(
        &kubeconfig,
        env.apiserver
            .impersonating_kubeconfig(SERVICE_ACCOUNT)
            .unwrap(),
    )
    .unwrap();
    let _operator = ManagedProcess::spawn(
        "apisix-operator-as-sa",
        Path::new(env!("CARGO_BIN_EXE_apisix-operator")),
        &[
            "run".into(),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--etcd-endpoints={}", env.apisix_etcd.client_url()),
            "--prefix=/it-install".into(),
            "--cluster=install".into(),
            "--lease-namespace=apisix-operator".into(),
            "--identity=sa-a".into(),
            "--namespace-selector=apisix-operator/serve=true".into(),
            "--ingress-status-address=192.0.2.20".into(),
            "--listen-address=127.0.0.1:0".into(),
        ],
        &env.workdir.path().join("operator-sa.log"),
    )
    .unwrap();

    let mut index = ClusterIndex::new(TranslateConfig {
        prefix: "/it-install".into(),
        ownership: apisix_operator::apisix::Ownership::new("install").unwrap(),
        controller_name: TranslateConfig::DEFAULT_CONTROLLER_NAME.into(),
        ingress_class: TranslateConfig::DEFAULT_INGRESS_CLASS.into(),
        keyring: None,
        schemas: None,
    });
    for (file, object) in &objects {
        apply_object(&mut index, file, object.clone()).unwrap();
    }
    index.flush();
    let want: BTreeMap<String, Value> = dump(&index);
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    eventually(
        "the operator, as its ServiceAccount, to write the translation",
        GENEROUS,
        || {
            let mut etcd = etcd.clone();
            let want = want.clone();
            async move {
                let have: BTreeMap<String, Value> =
                    apisix_operator_testenv::apisix_schema::stored_objects(
                        &mut etcd,
                        "/it-install",
                    )
                    .await
                    .ok()?
                    .into_iter()
                    .map(|(key, (value, _))| (key, value))
                    .collect();
                (have == want).then_some(())
            }
        },
    )
    .await;
    // Status writes (Ingress LB and CR conditions) work with these permissions.
    eventually("statuses written as the ServiceAccount", GENEROUS, || {
        let client = client.clone();
        async move {
            let ingress = Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(
                client.clone(),
                "shop",
            )
            .get("storefront")
            .await
            .ok()?;
            let lb = ingress.status?.load_balancer?.ingress?;
            let gvk = GroupVersionKind::gvk("apisix.apache.org", "v2", "ApisixConsumer");
            let (resource, _) = kube::discovery::pinned_kind(&client, &gvk).await.ok()?;
            let consumer = Api::<DynamicObject>::namespaced_with(client, "shop", &resource)
                .get("mobile-app")
                .await
                .ok()?;
            let programmed = consumer.data["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Programmed" && c["status"] == "True");
            (lb[0].ip.as_deref() == Some("192.0.2.20") && programmed).then_some(())
        }
    })
    .await;
    let _ = etcd.status().await;
}
