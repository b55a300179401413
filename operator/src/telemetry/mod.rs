//! Metrics, health and logging.

pub mod metrics;

pub use metrics::{SyncMetrics, TxnResult};
