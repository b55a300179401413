//! One scenario's world: its environment, its three-member APISIX store,
//! the seeded workload and the replicas, each reaching the API server and
//! etcd directly, through a network namespace, or through delay proxies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use apisix_operator::cli::translate::{apply_object, dump};
use apisix_operator::index::ClusterIndex;
use apisix_operator::translate::TranslateConfig;
use apisix_operator_chaos_tests::apply::{FIELD_MANAGER, apply_change};
use apisix_operator_chaos_tests::netns::Netns;
use apisix_operator_chaos_tests::proxy::DelayProxy;
use apisix_operator_chaos_tests::workload::{Change, Workload, key_of};
use apisix_operator_testenv::{
    EtcdCluster, ManagedProcess, TestEnv, create_object, eventually, server_side_apply,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

pub const CLUSTER: &str = "chaosreal";
pub const GENEROUS: Duration = Duration::from_secs(90);

/// The workload's seed: `CHAOS_SEED`, else 1 (`make chaos` sets several).
pub fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// How a replica reaches the API server and etcd.
pub enum Reach<'a> {
    Direct,
    Netns(&'a Netns),
    /// One delay proxy per etcd member.
    Proxies(&'a [DelayProxy]),
}

pub struct Run {
    pub name: String,
    pub env: &'static TestEnv,
    pub client: kube::Client,
    pub store: EtcdCluster,
    pub workload: Workload,
    /// Every replica's log, those stopped included (checked for panics).
    pub logs: Vec<PathBuf>,
}

impl Run {
    /// A scenario in `env` (the shared one unless the scenario restarts the
    /// API server or loosens CRDs), with a three-member store of its own.
    pub async fn new(name: &str, env: &'static TestEnv, crds: Vec<Value>) -> Run {
        let client = env.kube_client().await.unwrap();
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
        for crd in crds {
            let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
            match api.create(&Default::default(), &crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_already_exists() => {}
                Err(e) => panic!("{e}"),
            }
        }
        let store = env
            .private_etcd_cluster(name, 3)
            .await
            .unwrap_or_else(|e| panic!("a three-member etcd: {e}"));
        Run {
            name: name.to_string(),
            env,
            client,
            store,
            workload: Workload::new(&format!("chaos-{name}"), seed()),
            logs: Vec::new(),
        }
    }

    pub fn namespace(&self) -> String {
        format!("chaos-{}", self.name)
    }
    pub fn prefix(&self) -> String {
        format!("/chaos-real-{}", self.name)
    }
    fn fence_prefix(&self) -> String {
        format!("/operator-chaos-real/{}", self.name)
    }
    pub fn fence(&self) -> String {
        format!("{}/{CLUSTER}/leader", self.fence_prefix())
    }
    fn lease(&self) -> String {
        format!("chaos-real-{}", self.name)
    }

    pub async fn create_initial(&mut self) {
        for object in self.workload.initial() {
            eventually("an object to be created", GENEROUS, || {
                let (client, object) = (self.client.clone(), object.clone());
                async move { create_object(&client, &object).await.ok() }
            })
            .await;
        }
    }

    /// One seeded workload change, applied.
    pub async fn step(&mut self) {
        let (_, change) = self.workload.next_change();
        self.apply(&change).await;
    }

    pub async fn steps(&mut self, count: usize, pause: Duration) {
        for _ in 0..count {
            self.step().await;
            tokio::time::sleep(pause).await;
        }
    }

    async fn apply(&self, change: &Change) {
        apply_change(&self.client, change)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// `changes` route changes at once: the routes in parallel, each
    /// route's rounds in order (so its last value is its highest round).
    pub async fn burst(&mut self, changes: usize) {
        let mut lanes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for route in self.workload.route_burst(changes) {
            lanes.entry(key_of(&route)).or_default().push(route);
        }
        let client = &self.client;
        futures::future::join_all(lanes.values().map(|routes| async move {
            for route in routes {
                server_side_apply(client, route, FIELD_MANAGER)
                    .await
                    .unwrap();
            }
        }))
        .await;
    }

    /// Stores an object the workload does not track (a malformed one).
    pub async fn store_untracked(&self, object: &Value) {
        server_side_apply(&self.client, object, FIELD_MANAGER)
            .await
            .unwrap_or_else(|e| panic!("storing {}: {e}", key_of(object)));
    }

    fn config(&self) -> TranslateConfig {
        TranslateConfig::defaults(
            &self.prefix(),
            apisix_operator::apisix::Ownership::new(CLUSTER).unwrap(),
        )
    }

    /// The translation of `objects` (those that do not decode are left out,
    /// as the operator leaves them out).
    pub fn translate<'a>(
        &self,
        objects: impl Iterator<Item = &'a Value>,
    ) -> BTreeMap<String, Value> {
        let mut index = ClusterIndex::new(self.config());
        for object in objects {
            let _ = apply_object(&mut index, Path::new("workload"), object.clone());
        }
        index.flush();
        dump(&index)
    }

    /// The translation of the workload's objects as last applied.
    pub fn desired(&self) -> BTreeMap<String, Value> {
        self.translate(self.workload.objects())
    }

    /// Keys desired from now to the end: those of the objects the workload
    /// never deletes.
    pub fn stable_keys(&self) -> BTreeSet<String> {
        self.translate(self.workload.lane_objects())
            .into_keys()
            .collect()
    }

    /// Replica `identity`, reaching the API server and etcd by `path`.
    pub async fn replica(&mut self, identity: &str, path: &Reach<'_>) -> ManagedProcess {
        let binary = env!("CARGO_BIN_EXE_chaos-operator");
        let (program, mut args) = match path {
            Reach::Netns(netns) => {
                let mut prefix = netns.prefix();
                let program = prefix.remove(0);
                prefix.push(binary.into());
                (program, prefix)
            }
            _ => (binary.to_string(), Vec::new()),
        };
        let endpoints = match path {
            Reach::Direct => self.store.client_urls(),
            Reach::Netns(netns) => self
                .store
                .client_ports()
                .iter()
                .map(|port| format!("http://{}:{port}", netns.host_ip))
                .collect(),
            Reach::Proxies(proxies) => proxies.iter().map(DelayProxy::url).collect(),
        };
        args.extend([
            "run".into(),
            format!("--etcd-endpoints={}", endpoints.join(",")),
            format!("--prefix={}", self.prefix()),
            format!("--cluster={CLUSTER}"),
            format!("--fence-prefix={}", self.fence_prefix()),
            format!("--lease-name={}", self.lease()),
            "--lease-namespace=default".into(),
            format!("--identity={identity}"),
            format!("--namespace={}", self.namespace()),
            "--listen-address=127.0.0.1:0".into(),
            "--lease-duration=2s".into(),
            "--renew-deadline=1500ms".into(),
            "--retry-period=300ms".into(),
        ]);
        if let Reach::Netns(netns) = path {
            // `run` reads the kubeconfig flag, which must come after it.
            let kubeconfig = self.kubeconfig_via(netns, identity).await;
            args.push(format!("--kubeconfig={}", kubeconfig.display()));
        }
        let process = self
            .env
            .spawn_operator(
                &format!("chaos-{}-{identity}-{}", self.name, self.logs.len()),
                Path::new(&program),
                &args,
            )
            .await
            .unwrap();
        self.logs.push(process.log_path().to_path_buf());
        process
    }

    /// The chart ServiceAccount's kubeconfig, pointed at the API server
    /// through `netns` (its certificate names localhost).
    async fn kubeconfig_via(&self, netns: &Netns, identity: &str) -> PathBuf {
        let original = self.env.operator_kubeconfig().await.unwrap();
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&original).unwrap()).unwrap();
        let cluster = &mut config["clusters"][0]["cluster"];
        let port = port_of(cluster["server"].as_str().unwrap());
        cluster["server"] = json!(format!("https://{}:{port}", netns.host_ip));
        cluster["tls-server-name"] = json!("localhost");
        let path = self
            .env
            .workdir
            .path()
            .join(format!("chaos-{}-{identity}.kubeconfig", self.name));
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    pub async fn leader(&self) -> Option<String> {
        let leases: kube::Api<Lease> = kube::Api::namespaced(self.client.clone(), "default");
        leases.get(&self.lease()).await.ok()?.spec?.holder_identity
    }
}

pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}
