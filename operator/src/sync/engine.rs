//! The leader's sync loop: claim the fence on promotion, run a full resync,
//! then write every desired-state change as a diff; resync again every
//! interval. Followers wait, with their mirror and desired state warm.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::watch;
use tokio::time::Instant;

use super::DesiredState;
use super::etcd_read;
use super::mirror_task::{SharedMirror, read_mirror, write_mirror};
use super::writer::{EtcdWriter, WriteError, WriteReport};
use super::{JournalCursor, PlanInput, PlanLimits, WritePlan, plan, plan_keys};
use crate::apisix::Ownership;
use crate::leader::{self, FenceClaim, FenceError, FenceKey, LeaderHandle};
use crate::telemetry::SyncMetrics;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The APISIX prefix, e.g. `/apisix`.
    pub prefix: String,
    pub ownership: Ownership,
    pub fence_key: FenceKey,
    pub identity: String,
    pub limits: PlanLimits,
    pub resync_interval: Duration,
    /// Bound on every etcd call.
    pub etcd_timeout: Duration,
}

impl EngineConfig {
    pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(300);
}

/// What the engine last did, for health checks, logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStatus {
    pub leading: bool,
    pub fence: Option<FenceClaim>,
    /// The revision of the last transaction this replica committed.
    pub last_commit_revision: Option<i64>,
    /// The Lease token of the term in which etcd last matched the desired
    /// state (after a sync); `None` until the current term's first sync.
    /// Status writes wait for it, so etcd is written first.
    pub synced_token: Option<i64>,
    /// Full resyncs completed while leading (since start).
    pub resyncs: u64,
    /// Keys changed by the last full resync (0 on an idle cluster).
    pub last_resync_changes: usize,
    /// Transactions refused because the fence moved (since start).
    pub fence_losses: u64,
    pub last_error: Option<String>,
}

/// The inputs the engine watches.
pub struct EngineInputs {
    pub desired: watch::Receiver<Arc<DesiredState>>,
    /// True once every reflector has synced: only then may orphans be deleted.
    pub caches_ready: watch::Receiver<bool>,
    pub shutdown: watch::Receiver<bool>,
    /// When the oldest watch change behind the current desired state
    /// arrived (for the event-to-commit latency); `None` when unknown.
    pub changed_at: Option<watch::Receiver<Option<std::time::Instant>>>,
    /// The mirror's revision: it moves on every change the etcd watch sees,
    /// so a foreign change to an owned key is repaired at once.
    pub mirror_revision: watch::Receiver<i64>,
    /// True while the mirror is loaded and its watch established.
    pub etcd_watching: watch::Receiver<bool>,
    /// Asks the mirror's watch for a progress report (its current revision).
    pub mirror_progress: Arc<tokio::sync::Notify>,
}

/// What etcd held, as far as the mirror saw, after the last successful sync
/// of this term: the next sync only needs to look at what changed since
/// (in the desired state and in the mirror's journal).
struct Synced {
    desired: Arc<DesiredState>,
    /// The mirror's journal position when that sync planned.
    mirror_cursor: JournalCursor,
    deletions_allowed: bool,
}

/// How long the engine waits after a mirror change before re-planning, so
/// a burst of watch events (often the echo of its own commits) costs one plan.
const MIRROR_DEBOUNCE: Duration = Duration::from_millis(20);

/// How long a new leader waits for the mirror to report the fence claim's
/// revision before reading etcd afresh instead.
const MIRROR_CATCH_UP: Duration = Duration::from_millis(300);

pub struct SyncEngine {
    config: EngineConfig,
    etcd: etcd_client::Client,
    writer: EtcdWriter,
    mirror: SharedMirror,
    leader: LeaderHandle,
    inputs: EngineInputs,
    metrics: SyncMetrics,
    status: watch::Sender<EngineStatus>,
}

enum SyncKind {
    /// Plan against the watch-fed mirror, looking only at what changed
    /// since the last sync when that is known.
    Incremental,
    /// Plan over every key, and count what it finds as drift; with
    /// `fresh_read`, read etcd afresh first (a periodic resync, or a
    /// promotion whose mirror is not provably current).
    Full { fresh_read: bool },
}

const CONFLICT_ATTEMPTS: usize = 5;

impl SyncEngine {
    pub fn new(
        config: EngineConfig,
        etcd: etcd_client::Client,
        mirror: SharedMirror,
        leader: LeaderHandle,
        inputs: EngineInputs,
        metrics: SyncMetrics,
    ) -> (SyncEngine, watch::Receiver<EngineStatus>) {
        let (status, status_rx) = watch::channel(EngineStatus::default());
        let writer = EtcdWriter {
            client: etcd.clone(),
            timeout: config.etcd_timeout,
            metrics: metrics.clone(),
        };
        (
            SyncEngine {
                config,
                etcd,
                writer,
                mirror,
                leader,
                inputs,
                metrics,
                status,
            },
            status_rx,
        )
    }

    pub async fn run(mut self) {
        let mut leadership = self.leader.subscribe();
        // The last term this replica led with and gave up: leadership under
        // it, still shown until the elector catches up, is not led again.
        let mut ended_term: Option<i64> = None;
        loop {
            // Follower: wait for promotion (or shutdown).
            let token = loop {
                if *self.inputs.shutdown.borrow() {
                    return;
                }
                let current = leadership.borrow_and_update().clone();
                if current.leading && ended_term.is_none_or(|ended| current.token > ended) {
                    break current.token;
                }
                tokio::select! {
                    changed = leadership.changed() => if changed.is_err() { return },
                    // A dropped shutdown sender means nobody can stop us
                    // gracefully any more: treat it as the stop.
                    changed = self.inputs.shutdown.changed() => if changed.is_err() { return },
                }
            };
            // Only a claimed fence makes a leader (and a transition).
            if let Some(claim) = self.claim_fence(token, &mut leadership).await {
                self.metrics.leader.set(1);
                self.metrics.leader_transitions.inc();
                self.status.send_modify(|s| {
                    s.leading = true;
                    s.fence = Some(claim.clone());
                });
                self.lead(claim, &mut leadership).await;
            }
            ended_term = Some(token);
            self.metrics.leader.set(0);
            self.status.send_modify(|s| {
                s.leading = false;
                s.fence = None;
                s.synced_token = None;
            });
        }
    }

    /// Claims the fence with our Lease token; gives up (and steps down) when
    /// a newer leader holds it, or when we stop leading while retrying.
    async fn claim_fence(
        &mut self,
        token: i64,
        leadership: &mut watch::Receiver<leader::Leadership>,
    ) -> Option<FenceClaim> {
        let mut backoff = retry_backoff();
        loop {
            let result = leader::claim_fence(
                &mut self.etcd,
                &self.config.fence_key,
                token,
                &self.config.identity,
                self.config.etcd_timeout,
            )
            .await;
            match result {
                Ok(claim) => {
                    tracing::info!(token, revision = claim.revision, "claimed the fence");
                    return Some(claim);
                }
                Err(err @ FenceError::Stale { .. }) => {
                    tracing::warn!(error = %err, "fence claim refused; stepping down");
                    self.note_error(err.to_string());
                    self.leader.step_down().await;
                    return None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "fence claim failed; retrying");
                    self.note_error(err.to_string());
                }
            }
            let delay = backoff.next().unwrap_or(Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.inputs.shutdown.changed() => return None,
                _ = leadership.changed() => {}
            }
            if !self.still_leading(leadership, token) {
                return None;
            }
        }
    }

    fn still_leading(&self, leadership: &watch::Receiver<leader::Leadership>, token: i64) -> bool {
        let current = leadership.borrow();
        current.leading && current.token == token && !*self.inputs.shutdown.borrow()
    }

    /// The leading loop: a full resync now and every interval, incremental
    /// syncs on every desired-state change, retries after failures.
    async fn lead(
        &mut self,
        claim: FenceClaim,
        leadership: &mut watch::Receiver<leader::Leadership>,
    ) {
        let mut resync_at = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut backoff = retry_backoff();
        let mut dirty = true;
        let mut synced: Option<Synced> = None;
        // A closed input channel means its value is final, not that we
        // should stop leading: stop listening to it and carry on.
        let mut desired_open = true;
        let mut ready_open = true;
        let mut mirror_open = true;
        // A new leader's first sync is a full one; it reads etcd afresh only
        // when the mirror cannot be shown current.
        let mut promotion = Some(!self.mirror_is_current(&claim).await);
        self.inputs.mirror_revision.borrow_and_update();
        loop {
            if !self.still_leading(leadership, claim.token) {
                return;
            }
            let now = Instant::now();
            let kind = if now >= resync_at {
                resync_at = now + self.config.resync_interval;
                Some(SyncKind::Full {
                    fresh_read: promotion.take().unwrap_or(true),
                })
            } else if dirty && retry_at.is_none_or(|at| now >= at) {
                Some(SyncKind::Incremental)
            } else {
                None
            };
            if let Some(kind) = kind {
                self.inputs.desired.borrow_and_update();
                match self.sync(&claim, kind, &mut synced).await {
                    Ok(()) => {
                        dirty = false;
                        retry_at = None;
                        backoff = retry_backoff();
                    }
                    Err(WriteError::FenceLost { .. }) => {
                        self.status.send_modify(|s| s.fence_losses += 1);
                        tracing::warn!(
                            "a newer leader holds the fence; stopping writes and stepping down"
                        );
                        self.leader.step_down().await;
                        return;
                    }
                    Err(err) => {
                        // A failed write may be the first sign that etcd is
                        // out of reach, which an idle watch learns only at
                        // its next keepalive: probe the mirror's watch now,
                        // so the elector hears of it (and hands over) within
                        // the renew deadline.
                        self.inputs.mirror_progress.notify_one();
                        let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                        tracing::warn!(error = %err, ?delay, "sync failed; retrying");
                        dirty = true;
                        retry_at = Some(Instant::now() + delay);
                    }
                }
                continue;
            }
            let wake = retry_at
                .filter(|_| dirty)
                .map_or(resync_at, |at| at.min(resync_at));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                changed = self.inputs.desired.changed(), if desired_open => {
                    desired_open = changed.is_ok();
                    dirty = true;
                }
                changed = self.inputs.caches_ready.changed(), if ready_open => {
                    ready_open = changed.is_ok();
                    dirty = true;
                }
                changed = self.inputs.mirror_revision.changed(), if mirror_open => {
                    mirror_open = changed.is_ok();
                    // Drift is repaired on sight: a foreign write to an
                    // owned key is in the journal the next plan reads.
                    tokio::time::sleep(MIRROR_DEBOUNCE).await;
                    self.inputs.mirror_revision.borrow_and_update();
                    dirty = true;
                }
                _ = leadership.changed() => {}
                _ = self.inputs.shutdown.changed() => return,
            }
        }
    }

    /// Plans and writes until etcd matches the desired state, refreshing the
    /// mirror and re-planning (over every key) after key conflicts.
    async fn sync(
        &mut self,
        claim: &FenceClaim,
        kind: SyncKind,
        synced: &mut Option<Synced>,
    ) -> Result<(), WriteError> {
        let full = matches!(kind, SyncKind::Full { .. });
        let started = std::time::Instant::now();
        let mut backoff = retry_backoff();
        let mut refresh = matches!(kind, SyncKind::Full { fresh_read: true });
        let mut attempt = 0;
        loop {
            attempt += 1;
            if refresh {
                self.refresh_mirror().await?;
            }
            let previous = if full || refresh {
                None
            } else {
                synced.as_ref()
            };
            let (plan, next) = self.plan(previous);
            if !plan.is_empty() {
                tracing::debug!(
                    full,
                    puts = plan.puts(),
                    deletes = plan.deletes(),
                    txns = plan.txns.len(),
                    waves = plan.waves().len(),
                    since_start = ?started.elapsed(),
                    "planned"
                );
            }
            if !plan.refused.is_empty() {
                tracing::error!(keys = ?plan.refused, "desired keys this installation does not own were refused");
            }
            let changed_at = self.inputs.changed_at.as_ref().and_then(|at| *at.borrow());
            let result = self.writer.execute(&plan, claim, &self.mirror).await;
            match result {
                Ok(report) => {
                    if let (Some(at), false) = (changed_at, plan.is_empty()) {
                        self.metrics
                            .event_to_commit_seconds
                            .observe(at.elapsed().as_secs_f64());
                    }
                    self.finish(full, &plan, &report, next.deletions_allowed);
                    if full {
                        self.metrics
                            .last_resync_duration_seconds
                            .set(started.elapsed().as_secs_f64());
                    }
                    *synced = Some(next);
                    return Ok(());
                }
                Err(err @ WriteError::KeyConflict { .. }) if attempt < CONFLICT_ATTEMPTS => {
                    tracing::info!(error = %err, "refreshing the mirror and re-planning");
                    refresh = true;
                    tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(1))).await;
                }
                Err(err) => {
                    self.note_error(err.to_string());
                    return Err(err);
                }
            }
        }
    }

    /// The plan from the mirror to the current desired state, and what etcd
    /// will hold once it committed. With `previous` (the last sync's), only
    /// the keys changed since are looked at: the desired state's changes and
    /// the mirror journal's. Without it, or when the journal cannot tell,
    /// every key is.
    fn plan(&self, previous: Option<&Synced>) -> (WritePlan, Synced) {
        let desired = self.inputs.desired.borrow().clone();
        let mirror = read_mirror(&self.mirror);
        let deletions_allowed = *self.inputs.caches_ready.borrow() && mirror.is_loaded();
        let input = PlanInput {
            desired: &desired,
            mirror: &mirror,
            ownership: &self.config.ownership,
            prefix: &self.config.prefix,
            limits: self.config.limits,
            deletions_allowed,
        };
        let changed = previous
            .filter(|p| p.deletions_allowed == deletions_allowed)
            .and_then(|p| Some((p, mirror.changed_since(p.mirror_cursor)?)));
        let plan = match changed {
            Some((previous, journal)) => {
                self.metrics.count_plan("incremental");
                let keys = desired
                    .changed_keys(&previous.desired)
                    .map(|key| key.as_str())
                    .chain(journal);
                plan_keys(input, keys)
            }
            None => {
                self.metrics.count_plan("full");
                plan(input)
            }
        };
        let next = Synced {
            desired: desired.clone(),
            mirror_cursor: mirror.cursor(),
            deletions_allowed,
        };
        (plan, next)
    }

    /// Whether the mirror provably reflects etcd as of our fence claim: its
    /// watch is up and has reached the claim's revision (asked for with a
    /// progress request, answered within a short wait). Then promotion needs
    /// no paginated re-read of the whole prefix.
    async fn mirror_is_current(&mut self, claim: &FenceClaim) -> bool {
        if !*self.inputs.etcd_watching.borrow() {
            return false;
        }
        if read_mirror(&self.mirror).revision() >= claim.revision {
            return true;
        }
        self.inputs.mirror_progress.notify_one();
        let mut revision = self.inputs.mirror_revision.clone();
        let reached = revision.wait_for(|r| *r >= claim.revision);
        matches!(
            tokio::time::timeout(MIRROR_CATCH_UP, reached).await,
            Ok(Ok(_))
        ) && *self.inputs.etcd_watching.borrow()
    }

    /// A fresh, consistent, paginated read of the prefix replaces the mirror
    /// (unless the watch already got further).
    async fn refresh_mirror(&mut self) -> Result<(), WriteError> {
        match etcd_read::list_prefix(
            &mut self.etcd,
            &self.config.prefix,
            self.config.etcd_timeout,
        )
        .await
        {
            Ok(fresh) => {
                write_mirror(&self.mirror).reset(fresh);
                Ok(())
            }
            Err(etcd_read::ReadError::Etcd { source, .. }) => Err(WriteError::Etcd(source)),
            Err(etcd_read::ReadError::Timeout { timeout, .. }) => Err(WriteError::Timeout(timeout)),
            Err(err @ etcd_read::ReadError::NoHeader) => Err(WriteError::Etcd(
                etcd_client::Error::InvalidArgs(err.to_string()),
            )),
        }
    }

    /// Records a committed plan; `complete` when it was made from the whole
    /// desired state (caches ready, the mirror loaded).
    fn finish(&self, full: bool, plan: &WritePlan, report: &WriteReport, complete: bool) {
        let changes = report.puts + report.deletes;
        if full {
            self.metrics.resyncs.inc();
            self.metrics.resync_drift_repaired.inc_by(changes as u64);
        }
        if changes > 0 || plan.deferred_deletions > 0 {
            tracing::info!(
                full,
                puts = report.puts,
                deletes = report.deletes,
                txns = report.txns,
                deferred_deletions = plan.deferred_deletions,
                revision = ?report.last_revision,
                "synced"
            );
        }
        self.status.send_modify(|s| {
            if report.last_revision.is_some() {
                s.last_commit_revision = report.last_revision;
            }
            if complete {
                s.synced_token = s.fence.as_ref().map(|fence| fence.token);
            }
            if full {
                s.resyncs += 1;
                s.last_resync_changes = changes;
            }
            s.last_error = None;
        });
    }

    fn note_error(&self, error: String) {
        self.status.send_modify(|s| s.last_error = Some(error));
    }
}

fn retry_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .without_max_times()
        .build()
}
