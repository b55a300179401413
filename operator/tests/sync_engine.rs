//! The sync engine against a real kube-apiserver and etcd: leader election
//! and failover, drift repair, ownership, large plans and idle resyncs.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apisix_operator::replica::{Replica, ReplicaInputs};
use apisix_operator::telemetry::SyncMetrics;
use apisix_operator_testenv::{TestEnv, apisix_schema};
use common::*;
use tokio::sync::watch;

const GENEROUS: Duration = Duration::from_secs(60);

async fn env() -> &'static TestEnv {
    TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"))
}

async fn start(
    test: &str,
    identity: &str,
    desired: &watch::Receiver<Arc<apisix_operator::sync::DesiredState>>,
    ready: &watch::Receiver<bool>,
) -> Replica {
    start_with(replica_config(test, identity), desired, ready).await
}

async fn start_with(
    config: apisix_operator::replica::ReplicaConfig,
    desired: &watch::Receiver<Arc<apisix_operator::sync::DesiredState>>,
    ready: &watch::Receiver<bool>,
) -> Replica {
    let etcd = env().await.apisix_etcd_client().await.unwrap();
    start_on(config, etcd, desired, ready).await
}

async fn start_on(
    config: apisix_operator::replica::ReplicaConfig,
    etcd: etcd_client::Client,
    desired: &watch::Receiver<Arc<apisix_operator::sync::DesiredState>>,
    ready: &watch::Receiver<bool>,
) -> Replica {
    Replica::start(
        config,
        env().await.operator_client().await.unwrap(),
        etcd,
        ReplicaInputs::new(desired.clone(), ready.clone()),
        SyncMetrics::default(),
    )
}

fn leaders(replicas: &[Option<Replica>]) -> Vec<usize> {
    replicas
        .iter()
        .enumerate()
        .filter(|(_, r)| r.as_ref().is_some_and(|r| r.status.borrow().leading))
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn one_leader_writes_and_a_successor_takes_over_after_a_crash_and_after_a_release() {
    const TEST: &str = "failover";
    let prefix = prefix(TEST);
    let mut etcd = env().await.apisix_etcd_client().await.unwrap();
    let (desired_tx, desired) = shared(synthetic(&prefix, 3, 1));
    let (ready_tx, ready) = watch::channel(true);
    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b", "replica-c"] {
        replicas.push(Some(start(TEST, name, &desired, &ready).await));
    }
    // A closed input is a final value, not a reason to stop leading.
    drop(ready_tx);

    let want = desired.borrow().clone();
    eventually(
        "the first leader to write the desired state",
        GENEROUS,
        || {
            let want = want.clone();
            let mut etcd = etcd.clone();
            let prefix = prefix.clone();
            async move { etcd_matches(&mut etcd, &prefix, &want).await.then_some(()) }
        },
    )
    .await;
    // Exactly one leader, the same one with the same fence token, sampled
    // over a few renewals.
    let token_of = |replicas: &[Option<Replica>]| {
        let leader = leaders(replicas);
        assert_eq!(leader.len(), 1, "leaders: {leader:?}");
        let status = replicas[leader[0]]
            .as_ref()
            .unwrap()
            .status
            .borrow()
            .clone();
        (leader[0], status.fence.map(|f| f.token))
    };
    let initial = token_of(&replicas);
    for _ in 0..30 {
        assert_eq!(token_of(&replicas), initial);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Crash the leader: nothing is released, the Lease must expire.
    let first = leaders(&replicas)[0];
    replicas[first].take().unwrap().abort();
    let crashed_at = Instant::now();
    let mut next = synthetic(&prefix, 4, 1);
    desired_tx.send_replace(Arc::new(next.clone()));
    eventually(
        "a successor to write the change after the crash",
        GENEROUS,
        || {
            let next = next.clone();
            let mut etcd = etcd.clone();
            let prefix = prefix.clone();
            async move { etcd_matches(&mut etcd, &prefix, &next).await.then_some(()) }
        },
    )
    .await;
    eprintln!("takeover after crash: {:?}", crashed_at.elapsed());
    let second = leaders(&replicas);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0], first);

    // Graceful stop of the new leader releases the Lease.
    let second = second[0];
    let released_at = Instant::now();
    replicas[second].take().unwrap().shutdown().await;
    next = synthetic(&prefix, 5, 2);
    desired_tx.send_replace(Arc::new(next.clone()));
    eventually(
        "the last replica to write the change after the release",
        GENEROUS,
        || {
            let next = next.clone();
            let mut etcd = etcd.clone();
            let prefix = prefix.clone();
            async move { etcd_matches(&mut etcd, &prefix, &next).await.then_some(()) }
        },
    )
    .await;
    eprintln!("takeover after release: {:?}", released_at.elapsed());
    let third = leaders(&replicas);
    assert_eq!(third.len(), 1);
    assert!(third[0] != first && third[0] != second);

    apisix_schema::assert_prefix_valid(&mut etcd, &prefix).await;
    for replica in replicas.into_iter().flatten() {
        replica.shutdown().await;
    }
}

#[tokio::test]
async fn drift_is_repaired_orphans_wait_for_ready_caches_and_foreign_keys_are_untouched() {
    const TEST: &str = "drift";
    let prefix = prefix(TEST);
    let mut etcd = env().await.apisix_etcd_client().await.unwrap();
    // Keys that are not ours: the Admin API's, and another cluster's.
    let foreign_admin = format!("{prefix}/routes/1");
    let foreign_cluster = format!("{prefix}/routes/ao_other_r1");
    let orphan = format!("{prefix}/routes/ao_{CLUSTER}_orphan");
    etcd.put(
        foreign_admin.as_str(),
        r#"{"id":"1","uri":"/admin","upstream_id":"ao_it_u0"}"#,
        None,
    )
    .await
    .unwrap();
    etcd.put(
        foreign_cluster.as_str(),
        r#"{"uri":"/other","upstream_id":"ao_it_u0"}"#,
        None,
    )
    .await
    .unwrap();
    etcd.put(
        orphan.as_str(),
        r#"{"uri":"/orphan","upstream_id":"ao_it_u0"}"#,
        None,
    )
    .await
    .unwrap();
    let before = etcd_state(&mut etcd, &prefix).await;

    let (_desired_tx, desired) = shared(synthetic(&prefix, 3, 1));
    let (ready_tx, ready) = watch::channel(false);
    let mut config = replica_config(TEST, "drift-a");
    config.engine.resync_interval = Duration::from_millis(500);
    let replica = start_with(config, &desired, &ready).await;

    let want = desired.borrow().clone();
    eventually("the desired keys to be written", GENEROUS, || {
        let mut etcd = etcd.clone();
        let prefix = prefix.clone();
        let want = want.clone();
        async move {
            let state = etcd_state(&mut etcd, &prefix).await;
            want.iter()
                .all(|(k, v)| state.get(k.as_str()).map(|s| &s.0) == Some(&v.value.to_json()))
                .then_some(())
        }
    })
    .await;
    // Caches not ready: the orphan must survive several resyncs.
    let resyncs = replica.status.borrow().resyncs;
    eventually("two more resyncs", GENEROUS, || {
        let done = replica.status.borrow().resyncs >= resyncs + 2;
        async move { done.then_some(()) }
    })
    .await;
    assert!(etcd_state(&mut etcd, &prefix).await.contains_key(&orphan));

    ready_tx.send_replace(true);
    eventually("the orphan to be deleted once caches are ready", GENEROUS, || {
        let mut etcd = etcd.clone();
        let prefix = prefix.clone();
        let orphan = orphan.clone();
        async move { (!etcd_state(&mut etcd, &prefix).await.contains_key(&orphan)).then_some(()) }
    })
    .await;

    // Someone edits one of our routes and deletes one of our upstreams.
    let route0 = format!("{prefix}/routes/ao_{CLUSTER}_r0");
    let upstream1 = format!("{prefix}/upstreams/ao_{CLUSTER}_u1");
    etcd.put(
        route0.as_str(),
        r#"{"uri":"/hijacked","upstream_id":"ao_it_u0"}"#,
        None,
    )
    .await
    .unwrap();
    etcd.delete(upstream1.as_str(), None).await.unwrap();
    eventually("the next resync to repair the drift", GENEROUS, || {
        let mut etcd = etcd.clone();
        let prefix = prefix.clone();
        let want = want.clone();
        async move { etcd_matches(&mut etcd, &prefix, &want).await.then_some(()) }
    })
    .await;

    let after = etcd_state(&mut etcd, &prefix).await;
    for foreign in [&foreign_admin, &foreign_cluster] {
        assert_eq!(
            after.get(foreign),
            before.get(foreign),
            "{foreign} was touched"
        );
    }
    replica.shutdown().await;
}

#[tokio::test]
async fn five_thousand_keys_are_written_and_an_idle_resync_writes_nothing() {
    const TEST: &str = "bulk";
    let prefix = prefix(TEST);
    // An etcd of its own: no other test may move its revision.
    let private = env()
        .await
        .private_etcd(TEST, Default::default())
        .await
        .unwrap();
    let mut etcd = private.client().await.unwrap();
    let (_desired_tx, desired) = shared(synthetic(&prefix, 2500, 1));
    let (_ready_tx, ready) = watch::channel(true);
    let mut config = replica_config(TEST, "bulk-a");
    config.engine.resync_interval = Duration::from_millis(500);
    let replica = start_on(config, etcd.clone(), &desired, &ready).await;

    let want = desired.borrow().clone();
    eventually("5,000 keys to be written", GENEROUS, || {
        let mut etcd = etcd.clone();
        let prefix = prefix.clone();
        let want = want.clone();
        async move { etcd_matches(&mut etcd, &prefix, &want).await.then_some(()) }
    })
    .await;
    let resyncs = replica.status.borrow().resyncs;
    let revision = current_revision(&mut etcd).await;
    eventually("two idle resyncs", GENEROUS, || {
        let done = replica.status.borrow().resyncs >= resyncs + 2;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(replica.status.borrow().last_resync_changes, 0);
    assert_eq!(
        current_revision(&mut etcd).await,
        revision,
        "an idle resync moved the etcd revision"
    );
    apisix_schema::assert_prefix_valid(&mut etcd, &prefix).await;
    replica.shutdown().await;
}
