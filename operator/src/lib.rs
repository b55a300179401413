//! apisix-operator: translates Kubernetes objects into APISIX configuration
//! and writes it directly into the etcd that APISIX watches, fenced so that
//! only the current leader's writes can commit. See `../shared/DESIGN.md`
//! (mirrored in README.md) for the architecture.
//!
//! This crate is the I/O half: watches, the index task, the etcd mirror and
//! writer, the Lease, the status writer, metrics and the command line. All
//! decisions (translation, planning, status contents) are made by the pure
//! `apisix-operator-core` crate, re-exported here under the same names.

#![forbid(unsafe_code)]

pub use apisix_operator_core::{api, inputs, model, plan, registry, translate};

pub mod admission;
pub mod apisix;
pub mod cli;
pub mod index;
pub mod leader;
pub mod replica;
pub mod status;
pub mod supervise;
pub mod sync;
pub mod telemetry;

/// The operator's version, as printed by `apisix-operator version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
