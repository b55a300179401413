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
use super::scope_args::ScopeArgs;
use super::webhook_args::{WebhookArgs, WebhookSettings};
use crate::admission;
use crate::index::watch::{Namespaces, WatchMessage, Watches, spawn_watches};
use crate::index::{Feeder, IndexTask, ReviewRequest};
use crate::leader::{FenceKey, LeaseConfig, default_identity};
use crate::model::ObjectKey;
use crate::replica::{Replica, ReplicaConfig, ReplicaInputs};
use crate::status::{LoadBalancerSource, StatusWriter};
use crate::supervise::Tasks;
use crate::sync::{DesiredState, EngineConfig, PlanLimits};
use crate::telemetry::{
    AdmissionMetrics, Readiness, SyncMetrics, TranslateMetrics, metrics, server,
};

fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("{value:?} is not a duration such as 5s or 2m: {e}"))
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub translation: TranslationArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
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
    #[command(flatten)]
    pub webhook: WebhookArgs,
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
    pub webhook: Option<WebhookSettings>,
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
        let webhook = self.webhook.settings(&lease_namespace)?;
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
            namespaces: self.scope.namespaces(),
            lb_source,
            translation,
            webhook,
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
    let admission_metrics = AdmissionMetrics::default();
    let registry = Arc::new(metrics::registry(
        &sync_metrics,
        &translate_metrics,
        &admission_metrics,
    ));

    let (changes_tx, changes_rx) = mpsc::channel(1024);
    let (reviews_tx, reviews_rx) = mpsc::channel(256);
    let watches = spawn_watches(&kube, &settings.namespaces, changes_tx).await;
    let index = IndexOutputs::start(
        &settings,
        args,
        &watches,
        (changes_rx, reviews_rx),
        translate_metrics,
    );
    let identity = settings.replica.lease.identity.clone();
    let replica = Replica::start(
        settings.replica.clone(),
        kube.clone(),
        etcd,
        ReplicaInputs {
            desired: index.desired.clone(),
            caches_ready: index.ready.clone(),
            changed_at: Some(index.changed_at.clone()),
        },
        sync_metrics,
    );
    let webhook = match &settings.webhook {
        Some(webhook) => Some(
            start_webhook(
                webhook,
                &kube,
                &replica,
                &settings.namespaces,
                reviews_tx,
                admission_metrics,
            )
            .await
            .with_context(|| format!("listening on {}", webhook.listen))?,
        ),
        None => None,
    };
    let (stop_server_tx, stop_server_rx) = tokio::sync::oneshot::channel::<()>();
    let readiness = Readiness {
        caches_synced: index.ready.clone(),
        etcd_watching: replica.etcd_watching.clone(),
        webhook_cert: webhook.as_ref().map(|w| w.cert_loaded.clone()),
    };
    let stopped = async move {
        let _ = stop_server_rx.await;
    };
    let server = server::serve(args.listen_address, registry, readiness, stopped)
        .await
        .with_context(|| format!("listening on {}", args.listen_address))?;
    let status_writer = tokio::spawn(
        StatusWriter {
            client: kube,
            controller: settings.translation.controller_name.clone(),
            identity: identity.clone(),
            lb_source: settings.lb_source.clone(),
            prefix: settings.translation.prefix.clone(),
            desired: index.desired.clone(),
            mirror: replica.mirror.clone(),
            mirror_revision: replica.mirror_revision.clone(),
            engine: replica.status.clone(),
        }
        .run(index.status.clone(), replica.leader.subscribe()),
    );
    tracing::info!(%identity, listen = %args.listen_address, "apisix-operator running");

    let mut tasks = Tasks::default();
    for (name, watch) in watches.tasks {
        tasks.add(name, watch);
    }
    let index_task = if crate::supervise::fault_injected("index") {
        end_once_leading(index.task, replica.leader.subscribe())
    } else {
        index.task
    };
    tasks.add("the index task", index_task);
    tasks.add("the status writer", status_writer);
    tasks.add("the HTTP server", server);
    if let Some(webhook) = webhook {
        tasks.add("the admission webhook", webhook.server);
        tasks.add("the webhook certificate task", webhook.certs);
    }
    let mut replica = replica;
    let died = tokio::select! {
        signal = wait_for_stop_signal() => { signal?; None }
        (task, how) = replica.died() => Some((task.to_string(), how)),
        (task, how) = tasks.first_to_end() => Some((task, how)),
    };
    if let Some((task, how)) = &died {
        tracing::error!(%task, how, "a task that must run for ever ended: releasing the lease and exiting");
    }
    // Stop taking new work, let the in-flight transaction finish, release
    // the Lease so a successor takes over at once; all within the budget.
    tasks.abort_all();
    if tokio::time::timeout(SHUTDOWN_BUDGET, replica.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("graceful shutdown took longer than {SHUTDOWN_BUDGET:?}; exiting anyway");
    }
    let _ = stop_server_tx.send(());
    match died {
        Some((task, how)) => anyhow::bail!("{task} {how}"),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// The index task and what it publishes.
struct IndexOutputs {
    task: tokio::task::JoinHandle<()>,
    desired: watch::Receiver<Arc<DesiredState>>,
    ready: watch::Receiver<bool>,
    status: watch::Receiver<Arc<crate::status::StatusView>>,
    changed_at: watch::Receiver<Option<std::time::Instant>>,
}

impl IndexOutputs {
    fn start(
        settings: &RunSettings,
        args: &RunArgs,
        watches: &Watches,
        (changes, reviews): (mpsc::Receiver<WatchMessage>, mpsc::Receiver<ReviewRequest>),
        metrics: TranslateMetrics,
    ) -> IndexOutputs {
        let (desired_tx, desired) = watch::channel(Arc::new(DesiredState::new()));
        let (ready_tx, ready) = watch::channel(false);
        let (status_tx, status) = watch::channel(Arc::default());
        let (changed_at_tx, changed_at) = watch::channel(None);
        let task = tokio::spawn(
            IndexTask {
                index: args.scope.index(settings.translation.clone()),
                feeder: Feeder::default(),
                expected_syncs: watches.expected_syncs,
                changes,
                reviews,
                desired: desired_tx,
                ready: ready_tx,
                status: status_tx,
                lb_source: settings.lb_source.clone(),
                recompute_interval: settings.replica.engine.resync_interval,
                metrics,
                changed_at: changed_at_tx,
            }
            .run(),
        );
        IndexOutputs {
            task,
            desired,
            ready,
            status,
            changed_at,
        }
    }
}

/// The webhook's running tasks.
struct Webhook {
    server: tokio::task::JoinHandle<()>,
    certs: tokio::task::JoinHandle<()>,
    cert_loaded: watch::Receiver<bool>,
}

async fn start_webhook(
    settings: &WebhookSettings,
    kube: &kube::Client,
    replica: &Replica,
    namespaces: &Namespaces,
    reviews: mpsc::Sender<ReviewRequest>,
    metrics: AdmissionMetrics,
) -> std::io::Result<Webhook> {
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let serving = Arc::new(admission::ServingCert::default());
    let (loaded_tx, cert_loaded) = watch::channel(false);
    let certs = tokio::spawn(
        admission::CertTask {
            source: settings.certs.clone(),
            client: kube.clone(),
            serving: serving.clone(),
            leadership: replica.leader.subscribe(),
            loaded: loaded_tx,
        }
        .run(),
    );
    let router = admission::router(reviews, namespaces.clone(), metrics);
    let server = tokio::spawn(admission::serve(listener, router, serving));
    tracing::info!(listen = %settings.listen, "admission webhook serving");
    Ok(Webhook {
        server,
        certs,
        cert_loaded,
    })
}

/// Fault injection (test builds): `task` ends a second after this replica
/// became leader, as if it had returned.
fn end_once_leading(
    task: tokio::task::JoinHandle<()>,
    mut leadership: watch::Receiver<crate::leader::Leadership>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = leadership.wait_for(|l| l.leading).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        task.abort();
        tracing::warn!("fault injection: ending the index task");
    })
}

/// Waits for SIGTERM (the kubelet's stop) or Ctrl-C.
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
    }
    Ok(())
}
