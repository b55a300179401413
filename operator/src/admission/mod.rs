//! The validating admission webhook, served by every replica: a bad object
//! is refused before the API server stores it, with the field and the
//! reason, by the same translation and checks `run` applies (the verdict
//! comes from the index task's `ClusterIndex::review`). Missing Services or
//! Secrets are warnings: they may be created next.

pub mod cert_task;
pub mod certs;
pub mod server;

pub use cert_task::{CertSource, CertTask, ManagedCerts};
pub use server::{ServingCert, router, serve};
