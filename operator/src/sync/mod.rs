//! The sync engine: desired state, the etcd mirror, the planner, the fenced
//! writer and the full-resync loop.

pub mod desired;
pub mod mirror;
pub mod plan;
#[cfg(test)]
mod plan_props;

pub use desired::{DesiredState, DesiredValue, UnitKey};
pub use mirror::{MirrorEvent, MirrorState, MirroredKey};
pub use plan::{Expectation, KeyChange, PlanInput, PlanLimits, PlannedTxn, WritePlan, plan};
