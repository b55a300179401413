//! Helpers shared by the integration tests: replica configs isolated per
//! test (own Lease, own APISIX prefix, own fence), synthetic desired states
//! whose values are valid APISIX objects, and polling with a deadline.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apisix_operator::apisix::Ownership;
use apisix_operator::leader::{FenceKey, LeaseConfig};
use apisix_operator::replica::ReplicaConfig;
use apisix_operator::sync::{DesiredState, EngineConfig, PlanLimits};
#[allow(unused_imports)]
pub use apisix_operator_testenv::eventually;

pub const CLUSTER: &str = "it";

pub fn replica_config(test: &str, identity: &str) -> ReplicaConfig {
    let mut lease = LeaseConfig::new(&format!("lease-{test}"), "default", identity);
    lease.lease_duration = Duration::from_secs(3);
    lease.renew_deadline = Duration::from_secs(2);
    lease.retry_period = Duration::from_millis(500);
    ReplicaConfig {
        lease,
        engine: EngineConfig {
            prefix: prefix(test),
            ownership: Ownership::new(CLUSTER).unwrap(),
            fence_key: FenceKey::new(&format!("/operator-it/{test}"), CLUSTER),
            identity: identity.to_string(),
            limits: PlanLimits::default(),
            resync_interval: Duration::from_secs(300),
            etcd_timeout: Duration::from_secs(5),
        },
    }
}

pub fn prefix(test: &str) -> String {
    format!("/it-{test}")
}

/// `units` synthetic units (an upstream and a route each) owned by [`CLUSTER`].
pub fn synthetic(prefix: &str, units: usize, generation: u64) -> DesiredState {
    apisix_operator::sync::synthetic::synthetic_state(prefix, CLUSTER, units, generation)
}

/// Every key under `<prefix>/` with its value (without timestamps) and mod revision.
pub async fn etcd_state(
    etcd: &mut etcd_client::Client,
    prefix: &str,
) -> BTreeMap<String, (serde_json::Value, i64)> {
    apisix_operator_testenv::apisix_schema::stored_objects(etcd, prefix)
        .await
        .unwrap()
}

/// True when etcd's object keys under the prefix equal `desired` exactly.
pub async fn etcd_matches(
    etcd: &mut etcd_client::Client,
    prefix: &str,
    desired: &DesiredState,
) -> bool {
    let state = etcd_state(etcd, prefix).await;
    let owned: BTreeMap<&String, &serde_json::Value> = state
        .iter()
        .filter(|(k, _)| k.contains(&format!("/ao_{CLUSTER}_")))
        .map(|(k, (v, _))| (k, v))
        .collect();
    owned.len() == desired.len()
        && desired
            .iter()
            .all(|(key, want)| owned.get(&key.as_str().to_string()) == Some(&&want.value.to_json()))
}

pub async fn current_revision(etcd: &mut etcd_client::Client) -> i64 {
    etcd.get("/", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision()
}

pub fn shared(
    state: DesiredState,
) -> (
    tokio::sync::watch::Sender<Arc<DesiredState>>,
    tokio::sync::watch::Receiver<Arc<DesiredState>>,
) {
    tokio::sync::watch::channel(Arc::new(state))
}

/// The shared test environment with the APISIX CRDs installed, and an admin
/// client.
pub async fn env_with_crds() -> (&'static apisix_operator_testenv::TestEnv, kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = apisix_operator_testenv::TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in apisix_operator::api::all_crds() {
        match crds.create(&kube::api::PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(e) => panic!("installing the CRDs: {e}"),
        }
    }
    (env, client)
}

/// `apisix-operator run` as the integration tests start it: on the shared
/// APISIX etcd under its own prefix and cluster, with a Lease (`it-<name>`)
/// and identity (`<name>-a`) of its own, as the chart's ServiceAccount,
/// logging to `operator-<name>.log`.
pub struct OperatorRun<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub cluster: &'a str,
    /// The metrics and probes address (`127.0.0.1:0` when not read).
    pub listen: String,
    /// Flags of the test's own.
    pub extra: Vec<String>,
}

impl OperatorRun<'_> {
    pub fn args(&self, env: &apisix_operator_testenv::TestEnv) -> Vec<String> {
        let mut args = vec![
            "run".to_string(),
            format!("--etcd-endpoints={}", env.apisix_etcd.client_url()),
            format!("--prefix={}", self.prefix),
            format!("--cluster={}", self.cluster),
            format!("--lease-name=it-{}", self.name),
            "--lease-namespace=default".into(),
            format!("--identity={}-a", self.name),
            format!("--listen-address={}", self.listen),
        ];
        args.extend(self.extra.iter().cloned());
        args
    }

    pub async fn spawn(
        &self,
        env: &apisix_operator_testenv::TestEnv,
    ) -> apisix_operator_testenv::ManagedProcess {
        env.spawn_operator(
            &format!("operator-{}", self.name),
            std::path::Path::new(env!("CARGO_BIN_EXE_apisix-operator")),
            &self.args(env),
        )
        .await
        .unwrap_or_else(|e| panic!("starting the operator: {e}"))
    }
}

/// The objects of `files` (multi-document YAML), each with its file.
pub fn objects_of(files: &[std::path::PathBuf]) -> Vec<(std::path::PathBuf, serde_json::Value)> {
    files
        .iter()
        .flat_map(|file| {
            apisix_operator::cli::translate::read_objects(file)
                .unwrap()
                .into_iter()
                .map(move |object| (file.clone(), object))
        })
        .collect()
}

/// The offline translation of `objects` (as `translate -f` prints it) for
/// `prefix` and `cluster`.
pub fn translation_of(
    objects: &[(std::path::PathBuf, serde_json::Value)],
    prefix: &str,
    cluster: &str,
) -> BTreeMap<String, serde_json::Value> {
    let mut index = apisix_operator::index::ClusterIndex::new(
        apisix_operator::translate::TranslateConfig::defaults(
            prefix,
            Ownership::new(cluster).unwrap(),
        ),
    );
    for (file, object) in objects {
        apisix_operator::cli::translate::apply_object(&mut index, file, object.clone()).unwrap();
    }
    index.flush();
    apisix_operator::cli::translate::dump(&index)
}

/// Every object under `prefix` in the APISIX etcd, without timestamps.
pub async fn etcd_values(
    etcd: &mut etcd_client::Client,
    prefix: &str,
) -> BTreeMap<String, serde_json::Value> {
    apisix_operator_testenv::apisix_schema::stored_objects(etcd, prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|(key, (value, _))| (key, value))
        .collect()
}

/// Creates every object, retrying while a just-installed CRD is not served.
pub async fn create_each(
    client: &kube::Client,
    objects: impl IntoIterator<Item = serde_json::Value>,
) {
    for object in objects {
        apisix_operator_testenv::eventually(
            "the object to be created",
            Duration::from_secs(90),
            || {
                let client = client.clone();
                let object = object.clone();
                async move {
                    apisix_operator_testenv::create_object(&client, &object)
                        .await
                        .ok()
                }
            },
        )
        .await;
    }
}
