//! `apisix-operator run`: one replica of the operator. Watches the cluster,
//! translates, and, while it leads, writes the APISIX objects into etcd
//! (fenced) and the status back to Kubernetes.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::{mpsc, watch};

use super::TranslationArgs;
use super::etcd_args::EtcdArgs;
use super::kube_args::KubeArgs;
use crate::index::watch::{Namespaces, spawn_watches};
use crate::index::{ClusterIndex, Feeder, IndexTask, ObjectKey};
use crate::leader::{FenceKey, LeaseConfig, default_identity};
use crate::replica::{Replica, ReplicaConfig};
use crate::status::{LoadBalancerSource, StatusWriter};
use crate::sync::{DesiredState, EngineConfig, PlanLimits};
use crate::telemetry::{Readiness, SyncMetrics, TranslateMetrics, metrics, server};

fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("{value:?} is not a duration such as 5s or 2m: {e}"))
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub translation: TranslationArgs,
    /// Serve only namespaces whose labels match this selector (e.g. `apisix=enabled`).
    #[arg(
        long,
        env = "APISIX_OPERATOR_NAMESPACE_SELECTOR",
        conflicts_with = "namespaces"
    )]
    pub namespace_selector: Option<String>,
    /// Namespaces to watch (repeat or comma-separate); all when empty.
    #[arg(
        long = "namespace",
        env = "APISIX_OPERATOR_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// A YAML file of settings (keys are the flag names without dashes); flags and environment variables win over it.
    #[arg(long, env = "APISIX_OPERATOR_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(
        long,
        env = "APISIX_OPERATOR_LISTEN_ADDRESS",
        default_value = "0.0.0.0:9090"
    )]
    pub listen_address: std::net::SocketAddr,
    /// Where the fence key lives; must not start with the APISIX prefix.
    #[arg(
        long,
        env = "APISIX_OPERATOR_FENCE_PREFIX",
        default_value = "/operator/apisix"
    )]
    pub fence_prefix: String,
    #[arg(
        long,
        env = "APISIX_OPERATOR_LEASE_NAME",
        default_value = "apisix-operator-leader"
    )]
    pub lease_name: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, else "default").
    #[arg(long, env = "APISIX_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity (default: POD_NAME, else the hostname).
    #[arg(long, env = "APISIX_OPERATOR_IDENTITY")]
    pub identity: Option<String>,
    #[arg(long, env = "APISIX_OPERATOR_LEASE_DURATION", value_parser = duration, default_value = "5s")]
    pub lease_duration: Duration,
    #[arg(long, env = "APISIX_OPERATOR_RENEW_DEADLINE", value_parser = duration, default_value = "3s")]
    pub renew_deadline: Duration,
    #[arg(long, env = "APISIX_OPERATOR_RETRY_PERIOD", value_parser = duration, default_value = "1s")]
    pub retry_period: Duration,
    /// Full resync (and full re-translation) interval.
    #[arg(long, env = "APISIX_OPERATOR_RESYNC_INTERVAL", value_parser = duration, default_value = "5m")]
    pub resync_interval: Duration,
    /// Publish this Service's load-balancer addresses (namespace/name) in served Ingresses' status.
    #[arg(
        long,
        env = "APISIX_OPERATOR_INGRESS_PUBLISH_SERVICE",
        conflicts_with = "ingress_status_address"
    )]
    pub ingress_publish_service: Option<String>,
    /// Publish these addresses in served Ingresses' status.
    #[arg(
        long,
        env = "APISIX_OPERATOR_INGRESS_STATUS_ADDRESS",
        value_delimiter = ','
    )]
    pub ingress_status_address: Vec<String>,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Log level or tracing filter directives (e.g. `info`, `debug`, `info,apisix_operator::sync=debug`).
    #[arg(long, env = "APISIX_OPERATOR_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format: text or json.
    #[arg(long, env = "APISIX_OPERATOR_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// Checked settings of one replica.
pub struct RunSettings {
    pub replica: ReplicaConfig,
    pub namespaces: Namespaces,
    pub lb_source: Option<LoadBalancerSource>,
    pub translation: crate::translate::TranslateConfig,
}

impl RunArgs {
    pub fn settings(&self) -> Result<RunSettings, String> {
        let translation = self.translation.to_config()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(format!(
                "--log-level {:?} is not a level or filter such as info or debug",
                self.log_level
            ));
        }
        let fence_prefix = self.fence_prefix.trim_end_matches('/');
        if fence_prefix.starts_with(&translation.prefix) {
            return Err(format!(
                "--fence-prefix {fence_prefix:?} starts with the APISIX prefix {:?}: APISIX would read the fence",
                translation.prefix
            ));
        }
        if self.etcd.etcd_endpoints.is_empty() {
            return Err("--etcd-endpoints is empty".into());
        }
        let identity = self.identity.clone().unwrap_or_else(default_identity);
        let lease_namespace = self
            .lease_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
            .unwrap_or_else(|| "default".to_string());
        let mut lease = LeaseConfig::new(&self.lease_name, &lease_namespace, &identity);
        lease.lease_duration = self.lease_duration;
        lease.renew_deadline = self.renew_deadline;
        lease.retry_period = self.retry_period;
        lease.validate()?;
        let lb_source = match (
            &self.ingress_publish_service,
            self.ingress_status_address.is_empty(),
        ) {
            (Some(service), _) => {
                let (ns, name) = service
                    .split_once('/')
                    .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
                    .ok_or_else(|| {
                        format!("--ingress-publish-service {service:?} must be namespace/name")
                    })?;
                Some(LoadBalancerSource::PublishService(ObjectKey::new(ns, name)))
            }
            (None, false) => Some(LoadBalancerSource::Addresses(
                self.ingress_status_address.clone(),
            )),
            (None, true) => None,
        };
        Ok(RunSettings {
            replica: ReplicaConfig {
                lease,
                engine: EngineConfig {
                    prefix: translation.prefix.clone(),
                    ownership: translation.ownership.clone(),
                    fence_key: FenceKey::new(fence_prefix, translation.ownership.cluster()),
                    identity,
                    limits: PlanLimits::default(),
                    resync_interval: self.resync_interval,
                    etcd_timeout: Duration::from_secs(5),
                },
            },
            namespaces: Namespaces::from_args(self.namespace_selector.as_deref(), &self.namespaces),
            lb_source,
            translation,
        })
    }
}

fn init_logging(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the replica until SIGTERM or Ctrl-C; returns the exit status.
pub fn main(args: RunArgs) -> std::process::ExitCode {
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&args.log_level, &args.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(settings, &args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How long a graceful stop may take before the process exits anyway.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(4);

async fn run(settings: RunSettings, args: &RunArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let kube = args.kube.client().await?;
    let etcd = args.etcd.connect().await?;

    let sync_metrics = SyncMetrics::default();
    let translate_metrics = TranslateMetrics::default();
    let registry = Arc::new(metrics::registry(&sync_metrics, &translate_metrics));

    let (changes_tx, changes_rx) = mpsc::channel(1024);
    let (watches, expected_syncs) = spawn_watches(&kube, &settings.namespaces, changes_tx).await;
    let (desired_tx, desired_rx) = watch::channel(Arc::new(DesiredState::new()));
    let desired_for_status = desired_rx.clone();
    let (ready_tx, ready_rx) = watch::channel(false);
    let (status_tx, status_rx) = watch::channel(Arc::default());
    let (changed_at_tx, changed_at_rx) = watch::channel(None);
    let index = tokio::spawn(
        IndexTask {
            index: match settings.namespaces {
                Namespaces::Selector(_) => {
                    ClusterIndex::new(settings.translation.clone()).with_namespace_filter()
                }
                _ => ClusterIndex::new(settings.translation.clone()),
            },
            feeder: Feeder::default(),
            expected_syncs,
            changes: changes_rx,
            desired: desired_tx,
            ready: ready_tx,
            status: status_tx,
            lb_source: settings.lb_source.clone(),
            recompute_interval: settings.replica.engine.resync_interval,
            metrics: translate_metrics,
            changed_at: changed_at_tx,
        }
        .run(),
    );
    let identity = settings.replica.lease.identity.clone();
    let replica = Replica::start_with(
        settings.replica,
        kube.clone(),
        etcd,
        desired_rx,
        ready_rx.clone(),
        Some(changed_at_rx),
        sync_metrics,
    );
    let (stop_server_tx, stop_server_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server::serve(
        args.listen_address,
        registry,
        Readiness {
            caches_synced: ready_rx,
            etcd_watching: replica.etcd_watching.clone(),
        },
        async move {
            let _ = stop_server_rx.await;
        },
    )
    .await
    .with_context(|| format!("listening on {}", args.listen_address))?;
    let status = tokio::spawn(
        StatusWriter {
            client: kube,
            controller: settings.translation.controller_name.clone(),
            identity: identity.clone(),
            lb_source: settings.lb_source,
            desired: desired_for_status,
            mirror: replica.mirror.clone(),
            mirror_revision: replica.mirror_revision.clone(),
        }
        .run(status_rx, replica.leader.subscribe()),
    );
    tracing::info!(%identity, listen = %args.listen_address, "apisix-operator running");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
    }
    // Stop taking new work, let the in-flight transaction finish, release
    // the Lease so a successor takes over at once; all within the budget.
    status.abort();
    index.abort();
    for watch in &watches {
        watch.abort();
    }
    if tokio::time::timeout(SHUTDOWN_BUDGET, replica.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("graceful shutdown took longer than {SHUTDOWN_BUDGET:?}; exiting anyway");
    }
    let _ = stop_server_tx.send(());
    let _ = tokio::time::timeout(Duration::from_millis(500), server).await;
    tracing::info!("stopped");
    Ok(())
}
