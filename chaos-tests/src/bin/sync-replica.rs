//! One replica of the sync engine as a process, for chaos tests. Prints a
//! `STATUS {json}` line on every engine status change; SIGTERM stops it
//! gracefully (the Lease is released).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apisix_operator::apisix::Ownership;
use apisix_operator::leader::{FenceKey, LeaseConfig};
use apisix_operator::replica::{Replica, ReplicaConfig, ReplicaInputs};
use apisix_operator::sync::synthetic::synthetic_state;
use apisix_operator::sync::{EngineConfig, EngineStatus, PlanLimits};
use apisix_operator::telemetry::SyncMetrics;
use apisix_operator_chaos_tests::{STATUS_PREFIX, SyntheticSpec};
use clap::Parser;
use tokio::sync::watch;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    kubeconfig: PathBuf,
    #[arg(long)]
    etcd: String,
    #[arg(long, default_value = "/apisix")]
    prefix: String,
    #[arg(long, default_value = "chaos")]
    cluster: String,
    #[arg(long, default_value = "/operator/apisix")]
    fence_prefix: String,
    #[arg(long)]
    lease_name: String,
    #[arg(long, default_value = "default")]
    lease_namespace: String,
    #[arg(long)]
    identity: String,
    /// JSON file `{"units": N, "generation": G}`, re-read when it changes.
    #[arg(long)]
    desired: PathBuf,
    #[arg(long, default_value_t = 5000)]
    lease_duration_ms: u64,
    #[arg(long, default_value_t = 3000)]
    renew_deadline_ms: u64,
    #[arg(long, default_value_t = 1000)]
    retry_period_ms: u64,
    #[arg(long, default_value_t = 300_000)]
    resync_interval_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("info")
        .init();
    let args = Args::parse();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let kube = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?,
    )?;
    let etcd = etcd_client::Client::connect([args.etcd.as_str()], None).await?;

    let mut lease = LeaseConfig::new(&args.lease_name, &args.lease_namespace, &args.identity);
    lease.lease_duration = Duration::from_millis(args.lease_duration_ms);
    lease.renew_deadline = Duration::from_millis(args.renew_deadline_ms);
    lease.retry_period = Duration::from_millis(args.retry_period_ms);
    lease.validate()?;
    let config = ReplicaConfig {
        lease,
        engine: EngineConfig {
            prefix: args.prefix.clone(),
            ownership: Ownership::new(&args.cluster)?,
            fence_key: FenceKey::new(&args.fence_prefix, &args.cluster),
            identity: args.identity.clone(),
            limits: PlanLimits::default(),
            resync_interval: Duration::from_millis(args.resync_interval_ms),
            etcd_timeout: Duration::from_secs(5),
        },
    };

    let read_spec = || {
        std::fs::read_to_string(&args.desired)
            .ok()
            .and_then(|text| SyntheticSpec::parse(&text))
    };
    let mut spec = read_spec().ok_or("the desired file is missing or invalid")?;
    let state = |spec: SyntheticSpec| {
        Arc::new(synthetic_state(
            &args.prefix,
            &args.cluster,
            spec.units,
            spec.generation,
        ))
    };
    let (desired_tx, desired) = watch::channel(state(spec));
    let (_ready_tx, ready) = watch::channel(true);
    let replica = Replica::start(
        config,
        kube,
        etcd,
        ReplicaInputs::new(desired, ready),
        SyncMetrics::default(),
    );

    let mut status = replica.status.clone();
    print_status(&args.identity, &status.borrow_and_update());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            changed = status.changed() => {
                if changed.is_err() { break }
                print_status(&args.identity, &status.borrow_and_update());
            }
            _ = poll.tick() => {
                if let Some(next) = read_spec().filter(|next| *next != spec) {
                    spec = next;
                    desired_tx.send_replace(state(spec));
                }
            }
        }
    }
    replica.shutdown().await;
    println!(
        "{STATUS_PREFIX}{}",
        serde_json::json!({"identity": args.identity, "stopped": true})
    );
    Ok(())
}

fn print_status(identity: &str, status: &EngineStatus) {
    let line = serde_json::json!({
        "identity": identity,
        "leading": status.leading,
        "token": status.fence.as_ref().map(|f| f.token),
        "fence_revision": status.fence.as_ref().map(|f| f.revision),
        "last_commit_revision": status.last_commit_revision,
        "fence_losses": status.fence_losses,
        "resyncs": status.resyncs,
        "last_error": status.last_error,
    });
    println!("{STATUS_PREFIX}{line}");
}
