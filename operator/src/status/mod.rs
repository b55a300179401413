//! What the leader writes back to Kubernetes: Warning Events for units that
//! fail translation, and the Ingress `status.loadBalancer`. Only the leader
//! writes, and only what changed.

mod conditions;
mod ingress_lb;
mod view;
mod writer;

pub use conditions::{ProgrammedState, desired_conditions};
pub use ingress_lb::{LoadBalancerSource, desired_lb, service_addresses};
pub use view::{CrStatusInput, StatusView, UnitFailure};
pub use writer::StatusWriter;
