//! apisix-operator: translates Kubernetes objects into APISIX configuration
//! and writes it directly into the etcd that APISIX watches, fenced so that
//! only the current leader's writes can commit. See `../shared/DESIGN.md`
//! (mirrored in README.md) for the architecture.

#![forbid(unsafe_code)]

pub mod api;
pub mod apisix;
pub mod cli;
pub mod index;
pub mod leader;
pub mod replica;
pub mod status;
pub mod sync;
pub mod telemetry;
pub mod translate;

/// The operator's version, as printed by `apisix-operator version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
