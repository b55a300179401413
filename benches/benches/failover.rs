//! Failover gaps with the default Lease settings (5s / 3s / 1s), three
//! replicas in one process, each with its own clients: the time from the
//! leader's crash (its tasks aborted, nothing released: what SIGKILL does)
//! or graceful stop (Lease released: what SIGTERM does) until a successor
//! has written a change to etcd. Then leadership flapping: leader changes
//! among three healthy replicas while the API server and etcd are loaded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apisix_operator::apisix::Ownership;
use apisix_operator::leader::{FenceKey, LeaseConfig};
use apisix_operator::replica::{Replica, ReplicaConfig, ReplicaInputs};
use apisix_operator::sync::synthetic::synthetic_state;
use apisix_operator::sync::{DesiredState, EngineConfig, PlanLimits};
use apisix_operator::telemetry::SyncMetrics;
use apisix_operator_benches::{full_run, summary};
use apisix_operator_testenv::TestEnv;
use etcd_client::GetOptions;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use tokio::sync::watch;

const CLUSTER: &str = "bench";

fn config(test: &str, identity: &str, lease: &LeaseConfig) -> ReplicaConfig {
    let mut lease = lease.clone();
    lease.name = format!("bench-{test}");
    lease.identity = identity.to_string();
    ReplicaConfig {
        lease,
        engine: EngineConfig {
            prefix: format!("/bench-{test}"),
            ownership: Ownership::new(CLUSTER).unwrap(),
            fence_key: FenceKey::new(&format!("/operator-bench/{test}"), CLUSTER),
            identity: identity.to_string(),
            limits: PlanLimits::default(),
            resync_interval: EngineConfig::DEFAULT_RESYNC_INTERVAL,
            etcd_timeout: Duration::from_secs(5),
        },
    }
}

async fn matches(etcd: &mut etcd_client::Client, prefix: &str, want: &DesiredState) -> bool {
    let response = etcd
        .get(format!("{prefix}/"), Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    response.kvs().len() == want.len()
        && response.kvs().iter().all(|kv| {
            let key = String::from_utf8_lossy(kv.key());
            let mut value: serde_json::Value = serde_json::from_slice(kv.value()).unwrap();
            let map = value.as_object_mut().unwrap();
            map.remove("create_time");
            map.remove("update_time");
            want.iter()
                .any(|(k, v)| k.as_str() == key && v.value.to_json() == value)
        })
}

async fn wait_for(etcd: &mut etcd_client::Client, prefix: &str, want: &DesiredState) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !matches(etcd, prefix, want).await {
        assert!(Instant::now() < deadline, "etcd never converged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Group {
    replicas: Vec<Option<Replica>>,
    metrics: Vec<SyncMetrics>,
    desired: watch::Sender<Arc<DesiredState>>,
    prefix: String,
}

async fn start_group(env: &TestEnv, test: &str, lease: &LeaseConfig) -> Group {
    let prefix = format!("/bench-{test}");
    let (desired, desired_rx) = watch::channel(Arc::new(synthetic_state(&prefix, CLUSTER, 5, 1)));
    let (_ready, ready_rx) = watch::channel(true);
    let mut replicas = Vec::new();
    let mut metrics = Vec::new();
    for name in ["a", "b", "c"] {
        let m = SyncMetrics::default();
        replicas.push(Some(Replica::start(
            config(test, name, lease),
            env.kube_client().await.unwrap(),
            env.apisix_etcd_client().await.unwrap(),
            ReplicaInputs::new(desired_rx.clone(), ready_rx.clone()),
            m.clone(),
        )));
        metrics.push(m);
    }
    Group {
        replicas,
        metrics,
        desired,
        prefix,
    }
}

fn leader(group: &Group) -> Option<usize> {
    group
        .replicas
        .iter()
        .position(|r| r.as_ref().is_some_and(|r| r.status.borrow().leading))
}

async fn failover_gap(env: &TestEnv, test: &str, lease: &LeaseConfig, crash: bool) -> Duration {
    let mut group = start_group(env, test, lease).await;
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    wait_for(&mut etcd, &group.prefix, &group.desired.borrow().clone()).await;
    let first = loop {
        if let Some(first) = leader(&group) {
            break first;
        }
        let states: Vec<_> = group
            .replicas
            .iter()
            .flatten()
            .map(|r| r.status.borrow().clone())
            .collect();
        eprintln!("no leader yet: {states:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let replica = group.replicas[first].take().unwrap();
    let started = Instant::now();
    if crash {
        replica.abort();
    } else {
        replica.shutdown().await;
    }
    let next = Arc::new(synthetic_state(&group.prefix, CLUSTER, 6, 2));
    group.desired.send_replace(next.clone());
    wait_for(&mut etcd, &group.prefix, &next).await;
    let gap = started.elapsed();
    for replica in group.replicas.into_iter().flatten() {
        replica.shutdown().await;
    }
    gap
}

/// Loads the API server and etcd from `workers` tasks until `until`.
async fn load(env: &TestEnv, workers: usize, until: Instant) -> u64 {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = env.kube_client().await.unwrap();
        let mut etcd = env.apisix_etcd_client().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let api: Api<ConfigMap> = Api::namespaced(client, "default");
            let mut ops = 0u64;
            let mut i = 0u64;
            while Instant::now() < until {
                let name = format!("load-{w}-{i}");
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    data: Some([("k".to_string(), "x".repeat(4096))].into()),
                    ..Default::default()
                };
                let _ = api.create(&PostParams::default(), &cm).await;
                let _ = api.list(&Default::default()).await;
                let _ = api.delete(&name, &DeleteParams::default()).await;
                let _ = etcd
                    .put(format!("/load/{w}/{i}"), "x".repeat(4096), None)
                    .await;
                ops += 4;
                i += 1;
            }
            ops
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap_or(0);
    }
    total
}

#[tokio::main]
async fn main() {
    let full = full_run();
    let env = TestEnv::start().await.expect("test environment");
    let (lease, runs, flap_for) = if full {
        (
            LeaseConfig::new("unused", "default", "unused"),
            5,
            Duration::from_secs(60),
        )
    } else {
        let mut short = LeaseConfig::new("unused", "default", "unused");
        short.lease_duration = Duration::from_secs(2);
        short.renew_deadline = Duration::from_millis(1500);
        short.retry_period = Duration::from_millis(500);
        (short, 1, Duration::from_secs(3))
    };
    println!(
        "lease {:?}, renew deadline {:?}, retry period {:?}",
        lease.lease_duration, lease.renew_deadline, lease.retry_period
    );
    for (crash, label) in [
        (true, "crash (SIGKILL)"),
        (false, "graceful stop (SIGTERM)"),
    ] {
        let mut gaps = Vec::new();
        for run in 0..runs {
            let test = format!("{}-{run}", if crash { "kill" } else { "term" });
            gaps.push(failover_gap(&env, &test, &lease, crash).await);
        }
        println!("failover gap after {label}: {}", summary(&mut gaps));
    }

    let group = start_group(&env, "flap", &lease).await;
    let mut etcd = env.apisix_etcd_client().await.unwrap();
    wait_for(&mut etcd, &group.prefix, &group.desired.borrow().clone()).await;
    let before: u64 = group
        .metrics
        .iter()
        .map(|m| m.leader_transitions.get())
        .sum();
    let ops = load(&env, 8, Instant::now() + flap_for).await;
    let after: u64 = group
        .metrics
        .iter()
        .map(|m| m.leader_transitions.get())
        .sum();
    println!(
        "leadership changes among 3 healthy replicas during {flap_for:?} of load ({ops} API and etcd operations from 8 workers): {}",
        after - before
    );
    for replica in group.replicas.into_iter().flatten() {
        replica.shutdown().await;
    }
}
