//! The fence against a real etcd and kube-apiserver: a deposed leader's
//! transactions fail, stale claims are refused, a recreated Lease still
//! yields growing tokens, and the mirror survives compaction.

mod common;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use apisix_operator::apisix::Ownership;
use apisix_operator::leader::{FenceError, FenceKey, claim_fence};
use apisix_operator::replica::{Replica, ReplicaInputs};
use apisix_operator::sync::{
    EtcdWriter, MirrorState, MirrorTask, PlanInput, PlanLimits, WriteError, plan,
};
use apisix_operator::telemetry::SyncMetrics;
use apisix_operator_testenv::TestEnv;
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use tokio::sync::watch;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn env() -> &'static TestEnv {
    TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"))
}

#[tokio::test]
async fn a_deposed_leaders_transactions_fail_on_the_fence() {
    let prefix = prefix("deposed");
    let fence = FenceKey::new("/operator-it/deposed", CLUSTER);
    let mut etcd = env().await.apisix_etcd_client().await.unwrap();
    let mirror = Arc::new(RwLock::new(MirrorState::from_list(Default::default(), 1)));
    let mut writer = EtcdWriter {
        client: etcd.clone(),
        timeout: TIMEOUT,
        metrics: SyncMetrics::default(),
    };
    let ownership = Ownership::new(CLUSTER).unwrap();
    let plan_for = |generation: u64, mirror: &MirrorState| {
        plan(PlanInput {
            desired: &synthetic(&prefix, 2, generation),
            mirror,
            ownership: &ownership,
            prefix: &prefix,
            limits: PlanLimits::default(),
            deletions_allowed: true,
        })
    };

    let old = claim_fence(&mut etcd, &fence, 1, "old", TIMEOUT)
        .await
        .unwrap();
    let first = plan_for(1, &mirror.read().unwrap());
    writer.execute(&first, &old, &mirror).await.unwrap();
    assert!(etcd_matches(&mut etcd, &prefix, &synthetic(&prefix, 2, 1)).await);

    let new = claim_fence(&mut etcd, &fence, 2, "new", TIMEOUT)
        .await
        .unwrap();
    let second = plan_for(2, &mirror.read().unwrap());
    let err = writer.execute(&second, &old, &mirror).await.unwrap_err();
    assert!(matches!(err, WriteError::FenceLost { .. }), "{err}");
    assert!(
        etcd_matches(&mut etcd, &prefix, &synthetic(&prefix, 2, 1)).await,
        "the deposed write changed etcd"
    );
    writer.execute(&second, &new, &mirror).await.unwrap();
    assert!(etcd_matches(&mut etcd, &prefix, &synthetic(&prefix, 2, 2)).await);

    // Tokens at or below the stored one are refused.
    for stale in [1, 2] {
        let err = claim_fence(&mut etcd, &fence, stale, "late", TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, FenceError::Stale { stored: 2, .. }), "{err}");
    }
}

#[tokio::test]
async fn a_key_changed_behind_the_plan_is_a_conflict_not_an_overwrite() {
    let prefix = prefix("conflict");
    let fence = FenceKey::new("/operator-it/conflict", CLUSTER);
    let mut etcd = env().await.apisix_etcd_client().await.unwrap();
    let mirror = Arc::new(RwLock::new(MirrorState::from_list(Default::default(), 1)));
    let mut writer = EtcdWriter {
        client: etcd.clone(),
        timeout: TIMEOUT,
        metrics: SyncMetrics::default(),
    };
    let claim = claim_fence(&mut etcd, &fence, 1, "me", TIMEOUT)
        .await
        .unwrap();
    let ownership = Ownership::new(CLUSTER).unwrap();
    let desired = synthetic(&prefix, 1, 1);
    let planned = plan(PlanInput {
        desired: &desired,
        mirror: &mirror.read().unwrap(),
        ownership: &ownership,
        prefix: &prefix,
        limits: PlanLimits::default(),
        deletions_allowed: true,
    });
    // Someone creates one of the keys after we planned "absent".
    let route = format!("{prefix}/routes/ao_{CLUSTER}_r0");
    etcd.put(route.as_str(), r#"{"uri":"/theirs"}"#, None)
        .await
        .unwrap();
    let err = writer.execute(&planned, &claim, &mirror).await.unwrap_err();
    assert!(matches!(err, WriteError::KeyConflict { .. }), "{err}");
    let stored = etcd.get(route.as_str(), None).await.unwrap();
    assert_eq!(stored.kvs()[0].value(), br#"{"uri":"/theirs"}"#);
}

#[tokio::test]
async fn a_recreated_lease_still_yields_a_growing_token() {
    const TEST: &str = "recreated";
    let mut etcd = env().await.apisix_etcd_client().await.unwrap();
    // The replicas act as the chart's ServiceAccount; the test deletes the
    // Lease as an administrator.
    let kube = env().await.operator_client().await.unwrap();
    let admin = env().await.kube_client().await.unwrap();
    let (_desired_tx, desired) = shared(synthetic(&prefix(TEST), 1, 1));
    let (_ready_tx, ready) = watch::channel(true);
    let start = |identity: &'static str| {
        let desired = desired.clone();
        let ready = ready.clone();
        let kube = kube.clone();
        let etcd = etcd.clone();
        async move {
            Replica::start(
                replica_config(TEST, identity),
                kube,
                etcd,
                ReplicaInputs::new(desired, ready),
                SyncMetrics::default(),
            )
        }
    };
    let fence_token = |replica: &Replica| replica.status.borrow().fence.as_ref().map(|f| f.token);

    let first = start("first").await;
    let token = eventually(
        "the first replica to claim the fence",
        Duration::from_secs(60),
        || {
            let token = fence_token(&first);
            async move { token }
        },
    )
    .await;
    first.shutdown().await;
    let leases: Api<Lease> = Api::namespaced(admin, "default");
    leases
        .delete(&format!("lease-{TEST}"), &DeleteParams::default())
        .await
        .unwrap();

    let second = start("second").await;
    let next = eventually(
        "the second replica to claim the fence",
        Duration::from_secs(60),
        || {
            let token = fence_token(&second);
            async move { token }
        },
    )
    .await;
    assert!(
        next > token,
        "token {next} after recreation is not above {token}"
    );
    let lease = leases.get(&format!("lease-{TEST}")).await.unwrap();
    assert_eq!(
        i64::from(lease.spec.unwrap().lease_transitions.unwrap()),
        next
    );
    assert!(etcd_matches(&mut etcd, &prefix(TEST), &synthetic(&prefix(TEST), 1, 1)).await);
    second.shutdown().await;
}

#[tokio::test]
async fn the_mirror_lists_again_when_its_revision_was_compacted() {
    let private = env()
        .await
        .private_etcd("compaction", Default::default())
        .await
        .unwrap();
    let mut etcd = private.client().await.unwrap();
    let prefix = "/apisix";
    etcd.put(format!("{prefix}/routes/a"), "{}", None)
        .await
        .unwrap();
    // A mirror that last saw revision 2, then missed everything after it.
    let stale = MirrorState::from_list(Default::default(), 2);
    for i in 0..5 {
        etcd.put(
            format!("{prefix}/routes/k{i}"),
            format!(r#"{{"i":{i}}}"#),
            None,
        )
        .await
        .unwrap();
    }
    let latest = current_revision(&mut etcd).await;
    etcd.compact(latest, None).await.unwrap();

    let mirror = Arc::new(RwLock::new(stale));
    let (revision_tx, mut revision) = watch::channel(0);
    let metrics = SyncMetrics::default();
    let task = tokio::spawn(
        MirrorTask {
            client: etcd.clone(),
            prefix: prefix.to_string(),
            mirror: mirror.clone(),
            revision: revision_tx,
            watching: watch::channel(false).0,
            metrics: metrics.clone(),
            call_timeout: TIMEOUT,
            progress: Default::default(),
        }
        .run(),
    );
    // The loaded mirror resumes watching from revision 3, which is
    // compacted: the task must list again, then follow the watch.
    etcd.put(format!("{prefix}/routes/after"), "{}", None)
        .await
        .unwrap();
    eventually(
        "the mirror to hold every key",
        Duration::from_secs(30),
        || {
            let done = {
                let m = mirror.read().unwrap();
                m.len() == 7 && m.get("/apisix/routes/after").is_some()
            };
            async move { done.then_some(()) }
        },
    )
    .await;
    assert!(*revision.borrow_and_update() > latest);
    assert_eq!(
        metrics.mirror_lists.get(),
        1,
        "exactly one list, forced by the compaction"
    );
    task.abort();
}
