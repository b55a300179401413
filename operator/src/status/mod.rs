//! What the leader writes back to Kubernetes: Warning Events for units that
//! fail, CR conditions and the Ingress `status.loadBalancer`. The contents
//! come from the core crate; only the leader writes, and only what changed.

pub use apisix_operator_core::status::*;

mod writer;

pub use writer::StatusWriter;
