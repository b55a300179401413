//! The environment works end to end: a kube client can create namespaces,
//! install a CRD and use Leases; an etcd client can use the APISIX etcd; and
//! the APISIX schema check accepts good keys and rejects bad ones.

use std::time::Duration;

use apisix_operator_testenv::{TestEnv, apisix_schema, eventually};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};

const WIDGET_CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.smoke.example.com"},
  "spec": {
    "group": "smoke.example.com",
    "scope": "Namespaced",
    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
    "versions": [{
      "name": "v1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
      }}}
    }]
  }
}"#;

#[tokio::test]
async fn kube_apiserver_serves_namespaces_crds_and_leases() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("smoke".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_str(WIDGET_CRD).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let gvk = kube::api::GroupVersionKind::gvk("smoke.example.com", "v1", "Widget");
    let widgets = eventually(
        "the Widget CRD to be served",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            let gvk = gvk.clone();
            async move {
                let (resource, _) = kube::discovery::pinned_kind(&client, &gvk).await.ok()?;
                let api: Api<kube::api::DynamicObject> =
                    Api::namespaced_with(client, "smoke", &resource);
                api.list(&Default::default()).await.ok().map(|_| resource)
            }
        },
    )
    .await;
    assert_eq!(widgets.plural, "widgets");

    let leases: Api<Lease> = Api::namespaced(client.clone(), "smoke");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("smoke-lease".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("replica-a".into()),
            lease_duration_seconds: Some(5),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut updated = created.clone();
    updated.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    updated.spec.as_mut().unwrap().lease_transitions = Some(1);
    let replaced = leases
        .replace("smoke-lease", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        replaced.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
    // A stale resourceVersion is refused: the optimistic concurrency that
    // leader election relies on is real.
    let stale = leases
        .replace("smoke-lease", &PostParams::default(), &created)
        .await
        .unwrap_err();
    assert!(
        matches!(&stale, kube::Error::Api(status) if status.is_conflict()),
        "{stale:?}"
    );
}

#[tokio::test]
async fn apisix_etcd_stores_keys_and_the_schema_check_judges_them() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    let prefix = "/smoke-apisix";

    let upstream =
        r#"{"id":"u1","type":"roundrobin","nodes":[{"host":"127.0.0.1","port":8080,"weight":1}]}"#;
    let route = r#"{"id":"r1","uri":"/hello","upstream_id":"u1"}"#;
    etcd.put(format!("{prefix}/upstreams/u1"), upstream, None)
        .await
        .unwrap();
    etcd.put(format!("{prefix}/routes/r1"), route, None)
        .await
        .unwrap();
    let got = etcd.get(format!("{prefix}/routes/r1"), None).await.unwrap();
    assert_eq!(got.kvs()[0].value_str().unwrap(), route);

    apisix_schema::assert_prefix_valid(&mut etcd, prefix).await;

    // The check must be able to fail: a route pointing at a missing upstream
    // with an invalid method is rejected.
    let mut dump = apisix_schema::dump_prefix(&mut etcd, prefix).await.unwrap();
    dump.insert(
        format!("{prefix}/routes/bad"),
        serde_json::json!({"id": "bad", "uri": "/x", "methods": ["FETCH"], "upstream_id": "missing"}),
    );
    {
        let report = apisix_schema::validate(&dump, prefix).unwrap();
        assert!(!report.passed, "{}", report.output);
        assert!(report.output.contains("routes/bad"), "{}", report.output);
    }
}
