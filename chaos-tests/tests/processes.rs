//! Replicas as separate processes, under kill, freeze, resume, restart and
//! graceful termination. Waits poll with generous deadlines; the gaps
//! themselves are measured by the benchmarks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apisix_operator::sync::synthetic::synthetic_state;
use apisix_operator_chaos_tests::{STATUS_PREFIX, SyntheticSpec};
use apisix_operator_testenv::{ManagedProcess, TestEnv, apisix_schema, eventually};

const CLUSTER: &str = "chaos";
const GENEROUS: Duration = Duration::from_secs(60);

struct Timings {
    lease_ms: u64,
    renew_ms: u64,
    retry_ms: u64,
    resync_ms: u64,
}

const FAST: Timings = Timings {
    lease_ms: 2000,
    renew_ms: 1500,
    retry_ms: 300,
    resync_ms: 300,
};

struct Cluster {
    test: String,
    dir: PathBuf,
    etcd_url: String,
    kubeconfig: PathBuf,
}

struct ReplicaProcess {
    identity: String,
    desired: PathBuf,
    process: ManagedProcess,
}

impl Cluster {
    async fn new(test: &str) -> Cluster {
        let env = TestEnv::shared()
            .await
            .unwrap_or_else(|e| panic!("test environment: {e}"));
        let dir = env.workdir.path().join(format!("chaos-{test}"));
        std::fs::create_dir_all(&dir).unwrap();
        Cluster {
            test: test.to_string(),
            dir,
            etcd_url: env.apisix_etcd.client_url(),
            kubeconfig: env.operator_kubeconfig().await.unwrap(),
        }
    }

    fn prefix(&self) -> String {
        format!("/chaos-{}", self.test)
    }

    fn start(&self, identity: &str, spec: SyntheticSpec, timings: &Timings) -> ReplicaProcess {
        let desired = self.dir.join(format!("{identity}.json"));
        write_spec(&desired, spec);
        let args: Vec<String> = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--etcd={}", self.etcd_url),
            format!("--prefix={}", self.prefix()),
            format!("--cluster={CLUSTER}"),
            format!("--fence-prefix=/operator-chaos/{}", self.test),
            format!("--lease-name=chaos-{}", self.test),
            format!("--identity={identity}"),
            format!("--desired={}", desired.display()),
            format!("--lease-duration-ms={}", timings.lease_ms),
            format!("--renew-deadline-ms={}", timings.renew_ms),
            format!("--retry-period-ms={}", timings.retry_ms),
            format!("--resync-interval-ms={}", timings.resync_ms),
        ];
        let log = self.dir.join(format!("{identity}.log"));
        let process = ManagedProcess::spawn(
            identity,
            Path::new(env!("CARGO_BIN_EXE_sync-replica")),
            &args,
            &log,
        )
        .unwrap();
        ReplicaProcess {
            identity: identity.to_string(),
            desired,
            process,
        }
    }

    async fn etcd(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.etcd_url.as_str()], None)
            .await
            .unwrap()
    }

    /// Owned keys and their values (timestamps dropped), with mod revisions.
    async fn owned(&self) -> BTreeMap<String, (serde_json::Value, i64)> {
        let mut etcd = self.etcd().await;
        apisix_schema::stored_objects(&mut etcd, &self.prefix())
            .await
            .unwrap()
    }

    async fn matches(&self, spec: SyntheticSpec) -> bool {
        let want = synthetic_state(&self.prefix(), CLUSTER, spec.units, spec.generation);
        let have = self.owned().await;
        have.len() == want.len()
            && want
                .iter()
                .all(|(k, v)| have.get(k.as_str()).map(|h| &h.0) == Some(&v.value.to_json()))
    }

    async fn wait_matches(&self, spec: SyntheticSpec, what: &str) {
        eventually(what, GENEROUS, || async move {
            self.matches(spec).await.then_some(())
        })
        .await;
    }
}

impl ReplicaProcess {
    /// Every status line printed so far.
    fn statuses(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.process.log_path()).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.strip_prefix(STATUS_PREFIX))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }

    fn last_status(&self) -> serde_json::Value {
        self.statuses().pop().unwrap_or_default()
    }

    fn leading(&self) -> bool {
        self.last_status()["leading"].as_bool().unwrap_or(false)
    }

    fn set_desired(&self, spec: SyntheticSpec) {
        write_spec(&self.desired, spec);
    }

    fn signal(&self, signal: i32) {
        self.process.signal(signal).unwrap();
    }
}

fn write_spec(path: &Path, spec: SyntheticSpec) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, spec.to_json()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

async fn wait_leading(replica: &ReplicaProcess) {
    eventually(
        &format!("{} to lead", replica.identity),
        GENEROUS,
        || async move { replica.leading().then_some(()) },
    )
    .await;
}

const GEN1: SyntheticSpec = SyntheticSpec {
    units: 3,
    generation: 1,
};
const GEN2: SyntheticSpec = SyntheticSpec {
    units: 4,
    generation: 2,
};
const GEN3: SyntheticSpec = SyntheticSpec {
    units: 2,
    generation: 3,
};

#[tokio::test]
async fn a_frozen_leader_cannot_write_after_resuming() {
    let cluster = Cluster::new("freeze").await;
    let a = cluster.start("freeze-a", GEN1, &FAST);
    wait_leading(&a).await;
    let b = cluster.start("freeze-b", GEN1, &FAST);
    cluster
        .wait_matches(GEN1, "the first leader's writes")
        .await;
    let a_last_commit = a.last_status()["last_commit_revision"].as_i64();

    // Freeze the leader past its Lease; the follower takes over and writes
    // a newer state.
    a.signal(libc::SIGSTOP);
    b.set_desired(GEN2);
    cluster.wait_matches(GEN2, "the new leader's change").await;
    assert!(b.leading());
    let after_takeover = cluster.owned().await;

    // The frozen replica still wants the old state, and resumes.
    a.signal(libc::SIGCONT);
    eventually("the resumed replica to step down", GENEROUS, || async {
        let statuses = a.statuses();
        statuses
            .last()
            .is_some_and(|s| s["leading"] == false && s["resyncs"].as_u64().is_some())
            .then_some(())
    })
    .await;
    // Give it several of its resync periods to try anything it still would.
    tokio::time::sleep(Duration::from_millis(5 * FAST.resync_ms)).await;
    let after_resume = cluster.owned().await;
    assert_eq!(
        after_resume, after_takeover,
        "etcd changed after the frozen leader resumed"
    );
    assert!(cluster.matches(GEN2).await);
    let a_commit = a.last_status()["last_commit_revision"].as_i64();
    assert_eq!(
        a_commit, a_last_commit,
        "the deposed replica committed a transaction"
    );
    let b_token = b.last_status()["token"].as_i64().unwrap();
    let a_token = a
        .statuses()
        .iter()
        .filter_map(|s| s["token"].as_i64())
        .max()
        .unwrap();
    assert!(
        b_token > a_token,
        "tokens must grow: {a_token} then {b_token}"
    );
    eprintln!(
        "resumed replica's fenced transactions: {}",
        a.last_status()["fence_losses"]
    );
    let mut etcd = cluster.etcd().await;
    apisix_schema::assert_prefix_valid(&mut etcd, &cluster.prefix()).await;
}

#[tokio::test]
async fn after_a_kill_a_follower_takes_over_and_a_restarted_replica_rejoins() {
    let cluster = Cluster::new("kill").await;
    let a = cluster.start("kill-a", GEN1, &FAST);
    wait_leading(&a).await;
    let b = cluster.start("kill-b", GEN1, &FAST);
    cluster
        .wait_matches(GEN1, "the first leader's writes")
        .await;

    a.signal(libc::SIGKILL);
    b.set_desired(GEN2);
    cluster
        .wait_matches(GEN2, "the follower's writes after the kill")
        .await;
    wait_leading(&b).await;

    // The killed replica restarts under the same name and follows.
    drop(a);
    let a = cluster.start("kill-a", GEN2, &FAST);
    eventually(
        "the restarted replica to report as a follower",
        GENEROUS,
        || async { (!a.statuses().is_empty()).then_some(()) },
    )
    .await;
    // Then the leader goes away gracefully and the restarted one leads.
    b.signal(libc::SIGTERM);
    a.set_desired(GEN3);
    cluster
        .wait_matches(GEN3, "the restarted replica's writes")
        .await;
    assert!(a.leading());
}

#[tokio::test]
async fn sigterm_releases_the_lease_so_the_successor_need_not_wait_for_expiry() {
    // A Lease far longer than the deadline below: if the successor had to
    // wait for it to expire, the test would time out.
    const LONG: Timings = Timings {
        lease_ms: 120_000,
        renew_ms: 60_000,
        retry_ms: 500,
        resync_ms: 300_000,
    };
    let cluster = Cluster::new("term").await;
    let a = cluster.start("term-a", GEN1, &LONG);
    wait_leading(&a).await;
    let b = cluster.start("term-b", GEN1, &LONG);
    cluster
        .wait_matches(GEN1, "the first leader's writes")
        .await;
    eventually("the follower to report", GENEROUS, || async {
        (!b.statuses().is_empty()).then_some(())
    })
    .await;

    let stopped = std::time::Instant::now();
    a.signal(libc::SIGTERM);
    b.set_desired(GEN2);
    cluster.wait_matches(GEN2, "the successor's writes").await;
    let gap = stopped.elapsed();
    eprintln!("takeover after SIGTERM: {gap:?}");
    assert!(
        gap < Duration::from_secs(60),
        "took {gap:?}: the Lease was not released"
    );
    assert!(
        a.statuses().iter().any(|s| s["stopped"] == true),
        "no graceful stop"
    );
}
