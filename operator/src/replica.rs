//! Wiring of one replica's sync side: the Lease elector, the etcd mirror's
//! watch and the sync engine. Every replica runs all three; only the one
//! that leads (and holds the fence) writes.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::leader::{LeaderHandle, LeaseConfig, LeaseElector};
use crate::sync::{
    DesiredState, EngineConfig, EngineInputs, EngineStatus, MirrorState, MirrorTask, SharedMirror,
    SyncEngine,
};
use crate::telemetry::SyncMetrics;

#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub lease: LeaseConfig,
    pub engine: EngineConfig,
}

/// A running replica.
pub struct Replica {
    pub leader: LeaderHandle,
    pub status: watch::Receiver<EngineStatus>,
    pub mirror: SharedMirror,
    /// The mirror's revision, published on every change.
    pub mirror_revision: watch::Receiver<i64>,
    /// True while the mirror is loaded and watching etcd.
    pub etcd_watching: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
    /// The replica's long-lived tasks (a finished one is taken out).
    elector: Option<JoinHandle<()>>,
    engine: Option<JoinHandle<()>>,
    mirror_task: Option<JoinHandle<()>>,
}

/// What a replica's engine follows: the desired state, cache readiness and
/// (for the event-to-commit metric) when the oldest change behind the
/// current desired state arrived.
pub struct ReplicaInputs {
    pub desired: watch::Receiver<Arc<DesiredState>>,
    pub caches_ready: watch::Receiver<bool>,
    pub changed_at: Option<watch::Receiver<Option<std::time::Instant>>>,
}

impl ReplicaInputs {
    pub fn new(
        desired: watch::Receiver<Arc<DesiredState>>,
        caches_ready: watch::Receiver<bool>,
    ) -> ReplicaInputs {
        ReplicaInputs {
            desired,
            caches_ready,
            changed_at: None,
        }
    }
}

impl Replica {
    pub fn start(
        config: ReplicaConfig,
        kube: kube::Client,
        etcd: etcd_client::Client,
        inputs: ReplicaInputs,
        metrics: SyncMetrics,
    ) -> Replica {
        let mirror: SharedMirror = Arc::new(RwLock::new(MirrorState::default()));
        let (revision_tx, mirror_revision) = watch::channel(0);
        let (watching_tx, etcd_watching) = watch::channel(false);
        let progress = Arc::new(tokio::sync::Notify::new());
        let mirror_task = tokio::spawn(
            MirrorTask {
                client: etcd.clone(),
                prefix: config.engine.prefix.clone(),
                mirror: mirror.clone(),
                revision: revision_tx,
                watching: watching_tx,
                metrics: metrics.clone(),
                call_timeout: config.engine.etcd_timeout,
                progress: progress.clone(),
            }
            .run(),
        );
        let elector = LeaseElector::new(
            config.lease.clone(),
            kube,
            etcd.clone(),
            config.engine.fence_key.clone(),
        )
        .with_etcd_health(etcd_watching.clone());
        let (leader, elector) = elector.spawn();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (engine, status) = SyncEngine::new(
            config.engine,
            etcd,
            mirror.clone(),
            leader.clone(),
            EngineInputs {
                desired: inputs.desired,
                caches_ready: inputs.caches_ready,
                shutdown: shutdown_rx,
                changed_at: inputs.changed_at,
                mirror_revision: mirror_revision.clone(),
                etcd_watching: etcd_watching.clone(),
                mirror_progress: progress,
            },
            metrics,
        );
        let engine = tokio::spawn(engine.run());
        Replica {
            leader,
            status,
            mirror,
            mirror_revision,
            etcd_watching,
            shutdown,
            elector: Some(elector),
            engine: Some(engine),
            mirror_task: Some(mirror_task),
        }
    }

    /// Waits until one of the replica's tasks (the elector, the engine, the
    /// etcd mirror) ends, which none should while the replica runs: its name
    /// and how it ended. Supervision stops the process then.
    pub async fn died(&mut self) -> (&'static str, String) {
        let mut tasks: Vec<(&'static str, &mut Option<JoinHandle<()>>)> = vec![
            ("the Lease elector", &mut self.elector),
            ("the sync engine", &mut self.engine),
            ("the etcd mirror", &mut self.mirror_task),
        ];
        let running: Vec<_> = tasks
            .iter_mut()
            .filter_map(|(name, task)| {
                let handle = task.as_mut()?;
                Some(Box::pin(async move { (*name, handle.await) }))
            })
            .collect();
        if running.is_empty() {
            return std::future::pending().await;
        }
        let ((name, ended), _, _) = futures::future::select_all(running).await;
        for (task_name, task) in tasks {
            if task_name == name {
                *task = None;
            }
        }
        (name, crate::supervise::how_it_ended(ended))
    }

    /// Graceful stop: the engine finishes its in-flight sync and stops, then
    /// the Lease is released so a successor takes over at once.
    pub async fn shutdown(self) {
        // First of all, stop campaigning: a follower must not win the Lease
        // during shutdown only to hand it straight back.
        self.leader.retire().await;
        let _ = self.shutdown.send(true);
        if let Some(engine) = self.engine {
            let _ = engine.await;
        }
        self.leader.release().await;
        if let Some(elector) = self.elector {
            let _ = elector.await;
        }
        if let Some(mirror) = self.mirror_task {
            mirror.abort();
        }
    }

    /// Stops every task at once without releasing anything: what a crash
    /// (SIGKILL) looks like to the rest of the system.
    pub fn abort(self) {
        for task in [self.engine, self.elector, self.mirror_task]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}
