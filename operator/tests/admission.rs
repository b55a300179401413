//! The admission webhook on the real API server: the operator serves it on
//! loopback with a certificate it issues itself (for 127.0.0.1), the leader
//! patches the CA bundle into the ValidatingWebhookConfiguration, and the
//! API server calls it for every create and update of the APISIX CRDs and
//! Ingresses. A bad plugin configuration, a bad annotation, a bad regular
//! expression and a host served with another certificate are refused with
//! the field named; a good object, and one whose Service does not exist
//! yet, are admitted; an update that breaks a stored object is refused; and
//! with every replica down, the failure policies do what they promise
//! (`Fail` for the CRDs, `Ignore` for Ingresses).

mod common;

use std::time::Duration;

use apisix_operator_testenv::{apisix_schema, create_object, eventually, ports};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

const PREFIX: &str = "/it-admission";
const NAMESPACE: &str = "admission";
/// The names the chart's RBAC lets the operator manage.
const CONFIGURATION: &str = "apisix-operator";
const GENEROUS: Duration = Duration::from_secs(90);

fn rules(group: &str, resources: &[&str]) -> Value {
    json!([{
        "apiGroups": [group], "apiVersions": ["*"], "resources": resources,
        "operations": ["CREATE", "UPDATE"], "scope": "*",
    }])
}

/// The chart's two webhooks, called by URL on loopback, limited to the
/// test's namespace.
fn configuration(port: u16) -> ValidatingWebhookConfiguration {
    let hook = |name: &str, rules: Value, policy: &str| {
        json!({
            "name": name,
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate")},
            "rules": rules,
            "failurePolicy": policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "matchPolicy": "Equivalent",
            "timeoutSeconds": 5,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
        })
    };
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION},
        "webhooks": [
            hook("crds.apisix-operator.apisix.apache.org", rules("apisix.apache.org", &[
                "apisixroutes", "apisixupstreams", "apisixtlses", "apisixconsumers",
                "apisixpluginconfigs", "apisixglobalrules", "apisixclusterconfigs",
            ]), "Fail"),
            hook("ingresses.apisix-operator.apisix.apache.org", rules("networking.k8s.io", &["ingresses"]), "Ignore"),
        ],
    }))
    .unwrap()
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"namespace": NAMESPACE, "name": name},
           "spec": {"ports": [{"name": "http", "port": 80}]}})
}

fn route(name: &str, plugins: Value) -> Value {
    json!({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
        "metadata": {"namespace": NAMESPACE, "name": name},
        "spec": {"ingressClassName": "apisix", "http": [{
            "name": "main", "match": {"paths": ["/api/*"]},
            "backends": [{"serviceName": "web", "servicePort": 80}],
            "plugins": plugins,
        }]},
    })
}

fn ingress(name: &str, annotations: Value, path: &str, path_type: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": NAMESPACE, "name": name, "annotations": annotations},
        "spec": {"ingressClassName": "apisix", "rules": [{"host": "shop.example.com", "http": {"paths": [
            {"path": path, "pathType": path_type, "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        ]}}]},
    })
}

fn tls_secret(name: &str) -> Value {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["secure.example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"namespace": NAMESPACE, "name": name},
           "stringData": {"tls.crt": cert.pem(), "tls.key": key.serialize_pem()}})
}

fn apisix_tls(name: &str, secret: &str) -> Value {
    json!({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixTls",
        "metadata": {"namespace": NAMESPACE, "name": name},
        "spec": {"ingressClassName": "apisix", "hosts": ["secure.example.com"],
                 "secret": {"namespace": NAMESPACE, "name": secret}},
    })
}

/// The API server's refusal of `object`, which must be the webhook's.
async fn refusal(client: &kube::Client, object: &Value) -> String {
    match create_object(client, object).await {
        Ok(()) => panic!("{} was admitted", object["metadata"]["name"]),
        Err(kube::Error::Api(status)) => {
            assert!(
                status.message.contains("admission webhook"),
                "not the webhook's refusal: {}",
                status.message
            );
            status.message
        }
        Err(other) => panic!("{other}"),
    }
}

async fn caches_ready(port: u16) {
    eventually("the operator to be ready", GENEROUS, || async move {
        let (status, _) = apisix_operator_testenv::http::get(port, "/readyz")?;
        (status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_webhook_refuses_bad_objects_naming_the_field() {
    let (env, client) = common::env_with_crds().await;
    let (webhook_port, metrics_port) = (ports::free_port().unwrap(), ports::free_port().unwrap());
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configurations
        .create(&PostParams::default(), &configuration(webhook_port))
        .await
        .unwrap();
    let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                       "metadata": {"name": "apisix"},
                       "spec": {"controller": "apisix.apache.org/apisix-operator"}});
    for object in [
        class,
        service("web"),
        tls_secret("first-cert"),
        tls_secret("other-cert"),
    ] {
        create_object(&client, &object).await.unwrap();
    }
    let schema = apisix_schema::control_api_schema_path();
    let operator = common::OperatorRun {
        name: "admission",
        prefix: PREFIX,
        cluster: "admission",
        listen: format!("127.0.0.1:{metrics_port}"),
        extra: vec![
            format!("--apisix-schema={}", schema.display()),
            format!("--webhook-listen-address=127.0.0.1:{webhook_port}"),
            "--webhook-hosts=127.0.0.1".into(),
            format!("--webhook-configuration={CONFIGURATION}"),
        ],
    }
    .spawn(env)
    .await;
    caches_ready(metrics_port).await;
    // The leader patches its CA into both webhooks.
    apisix_operator_testenv::ca_bundle_patched(&client, CONFIGURATION, GENEROUS).await;
    // The bundle is in; the first call may still race the API server's
    // reload of the configuration: retry the good object until admitted.
    eventually("a good ApisixRoute to be admitted", GENEROUS, || {
        let client = client.clone();
        let good = route("good", json!([{"name": "limit-count", "enable": true, "config": {"count": 5, "time_window": 60}}]));
        async move { create_object(&client, &good).await.ok() }
    })
    .await;

    let bad_plugin = route(
        "bad-plugin",
        json!([{"name": "limit-count", "enable": true, "config": {"count": 5, "time_window": 60, "rejected_code": 99}}]),
    );
    let message = refusal(&client, &bad_plugin).await;
    assert!(
        message.contains("spec.http[0].plugins[0]") && message.contains("limit-count"),
        "{message}"
    );

    let bad_annotation = ingress(
        "bad-annotation",
        json!({"k8s.apisix.apache.org/use-regex": "yes"}),
        "/",
        "Prefix",
    );
    let message = refusal(&client, &bad_annotation).await;
    assert!(
        message.contains("metadata.annotations[k8s.apisix.apache.org/use-regex]"),
        "{message}"
    );

    let bad_regex = ingress(
        "bad-regex",
        json!({"k8s.apisix.apache.org/use-regex": "true"}),
        "/api/(",
        "ImplementationSpecific",
    );
    let message = refusal(&client, &bad_regex).await;
    assert!(
        message.contains("spec.rules[0].http.paths[0]") && message.contains("regular expression"),
        "{message}"
    );

    // A Service that does not exist yet is a warning, not a refusal.
    let mut later = ingress("later", json!({}), "/later", "Prefix");
    later["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("not-yet");
    create_object(&client, &later).await.unwrap();

    // A host served with one certificate cannot get another.
    create_object(&client, &apisix_tls("first", "first-cert"))
        .await
        .unwrap();
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    eventually("the first ssl to be written", GENEROUS, || {
        let mut etcd = etcd.clone();
        async move {
            let stored = apisix_schema::stored_objects(&mut etcd, PREFIX)
                .await
                .ok()?;
            stored
                .keys()
                .any(|key| key.contains("/ssls/"))
                .then_some(())
        }
    })
    .await;
    let message = refusal(&client, &apisix_tls("second", "other-cert")).await;
    assert!(
        message.contains("spec.hosts") && message.contains("secure.example.com"),
        "{message}"
    );

    // An update that breaks a stored object is refused; it stays as it was.
    let routes: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &kube::api::ApiResource::from_gvk(&GroupVersionKind::gvk(
            "apisix.apache.org",
            "v2",
            "ApisixRoute",
        )),
    );
    let mut stored = routes.get("good").await.unwrap();
    stored.data["spec"]["http"][0]["plugins"][0]["config"]["rejected_code"] = json!(99);
    match routes
        .replace("good", &PostParams::default(), &stored)
        .await
    {
        Err(kube::Error::Api(status)) => assert!(
            status.message.contains("spec.http[0].plugins[0]"),
            "{}",
            status.message
        ),
        other => panic!("the breaking update was not refused: {other:?}"),
    }
    let kept = routes.get("good").await.unwrap();
    assert!(
        kept.data["spec"]["http"][0]["plugins"][0]["config"]
            .get("rejected_code")
            .is_none()
    );
    assert!(
        apisix_schema::stored_objects(&mut etcd, PREFIX)
            .await
            .unwrap()
            .len()
            >= 3,
        "the good objects were written"
    );

    // Every replica down: the CRDs' webhook fails closed, Ingresses' open.
    drop(operator);
    eventually(
        "creates to fail while the webhook is down",
        GENEROUS,
        || {
            let client = client.clone();
            async move {
                match create_object(&client, &route("while-down", json!([]))).await {
                    Err(kube::Error::Api(status))
                        if status.message.contains("failed calling webhook") =>
                    {
                        Some(())
                    }
                    _ => None,
                }
            }
        },
    )
    .await;
    create_object(
        &client,
        &ingress("while-down", json!({}), "/down", "Prefix"),
    )
    .await
    .expect("Ingresses are admitted while the webhook is down (failurePolicy Ignore)");
}
