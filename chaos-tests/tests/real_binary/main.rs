//! The real binary on real objects under faults: three `apisix-operator
//! run` replicas (as the chart's ServiceAccount), a three-member etcd as the
//! APISIX store, a seeded workload that keeps creating, updating and
//! deleting Ingresses, ApisixRoutes, ApisixUpstreams, Services,
//! EndpointSlices and Secrets, the full etcd history recorded from revision
//! 1, and the invariants checked on it after the fault heals. Each scenario
//! writes a report (failover gap, time to converge, writes per change,
//! invariants held) to `CHAOS_REPORT_DIR` (default `target/tmp/chaos`);
//! `make chaos` runs every scenario for several seeds (`CHAOS_SEED`) and
//! tabulates them.

mod checks;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apisix_operator_chaos_tests::history::{History, Recorder};
use apisix_operator_chaos_tests::invariants::{self, Expected, Violation};
use apisix_operator_chaos_tests::netns::Netns;
use apisix_operator_chaos_tests::proxy::DelayProxy;
use apisix_operator_chaos_tests::report::ScenarioReport;
use apisix_operator_chaos_tests::verdict;
use apisix_operator_testenv::{ManagedProcess, TestEnv, eventually};
use serde_json::{Value, json};

use run::{GENEROUS, Reach, Run, port_of};

/// What is done.
enum Fault {
    Kill,
    /// SIGSTOP past the Lease, then SIGCONT.
    Freeze(Duration),
    /// Cut off from the API server only (it still reaches etcd), then healed.
    CutApiServer(Duration),
    /// Cut off from every etcd member (it still renews its Lease).
    CutEtcd(Duration),
    /// 20% of the leader's packets to the API server dropped, for a while.
    LossyApiServer(Duration),
    /// SIGTERM of every replica in turn, each started again once it exited.
    RollingRestart,
    /// SIGKILL, then this many changes at once.
    KillDuringBurst(usize),
    /// The API server stopped (SIGTERM) and started again.
    ApiServerRestart,
    /// One etcd member killed, restarted after a while (quorum kept): a
    /// follower, or the Raft leader, through which every write goes.
    EtcdMemberRestart {
        raft_leader: bool,
    },
    /// SIGKILL of the leader, and at once a compaction of the store at its
    /// newest revision and a defragmentation of every member.
    CompactDuringFailover,
    /// This much latency added to the leader's etcd traffic, for a while.
    EtcdLatency(Duration, Duration),
    /// SIGKILL of the leader, and at once objects stored that do not
    /// decode or do not translate.
    MalformedDuringFailover,
}

impl Fault {
    /// The first address of the scenario's namespaces, when it partitions.
    fn netns_base(&self) -> Option<u8> {
        match self {
            Fault::CutApiServer(_) => Some(10),
            Fault::CutEtcd(_) => Some(20),
            Fault::LossyApiServer(_) => Some(30),
            _ => None,
        }
    }

    /// Whether another replica must take over. A leader cut from etcd
    /// hands over; loss, latency, a member's loss or an API server restart
    /// may leave the leader in place.
    fn deposes(&self) -> bool {
        matches!(
            self,
            Fault::Kill
                | Fault::Freeze(_)
                | Fault::CutApiServer(_)
                | Fault::CutEtcd(_)
                | Fault::RollingRestart
                | Fault::KillDuringBurst(_)
                | Fault::CompactDuringFailover
                | Fault::MalformedDuringFailover
        )
    }

    /// How long the fault lasts before it is healed (`None`: nothing heals).
    fn lasts(&self) -> Option<Duration> {
        match self {
            Fault::Freeze(d)
            | Fault::CutApiServer(d)
            | Fault::CutEtcd(d)
            | Fault::LossyApiServer(d)
            | Fault::EtcdLatency(_, d) => Some(*d),
            Fault::EtcdMemberRestart { .. } => Some(Duration::from_secs(5)),
            _ => None,
        }
    }
}

/// The replicas and how each reaches the outside.
struct Replicas {
    running: BTreeMap<String, ManagedProcess>,
    namespaces: BTreeMap<String, Netns>,
    proxies: BTreeMap<String, Vec<DelayProxy>>,
}

impl Replicas {
    async fn start(run: &mut Run, fault: &Fault) -> Replicas {
        let mut replicas = Replicas {
            running: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            proxies: BTreeMap::new(),
        };
        let mut ports = vec![port_of(&run.env.apiserver.url())];
        ports.extend(run.store.client_ports());
        for (i, identity) in ["a", "b", "c"].into_iter().enumerate() {
            if let Some(base) = fault.netns_base() {
                let name = format!("chaos-{}-{identity}", run.name);
                let netns = Netns::create(&name, base + i as u8, &ports)
                    .unwrap_or_else(|e| panic!("{name}: a network namespace: {e}"));
                replicas.namespaces.insert(identity.into(), netns);
            }
            if let Fault::EtcdLatency(..) = fault {
                let mut proxies = Vec::new();
                for port in run.store.client_ports() {
                    let target = ([127, 0, 0, 1], port).into();
                    proxies.push(DelayProxy::start(target).await.unwrap());
                }
                replicas.proxies.insert(identity.into(), proxies);
            }
            replicas.spawn(run, identity).await;
        }
        replicas
    }

    async fn spawn(&mut self, run: &mut Run, identity: &str) {
        let reach = match (self.namespaces.get(identity), self.proxies.get(identity)) {
            (Some(netns), _) => Reach::Netns(netns),
            (None, Some(proxies)) => Reach::Proxies(proxies),
            (None, None) => Reach::Direct,
        };
        let process = run.replica(identity, &reach).await;
        self.running.insert(identity.into(), process);
    }

    fn cut_etcd(&self, identity: &str, run: &Run, heal: bool) {
        for port in run.store.client_ports() {
            let netns = &self.namespaces[identity];
            if heal {
                netns.heal(port)
            } else {
                netns.cut(port)
            }
            .unwrap();
        }
    }

    fn set_latency(&self, identity: &str, delay: Duration) {
        for proxy in &self.proxies[identity] {
            proxy.set_delay(delay);
        }
    }
}

/// The CRDs as this project ships them.
fn strict_crds() -> Vec<Value> {
    apisix_operator::api::all_crds()
        .into_iter()
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect()
}

/// The ApisixRoute CRD loosened to any spec, as an older release might have
/// stored objects (the API server does not revalidate stored objects).
fn crds_with_a_loose_apisixroute() -> Vec<Value> {
    let mut crds = strict_crds();
    for crd in crds
        .iter_mut()
        .filter(|c| c["spec"]["names"]["kind"] == "ApisixRoute")
    {
        for version in crd["spec"]["versions"].as_array_mut().unwrap() {
            version["schema"]["openAPIV3Schema"] = json!({"type": "object", "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
            version["additionalPrinterColumns"] = json!([]);
        }
    }
    crds
}

/// What no key may ever hold (the malformed objects' path).
const NEVER_WRITTEN: &str = "/malformed-must-not-be-written";

fn malformed(run: &Run) -> Vec<Value> {
    let route = |name: &str, spec: Value| {
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
               "metadata": {"namespace": run.namespace(), "name": name}, "spec": spec})
    };
    let rule = json!({"name": "main", "match": {"paths": [NEVER_WRITTEN]},
                      "backends": [{"serviceName": "svc-0", "servicePort": 80}]});
    vec![
        // Does not decode: `http` must be a list.
        route(
            "undecodable",
            json!({"ingressClassName": "apisix", "http": NEVER_WRITTEN}),
        ),
        // Decodes, does not translate: two rules of one name.
        route(
            "twice-named",
            json!({"ingressClassName": "apisix", "http": [rule.clone(), rule]}),
        ),
    ]
}

async fn environment(fault: &Fault) -> (&'static TestEnv, Vec<Value>) {
    match fault {
        // Faults of the whole API server, or CRDs of their own: a private
        // environment, so no other scenario running beside sees them.
        Fault::ApiServerRestart | Fault::MalformedDuringFailover => {
            let env = TestEnv::start()
                .await
                .unwrap_or_else(|e| panic!("test environment: {e}"));
            // Its processes die with the test binary (PR_SET_PDEATHSIG).
            let env: &'static TestEnv = Box::leak(Box::new(env));
            let crds = match fault {
                Fault::MalformedDuringFailover => crds_with_a_loose_apisixroute(),
                _ => strict_crds(),
            };
            (env, crds)
        }
        _ => {
            let env = TestEnv::shared()
                .await
                .unwrap_or_else(|e| panic!("test environment: {e}"));
            (env, strict_crds())
        }
    }
}

async fn converged(run: &Run, recorder: &Recorder) -> bool {
    let desired = run.desired();
    let no_stable = Default::default();
    let expected = Expected {
        prefix: &run.prefix(),
        fence: &run.fence(),
        desired: &desired,
        stable: &no_stable,
    };
    invariants::check(&recorder.history(), &expected)
        .iter()
        .all(|v| !matches!(v, Violation::NotConverged { .. }))
}

async fn scenario(name: &str, fault: Fault) {
    let (env, crds) = environment(&fault).await;
    let mut run = Run::new(name, env, crds).await;
    let recorder = Recorder::start(run.store.client().await.unwrap())
        .await
        .unwrap();
    run.create_initial().await;
    let mut replicas = Replicas::start(&mut run, &fault).await;
    eventually("the first convergence", GENEROUS, || async {
        converged(&run, &recorder).await.then_some(())
    })
    .await;
    let stable = run.stable_keys();
    run.steps(10, Duration::from_millis(100)).await;
    let leader = eventually("a leader", GENEROUS, || run.leader()).await;
    let fault_at = Instant::now();
    let fault_revision = recorder.revision();
    let killed_member = inject(&mut run, &mut replicas, &recorder, &fault, &leader).await;
    // The workload goes on through the fault.
    run.steps(20, Duration::from_millis(150)).await;
    if let Some(lasts) = fault.lasts() {
        tokio::time::sleep(lasts.saturating_sub(fault_at.elapsed())).await;
        heal(&mut run, &replicas, &fault, &leader, killed_member).await;
        run.steps(5, Duration::from_millis(150)).await;
    }
    let healed_at = Instant::now();
    eventually("convergence after the fault", GENEROUS, || async {
        converged(&run, &recorder).await.then_some(())
    })
    .await;
    let converged_in = healed_at.elapsed();
    // Let any stale write that could still come, come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let history = recorder.history();
    let report = judge(
        &run,
        &mut replicas,
        &history,
        &stable,
        fault_at,
        fault_revision,
        converged_in,
    )
    .await;
    let dir = std::env::var_os("CHAOS_REPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chaos"));
    report.write_to(&dir).unwrap();
    eprintln!("[chaos {name}] {report:?}");
    let failed: Vec<&String> = report
        .invariants
        .iter()
        .filter(|(_, held)| !held)
        .map(|(n, _)| n)
        .collect();
    assert!(failed.is_empty(), "{name}: {failed:?} (see above)");
    if fault.deposes() {
        assert!(
            report.failover_gap_ms.is_some(),
            "{name}: no replica claimed the fence after the fault"
        );
    }
}

/// Does `fault` to `leader`; returns the etcd member killed, if any.
async fn inject(
    run: &mut Run,
    replicas: &mut Replicas,
    recorder: &Recorder,
    fault: &Fault,
    leader: &str,
) -> Option<usize> {
    let api_port = port_of(&run.env.apiserver.url());
    match fault {
        Fault::Kill => drop(replicas.running.remove(leader)),
        Fault::KillDuringBurst(changes) => {
            replicas.running.remove(leader);
            run.burst(*changes).await;
        }
        Fault::RollingRestart => rolling_restart(run, replicas).await,
        Fault::Freeze(_) => replicas.running[leader].signal(libc::SIGSTOP).unwrap(),
        Fault::CutApiServer(_) => replicas.namespaces[leader].cut(api_port).unwrap(),
        Fault::CutEtcd(_) => replicas.cut_etcd(leader, run, false),
        Fault::LossyApiServer(_) => replicas.namespaces[leader].lossy(api_port, 20).unwrap(),
        Fault::ApiServerRestart => run.env.apiserver.restart().await.unwrap(),
        Fault::EtcdMemberRestart { raft_leader } => {
            let etcd_leader = run.store.leader().await.unwrap();
            let member = if *raft_leader {
                etcd_leader
            } else {
                (etcd_leader + 1) % run.store.size()
            };
            run.store.kill(member);
            return Some(member);
        }
        Fault::CompactDuringFailover => {
            replicas.running.remove(leader);
            compact_and_defragment(run, recorder).await;
        }
        Fault::EtcdLatency(delay, _) => replicas.set_latency(leader, *delay),
        Fault::MalformedDuringFailover => {
            replicas.running.remove(leader);
            for object in malformed(run) {
                run.store_untracked(&object).await;
            }
        }
    }
    None
}

async fn heal(
    run: &mut Run,
    replicas: &Replicas,
    fault: &Fault,
    leader: &str,
    member: Option<usize>,
) {
    let api_port = port_of(&run.env.apiserver.url());
    match fault {
        Fault::Freeze(_) => replicas.running[leader].signal(libc::SIGCONT).unwrap(),
        Fault::CutApiServer(_) => replicas.namespaces[leader].heal(api_port).unwrap(),
        Fault::CutEtcd(_) => replicas.cut_etcd(leader, run, true),
        Fault::LossyApiServer(_) => replicas.namespaces[leader].lossless(api_port, 20).unwrap(),
        Fault::EtcdLatency(..) => replicas.set_latency(leader, Duration::ZERO),
        Fault::EtcdMemberRestart { .. } => run
            .store
            .restart(member.expect("a member was killed"))
            .await
            .unwrap(),
        _ => {}
    }
}

async fn rolling_restart(run: &mut Run, replicas: &mut Replicas) {
    for identity in ["a", "b", "c"] {
        let mut replica = replicas.running.remove(identity).unwrap();
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
        replicas.spawn(run, identity).await;
        run.steps(5, Duration::from_millis(200)).await;
    }
}

/// Compacts at the newest revision once the recorder has seen it (a
/// watcher behind a compaction loses events; the operator's own watches
/// are what this scenario tests), then defragments every member.
async fn compact_and_defragment(run: &Run, recorder: &Recorder) {
    let mut client = run.store.client().await.unwrap();
    let revision = client
        .get("compact-here", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    eventually(
        "the recorder to reach the compaction revision",
        GENEROUS,
        || async { (recorder.revision() >= revision).then_some(()) },
    )
    .await;
    let options = etcd_client::CompactionOptions::new().with_physical();
    client.compact(revision, Some(options)).await.unwrap();
    for member in 0..run.store.size() {
        let mut member = run.store.member_client(member).await.unwrap();
        member.defragment().await.unwrap();
    }
}

/// Checks every invariant and builds the report.
async fn judge(
    run: &Run,
    replicas: &mut Replicas,
    history: &History,
    stable: &std::collections::BTreeSet<String>,
    fault_at: Instant,
    fault_revision: i64,
    converged_in: Duration,
) -> ScenarioReport {
    let desired = run.desired();
    // Desired before the fault and at the end (an ApisixUpstream's new
    // settings give its upstream a new key, and the old one goes).
    let stable = stable
        .iter()
        .filter(|key| desired.contains_key(*key))
        .cloned()
        .collect();
    let (prefix, fence) = (run.prefix(), run.fence());
    let expected = Expected {
        prefix: &prefix,
        fence: &fence,
        desired: &desired,
        stable: &stable,
    };
    let verdict = verdict::judge(history, &expected, fault_revision, fault_at);
    for violation in &verdict.violations {
        eprintln!("[chaos {}] violation: {violation}", run.name);
    }
    let untrue = checks::status_truth(run, history, Duration::from_secs(30)).await;
    assert!(
        !checks::status_truth(run, &History::default(), Duration::ZERO)
            .await
            .is_empty(),
        "status truth must fail on a history where nothing was written"
    );
    let crashes = checks::no_panics_or_exits(&run.logs, &mut replicas.running);
    for problem in untrue.iter().chain(&crashes) {
        eprintln!("[chaos {}] {problem}", run.name);
    }
    let never_written = !history.events.iter().any(|e| {
        e.value
            .as_deref()
            .is_some_and(|v| v.contains(NEVER_WRITTEN))
    });
    let mut invariants = verdict.invariants;
    invariants.extend([
        ("status truth".into(), untrue.is_empty()),
        ("no panics or unexpected exits".into(), crashes.is_empty()),
        ("bad input never written".into(), never_written),
    ]);
    ScenarioReport {
        scenario: run.name.clone(),
        seed: run::seed(),
        failover_gap_ms: verdict.failover_gap_ms,
        converged_ms: u64::try_from(converged_in.as_millis()).unwrap_or(u64::MAX),
        changes: run.workload.round(),
        puts: verdict.puts,
        invariants,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_leader() {
    scenario("kill", Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_of_the_leader_past_its_lease() {
    scenario("freeze", Fault::Freeze(Duration::from_secs(4))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_cut_off_from_the_api_server() {
    scenario("cutapi", Fault::CutApiServer(Duration::from_secs(6))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_cut_off_from_etcd() {
    scenario("cutetcd", Fault::CutEtcd(Duration::from_secs(6))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_to_the_api_server() {
    scenario("lossy", Fault::LossyApiServer(Duration::from_secs(6))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_sigterm_restart_of_every_replica() {
    scenario("rolling", Fault::RollingRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_changes_during_a_failover() {
    scenario("burst", Fault::KillDuringBurst(5_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kube_apiserver_restart() {
    scenario("apirestart", Fault::ApiServerRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_follower_killed_and_restarted() {
    scenario(
        "etcdfollower",
        Fault::EtcdMemberRestart { raft_leader: false },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_raft_leader_killed_and_restarted() {
    scenario("etcdleader", Fault::EtcdMemberRestart { raft_leader: true }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_defragmentation_during_a_failover() {
    scenario("compact", Fault::CompactDuringFailover).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_of_300_ms_to_etcd() {
    scenario(
        "latency",
        Fault::EtcdLatency(Duration::from_millis(300), Duration::from_secs(6)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_objects_stored_during_a_failover() {
    scenario("malformed", Fault::MalformedDuringFailover).await;
}
