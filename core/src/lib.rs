//! The pure core of apisix-operator: everything that decides what gets
//! written, with no I/O. The `apisix-operator` crate (watches, etcd, the
//! Lease, HTTP) depends on this crate, never the reverse, and this crate
//! depends on no runtime, client or filesystem crate (see `Cargo.toml` and
//! `clippy.toml`), so the compiler keeps the boundary.
//!
//! Modules, lowest layer first; none imports a layer above it:
//! - [`api`]: the APISIX CRD types;
//! - [`apisix`]: the APISIX side: keys, ids, ownership, values, schemas,
//!   encryption;
//! - [`model`]: the shared vocabulary (unit and object keys, dependencies,
//!   the kind contract, the snapshot, translation's inputs and outputs, the
//!   desired state);
//! - [`inputs`]: the kinds translation reads (Services, EndpointSlices, ...);
//! - [`translate`]: one file per translated kind, each with its kind;
//! - [`registry`]: the list of every kind;
//! - [`index`]: the cluster index and the feeder;
//! - [`plan`]: the etcd mirror's state and the write planner;
//! - [`status`]: the status view and conditions;
//! - [`election`]: the Lease election's decisions (beside the rest: it
//!   depends on nothing above).

#![forbid(unsafe_code)]

pub mod api;
pub mod apisix;
pub mod election;
pub mod index;
pub mod inputs;
pub mod model;
pub mod plan;
pub mod registry;
pub mod status;
pub mod translate;

#[cfg(test)]
mod fixtures;
