//! The cluster side of a replica: the watches of every registered kind, the
//! index task that feeds them to the (pure) cluster index, and loading a
//! cluster once for `diff --live`.

pub use apisix_operator_core::index::*;

mod load;
mod task;
pub mod watch;

pub use load::{LoadError, LoadedCluster, load_cluster};
pub use task::{IndexTask, ReviewRequest};
