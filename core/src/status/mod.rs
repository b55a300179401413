//! What the leader reports back to Kubernetes, computed purely: the status
//! view of the index, the conditions of each unit, and the Ingress
//! load-balancer addresses. The writer (in the operator crate) only sends it.

mod build;

pub use build::publish_service_lb;
mod conditions;
pub mod gateway;
mod ingress_lb;

pub use crate::model::{CrStatusInput, ReportStatusInput, StatusView, UnitFailure};
pub use conditions::{
    ACCEPTED, PROGRAMMED, ProgrammedState, desired_conditions, needs_update, programmed_state,
    programmed_units,
};
pub use ingress_lb::{LoadBalancerSource, desired_lb, entry, service_addresses};
