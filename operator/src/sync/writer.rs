//! Executes a write plan: one etcd transaction per planned transaction, each
//! guarded by the fence compare and a per-key revision compare. Never
//! overwrites blindly: a failed compare stops the plan.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

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

impl EtcdWriter {
    /// Commits the plan's transactions in order, recording each commit in the
    /// mirror. Stops at the first failure; what committed before stays.
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
        for txn in &plan.txns {
            let started = std::time::Instant::now();
            let result = self.commit(txn, fence).await;
            self.metrics
                .write_duration_seconds
                .observe(started.elapsed().as_secs_f64());
            let outcome = match &result {
                Ok(_) => TxnResult::Committed,
                Err(WriteError::FenceLost { .. }) => TxnResult::FenceLost,
                Err(WriteError::KeyConflict { .. }) => TxnResult::KeyConflict,
                Err(_) => TxnResult::Error,
            };
            self.metrics.count_txn(outcome);
            let (revision, events) = result?;
            let puts = txn.changes.iter().filter(|c| c.is_put()).count();
            let deletes = txn.changes.len() - puts;
            self.metrics.keys_written.inc_by(puts as u64);
            self.metrics.keys_deleted.inc_by(deletes as u64);
            write_mirror(mirror).apply_commit(events);
            report.txns += 1;
            report.puts += puts;
            report.deletes += deletes;
            report.last_revision = Some(revision);
        }
        Ok(report)
    }

    async fn commit(
        &mut self,
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
                    let bytes = value.stamped(create_time.unwrap_or(now), now);
                    written.push((key.as_str().to_string(), Some(bytes.clone()), *expect));
                    ops.push(TxnOp::put(key.as_str(), bytes, None));
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
                    written.push((key.as_str().to_string(), None, Expectation::Absent));
                    ops.push(TxnOp::delete(key.as_str(), None));
                }
            }
        }
        let txn = Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else([TxnOp::get(fence.key.as_str(), None)]);
        let response = match tokio::time::timeout(self.timeout, self.client.txn(txn)).await {
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
            .map(|(key, bytes, _)| match bytes {
                Some(bytes) => MirrorEvent::Put {
                    key,
                    value: StoredValue::parse(&bytes),
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
