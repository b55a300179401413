//! What the leader reports back to Kubernetes, computed purely: the status
//! view of the index, the conditions of each unit, and the Ingress
//! load-balancer addresses. The writer (in the operator crate) only sends it.

mod build;
mod conditions;
mod ingress_lb;
mod view;

pub use conditions::{
    ACCEPTED, PROGRAMMED, ProgrammedState, desired_conditions, needs_update, programmed_state,
    programmed_units,
};
pub use ingress_lb::{LoadBalancerSource, desired_lb, entry, service_addresses};
pub use view::{CrStatusInput, StatusView, UnitFailure};
