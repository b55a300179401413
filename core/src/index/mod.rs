//! The cluster index: every replica's translation state, fed by watch
//! changes. Which units read which inputs (the dependency index), the
//! feeder that applies watch events and re-lists, and [`ClusterIndex`]
//! itself.

mod attachments;
mod cluster;
mod deps;
mod feed;
mod review;
mod status_book;

pub use cluster::{ClusterIndex, Rejected, UnitOutcome, WatchedObject, registered};
pub use deps::DependencyIndex;
pub use feed::{Change, Feeder, SourceEvent};
pub use review::{Completeness, Review};

#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod tests;
