//! The write side's pure half: the mirror of what etcd holds, and the
//! planner that turns desired state + mirror into ordered, fenced
//! transactions. The operator's sync engine executes the plans.

mod mirror;
#[cfg(test)]
mod plan_props;
mod planner;

pub use mirror::{JournalCursor, MirrorEvent, MirrorState, MirroredKey};
pub use planner::{
    Expectation, KeyChange, PlanInput, PlanLimits, PlannedTxn, WritePlan, plan, plan_keys,
};
