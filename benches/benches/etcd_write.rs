//! Bulk write of 10k keys (5,000 units of an upstream and a route) into a
//! local etcd through the planner and the fenced writer, then an idle resync
//! that must write nothing. Prints the figures.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use apisix_operator::apisix::Ownership;
use apisix_operator::leader::{FenceKey, claim_fence};
use apisix_operator::sync::etcd_read::list_prefix;
use apisix_operator::sync::synthetic::synthetic_state;
use apisix_operator::sync::{EtcdWriter, MirrorState, PlanInput, PlanLimits, plan};
use apisix_operator::telemetry::SyncMetrics;
use apisix_operator_benches::{full_run, summary};
use apisix_operator_testenv::TestEnv;

const CLUSTER: &str = "bench";
const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() {
    let full = full_run();
    let (keys, runs) = if full { (10_000, 5) } else { (200, 1) };
    let env = TestEnv::start().await.expect("test environment");
    let server = env
        .private_etcd("bench-write", Default::default())
        .await
        .expect("etcd");
    let mut etcd = server.client().await.unwrap();
    let ownership = Ownership::new(CLUSTER).unwrap();
    let fence = FenceKey::new("/operator-bench", CLUSTER);
    let mut write_times = Vec::new();
    let mut idle_writes = 0;
    for run in 0..runs {
        let prefix = format!("/bench-{run}");
        let desired = synthetic_state(&prefix, CLUSTER, keys / 2, 1);
        let mirror = Arc::new(RwLock::new(MirrorState::from_list(Default::default(), 1)));
        let claim = claim_fence(&mut etcd, &fence, run as i64 + 1, "bench", TIMEOUT)
            .await
            .unwrap();
        let mut writer = EtcdWriter {
            client: etcd.clone(),
            timeout: TIMEOUT,
            metrics: SyncMetrics::default(),
        };
        let started = Instant::now();
        let planned = plan(PlanInput {
            desired: &desired,
            mirror: &mirror.read().unwrap(),
            ownership: &ownership,
            prefix: &prefix,
            limits: PlanLimits::default(),
            deletions_allowed: true,
        });
        let report = writer.execute(&planned, &claim, &mirror).await.unwrap();
        write_times.push(started.elapsed());
        assert_eq!(report.puts, keys);

        // An idle resync: a fresh read, a plan, nothing to write.
        let revision_before = etcd
            .get("/", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let fresh = list_prefix(&mut etcd, &prefix, TIMEOUT).await.unwrap();
        let idle = plan(PlanInput {
            desired: &desired,
            mirror: &fresh,
            ownership: &ownership,
            prefix: &prefix,
            limits: PlanLimits::default(),
            deletions_allowed: true,
        });
        idle_writes += idle.changes().count();
        let revision_after = etcd
            .get("/", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        assert_eq!(revision_before, revision_after);
        eprintln!(
            "run {run}: {keys} keys in {} transactions: {:?}",
            report.txns,
            write_times.last().unwrap()
        );
    }
    println!(
        "bulk write of {keys} keys (plan + fenced transactions): {}",
        summary(&mut write_times)
    );
    println!("keys written by idle resyncs: {idle_writes}");
    assert_eq!(idle_writes, 0);
}
