//! The sync engine: the etcd mirror's watch, the fenced writer and the
//! leader's sync loop (incremental syncs and full resyncs). The desired
//! state and the planner are pure and live in the core crate; they are
//! re-exported here.

pub mod engine;
pub mod etcd_read;
pub mod mirror_task;
pub mod synthetic;
pub mod writer;

pub use apisix_operator_core::model::{DesiredState, DesiredValue, UnitKey};
pub use apisix_operator_core::plan::{
    Expectation, JournalCursor, KeyChange, MirrorEvent, MirrorState, MirroredKey, PlanInput,
    PlanLimits, PlannedTxn, WritePlan, plan, plan_keys,
};
pub use engine::{EngineConfig, EngineInputs, EngineStatus, SyncEngine};
pub use mirror_task::{MirrorTask, SharedMirror};
pub use writer::{EtcdWriter, WriteError, WriteReport};
