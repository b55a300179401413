//! Prometheus metrics (OpenMetrics) of the sync engine. Names are registered
//! under the `apisix_operator` prefix; counters get `_total` from the encoder.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a write transaction ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TxnResult {
    Committed,
    KeyConflict,
    FenceLost,
    Error,
}

impl TxnResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnResult::Committed => "committed",
            TxnResult::KeyConflict => "key_conflict",
            TxnResult::FenceLost => "fence_lost",
            TxnResult::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TxnLabels {
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    pub mode: &'static str,
}

/// The sync engine's metrics. Cloning shares the underlying series.
#[derive(Clone)]
pub struct SyncMetrics {
    pub leader: Gauge,
    pub leader_transitions: Counter,
    pub etcd_transactions: Family<TxnLabels, Counter>,
    pub keys_written: Counter,
    pub keys_deleted: Counter,
    pub plan_operations: Histogram,
    pub resync_drift_repaired: Counter,
    pub resyncs: Counter,
    pub mirror_revision: Gauge,
    pub mirror_revision_lag: Gauge,
    pub mirror_lists: Counter,
    pub write_duration_seconds: Histogram,
    pub event_to_commit_seconds: Histogram,
    pub plans: Family<PlanLabels, Counter>,
    pub last_resync_duration_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        SyncMetrics {
            leader: Gauge::default(),
            leader_transitions: Counter::default(),
            etcd_transactions: Family::default(),
            keys_written: Counter::default(),
            keys_deleted: Counter::default(),
            plan_operations: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            resync_drift_repaired: Counter::default(),
            resyncs: Counter::default(),
            mirror_revision: Gauge::default(),
            mirror_revision_lag: Gauge::default(),
            mirror_lists: Counter::default(),
            write_duration_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            event_to_commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            plans: Family::default(),
            last_resync_duration_seconds: Gauge::default(),
        }
    }
}

impl SyncMetrics {
    /// The metric names, as documented in the README (without the prefix).
    pub const NAMES: [&'static str; 15] = [
        "leader",
        "leader_transitions",
        "etcd_transactions",
        "etcd_keys_written",
        "etcd_keys_deleted",
        "plan_operations",
        "resync_drift_repaired",
        "resyncs",
        "mirror_revision",
        "mirror_revision_lag",
        "mirror_lists",
        "etcd_write_duration_seconds",
        "event_to_commit_seconds",
        "sync_plans",
        "last_resync_duration_seconds",
    ];

    pub fn register(&self, registry: &mut Registry) {
        // Every known label value starts at zero, so dashboards and alerts
        // see the series before the first event.
        for result in [
            TxnResult::Committed,
            TxnResult::KeyConflict,
            TxnResult::FenceLost,
            TxnResult::Error,
        ] {
            self.count_txn_by(result, 0);
        }
        registry.register(
            "leader",
            "1 while this replica leads, else 0",
            self.leader.clone(),
        );
        registry.register(
            "leader_transitions",
            "Times this replica became leader",
            self.leader_transitions.clone(),
        );
        registry.register(
            "etcd_transactions",
            "Write transactions by result: committed, key_conflict, fence_lost, error",
            self.etcd_transactions.clone(),
        );
        registry.register(
            "etcd_keys_written",
            "APISIX keys put",
            self.keys_written.clone(),
        );
        registry.register(
            "etcd_keys_deleted",
            "APISIX keys deleted",
            self.keys_deleted.clone(),
        );
        registry.register(
            "plan_operations",
            "Key operations per non-empty write plan",
            self.plan_operations.clone(),
        );
        registry.register(
            "resync_drift_repaired",
            "Keys a full resync found different from the desired state and repaired",
            self.resync_drift_repaired.clone(),
        );
        registry.register("resyncs", "Full resyncs run", self.resyncs.clone());
        registry.register(
            "mirror_revision",
            "etcd revision the mirror of the APISIX prefix is current to",
            self.mirror_revision.clone(),
        );
        registry.register(
            "mirror_revision_lag",
            "Revisions between etcd's latest seen header and the mirror",
            self.mirror_revision_lag.clone(),
        );
        registry.register(
            "mirror_lists",
            "Full lists of the APISIX prefix by the mirror (start-up and after compaction)",
            self.mirror_lists.clone(),
        );
        registry.register(
            "etcd_write_duration_seconds",
            "Duration of one write transaction",
            self.write_duration_seconds.clone(),
        );
        for mode in ["incremental", "full"] {
            let _ = self.plans.get_or_create(&PlanLabels { mode });
        }
        registry.register(
            "last_resync_duration_seconds",
            "Duration of the latest full resync (fresh read of etcd, full plan, writes)",
            self.last_resync_duration_seconds.clone(),
        );
        registry.register(
            "sync_plans",
            "Write plans by mode: incremental (only what changed since the last sync) or full (every key)",
            self.plans.clone(),
        );
        registry.register(
            "event_to_commit_seconds",
            "From a watch change reaching the index to the leader committing its effect to etcd",
            self.event_to_commit_seconds.clone(),
        );
    }

    pub fn count_plan(&self, mode: &'static str) {
        self.plans.get_or_create(&PlanLabels { mode }).inc();
    }

    fn count_txn_by(&self, result: TxnResult, n: u64) {
        self.etcd_transactions
            .get_or_create(&TxnLabels {
                result: result.as_str(),
            })
            .inc_by(n);
    }

    pub fn count_txn(&self, result: TxnResult) {
        self.etcd_transactions
            .get_or_create(&TxnLabels {
                result: result.as_str(),
            })
            .inc();
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnitLabels {
    pub kind: &'static str,
    /// translated, failed or removed.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// Translation metrics. Cloning shares the underlying series.
#[derive(Clone, Default)]
pub struct TranslateMetrics {
    pub units: Family<UnitLabels, Counter>,
    pub unit_errors: Family<KindLabels, Gauge>,
    pub queue_depth: Gauge,
}

impl TranslateMetrics {
    pub const NAMES: [&'static str; 3] = [
        "translation_units",
        "translation_unit_errors",
        "index_queue_depth",
    ];

    pub fn register(&self, registry: &mut Registry) {
        // Every unit kind of the registry starts at zero.
        for kind in crate::registry::unit_kind_names() {
            for result in ["translated", "failed", "removed"] {
                let _ = self.units.get_or_create(&UnitLabels { kind, result });
            }
            let _ = self.unit_errors.get_or_create(&KindLabels { kind });
        }
        registry.register(
            "translation_units",
            "Unit translations by kind and result: translated, failed, removed",
            self.units.clone(),
        );
        registry.register(
            "translation_unit_errors",
            "Units whose latest translation failed (their last good objects stay), by kind",
            self.unit_errors.clone(),
        );
        registry.register(
            "index_queue_depth",
            "Watch changes waiting for the index task",
            self.queue_depth.clone(),
        );
    }

    pub fn count_unit(&self, kind: &'static str, result: &'static str) {
        self.units.get_or_create(&UnitLabels { kind, result }).inc();
    }
}

/// A registry with every metric of the operator.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// The Kubernetes kind reviewed.
    pub kind: String,
    /// admitted, refused, timed_out or not_reviewed.
    pub verdict: &'static str,
}

/// The admission webhook's metrics. Cloning shares the underlying series.
#[derive(Clone)]
pub struct AdmissionMetrics {
    pub reviews: Family<ReviewLabels, Counter>,
    pub review_duration_seconds: Histogram,
}

impl Default for AdmissionMetrics {
    fn default() -> Self {
        AdmissionMetrics {
            reviews: Family::default(),
            // 100 µs to about 6.5 s.
            review_duration_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 17)),
        }
    }
}

impl AdmissionMetrics {
    pub const NAMES: [&'static str; 2] = ["admission_reviews", "admission_review_duration_seconds"];

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "admission_reviews",
            "Admission reviews by kind and verdict: admitted, refused, timed_out, not_reviewed",
            self.reviews.clone(),
        );
        registry.register(
            "admission_review_duration_seconds",
            "Time from a review's arrival to its answer",
            self.review_duration_seconds.clone(),
        );
    }

    pub fn observe(&self, kind: &str, verdict: &'static str, took: std::time::Duration) {
        self.reviews
            .get_or_create(&ReviewLabels {
                kind: kind.to_string(),
                verdict,
            })
            .inc();
        self.review_duration_seconds.observe(took.as_secs_f64());
    }
}

pub fn registry(
    sync: &SyncMetrics,
    translate: &TranslateMetrics,
    admission: &AdmissionMetrics,
) -> Registry {
    let mut registry = Registry::with_prefix("apisix_operator");
    sync.register(&mut registry);
    translate.register(&mut registry);
    admission.register(&mut registry);
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_documented_name() {
        let metrics = SyncMetrics::default();
        metrics.count_txn(TxnResult::Committed);
        let translate = TranslateMetrics::default();
        translate.count_unit("Ingress", "translated");
        let admission = AdmissionMetrics::default();
        admission.observe("Ingress", "admitted", std::time::Duration::from_millis(2));
        let registry = registry(&metrics, &translate, &admission);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let names = SyncMetrics::NAMES.iter().chain(&TranslateMetrics::NAMES);
        for name in names.chain(&AdmissionMetrics::NAMES) {
            assert!(
                text.contains(&format!("# TYPE apisix_operator_{name} ")),
                "{name} missing from:\n{text}"
            );
        }
        assert!(
            text.contains("apisix_operator_etcd_transactions_total{result=\"committed\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
