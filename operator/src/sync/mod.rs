//! The sync engine: desired state, the etcd mirror, the planner, the fenced
//! writer and the full-resync loop.

pub mod desired;
pub mod engine;
pub mod etcd_read;
pub mod mirror;
pub mod mirror_task;
pub mod plan;
#[cfg(test)]
mod plan_props;
pub mod synthetic;
pub mod writer;

pub use desired::{DesiredState, DesiredValue, UnitKey};
pub use engine::{EngineConfig, EngineInputs, EngineStatus, SyncEngine};
pub use mirror::{MirrorEvent, MirrorState, MirroredKey};
pub use mirror_task::{MirrorTask, SharedMirror};
pub use plan::{Expectation, KeyChange, PlanInput, PlanLimits, PlannedTxn, WritePlan, plan};
pub use writer::{EtcdWriter, WriteError, WriteReport};
