//! Executes a write plan: one etcd transaction per planned transaction, each
//! guarded by the fence compare and a per-key revision compare, the
//! transactions of one wave concurrently. Never overwrites blindly: a failed
//! compare stops the plan.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use futures::stream::{FuturesUnordered, StreamExt};

use super::MirrorEvent;
use super::mirror_task::{SharedMirror, write_mirror};
use super::{Expectation, KeyChange, PlannedTxn, WritePlan};
use crate::apisix::StoredValue;
use crate::leader::FenceClaim;
use crate::telemetry::{SyncMetrics, TxnResult};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "the fence {key} moved past our claim at revision {claimed}: a newer leader writes now"
    )]
    FenceLost { key: String, claimed: i64 },
    #[error(
        "a key changed since the mirror saw it (transaction of {keys} keys starting at {first})"
    )]
    KeyConflict { first: String, keys: usize },
    #[error("etcd transaction timed out after {0:?}")]
    Timeout(Duration),
    #[error("etcd transaction failed: {0}")]
    Etcd(#[from] etcd_client::Error),
}

impl WriteError {
    /// Worth retrying after a refresh or a pause (not a lost fence).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, WriteError::FenceLost { .. })
    }
}

/// What a plan execution committed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub txns: usize,
    pub puts: usize,
    pub deletes: usize,
    /// The revision of the last committed transaction.
    pub last_revision: Option<i64>,
}

pub struct EtcdWriter {
    pub client: etcd_client::Client,
    pub timeout: Duration,
    pub metrics: SyncMetrics,
}

/// Transactions of one wave in flight at once, at most. etcd batches
/// concurrent requests into one consensus round and one disk sync, so a cold
/// sync's couple of hundred transactions take a fraction of their time one
/// after the other; more in flight would only queue inside etcd.
const MAX_IN_FLIGHT: usize = 8;

impl EtcdWriter {
    /// Commits the plan wave by wave (see [`WritePlan::waves`]): the
    /// transactions of a wave concurrently, the next wave only once the
    /// previous one committed in full. Each commit is recorded in the mirror.
    /// Stops at the first failure; what committed before (and what was
    /// already in flight) stays.
    pub async fn execute(
        &mut self,
        plan: &WritePlan,
        fence: &FenceClaim,
        mirror: &SharedMirror,
    ) -> Result<WriteReport, WriteError> {
        let mut report = WriteReport::default();
        if !plan.is_empty() {
            self.metrics
                .plan_operations
                .observe(plan.changes().count() as f64);
        }
        for wave in plan.waves() {
            self.commit_wave(&plan.txns[wave], fence, mirror, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn commit_wave(
        &self,
        txns: &[PlannedTxn],
        fence: &FenceClaim,
        mirror: &SharedMirror,
        report: &mut WriteReport,
    ) -> Result<(), WriteError> {
        let mut pending = txns.iter();
        let mut in_flight = FuturesUnordered::new();
        let mut first_error = None;
        loop {
            while first_error.is_none() && in_flight.len() < MAX_IN_FLIGHT {
                let Some(txn) = pending.next() else { break };
                in_flight.push(async move { (txn, self.commit_measured(txn, fence).await) });
            }
            let Some((txn, result)) = in_flight.next().await else {
                break;
            };
            match result {
                Ok((revision, events)) => self.record(txn, revision, events, mirror, report),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn commit_measured(
        &self,
        txn: &PlannedTxn,
        fence: &FenceClaim,
    ) -> Result<(i64, Vec<MirrorEvent>), WriteError> {
        let started = std::time::Instant::now();
        let result = self.commit(txn, fence).await;
        self.metrics
            .write_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.count_txn(match &result {
            Ok(_) => TxnResult::Committed,
            Err(WriteError::FenceLost { .. }) => TxnResult::FenceLost,
            Err(WriteError::KeyConflict { .. }) => TxnResult::KeyConflict,
            Err(_) => TxnResult::Error,
        });
        result
    }

    /// A committed transaction: into the mirror, the metrics and the report.
    fn record(
        &self,
        txn: &PlannedTxn,
        revision: i64,
        events: Vec<MirrorEvent>,
        mirror: &SharedMirror,
        report: &mut WriteReport,
    ) {
        let puts = txn.changes.iter().filter(|c| c.is_put()).count();
        let deletes = txn.changes.len() - puts;
        self.metrics.keys_written.inc_by(puts as u64);
        self.metrics.keys_deleted.inc_by(deletes as u64);
        write_mirror(mirror).apply_commit(events);
        report.txns += 1;
        report.puts += puts;
        report.deletes += deletes;
        report.last_revision = report.last_revision.max(Some(revision));
    }

    async fn commit(
        &self,
        planned: &PlannedTxn,
        fence: &FenceClaim,
    ) -> Result<(i64, Vec<MirrorEvent>), WriteError> {
        let now = unix_now();
        let mut compares = Vec::with_capacity(planned.changes.len() + 1);
        compares.push(Compare::mod_revision(
            fence.key.as_str(),
            CompareOp::Equal,
            fence.revision,
        ));
        let mut ops = Vec::with_capacity(planned.changes.len());
        let mut written = Vec::with_capacity(planned.changes.len());
        for change in &planned.changes {
            match change {
                KeyChange::Put {
                    key,
                    value,
                    create_time,
                    expect,
                } => {
                    compares.push(expect_compare(key.as_str(), *expect));
                    let create_time = create_time.unwrap_or(now);
                    ops.push(TxnOp::put(
                        key.as_str(),
                        value.stamped(create_time, now),
                        None,
                    ));
                    // What the mirror would parse back from those bytes.
                    let stored = StoredValue {
                        canonical: Some(value.clone()),
                        create_time: Some(create_time),
                    };
                    written.push((key.as_str().to_string(), Some(stored)));
                }
                KeyChange::Delete {
                    key,
                    expect_mod_revision,
                } => {
                    compares.push(Compare::mod_revision(
                        key.as_str(),
                        CompareOp::Equal,
                        *expect_mod_revision,
                    ));
                    written.push((key.as_str().to_string(), None));
                    ops.push(TxnOp::delete(key.as_str(), None));
                }
            }
        }
        let txn = Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else([TxnOp::get(fence.key.as_str(), None)]);
        // Clients share one connection; a clone per transaction lets them
        // be in flight together.
        let mut client = self.client.clone();
        let response = match tokio::time::timeout(self.timeout, client.txn(txn)).await {
            Ok(response) => response?,
            Err(_) => return Err(WriteError::Timeout(self.timeout)),
        };
        if !response.succeeded() {
            let fence_revision = response.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Get(get) => Some(get.kvs().first().map(|kv| kv.mod_revision())),
                _ => None,
            });
            return Err(if fence_revision != Some(Some(fence.revision)) {
                WriteError::FenceLost {
                    key: fence.key.as_str().to_string(),
                    claimed: fence.revision,
                }
            } else {
                WriteError::KeyConflict {
                    first: planned
                        .changes
                        .first()
                        .map(|c| c.key().to_string())
                        .unwrap_or_default(),
                    keys: planned.changes.len(),
                }
            });
        }
        let revision = response.header().map(|h| h.revision()).unwrap_or_default();
        let events = written
            .into_iter()
            .map(|(key, stored)| match stored {
                Some(value) => MirrorEvent::Put {
                    key,
                    value,
                    mod_revision: revision,
                    // Only the mod revision is compared; the mirror learns the
                    // true create revision from the watch.
                    create_revision: revision,
                },
                None => MirrorEvent::Delete { key, revision },
            })
            .collect();
        Ok((revision, events))
    }
}

fn expect_compare(key: &str, expect: Expectation) -> Compare {
    match expect {
        Expectation::Absent => Compare::create_revision(key, CompareOp::Equal, 0),
        Expectation::ModRevision(revision) => {
            Compare::mod_revision(key, CompareOp::Equal, revision)
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
