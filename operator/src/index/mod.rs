//! The cluster-side inputs of translation: a snapshot of the watched objects
//! (kept current from watch events), and the dependency index that maps a
//! changed input to the units that must be translated again.

mod cluster;
mod deps;
mod feed;
mod snapshot;
mod sources;
mod status_view;
mod task;
pub mod watch;

pub use cluster::{ClusterIndex, UnitOutcome};
pub use deps::{Dependency, DependencyIndex, UnitDeps};
pub use feed::Feeder;
pub use snapshot::{ObjectKey, Snapshot};
pub use sources::ApisixObject;
pub use task::IndexTask;
