//! The operator run exactly as the Helm chart deploys it: the rendered
//! objects are server-side applied to the real API server, and the rendered
//! container (its args, its downward-API and Secret environment, its Secret
//! volumes) runs locally as the chart's ServiceAccount (impersonation), so a
//! missing permission or a wrong flag fails here. One run uses the plain
//! APISIX etcd and a namespace selector; the other etcd over mutual TLS
//! with a user and password, and the data-encryption keyring, all from
//! Secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apisix_operator::cli::translate::{apply_object, dump, read_objects};
use apisix_operator::index::ClusterIndex;
use apisix_operator::translate::TranslateConfig;
use apisix_operator_testenv::install::{self, InstallTools, LocalPod, render_chart, repo_root};
use apisix_operator_testenv::{
    EtcdOptions, EtcdTls, ManagedProcess, TestEnv, apply_all, audit, create_object, eventually,
    http, ports, server_side_apply,
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

const GENEROUS: Duration = Duration::from_secs(90);

/// The two runs share the cluster-scoped examples (a GatewayClass, an
/// ApisixClusterConfig): one run at a time, so the one that checks that
/// every permission is used writes their status itself.
static ONE_OPERATOR_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Clears the status of the cluster-scoped examples (another run may have
/// written it), so this run's operator writes it again.
async fn clear_cluster_scoped_statuses(client: &kube::Client) {
    for (group, version, kind, name) in [
        ("gateway.networking.k8s.io", "v1", "GatewayClass", "apisix"),
        ("apisix.apache.org", "v2", "ApisixClusterConfig", "default"),
    ] {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
        Api::<DynamicObject>::all_with(client.clone(), &resource)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": null})),
            )
            .await
            .unwrap();
    }
}

fn example_objects() -> Vec<(PathBuf, Value)> {
    let files = [
        repo_root().join("examples/ingress/shop.yaml"),
        repo_root().join("examples/apisix/shop-apisix.yaml"),
        repo_root().join("examples/gateway/shop-gateway.yaml"),
    ];
    files
        .iter()
        .flat_map(|f| {
            read_objects(f)
                .unwrap()
                .into_iter()
                .map(move |o| (f.clone(), o))
        })
        .collect()
}

/// The examples with their namespace moved to `namespace`.
fn examples_in(namespace: &str) -> Vec<(PathBuf, Value)> {
    example_objects()
        .into_iter()
        .map(|(file, mut object)| {
            if object["metadata"]["namespace"] == "shop" {
                object["metadata"]["namespace"] = json!(namespace);
            }
            (file, object)
        })
        .collect()
}

/// What the operator must write for `objects`.
fn expected_keys(
    objects: &[(PathBuf, Value)],
    prefix: &str,
    cluster: &str,
    keyring: Option<&str>,
) -> BTreeMap<String, Value> {
    let mut index = ClusterIndex::new({
        let mut config = TranslateConfig::defaults(
            prefix,
            apisix_operator::apisix::Ownership::new(cluster).unwrap(),
        );
        config.keyring =
            keyring.map(|k| apisix_operator::apisix::Keyring::new(&[k.to_string()]).unwrap());
        config
    });
    for (file, object) in objects {
        apply_object(&mut index, file, object.clone()).unwrap();
    }
    index.flush();
    dump(&index)
}

/// Creates the examples (the Gateway API CRDs first); returns them with the
/// creation times the API server gave their HTTPRoutes and GRPCRoutes, on
/// which the routes' priorities depend.
async fn create_all(client: &kube::Client, objects: &[(PathBuf, Value)]) -> Vec<(PathBuf, Value)> {
    let crds = apisix_operator_testenv::gateway_api::crds().unwrap_or_else(|e| panic!("{e}"));
    apply_all(client, &crds, GENEROUS).await;
    for (_, object) in objects {
        let what = format!(
            "{} {} to be created",
            object["kind"], object["metadata"]["name"]
        );
        eventually(&what, GENEROUS, || {
            let client = client.clone();
            let object = object.clone();
            async move {
                match create_object(&client, &object).await {
                    Ok(()) => Some(()),
                    // Cluster-scoped examples are shared by both runs.
                    Err(kube::Error::Api(status)) if status.is_already_exists() => Some(()),
                    Err(error) => {
                        eprintln!("creating {}: {error}", object["kind"]);
                        None
                    }
                }
            }
        })
        .await;
    }
    let mut created = objects.to_vec();
    let routes = ["HTTPRoute", "GRPCRoute"];
    for (_, object) in created
        .iter_mut()
        .filter(|(_, o)| routes.iter().any(|kind| o["kind"] == *kind))
    {
        let kind = object["kind"].as_str().unwrap();
        let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind);
        let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
        let namespace = object["metadata"]["namespace"].as_str().unwrap();
        let stored = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource)
            .get(object["metadata"]["name"].as_str().unwrap())
            .await
            .unwrap();
        object["metadata"]["creationTimestamp"] = json!(stored.metadata.creation_timestamp);
    }
    created
}

/// Renders the chart in `namespace` with `values` and applies it (CRDs
/// included) but for its ValidatingWebhookConfiguration, which calls the
/// webhook only once it runs (see [`webhook_on_loopback`]); returns the
/// rendered objects.
async fn deploy(client: &kube::Client, namespace: &str, values: Value) -> Vec<Value> {
    let rendered = render_chart(&InstallTools::locate().unwrap(), namespace, &values, true)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut objects = vec![json!({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": namespace}})];
    objects.extend(
        rendered
            .iter()
            .filter(|object| object["kind"] != "ValidatingWebhookConfiguration")
            .cloned(),
    );
    apply_all(client, &objects, GENEROUS).await;
    rendered
}

/// The chart's webhook as the API server here can reach it: no kube-proxy
/// routes its Service, so the configuration calls the local process by
/// URL (limited to `served`, the namespace this run serves) and the
/// serving certificate also names 127.0.0.1. Everything else (the flags,
/// the Secret, the RBAC, the rules and policies) is the chart's.
fn webhook_on_loopback(rendered: &mut [Value], served: &str) -> Value {
    let deployment = rendered
        .iter_mut()
        .find(|object| object["kind"] == "Deployment")
        .unwrap();
    let container = &mut deployment["spec"]["template"]["spec"]["containers"][0];
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|port| port["name"] == "webhook")
        .expect("the chart's webhook port")["containerPort"]
        .as_u64()
        .unwrap();
    let args = container["args"].as_array_mut().unwrap();
    let hosts = args
        .iter_mut()
        .find(|arg| arg.as_str().unwrap().starts_with("--webhook-hosts="))
        .expect("the chart names the certificate's hosts");
    *hosts = json!(format!("{},127.0.0.1", hosts.as_str().unwrap()));
    let mut configuration = install::of_kind(rendered, "ValidatingWebhookConfiguration")
        .expect("the chart's webhook configuration")
        .clone();
    for hook in configuration["webhooks"].as_array_mut().unwrap() {
        hook["clientConfig"] = json!({"url": format!("https://127.0.0.1:{port}/validate")});
        hook["namespaceSelector"] = json!({"matchLabels": {"kubernetes.io/metadata.name": served}});
    }
    configuration
}

/// Starts the Deployment's container locally as its ServiceAccount.
async fn run(
    env: &TestEnv,
    client: &kube::Client,
    deployment: &Value,
) -> (ManagedProcess, LocalPod) {
    let namespace = deployment["metadata"]["namespace"].as_str().unwrap();
    let account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap();
    let user = format!("system:serviceaccount:{namespace}:{account}");
    let work = env.workdir.path().join(namespace);
    std::fs::create_dir_all(&work).unwrap();
    let kubeconfig = work.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        env.apiserver.impersonating_kubeconfig(&user).unwrap(),
    )
    .unwrap();
    let pod = LocalPod::materialize(
        client,
        deployment,
        &format!("{namespace}-0"),
        &work.join("root"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let process = pod
        .spawn(
            Path::new(env!("CARGO_BIN_EXE_apisix-operator")),
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
            &work.join("operator.log"),
        )
        .unwrap();
    (process, pod)
}

async fn etcd_keys(etcd: &etcd_client::Client, prefix: &str) -> Option<BTreeMap<String, Value>> {
    let mut etcd = etcd.clone();
    Some(
        apisix_operator_testenv::apisix_schema::stored_objects(&mut etcd, prefix)
            .await
            .ok()?
            .into_iter()
            .map(|(key, (value, _))| (key, value))
            .collect(),
    )
}

async fn wait_for_keys(
    what: &str,
    etcd: &etcd_client::Client,
    prefix: &str,
    want: &BTreeMap<String, Value>,
    process: &ManagedProcess,
) {
    let waited = tokio::time::timeout(
        GENEROUS,
        eventually(what, GENEROUS, || async {
            (etcd_keys(etcd, prefix).await.as_ref() == Some(want)).then_some(())
        }),
    )
    .await;
    assert!(
        waited.is_ok(),
        "{what}; operator log:\n{}",
        process.log_tail()
    );
}

async fn ready(pod: &LocalPod) {
    let (port, path) = pod
        .probe("readinessProbe")
        .expect("an HTTP readiness probe");
    eventually("the readiness probe to pass", GENEROUS, || {
        let path = path.clone();
        async move { (http::get(port, &path)?.0 == 200).then_some(()) }
    })
    .await;
    let (port, path) = pod.probe("livenessProbe").expect("an HTTP liveness probe");
    assert_eq!(http::get(port, &path).map(|r| r.0), Some(200));
}

#[tokio::test]
async fn the_operator_runs_as_the_chart_deploys_it() {
    let _alone = ONE_OPERATOR_AT_A_TIME.lock().await;
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    let values = json!({
        "etcd": {"endpoints": [env.apisix_etcd.client_url()], "prefix": "/it-chart"},
        "operator": {
            "cluster": "chart",
            "namespaceSelector": "apisix-operator/serve=true",
            "ingressStatus": {"addresses": ["192.0.2.20"]},
            "port": ports::free_port().unwrap(),
        },
        // This run checks the Warning Events of a bad Ingress, which the
        // webhook would refuse; the mTLS run below runs the webhook.
        "webhook": {"enabled": false},
    });
    let rendered = deploy(&client, "apisix-operator", values).await;
    let objects = create_all(&client, &examples_in("shop")).await;
    clear_cluster_scoped_statuses(&client).await;
    let label = json!({"metadata": {"labels": {"apisix-operator/serve": "true"}}});
    Api::<Namespace>::all(client.clone())
        .patch("shop", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let (process, pod) = run(
        env,
        &client,
        install::of_kind(&rendered, "Deployment").unwrap(),
    )
    .await;

    // Nothing beyond the operator's needs.
    let sa = "system:serviceaccount:apisix-operator:apisix-operator";
    for (verb, resource) in [
        ("delete", "secrets"),
        ("get", "secrets"),
        ("create", "services"),
        ("update", "networking.k8s.io/ingresses"),
        ("delete", "apisix.apache.org/apisixroutes"),
        ("create", "pods"),
        ("update", "coordination.k8s.io/leases"),
    ] {
        assert!(
            !audit::allowed(&client, sa, verb, resource, "shop")
                .await
                .unwrap(),
            "{verb} {resource} in shop should be refused"
        );
    }

    let want = expected_keys(&objects, "/it-chart", "chart", None);
    let etcd = env.apisix_etcd_client().await.unwrap();
    wait_for_keys(
        "the operator, as the chart's ServiceAccount, to write the translation",
        &etcd,
        "/it-chart",
        &want,
        &process,
    )
    .await;
    ready(&pod).await;

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
    apisix_operator_testenv::apisix_schema::assert_prefix_valid(&mut etcd.clone(), "/it-chart")
        .await;

    // A bad Ingress: a Warning Event; fixed, then broken the same way again:
    // the recorder patches that Event (a series). Events need both verbs.
    let broken = |cors: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "broken", "namespace": "shop",
                            "annotations": {"k8s.apisix.apache.org/enable-cors": cors}},
               "spec": {"ingressClassName": "apisix", "rules": [{"host": "broken.shop.example.com",
                        "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                 "backend": {"service": {"name": "storefront", "port": {"number": 80}}}}]}}]}})
    };
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), "shop");
    let failure_event = || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("TranslationFailed")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken")
            })
    };
    server_side_apply(&client, &broken("maybe"), "install-test")
        .await
        .unwrap();
    eventually("a TranslationFailed Event", GENEROUS, failure_event).await;
    server_side_apply(&client, &broken("true"), "install-test")
        .await
        .unwrap();
    let mut fixed = objects.clone();
    fixed.push((PathBuf::from("broken.yaml"), broken("true")));
    let want = expected_keys(&fixed, "/it-chart", "chart", None);
    wait_for_keys(
        "the fixed Ingress written",
        &etcd,
        "/it-chart",
        &want,
        &process,
    )
    .await;
    server_side_apply(&client, &broken("maybe"), "install-test")
        .await
        .unwrap();
    eventually("the Event to become a series", GENEROUS, || async {
        failure_event().await?.series.filter(|s| s.count >= 2)
    })
    .await;

    // Every permission the chart grants gets used (Lease renewals within a
    // retry period), and no request is refused.
    let mut granted = audit::granted(&install::of_kind(&rendered, "ClusterRole").unwrap()["rules"]);
    granted.extend(audit::granted(
        &install::of_kind(&rendered, "Role").unwrap()["rules"],
    ));
    let deadline = tokio::time::Instant::now() + GENEROUS;
    let (unused, forbidden) = loop {
        let accesses = audit::accesses_of(env.apiserver.audit_log(), sa).unwrap();
        let unused: Vec<audit::Access> = granted.difference(&accesses.allowed).cloned().collect();
        if unused.is_empty() || tokio::time::Instant::now() > deadline {
            break (unused, accesses.forbidden);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(forbidden.is_empty(), "refused: {forbidden:?}");
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
}

#[tokio::test]
async fn the_chart_reads_etcd_mtls_credentials_and_the_keyring_from_secrets() {
    let _alone = ONE_OPERATOR_AT_A_TIME.lock().await;
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();

    // An APISIX etcd with mutual TLS and password authentication.
    let etcd_server = env
        .private_etcd(
            "chart-mtls",
            EtcdOptions {
                tls: Some(EtcdTls {
                    client_cert_auth: true,
                }),
            },
        )
        .await
        .unwrap();
    let mut admin = etcd_server.client().await.unwrap();
    admin.role_add("root").await.unwrap();
    admin.user_add("root", "s3cret", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();
    let etcd = etcd_client::Client::connect(
        [etcd_server.client_url()],
        Some(etcd_server.connect_options().with_user("root", "s3cret")),
    )
    .await
    .unwrap();

    let namespace = "apisix-operator-mtls";
    let tls = etcd_server.client_tls().unwrap();
    let keyring = "edd1c9f0985e76a2";
    let secret = |name: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": namespace}, "stringData": data})
    };
    let mut secrets = vec![json!({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": namespace}})];
    secrets.extend([
        secret(
            "etcd-client",
            json!({"ca.crt": tls.ca_pem, "tls.crt": tls.client.cert_pem, "tls.key": tls.client.key_pem}),
        ),
        secret("etcd-password", json!({"password": "s3cret"})),
        secret("apisix-keyring", json!({"keyring": keyring})),
    ]);
    apply_all(&client, &secrets, GENEROUS).await;
    let stored: Secret = Api::namespaced(client.clone(), namespace)
        .get("etcd-client")
        .await
        .unwrap();
    assert_eq!(stored.data.unwrap().len(), 3);

    let values = json!({
        "fullnameOverride": "apisix-operator-mtls",
        "etcd": {
            "endpoints": [etcd_server.client_url()],
            "prefix": "/it-mtls",
            "tls": {"secretName": "etcd-client"},
            "auth": {"user": "root", "passwordSecret": {"name": "etcd-password"}},
        },
        "operator": {
            "cluster": "mtls",
            "namespaces": ["mall"],
            "dataEncryption": {"keyringSecret": {"name": "apisix-keyring"}},
            "port": ports::free_port().unwrap(),
        },
        "webhook": {"port": ports::free_port().unwrap()},
    });
    let mut rendered = deploy(&client, namespace, values).await;
    let configuration = webhook_on_loopback(&mut rendered, "mall");
    let objects = create_all(&client, &examples_in("mall")).await;
    let (process, pod) = run(
        env,
        &client,
        install::of_kind(&rendered, "Deployment").unwrap(),
    )
    .await;
    assert!(
        pod.args.iter().any(|a| a.starts_with("--etcd-cert-file=")),
        "{:?}",
        pod.args
    );

    let want = expected_keys(&objects, "/it-mtls", "mtls", Some(keyring));
    wait_for_keys(
        "the operator to write over mTLS with the mounted credentials",
        &etcd,
        "/it-mtls",
        &want,
        &process,
    )
    .await;
    ready(&pod).await;
    let stored = etcd_keys(&etcd, "/it-mtls").await.unwrap();
    let consumer = stored
        .iter()
        .find(|(key, _)| key.contains("/consumers/"))
        .map(|(_, value)| value.to_string())
        .expect("a consumer");
    assert!(
        !consumer.contains("mobile-app-0a1b2c3d"),
        "the consumer key is encrypted with the keyring from the Secret: {consumer}"
    );

    // The chart's webhook, with the certificate the operator keeps in the
    // chart's Secret and the CA it patches into the chart's configuration.
    apply_all(&client, std::slice::from_ref(&configuration), GENEROUS).await;
    let name = configuration["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    apisix_operator_testenv::ca_bundle_patched(&client, &name, GENEROUS).await;
    let mut bad = objects
        .iter()
        .map(|(_, object)| object)
        .find(|object| object["kind"] == "Ingress")
        .expect("an Ingress among the examples")
        .clone();
    bad["metadata"] = json!({"name": "refused", "namespace": "mall",
                             "annotations": {"k8s.apisix.apache.org/use-regex": "yes"}});
    let message = eventually("the webhook to refuse a bad Ingress", GENEROUS, || {
        let (client, bad) = (client.clone(), bad.clone());
        async move {
            match create_object(&client, &bad).await {
                Err(kube::Error::Api(status)) if status.message.contains("denied the request") => {
                    Some(status.message)
                }
                _ => None,
            }
        }
    })
    .await;
    assert!(
        message.contains("metadata.annotations[k8s.apisix.apache.org/use-regex]"),
        "{message}"
    );
    let kept = Api::<Secret>::namespaced(client.clone(), namespace)
        .get("apisix-operator-mtls-webhook-cert")
        .await;
    assert!(
        kept.is_ok(),
        "the operator keeps its certificate in the chart's Secret"
    );
    // The configuration calls this run's process, which ends with the test,
    // and it reviews cluster-scoped objects whatever the namespace selector:
    // the other run's would be refused.
    Api::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>::all(
        client.clone(),
    )
    .delete(&name, &Default::default())
    .await
    .unwrap();
}
