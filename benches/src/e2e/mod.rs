//! The end-to-end benchmark: the real `apisix-operator` binary, the real
//! API server and the APISIX etcd, at a given scale. Scenarios (each
//! reported, none asserted beyond correctness):
//!
//! - (a) cold start: objects exist, one replica starts: time until etcd
//!   holds every key, and until `/readyz`;
//! - (b) change latency, right after the cold sync and once settled: single
//!   changes of four kinds, from the API write's acknowledgement to the etcd
//!   commit of every key it rewrites, as seen by a watch;
//! - (c) endpoint churn: EndpointSlice updates at a steady rate: the index
//!   queue depth, keys and transactions per update, time to converge after;
//! - (d) failover with three replicas: SIGKILL, then SIGTERM, of the leader
//!   under a steady change load: kill → the successor's first commit;
//! - (e) memory of the leader and of a follower;
//! - (f) an idle full resync: its duration, and that it writes nothing.

pub mod probe;
pub mod report;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apisix_operator::api::{ApisixRoute, all_crds};
use apisix_operator::apisix::Ownership;
use apisix_operator::translate::TranslateConfig;
use apisix_operator_testenv::{TestEnv, apisix_schema, eventually};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use probe::{Changes, Memory, Operator, Percentiles};
use workload::{Change, Scale, Workload};

pub const PREFIX: &str = "/bench-e2e";
pub const CLUSTER: &str = "bench";
const FENCE_PREFIX: &str = "/fence-bench-e2e";
const FIELD_MANAGER: &str = "bench";

/// How long each part of a run takes.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub changes: usize,
    #[serde(with = "seconds")]
    pub settle: Duration,
    #[serde(with = "seconds")]
    pub churn: Duration,
    pub churn_per_second: u32,
    /// Changes in the burst scenario.
    pub burst: usize,
    pub failover: bool,
    #[serde(with = "seconds")]
    pub resync_interval: Duration,
    #[serde(skip)]
    pub binary: PathBuf,
}

mod seconds {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Everything measured at one scale.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScaleReport {
    pub routes: usize,
    pub ingresses: usize,
    pub keys: usize,
    pub create_seconds: f64,
    pub cold_keys_seconds: f64,
    pub cold_ready_seconds: f64,
    pub leader_after_sync: Memory,
    pub changes_after_sync: BTreeMap<String, Percentiles>,
    pub changes_settled: BTreeMap<String, Percentiles>,
    pub churn: Option<ChurnReport>,
    pub drift: Option<DriftReport>,
    pub burst: Option<BurstReport>,
    pub failover: Option<FailoverReport>,
    pub idle_resync: Option<ResyncReport>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnReport {
    pub updates: usize,
    pub per_second: f64,
    pub max_queue_depth: f64,
    pub keys_written_per_update: f64,
    pub transactions_per_update: f64,
    pub converged_after_seconds: f64,
}

/// A burst of EndpointSlice changes made at once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BurstReport {
    pub changes: usize,
    pub keys_written: f64,
    pub transactions: f64,
    pub converged_after_seconds: f64,
}

/// Foreign writes to owned keys: from the write to the operator's repair.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    pub overwritten: Percentiles,
    pub deleted: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FailoverReport {
    pub sigkill_gap_ms: f64,
    pub sigterm_gap_ms: f64,
    pub follower: Memory,
    pub leader: Memory,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ResyncReport {
    pub duration_seconds: f64,
    pub keys_written: f64,
}

fn translate_config() -> TranslateConfig {
    TranslateConfig::defaults(
        PREFIX,
        Ownership::new(CLUSTER).expect("a valid cluster name"),
    )
}

/// The operator binary of the profile this benchmark was built in, or
/// `$E2E_OPERATOR_BINARY` (to measure another build side by side).
pub fn operator_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("E2E_OPERATOR_BINARY") {
        return PathBuf::from(path);
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(profile)
        .join("apisix-operator");
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build {}-p apisix-operator`; `make bench` does)",
        path.display(),
        if profile == "release" {
            "--release "
        } else {
            ""
        }
    );
    path
}

/// Runs every scenario at `scale` on a fresh environment.
pub async fn run(scale: Scale, settings: &Settings) -> ScaleReport {
    let env = TestEnv::start().await.expect("the test environment starts");
    let client = env.kube_client().await.expect("a client");
    let mut workload = Workload::new(scale, translate_config());
    let mut report = ScaleReport {
        routes: scale.routes,
        ingresses: scale.ingresses,
        keys: workload.index.desired().len(),
        ..Default::default()
    };
    let started = Instant::now();
    create_objects(&client, &workload).await;
    report.create_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "[e2e {}] {} objects' keys to expect; created in {:.1}s",
        scale.routes, report.keys, report.create_seconds
    );

    let common = operator_args(&env, settings);
    let started = Instant::now();
    let mut leader = Operator::start(&env, &settings.binary, "a", &common).await;
    let mut etcd = env.apisix_etcd_client().await.expect("an etcd client");
    let (keys_at, ready_at) = cold_start(&mut leader, &mut etcd, report.keys).await;
    report.cold_keys_seconds = (keys_at - started).as_secs_f64();
    report.cold_ready_seconds = (ready_at - started).as_secs_f64();
    assert_converged(&mut etcd, &workload).await;
    report.leader_after_sync = leader.memory();
    eprintln!(
        "[e2e {}] cold start: keys {:.2}s, ready {:.2}s, rss {:.0} MiB",
        scale.routes,
        report.cold_keys_seconds,
        report.cold_ready_seconds,
        report.leader_after_sync.rss_mib
    );
    if cold_only() {
        keep_log(&leader, scale.routes);
        return report;
    }

    let mut changes = Changes::watch(etcd.clone(), PREFIX).await;
    report.changes_after_sync =
        change_latencies(&client, &mut workload, &mut changes, settings.changes, 0).await;
    tokio::time::sleep(settings.settle).await;
    report.changes_settled = change_latencies(
        &client,
        &mut workload,
        &mut changes,
        settings.changes,
        settings.changes,
    )
    .await;
    eprintln!(
        "[e2e {}] change latency (all) after sync {:?}, settled {:?}",
        scale.routes,
        report.changes_after_sync.get("all"),
        report.changes_settled.get("all")
    );
    report.drift = Some(drift(&mut etcd, &workload, settings.changes.min(100)).await);
    eprintln!("[e2e {}] drift {:?}", scale.routes, report.drift);
    report.burst = Some(burst(&client, &mut workload, &leader, &mut etcd, settings.burst).await);
    eprintln!("[e2e {}] burst {:?}", scale.routes, report.burst);
    if settings.churn > Duration::ZERO {
        report.churn = Some(churn(&client, &mut workload, &leader, &mut etcd, settings).await);
        eprintln!("[e2e {}] churn {:?}", scale.routes, report.churn);
    }
    if settings.failover {
        let (failover, resync) =
            failover(&env, &client, &mut workload, leader, &common, settings).await;
        report.failover = Some(failover);
        report.idle_resync = resync;
        eprintln!(
            "[e2e {}] failover {:?}, resync {:?}",
            scale.routes, report.failover, report.idle_resync
        );
    }
    report
}

fn operator_args(env: &TestEnv, settings: &Settings) -> Vec<String> {
    vec![
        "run".into(),
        format!("--etcd-endpoints={}", env.apisix_etcd.client_url()),
        format!("--prefix={PREFIX}"),
        format!("--cluster={CLUSTER}"),
        format!("--fence-prefix={FENCE_PREFIX}"),
        "--lease-name=bench-e2e".into(),
        "--lease-namespace=default".into(),
        format!("--resync-interval={}s", settings.resync_interval.as_secs()),
        format!(
            "--log-level={}",
            std::env::var("E2E_LOG_LEVEL").unwrap_or_else(|_| "warn".into())
        ),
    ]
}

/// `E2E_COLD_ONLY=1` stops after the cold start, for profiling it (with a
/// wrapper script as `E2E_OPERATOR_BINARY`); the leader's log is then kept
/// as `leader-<routes>.log` in the results directory.
fn cold_only() -> bool {
    std::env::var_os("E2E_COLD_ONLY").is_some()
}

fn keep_log(operator: &Operator, routes: usize) {
    let dir = results_dir();
    let kept = dir.join(format!("leader-{routes}.log"));
    let copied = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(operator.process.log_path(), &kept));
    match copied {
        Ok(_) => eprintln!("[e2e {routes}] leader log kept as {}", kept.display()),
        Err(err) => eprintln!("[e2e {routes}] could not keep the leader log: {err}"),
    }
}

/// `E2E_RESULTS`, else `benches/results`.
pub fn results_dir() -> PathBuf {
    std::env::var_os("E2E_RESULTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"),
        PathBuf::from,
    )
}

/// Creates `items` concurrently (a bounded number in flight).
async fn create_all<K>(api_for: impl Fn(&K) -> Api<K>, items: Vec<K>)
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    futures::stream::iter(items)
        .map(|item| {
            let api = api_for(&item);
            async move {
                loop {
                    match api.create(&PostParams::default(), &item).await {
                        Ok(_) => return,
                        Err(kube::Error::Api(status)) if status.is_already_exists() => return,
                        // A CR right after its CRD: retry until it is served.
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        })
        .buffer_unordered(48)
        .collect::<Vec<()>>()
        .await;
}

fn namespaced<K>(client: &kube::Client) -> impl Fn(&K) -> Api<K> + '_
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    move |item: &K| {
        Api::namespaced(
            client.clone(),
            item.meta().namespace.as_deref().unwrap_or("default"),
        )
    }
}

async fn create_objects(client: &kube::Client, workload: &Workload) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in all_crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("a CRD");
    }
    let namespaces: Vec<Namespace> = (0..workload::NAMESPACES)
        .map(|n| {
            serde_json::from_value(
                serde_json::json!({"metadata": {"name": workload::namespace(n)}}),
            )
            .expect("a Namespace")
        })
        .collect();
    create_all(|_: &Namespace| Api::all(client.clone()), namespaces).await;
    create_all(
        |_: &IngressClass| Api::all(client.clone()),
        vec![workload::class()],
    )
    .await;
    let scale = workload.scale;
    create_all(
        namespaced::<Service>(client),
        (0..scale.routes).map(workload::service).collect(),
    )
    .await;
    create_all(
        namespaced::<EndpointSlice>(client),
        (0..scale.routes)
            .map(|i| workload::slice(i, 3, 0))
            .collect(),
    )
    .await;
    let secrets: Vec<Secret> = (0..scale.ingresses)
        .filter(|j| workload::has_tls(*j))
        .map(|j| workload.certificates.secret(j, 0))
        .collect();
    create_all(namespaced::<Secret>(client), secrets).await;
    create_all(
        namespaced::<Ingress>(client),
        (0..scale.ingresses)
            .map(|j| workload::ingress(j, scale, false))
            .collect(),
    )
    .await;
    create_all(
        namespaced::<ApisixRoute>(client),
        (0..scale.routes).map(|i| workload::route(i, 1)).collect(),
    )
    .await;
}

/// When etcd first held `keys` keys, and when the replica was first ready.
async fn cold_start(
    operator: &mut Operator,
    etcd: &mut etcd_client::Client,
    keys: usize,
) -> (Instant, Instant) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    let (mut keys_at, mut ready_at) = (None, None);
    while keys_at.is_none() || ready_at.is_none() {
        assert!(Instant::now() < deadline, "the cold start did not finish");
        if let Some(status) = operator.process.exited() {
            panic!(
                "the operator exited ({status}):\n{}",
                operator.process.log_tail()
            );
        }
        if keys_at.is_none() && probe::key_count(etcd, PREFIX).await >= keys {
            keys_at = Some(Instant::now());
        }
        if ready_at.is_none() && operator.ready() {
            ready_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (keys_at.expect("set"), ready_at.expect("set"))
}

/// etcd holds exactly the workload's translation (or, after five minutes,
/// a panic showing how they differ).
async fn assert_converged(etcd: &mut etcd_client::Client, workload: &Workload) {
    let want = apisix_operator::cli::translate::dump(&workload.index);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let have: BTreeMap<String, serde_json::Value> = apisix_schema::stored_objects(etcd, PREFIX)
            .await
            .expect("reading etcd")
            .into_iter()
            .map(|(key, (value, _))| (key, value))
            .collect();
        if have == want {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "etcd never equalled the translation: {}",
                difference(&have, &want)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How two dumps differ, briefly.
fn difference(
    have: &BTreeMap<String, serde_json::Value>,
    want: &BTreeMap<String, serde_json::Value>,
) -> String {
    let missing: Vec<&String> = want.keys().filter(|k| !have.contains_key(*k)).collect();
    let extra: Vec<&String> = have.keys().filter(|k| !want.contains_key(*k)).collect();
    let different: Vec<&String> = want
        .iter()
        .filter(|(k, v)| have.get(*k).is_some_and(|h| h != *v))
        .map(|(k, _)| k)
        .collect();
    let sample = different.first().map_or(String::new(), |k| {
        format!("; e.g. {k}: etcd {} / wanted {}", have[*k], want[*k])
    });
    format!(
        "{} missing (e.g. {:?}), {} extra (e.g. {:?}), {} different{sample}",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first(),
        different.len()
    )
}

async fn apply<K>(api: Api<K>, object: &K) -> kube::Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
}

/// Makes `change` through the API server; returns once it is acknowledged.
async fn make(client: &kube::Client, workload: &Workload, change: &Change) {
    let scale = workload.scale;
    let result = match change {
        Change::RoutePath { route, version } => {
            let object = workload::route(*route, *version);
            apply(namespaced::<ApisixRoute>(client)(&object), &object)
                .await
                .map(|_| ())
        }
        Change::IngressAnnotation { ingress, websocket } => {
            let object = workload::ingress(*ingress, scale, *websocket);
            apply(namespaced::<Ingress>(client)(&object), &object)
                .await
                .map(|_| ())
        }
        Change::SliceScale { service, endpoints } => {
            let object = workload::slice(*service, *endpoints, 0);
            apply(namespaced::<EndpointSlice>(client)(&object), &object)
                .await
                .map(|_| ())
        }
        Change::SecretRotation { ingress, rotation } => {
            let object = workload.certificates.secret(*ingress, *rotation);
            apply(namespaced::<Secret>(client)(&object), &object)
                .await
                .map(|_| ())
        }
    };
    result.expect("the API server accepts the change");
}

/// `count` single changes, one after the other: acknowledgement → every
/// key it rewrites seen in etcd.
async fn change_latencies(
    client: &kube::Client,
    workload: &mut Workload,
    changes: &mut Changes,
    count: usize,
    offset: usize,
) -> BTreeMap<String, Percentiles> {
    let mut samples = Vec::with_capacity(count);
    for n in offset..offset + count {
        let mut change = Change::nth(n, workload.scale);
        let mut expected = workload.expect(&change);
        if expected.is_empty() {
            change = change.flipped();
            expected = workload.expect(&change);
        }
        assert!(!expected.is_empty(), "{change:?} rewrites no key");
        changes.drain();
        make(client, workload, &change).await;
        let acknowledged = Instant::now();
        match changes.all_of(&expected, Duration::from_secs(60)).await {
            Some(seen) => {
                samples.push((change.kind(), seen.saturating_duration_since(acknowledged)))
            }
            None => panic!("{change:?}: its keys never reached etcd"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    probe::by_kind(&samples)
}

/// `count` EndpointSlice changes sent at once: how many transactions the
/// operator needed, and how long until etcd held the result.
async fn burst(
    client: &kube::Client,
    workload: &mut Workload,
    leader: &Operator,
    etcd: &mut etcd_client::Client,
    count: usize,
) -> BurstReport {
    let committed = "etcd_transactions_total{result=\"committed\"}";
    let txns_before = leader.metric(committed).unwrap_or(0.0);
    let written_before = leader.metric("etcd_keys_written_total").unwrap_or(0.0);
    // Each change rewrites its slice (flipped when it already holds that
    // many endpoints), so the burst is `count` real changes.
    let changes: Vec<Change> = (0..count)
        .map(|n| {
            let change = Change::SliceScale {
                service: n % workload.scale.routes,
                endpoints: 4,
            };
            if workload.expect(&change).is_empty() {
                let flipped = change.flipped();
                workload.expect(&flipped);
                flipped
            } else {
                change
            }
        })
        .collect();
    let started = Instant::now();
    futures::stream::iter(changes)
        .map(|change| async move {
            if let Change::SliceScale { service, endpoints } = change {
                let object = workload::slice(service, endpoints, 0);
                let _ = apply(namespaced::<EndpointSlice>(client)(&object), &object).await;
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    assert_converged(etcd, workload).await;
    BurstReport {
        changes: count,
        keys_written: leader.metric("etcd_keys_written_total").unwrap_or(0.0) - written_before,
        transactions: leader.metric(committed).unwrap_or(0.0) - txns_before,
        converged_after_seconds: started.elapsed().as_secs_f64(),
    }
}

/// Someone else overwrites or deletes owned keys (in turn): how long until
/// the operator has put each back, seen by a watch.
async fn drift(etcd: &mut etcd_client::Client, workload: &Workload, count: usize) -> DriftReport {
    let keys: Vec<String> = workload
        .index
        .desired()
        .iter()
        .map(|(key, _)| key.as_str().to_string())
        .collect();
    let mut changes = Changes::watch(etcd.clone(), PREFIX).await;
    let (mut overwritten, mut deleted) = (Vec::new(), Vec::new());
    for n in 0..count {
        let key = &keys[(n * 7919) % keys.len()];
        changes.drain();
        let overwrite = n % 2 == 0;
        let started = Instant::now();
        if overwrite {
            etcd.put(key.as_str(), r#"{"hijacked":true}"#, None)
                .await
                .expect("a foreign put");
        } else {
            etcd.delete(key.as_str(), None)
                .await
                .expect("a foreign delete");
        }
        let only: std::collections::BTreeSet<String> = [key.clone()].into();
        // First our own write, then the operator's repair.
        changes
            .all_of(&only, Duration::from_secs(30))
            .await
            .expect("our write");
        let repaired = changes
            .all_of(&only, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("{key} was never repaired"));
        let took = repaired.saturating_duration_since(started);
        if overwrite {
            overwritten.push(took);
        } else {
            deleted.push(took);
        }
    }
    assert_converged(etcd, workload).await;
    DriftReport {
        overwritten: Percentiles::of(&overwritten),
        deleted: Percentiles::of(&deleted),
    }
}

/// EndpointSlice updates at a steady rate for the churn duration.
async fn churn(
    client: &kube::Client,
    workload: &mut Workload,
    leader: &Operator,
    etcd: &mut etcd_client::Client,
    settings: &Settings,
) -> ChurnReport {
    let written_before = leader.metric("etcd_keys_written_total").unwrap_or(0.0);
    let txns_before = leader
        .metric("etcd_transactions_total{result=\"committed\"}")
        .unwrap_or(0.0);
    let interval = Duration::from_secs(1) / settings.churn_per_second.max(1);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(32));
    let started = Instant::now();
    let mut updates = 0usize;
    let mut max_depth = 0f64;
    let mut last_sample = Instant::now();
    while started.elapsed() < settings.churn {
        ticks.tick().await;
        let service = (updates * 7919) % workload.scale.routes;
        let endpoints = 3 + (updates / workload.scale.routes.max(1) + 1) % 2;
        let change = Change::SliceScale { service, endpoints };
        workload.expect(&change);
        let object = workload::slice(service, endpoints, 0);
        let api = namespaced::<EndpointSlice>(client)(&object);
        let permit = in_flight.clone().acquire_owned().await.expect("open");
        tokio::spawn(async move {
            let _ = apply(api, &object).await;
            drop(permit);
        });
        updates += 1;
        if last_sample.elapsed() > Duration::from_millis(500) {
            last_sample = Instant::now();
            max_depth = max_depth.max(leader.metric("index_queue_depth").unwrap_or(0.0));
        }
    }
    let elapsed = started.elapsed();
    let _ = in_flight.acquire_many(32).await;
    let done = Instant::now();
    assert_converged(etcd, workload).await;
    let converged_after = done.elapsed().as_secs_f64();
    let written = leader.metric("etcd_keys_written_total").unwrap_or(0.0) - written_before;
    let txns = leader
        .metric("etcd_transactions_total{result=\"committed\"}")
        .unwrap_or(0.0)
        - txns_before;
    ChurnReport {
        updates,
        per_second: updates as f64 / elapsed.as_secs_f64(),
        max_queue_depth: max_depth,
        keys_written_per_update: written / updates.max(1) as f64,
        transactions_per_update: txns / updates.max(1) as f64,
        converged_after_seconds: converged_after,
    }
}

/// Three replicas; the leader is SIGKILLed, then its successor SIGTERMed,
/// while a change is made every 50 ms: each time, kill → the successor's
/// first commit under the prefix after it claimed the fence.
async fn failover(
    env: &TestEnv,
    client: &kube::Client,
    workload: &mut Workload,
    first: Operator,
    common: &[String],
    settings: &Settings,
) -> (FailoverReport, Option<ResyncReport>) {
    let mut replicas = vec![
        first,
        Operator::start(env, &settings.binary, "b", common).await,
        Operator::start(env, &settings.binary, "c", common).await,
    ];
    eventually(
        "the followers to be ready",
        Duration::from_secs(600),
        || async { replicas.iter().all(Operator::ready).then_some(()) },
    )
    .await;
    let mut report = FailoverReport {
        follower: replicas[1].memory(),
        leader: replicas[0].memory(),
        ..Default::default()
    };
    let etcd = env.apisix_etcd_client().await.expect("an etcd client");
    let load = ChangeLoad::start(client.clone(), workload.scale);
    for signal in [libc::SIGKILL, libc::SIGTERM] {
        let leader = eventually("a leader", Duration::from_secs(60), || async {
            replicas.iter().position(Operator::leading)
        })
        .await;
        let mut fence = Changes::watch(etcd.clone(), FENCE_PREFIX).await;
        let mut commits = Changes::watch(etcd.clone(), PREFIX).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let killed = Instant::now();
        replicas[leader]
            .process
            .signal(signal)
            .expect("the signal is sent");
        let claimed = fence
            .next(Duration::from_secs(60))
            .await
            .expect("a new fence claim");
        commits.drain();
        let first = loop {
            let at = commits
                .next(Duration::from_secs(60))
                .await
                .expect("a commit after failover");
            if at >= claimed {
                break at;
            }
        };
        let gap = (first - killed).as_secs_f64() * 1000.0;
        if signal == libc::SIGKILL {
            report.sigkill_gap_ms = gap;
        } else {
            report.sigterm_gap_ms = gap;
        }
        replicas.remove(leader);
    }
    let made = load.stop().await;
    for change in made {
        workload.expect(&change);
    }
    let mut etcd_mut = etcd.clone();
    assert_converged(&mut etcd_mut, workload).await;
    let resync = idle_resync(&replicas[0], etcd, settings).await;
    (report, resync)
}

/// Waits for the next periodic full resync of an idle cluster: how long it
/// took, and what it wrote.
async fn idle_resync(
    leader: &Operator,
    etcd: etcd_client::Client,
    settings: &Settings,
) -> Option<ResyncReport> {
    let before = leader.metric("resyncs_total")?;
    let written = leader.metric("etcd_keys_written_total")?;
    let mut changes = Changes::watch(etcd, PREFIX).await;
    let limit = settings.resync_interval * 2 + Duration::from_secs(30);
    eventually("an idle resync", limit, || async {
        (leader.metric("resyncs_total")? > before).then_some(())
    })
    .await;
    let duration = leader.metric("last_resync_duration_seconds")?;
    let puts = changes.drain();
    Some(ResyncReport {
        duration_seconds: duration,
        keys_written: (leader.metric("etcd_keys_written_total")? - written).max(puts as f64),
    })
}

/// A change every 50 ms in the background (route paths, in turn).
struct ChangeLoad {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Change>>,
}

impl ChangeLoad {
    fn start(client: kube::Client, scale: Scale) -> ChangeLoad {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut made = Vec::new();
            let mut n = 1_000_000usize;
            loop {
                if stopped.try_recv().is_ok() {
                    return made;
                }
                n += 1;
                let change = Change::RoutePath {
                    route: n % scale.routes,
                    version: n,
                };
                if let Change::RoutePath { route, version } = &change {
                    let object = workload::route(*route, *version);
                    if apply(namespaced::<ApisixRoute>(&client)(&object), &object)
                        .await
                        .is_ok()
                    {
                        made.push(change);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        ChangeLoad { stop, task }
    }

    async fn stop(self) -> Vec<Change> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}
