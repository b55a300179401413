//! The index task of a replica: applies watch changes, re-translates dirty
//! units, and publishes the desired state (to the sync engine), cache
//! readiness, and the status view (to the status writer). Runs on every
//! replica, so a new leader starts from a warm desired state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use std::time::Instant;

use super::watch::WatchMessage;
use super::{ClusterIndex, Feeder, UnitOutcome};
use crate::status::{LoadBalancerSource, StatusView};
use crate::sync::{DesiredState, UnitKey};
use crate::telemetry::TranslateMetrics;

/// What the published status view was built from: the index's status
/// revision and the publish Service's addresses.
type StatusRevision = (
    u64,
    Option<Vec<k8s_openapi::api::networking::v1::IngressLoadBalancerIngress>>,
);

/// Changes applied before one flush, at most (so a flood of events cannot
/// delay translation indefinitely).
const MAX_BATCH: usize = 10_000;

/// Units translated between two publications of the desired state: a large
/// flush (the first one after a start, above all) publishes as it goes, so
/// the sync engine writes the first units' objects while the others are
/// translated. Deletions wait for the whole flush: caches are ready (and
/// the engine may delete orphans) only once it is done.
const FLUSH_PART: usize = 1_000;

/// Units re-translated per step of the periodic full recompute. The
/// recompute goes a part at a time, and watch changes always go first, so a
/// change waits for one part at most, whatever the size of the cluster.
const RECOMPUTE_PART: usize = 200;

/// An admission review for the index task: the candidate object (and the
/// stored version of an update), and where the verdict goes.
pub struct ReviewRequest {
    pub kind: &'static dyn crate::model::Kind,
    pub object: crate::model::AnyObject,
    pub old: Option<crate::model::AnyObject>,
    pub reply: tokio::sync::oneshot::Sender<super::Review>,
}

pub struct IndexTask {
    pub index: ClusterIndex,
    pub feeder: Feeder,
    /// Watches that must finish their first list before caches count as warm.
    pub expected_syncs: usize,
    pub changes: mpsc::Receiver<WatchMessage>,
    /// Admission reviews from the webhook (none when it is off).
    pub reviews: mpsc::Receiver<ReviewRequest>,
    pub desired: watch::Sender<Arc<DesiredState>>,
    pub ready: watch::Sender<bool>,
    pub status: watch::Sender<Arc<StatusView>>,
    pub lb_source: Option<LoadBalancerSource>,
    /// Every unit is translated again this often (a full recompute, so an
    /// incremental slip cannot persist), [`RECOMPUTE_PART`] units at a time.
    pub recompute_interval: Duration,
    pub metrics: TranslateMetrics,
    /// When the oldest change not yet reflected in the published desired
    /// state arrived.
    pub changed_at: watch::Sender<Option<Instant>>,
}

impl IndexTask {
    pub async fn run(mut self) {
        let mut recompute = tokio::time::interval(self.recompute_interval);
        recompute.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recompute.tick().await;
        // The arrival of the oldest change not yet published.
        let mut pending_since: Option<Instant> = None;
        let mut status_built_at: Option<StatusRevision> = None;
        // The units the running recompute has still to look at.
        let mut recompute_left: VecDeque<UnitKey> = VecDeque::new();
        loop {
            tokio::select! {
                biased;
                message = self.changes.recv() => {
                    let Some(message) = message else { return };
                    pending_since.get_or_insert_with(Instant::now);
                    self.receive(message);
                    for _ in 0..MAX_BATCH {
                        match self.changes.try_recv() {
                            Ok(message) => self.receive(message),
                            Err(_) => break,
                        }
                    }
                }
                Some(review) = self.reviews.recv() => {
                    self.review(review);
                    continue;
                }
                _ = recompute.tick() => recompute_left = self.index.unit_keys().into(),
                () = std::future::ready(()), if !recompute_left.is_empty() => {
                    let part = recompute_left.len().min(RECOMPUTE_PART);
                    self.index.mark_existing(recompute_left.drain(..part));
                }
            }
            // Until every watch has listed once, the index is incomplete:
            // translating now would publish a partial desired state.
            self.metrics
                .queue_depth
                .set(i64::try_from(self.changes.len()).unwrap_or(i64::MAX));
            if self.feeder.synced() < self.expected_syncs {
                continue;
            }
            if let Some(since) = pending_since.take() {
                self.changed_at.send_replace(Some(since));
            }
            self.flush(&mut status_built_at);
        }
    }

    /// Answers a review from the current index (nothing changes in it).
    fn review(&self, request: ReviewRequest) {
        let completeness = if self.feeder.synced() < self.expected_syncs {
            super::Completeness::Loading
        } else {
            super::Completeness::Synced
        };
        let verdict = self.index.review(
            request.kind,
            &request.object,
            request.old.as_ref(),
            completeness,
        );
        // The webhook may have given up waiting: nobody to tell.
        let _ = request.reply.send(verdict);
    }

    fn receive(&mut self, message: WatchMessage) {
        match message {
            WatchMessage::Change(change) => self.feeder.apply(&mut self.index, change),
            WatchMessage::Failed { kind, error } => {
                tracing::warn!(kind, %error, "watch failed; retrying")
            }
        }
    }

    /// Translates the dirty units and publishes; `status_built_at` is the
    /// index's status revision the last status view was built at.
    fn flush(&mut self, status_built_at: &mut Option<StatusRevision>) {
        let started = Instant::now();
        let mut units = 0;
        loop {
            let outcomes = self.index.flush_at_most(FLUSH_PART);
            units += outcomes.len();
            self.report(outcomes);
            self.publish_desired();
            if !self.index.has_dirty() {
                break;
            }
        }
        if units > 0 {
            tracing::debug!(units, took = ?started.elapsed(), "flushed");
        }
        self.publish_unit_errors();
        self.ready
            .send_if_modified(|ready| !std::mem::replace(ready, true));
        // The index keeps the view current as it flushes; publishing it is
        // an O(1) clone, done only when it (or the publish Service's
        // addresses) changed.
        let publish_lb = crate::status::publish_service_lb(&self.index, self.lb_source.as_ref());
        let revision = (self.index.status_revision(), publish_lb.clone());
        if status_built_at.as_ref() == Some(&revision) {
            return;
        }
        *status_built_at = Some(revision);
        let mut view = self.index.status().clone();
        view.publish_service_lb = publish_lb;
        self.status.send_replace(Arc::new(view));
    }

    fn report(&self, outcomes: Vec<UnitOutcome>) {
        for outcome in outcomes {
            match outcome {
                UnitOutcome::Failed { unit, error } => {
                    self.metrics.count_unit(unit.kind(), "failed");
                    tracing::warn!(%unit, %error, "translation failed; the unit's last good objects stay");
                }
                UnitOutcome::Translated { unit, objects } => {
                    self.metrics.count_unit(unit.kind(), "translated");
                    tracing::debug!(%unit, objects, "translated");
                }
                UnitOutcome::Removed { unit } => {
                    self.metrics.count_unit(unit.kind(), "removed");
                    tracing::debug!(%unit, "removed");
                }
            }
        }
    }

    fn publish_unit_errors(&self) {
        for kind in crate::registry::unit_kind_names() {
            let failing = self
                .index
                .errors()
                .keys()
                .filter(|unit| unit.kind() == kind)
                .count();
            self.metrics
                .unit_errors
                .get_or_create(&crate::telemetry::metrics::KindLabels { kind })
                .set(i64::try_from(failing).unwrap_or(i64::MAX));
        }
    }

    fn publish_desired(&self) {
        // The published state is an earlier clone of the index's own, so
        // equal revisions mean equal contents; the clone itself is O(1).
        let desired = self.index.desired();
        self.desired.send_if_modified(|current| {
            if current.revision() == desired.revision() {
                return false;
            }
            *current = Arc::new(desired.clone());
            true
        });
    }
}
