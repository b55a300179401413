//! Metrics, health and logging.

pub mod metrics;
pub mod server;

pub use metrics::{AdmissionMetrics, SyncMetrics, TranslateMetrics, TxnResult};
pub use server::Readiness;
