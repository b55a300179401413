//! The real binary on real objects under faults: three `apisix-operator
//! run` replicas (as the chart's ServiceAccount), a workload that keeps
//! changing ApisixRoutes, the full etcd history recorded from revision 1,
//! and the invariants of `invariants` checked on it after the fault heals.
//! Each scenario reports its failover gap (the fault → the first commit by
//! another replica) and how long convergence took.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apisix_operator::cli::translate::{apply_object, dump};
use apisix_operator::index::ClusterIndex;
use apisix_operator::translate::TranslateConfig;
use apisix_operator_chaos_tests::history::Recorder;
use apisix_operator_chaos_tests::invariants::{self, Expected};
use apisix_operator_chaos_tests::netns::Netns;
use apisix_operator_testenv::{
    ManagedProcess, TestEnv, create_object, eventually, server_side_apply,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

const CLUSTER: &str = "chaosreal";
const ROUTES: usize = 8;
const GENEROUS: Duration = Duration::from_secs(90);

struct Run {
    name: String,
    env: &'static TestEnv,
    client: kube::Client,
    /// The workload's objects as last applied, by name.
    objects: BTreeMap<String, Value>,
    round: usize,
}

impl Run {
    async fn new(name: &str) -> Run {
        let env = TestEnv::shared()
            .await
            .unwrap_or_else(|e| panic!("test environment: {e}"));
        let client = env.kube_client().await.unwrap();
        let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
        for crd in apisix_operator::api::all_crds() {
            match crds.create(&Default::default(), &crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_already_exists() => {}
                Err(e) => panic!("{e}"),
            }
        }
        Run {
            name: name.to_string(),
            env,
            client,
            objects: BTreeMap::new(),
            round: 0,
        }
    }

    fn namespace(&self) -> String {
        format!("chaos-{}", self.name)
    }
    fn prefix(&self) -> String {
        format!("/chaos-real-{}", self.name)
    }
    fn fence_prefix(&self) -> String {
        format!("/operator-chaos-real/{}", self.name)
    }
    fn fence(&self) -> String {
        format!("{}/{CLUSTER}/leader", self.fence_prefix())
    }
    fn lease(&self) -> String {
        format!("chaos-real-{}", self.name)
    }

    /// A Service with one ready endpoint and an ApisixRoute per index.
    fn initial_objects(&self) -> Vec<Value> {
        let ns = self.namespace();
        let mut objects = Vec::new();
        for i in 0..ROUTES {
            objects.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"namespace": ns, "name": format!("svc-{i}")},
                "spec": {"ports": [{"name": "http", "port": 80}]}}));
            objects.push(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"namespace": ns, "name": format!("svc-{i}-a"),
                             "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                "endpoints": [{"addresses": [format!("10.9.0.{}", i + 1)], "conditions": {"ready": true}}]}));
        }
        objects
    }

    fn route(&self, i: usize, round: usize) -> Value {
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
               "metadata": {"namespace": self.namespace(), "name": format!("route-{i}")},
               "spec": {"ingressClassName": "apisix", "http": [{"name": "main",
                        "match": {"paths": [format!("/r{i}/round-{round}/*")]},
                        "backends": [{"serviceName": format!("svc-{i}"), "servicePort": 80}]}]}})
    }

    fn key_of(object: &Value) -> String {
        format!(
            "{}/{}",
            object["kind"].as_str().unwrap(),
            object["metadata"]["name"].as_str().unwrap()
        )
    }

    async fn create_initial(&mut self) {
        let mut objects = self.initial_objects();
        objects.extend((0..ROUTES).map(|i| self.route(i, 0)));
        for object in objects {
            let created = object.clone();
            eventually("an object to be created", GENEROUS, || {
                let (client, object) = (self.client.clone(), created.clone());
                async move { create_object(&client, &object).await.ok() }
            })
            .await;
            self.objects.insert(Self::key_of(&object), object);
        }
    }

    /// One workload step: the next round's path on one route (values never
    /// repeat, so a regression is visible in the history).
    async fn step(&mut self) {
        self.round += 1;
        let route = self.route(self.round % ROUTES, self.round);
        server_side_apply(&self.client, &route, "chaos-workload")
            .await
            .unwrap();
        self.objects.insert(Self::key_of(&route), route);
    }

    /// `changes` at once: the next rounds on every route, the routes in
    /// parallel, each route's rounds in order (so its last value is its
    /// highest round).
    async fn burst(&mut self, changes: usize) {
        let first = self.round + 1;
        let lanes = (0..ROUTES).map(|lane| {
            let routes: Vec<Value> = (first..first + changes)
                .filter(|round| round % ROUTES == lane)
                .map(|round| self.route(lane, round))
                .collect();
            let client = self.client.clone();
            async move {
                for route in &routes {
                    server_side_apply(&client, route, "chaos-workload")
                        .await
                        .unwrap();
                }
                routes.last().cloned()
            }
        });
        for last in futures::future::join_all(lanes).await.into_iter().flatten() {
            self.objects.insert(Self::key_of(&last), last);
        }
        self.round += changes;
    }

    /// The translation of the workload's objects as last applied.
    fn desired(&self) -> BTreeMap<String, Value> {
        let mut index = ClusterIndex::new(TranslateConfig::defaults(
            &self.prefix(),
            apisix_operator::apisix::Ownership::new(CLUSTER).unwrap(),
        ));
        for object in self.objects.values() {
            apply_object(&mut index, &PathBuf::from("workload"), object.clone()).unwrap();
        }
        index.flush();
        dump(&index)
    }

    /// Replica `identity`, inside `netns` when given (reaching the API
    /// server and etcd through the namespace's host address).
    async fn replica(&self, identity: &str, netns: Option<&Netns>) -> ManagedProcess {
        let binary = env!("CARGO_BIN_EXE_chaos-operator");
        let mut command: Vec<String> = Vec::new();
        let mut etcd = self.env.apisix_etcd.client_url();
        if let Some(netns) = netns {
            command = netns.prefix();
            command.push(binary.into());
            etcd = format!("http://{}:{}", netns.host_ip, port_of(&etcd));
            command.push(format!(
                "--kubeconfig={}",
                self.kubeconfig_via(netns, identity).await.display()
            ));
        }
        let mut args: Vec<String> = command.iter().skip(1).cloned().collect();
        args.extend([
            "run".into(),
            format!("--etcd-endpoints={etcd}"),
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
        // `run` follows the kubeconfig flag, which must come after it.
        if let Some(at) = args.iter().position(|a| a.starts_with("--kubeconfig=")) {
            let flag = args.remove(at);
            args.push(flag);
        }
        let program = command
            .first()
            .cloned()
            .unwrap_or_else(|| binary.to_string());
        self.env
            .spawn_operator(
                &format!("chaos-{}-{identity}", self.name),
                std::path::Path::new(&program),
                &args,
            )
            .await
            .unwrap()
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

    async fn leader(&self) -> Option<String> {
        let leases: kube::Api<Lease> = kube::Api::namespaced(self.client.clone(), "default");
        leases.get(&self.lease()).await.ok()?.spec?.holder_identity
    }

    async fn converged(&self, recorder: &Recorder) -> bool {
        let want = self.desired();
        let history = recorder.history();
        let expected = Expected {
            prefix: &self.prefix(),
            fence: &self.fence(),
            desired: &want,
            stable: &BTreeSet::new(),
        };
        invariants::check(&history, &expected)
            .iter()
            .all(|v| !matches!(v, invariants::Violation::NotConverged { .. }))
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// What is done to the leader.
enum Fault {
    Kill,
    /// SIGSTOP past the Lease, then SIGCONT.
    Freeze(Duration),
    /// Cut off from the API server only (it still reaches etcd), then healed.
    CutApiServer(Duration),
    /// Cut off from etcd only (it still renews its Lease), then healed.
    CutEtcd(Duration),
    /// 20% of the leader's packets to the API server dropped, for a while.
    LossyApiServer(Duration),
    /// SIGTERM of every replica in turn, each started again once it exited.
    RollingRestart,
    /// SIGKILL, then this many changes at once.
    KillDuringBurst(usize),
}

impl Fault {
    /// The first address of the scenario's namespaces (none for signals).
    fn netns_base(&self) -> Option<u8> {
        match self {
            Fault::Kill | Fault::Freeze(_) | Fault::RollingRestart | Fault::KillDuringBurst(_) => {
                None
            }
            Fault::CutApiServer(_) => Some(10),
            Fault::CutEtcd(_) => Some(20),
            Fault::LossyApiServer(_) => Some(30),
        }
    }

    /// Whether another replica must take over (a leader that cannot reach
    /// etcd hands over too); with 20% loss the leader may keep its Lease.
    fn deposes(&self) -> bool {
        !matches!(self, Fault::LossyApiServer(_))
    }
}

async fn scenario(name: &str, fault: Fault) {
    let mut run = Run::new(name).await;
    let mut etcd = run.env.apisix_etcd_client().await.unwrap();
    let recorder = Recorder::start(etcd.clone()).await.unwrap();
    run.create_initial().await;
    let ports = [
        port_of(&run.env.apiserver.url()),
        port_of(&run.env.apisix_etcd.client_url()),
    ];
    let mut namespaces: BTreeMap<String, Netns> = BTreeMap::new();
    let mut replicas: BTreeMap<String, ManagedProcess> = BTreeMap::new();
    for (i, identity) in ["a", "b", "c"].into_iter().enumerate() {
        if let Some(base) = fault.netns_base() {
            let name = format!("chaos-{name}-{identity}");
            let netns = Netns::create(&name, base + i as u8, &ports)
                .unwrap_or_else(|e| panic!("{name}: a network namespace: {e}"));
            namespaces.insert(identity.to_string(), netns);
        }
        let netns = namespaces.get(identity);
        replicas.insert(identity.to_string(), run.replica(identity, netns).await);
    }
    eventually("the first convergence", GENEROUS, || async {
        run.converged(&recorder).await.then_some(())
    })
    .await;
    // Every key desired now stays desired: the workload only changes paths.
    let stable: BTreeSet<String> = run.desired().into_keys().collect();
    for _ in 0..10 {
        run.step().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = eventually("a leader", GENEROUS, || run.leader()).await;
    let fault_at = Instant::now();
    let fault_revision = recorder.revision();
    let [api_port, etcd_port] = ports;
    match &fault {
        Fault::Kill => {
            replicas.remove(&leader);
        }
        Fault::KillDuringBurst(changes) => {
            replicas.remove(&leader);
            run.burst(*changes).await;
        }
        Fault::RollingRestart => {
            for identity in ["a", "b", "c"] {
                let mut replica = replicas.remove(identity).unwrap();
                replica.signal(libc::SIGTERM).unwrap();
                let deadline = Instant::now() + GENEROUS;
                while replica.exited().is_none() {
                    assert!(
                        Instant::now() < deadline,
                        "{identity} did not stop on SIGTERM"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                run.step().await;
                replicas.insert(identity.into(), run.replica(identity, None).await);
                for _ in 0..5 {
                    run.step().await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Fault::Freeze(_) => replicas[&leader].signal(libc::SIGSTOP).unwrap(),
        Fault::CutApiServer(_) => namespaces[&leader].cut(api_port).unwrap(),
        Fault::CutEtcd(_) => namespaces[&leader].cut(etcd_port).unwrap(),
        Fault::LossyApiServer(_) => namespaces[&leader].lossy(api_port, 20).unwrap(),
    }
    // The workload goes on through the failover.
    for _ in 0..20 {
        run.step().await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let heal_after = match &fault {
        Fault::Kill | Fault::RollingRestart | Fault::KillDuringBurst(_) => None,
        Fault::Freeze(d)
        | Fault::CutApiServer(d)
        | Fault::CutEtcd(d)
        | Fault::LossyApiServer(d) => Some(*d),
    };
    if let Some(for_how_long) = heal_after {
        tokio::time::sleep(for_how_long.saturating_sub(fault_at.elapsed())).await;
        match &fault {
            Fault::Freeze(_) => replicas[&leader].signal(libc::SIGCONT).unwrap(),
            Fault::CutApiServer(_) => namespaces[&leader].heal(api_port).unwrap(),
            Fault::CutEtcd(_) => namespaces[&leader].heal(etcd_port).unwrap(),
            Fault::LossyApiServer(_) => namespaces[&leader].lossless(api_port, 20).unwrap(),
            Fault::Kill | Fault::RollingRestart | Fault::KillDuringBurst(_) => {}
        }
        for _ in 0..5 {
            run.step().await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    let healed_at = Instant::now();
    eventually("convergence after the fault", GENEROUS, || async {
        run.converged(&recorder).await.then_some(())
    })
    .await;
    let converged_in = healed_at.elapsed();
    // Let any stale write that could still come, come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let history = recorder.history();
    let desired = run.desired();
    let expected = Expected {
        prefix: &run.prefix(),
        fence: &run.fence(),
        desired: &desired,
        stable: &stable,
    };
    let violations = invariants::check(&history, &expected);
    let new_claim = history
        .events
        .iter()
        .find(|e| e.revision > fault_revision && e.key == run.fence());
    let first_commit = history.events.iter().find(|e| {
        new_claim.is_some_and(|claim| e.revision > claim.revision)
            && e.key.starts_with(&format!("{}/", run.prefix()))
    });
    let gap = first_commit
        .and_then(|e| e.seen)
        .map(|seen| seen.duration_since(fault_at));
    let puts = history
        .events
        .iter()
        .filter(|e| e.key.starts_with(&format!("{}/", run.prefix())) && e.value.is_some())
        .count();
    eprintln!(
        "[chaos {name}] failover gap {gap:?}, converged {converged_in:?} after healing, \
         {} workload changes, {puts} puts, violations: {violations:?}",
        run.round
    );
    assert!(violations.is_empty(), "{name}: {violations:#?}");
    if fault.deposes() {
        assert!(
            new_claim.is_some(),
            "{name}: no replica claimed the fence after the fault"
        );
    }
    // The checker is live on this very history: a planted violation of each
    // kind is caught.
    for kind in invariants::Injection::ALL {
        let planted = invariants::inject(&history, &expected, kind)
            .unwrap_or_else(|| panic!("{name}: nothing to plant {kind:?} in"));
        assert!(
            !invariants::check(&planted, &expected).is_empty(),
            "{name}: {kind:?} not caught"
        );
    }
    let _ = etcd.status().await;
}

#[tokio::test]
async fn sigkill_of_the_leader_keeps_every_invariant() {
    scenario("kill", Fault::Kill).await;
}

#[tokio::test]
async fn sigstop_of_the_leader_past_its_lease_keeps_every_invariant() {
    scenario("freeze", Fault::Freeze(Duration::from_secs(4))).await;
}

#[tokio::test]
async fn the_leader_cut_off_from_the_api_server_keeps_every_invariant() {
    scenario("cutapi", Fault::CutApiServer(Duration::from_secs(6))).await;
}

#[tokio::test]
async fn the_leader_cut_off_from_etcd_keeps_every_invariant() {
    scenario("cutetcd", Fault::CutEtcd(Duration::from_secs(6))).await;
}

#[tokio::test]
async fn packet_loss_to_the_api_server_keeps_every_invariant() {
    scenario("lossy", Fault::LossyApiServer(Duration::from_secs(6))).await;
}

#[tokio::test]
async fn a_rolling_sigterm_restart_of_every_replica_keeps_every_invariant() {
    scenario("rolling", Fault::RollingRestart).await;
}

#[tokio::test]
async fn a_burst_of_changes_during_a_failover_keeps_every_invariant() {
    scenario("burst", Fault::KillDuringBurst(5_000)).await;
}
