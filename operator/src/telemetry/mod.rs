//! Metrics, health and logging.

pub mod metrics;
pub mod server;

pub use metrics::{SyncMetrics, TranslateMetrics, TxnResult};
pub use server::Readiness;
