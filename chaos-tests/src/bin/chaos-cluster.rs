//! `chaos-cluster`: the fault matrix on the one-node kubelet cluster of
//! `testenv/cluster/` or on a kind cluster (`chaos-tests/cluster/kind.sh`),
//! against the chart's three replicas running as pods. It runs on the host
//! that runs the pods' processes (root: it reads their environment and
//! enters their network namespaces). Per scenario: the seeded
//! workload in a namespace of its own, the APISIX etcd's history recorded
//! from the scenario's start, one fault on the leader pod, and the history
//! invariants checked against the translation of the live cluster (every
//! object the replicas serve, the workload's and any other), plus no pod
//! restart the scenario did not cause. Reports go to `--report-dir` in the
//! local suite's format. Run as root by `testenv/cluster/test.sh`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use apisix_operator::apisix::Ownership;
use apisix_operator::cli::translate::dump;
use apisix_operator::index::watch::Namespaces;
use apisix_operator::index::{ClusterIndex, load_cluster};
use apisix_operator::translate::TranslateConfig;
use apisix_operator_chaos_tests::apply::apply_change;
use apisix_operator_chaos_tests::history::Recorder;
use apisix_operator_chaos_tests::invariants::{self, Expected, Violation};
use apisix_operator_chaos_tests::pod;
use apisix_operator_chaos_tests::report::ScenarioReport;
use apisix_operator_chaos_tests::verdict;
use apisix_operator_chaos_tests::workload::{Change, Workload};
use clap::Parser;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams};

#[derive(Parser)]
#[command(about = "The chaos scenarios against the chart's replicas on the kubelet cluster")]
struct Args {
    /// The APISIX etcd, as this host reaches it.
    #[arg(long, default_value = "http://10.96.0.20:2379")]
    etcd: String,
    /// The APISIX etcd as the pods reach it (the address the etcd scenario
    /// cuts), when the host reaches it by another (a port-forward under
    /// kind); default: `--etcd`.
    #[arg(long)]
    etcd_in_cluster: Option<String>,
    /// The replicas' namespace, and their pods' label selector.
    #[arg(long, default_value = "apisix-operator")]
    namespace: String,
    #[arg(long, default_value = "app.kubernetes.io/name=apisix-operator")]
    selector: String,
    #[arg(long, default_value = "apisix-operator-leader")]
    lease: String,
    /// The chart's etcd prefix, cluster name and fence key.
    #[arg(long, default_value = "/apisix")]
    prefix: String,
    #[arg(long, default_value = "default")]
    cluster: String,
    #[arg(long, default_value = "/operator/apisix/default/leader")]
    fence: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    report_dir: PathBuf,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill,freeze,cutapi,cutetcd"
    )]
    scenarios: Vec<String>,
}

/// What is done to the leader pod.
#[derive(Clone, Copy)]
enum Fault {
    /// SIGKILL of its process: the kubelet restarts the container.
    Kill,
    /// SIGSTOP past the Lease (5 s in the chart), then SIGCONT.
    Freeze,
    /// Its network namespace rejects the API server's Service address.
    CutApiServer,
    /// Its network namespace rejects the APISIX etcd's address.
    CutEtcd,
}

impl Fault {
    fn parse(name: &str) -> Result<Fault> {
        Ok(match name {
            "kill" => Fault::Kill,
            "freeze" => Fault::Freeze,
            "cutapi" => Fault::CutApiServer,
            "cutetcd" => Fault::CutEtcd,
            other => bail!("unknown scenario {other:?} (kill, freeze, cutapi, cutetcd)"),
        })
    }
}

const LASTS: Duration = Duration::from_secs(8);
const GENEROUS: Duration = Duration::from_secs(120);

struct Cluster {
    args: Args,
    client: kube::Client,
    etcd: etcd_client::Client,
    api_address: (String, u16),
    etcd_address: (String, u16),
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = kube::Client::try_default()
        .await
        .context("a kube client (KUBECONFIG)")?;
    let etcd = etcd_client::Client::connect([args.etcd.as_str()], None)
        .await
        .with_context(|| format!("the APISIX etcd at {}", args.etcd))?;
    let kubernetes = Api::<Service>::namespaced(client.clone(), "default")
        .get("kubernetes")
        .await?;
    let api_ip = kubernetes
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the kubernetes Service has no cluster IP")?;
    let etcd_address = host_port(args.etcd_in_cluster.as_deref().unwrap_or(&args.etcd))?;
    let cluster = Cluster {
        client,
        etcd,
        api_address: (api_ip, 443),
        etcd_address,
        args,
    };
    let mut failed = Vec::new();
    for name in cluster.args.scenarios.clone() {
        let report = cluster.scenario(&name, Fault::parse(&name)?).await?;
        eprintln!("[chaos-cluster {name}] {report:?}");
        report.write_to(&cluster.args.report_dir)?;
        if !report.held() {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("invariants failed in {failed:?}");
    }
    Ok(())
}

fn host_port(url: &str) -> Result<(String, u16)> {
    let authority = url.rsplit("//").next().unwrap_or(url).trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .context("no port in the etcd URL")?;
    Ok((host.to_string(), port.parse()?))
}

impl Cluster {
    async fn scenario(&self, name: &str, fault: Fault) -> Result<ScenarioReport> {
        let namespace = format!("chaos-cluster-{name}");
        let mut workload = Workload::new(&namespace, self.args.seed);
        let recorder = Recorder::start_now(self.etcd.clone()).await?;
        let namespace_object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": namespace}});
        let initial = Change {
            apply: std::iter::once(namespace_object)
                .chain(workload.initial())
                .collect(),
            delete: Vec::new(),
        };
        self.apply(&initial).await?;
        self.converge().await?;
        let stable: BTreeSet<String> = self.desired().await?.into_keys().collect();
        self.steps(&mut workload, 10).await?;
        let leader = self.leader().await?;
        let restarts_before = self.restarts().await?;
        let pid = pod::process_of(&leader)?;
        let fault_revision = recorder.revision();
        let fault_at = Instant::now();
        self.inject(fault, pid, false)?;
        self.steps(&mut workload, 20).await?;
        tokio::time::sleep(LASTS.saturating_sub(fault_at.elapsed())).await;
        self.inject(fault, pid, true)?;
        let healed_at = Instant::now();
        self.steps(&mut workload, 5).await?;
        self.converge().await?;
        let converged_in = healed_at.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let desired = self.desired().await?;
        let stable = stable
            .into_iter()
            .filter(|k| desired.contains_key(k))
            .collect();
        let expected = Expected {
            prefix: &self.args.prefix,
            fence: &self.args.fence,
            desired: &desired,
            stable: &stable,
        };
        let verdict = verdict::judge(&recorder.history(), &expected, fault_revision, fault_at);
        for violation in &verdict.violations {
            eprintln!("[chaos-cluster {name}] violation: {violation}");
        }
        let unexpected = self
            .unexpected_restarts(&restarts_before, &leader, fault)
            .await?;
        for restart in &unexpected {
            eprintln!("[chaos-cluster {name}] {restart}");
        }
        let mut invariants = verdict.invariants;
        invariants.push(("no unexpected restarts".into(), unexpected.is_empty()));
        Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client.clone())
            .delete(&namespace, &DeleteParams::default())
            .await?;
        Ok(ScenarioReport {
            scenario: format!("cluster-{name}"),
            seed: self.args.seed,
            failover_gap_ms: verdict.failover_gap_ms,
            converged_ms: u64::try_from(converged_in.as_millis()).unwrap_or(u64::MAX),
            changes: workload.round(),
            puts: verdict.puts,
            invariants,
        })
    }

    /// Does (or with `heal`, undoes) `fault` to the leader's process.
    fn inject(&self, fault: Fault, pid: i32, heal: bool) -> Result<()> {
        match (fault, heal) {
            (Fault::Kill, false) => pod::signal(pid, libc::SIGKILL)?,
            (Fault::Kill, true) => {}
            (Fault::Freeze, false) => pod::signal(pid, libc::SIGSTOP)?,
            (Fault::Freeze, true) => pod::signal(pid, libc::SIGCONT)?,
            (Fault::CutApiServer, _) => {
                let (ip, port) = &self.api_address;
                pod::cut(pid, ip, *port, heal)?;
            }
            (Fault::CutEtcd, _) => {
                let (ip, port) = &self.etcd_address;
                pod::cut(pid, ip, *port, heal)?;
            }
        }
        Ok(())
    }

    async fn steps(&self, workload: &mut Workload, count: usize) -> Result<()> {
        for _ in 0..count {
            let (_, change) = workload.next_change();
            self.apply(&change).await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Ok(())
    }

    /// Applies `change`, retrying for a while: the API server calls the
    /// admission webhook through its Service, which may pick the frozen or
    /// killed replica until its endpoints catch up, as a user would see.
    async fn apply(&self, change: &Change) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match apply_change(&self.client, change).await {
                Ok(()) => return Ok(()),
                Err(err) if Instant::now() < deadline => {
                    eprintln!("[chaos-cluster] retrying: {err}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The translation of every object the replicas serve, read from the
    /// cluster as `run` reads it.
    async fn desired(&self) -> Result<BTreeMap<String, serde_json::Value>> {
        let ownership = Ownership::new(&self.args.cluster)?;
        let config = TranslateConfig::defaults(&self.args.prefix, ownership);
        let loaded = load_cluster(
            &self.client,
            &Namespaces::All,
            ClusterIndex::new(config),
            GENEROUS,
        )
        .await?;
        let mut index = loaded.index;
        index.flush();
        Ok(dump(&index))
    }

    /// Waits until etcd holds exactly the translation of the cluster.
    async fn converge(&self) -> Result<()> {
        let deadline = Instant::now() + GENEROUS;
        loop {
            let desired = self.desired().await?;
            let recorder_free = Recorder::start_now(self.etcd.clone()).await?;
            let expected = Expected {
                prefix: &self.args.prefix,
                fence: &self.args.fence,
                desired: &desired,
                stable: &BTreeSet::new(),
            };
            let differences: Vec<Violation> =
                invariants::check(&recorder_free.history(), &expected)
                    .into_iter()
                    .filter(|v| matches!(v, Violation::NotConverged { .. }))
                    .collect();
            if differences.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("etcd did not converge: {differences:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn leader(&self) -> Result<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.args.namespace);
        let lease = leases.get(&self.args.lease).await?;
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .context("the Lease has no holder")
    }

    /// Container restarts per pod.
    async fn restarts(&self) -> Result<BTreeMap<String, i32>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.args.namespace);
        let list = pods
            .list(&ListParams::default().labels(&self.args.selector))
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|pod| {
                let restarts = pod
                    .status
                    .and_then(|s| s.container_statuses)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.restart_count)
                    .sum();
                (pod.metadata.name.unwrap_or_default(), restarts)
            })
            .collect())
    }

    /// Restarts beyond the one a SIGKILL of the leader causes.
    async fn unexpected_restarts(
        &self,
        before: &BTreeMap<String, i32>,
        leader: &str,
        fault: Fault,
    ) -> Result<Vec<String>> {
        let after = self.restarts().await?;
        let mut unexpected = Vec::new();
        for (pod, count) in &before.clone() {
            let allowed = i32::from(matches!(fault, Fault::Kill) && pod == leader);
            match after.get(pod) {
                None => unexpected.push(format!("pod {pod} is gone")),
                Some(now) if now - count > allowed => {
                    unexpected.push(format!("pod {pod} restarted {} times", now - count))
                }
                Some(_) => {}
            }
        }
        Ok(unexpected)
    }
}
