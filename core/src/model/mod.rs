//! The vocabulary every layer shares: object and unit keys, dependencies,
//! the kind registry's contract, the snapshot of watched objects, what
//! translation takes and gives, and the desired state it adds up to.

pub mod decode;
mod dependency;
mod desired;
mod keys;
mod kind;
mod snapshot;
mod status_view;
mod translation;

pub use decode::{DecodeError, Guarded, InvalidObject};
pub use dependency::{Dependency, DependencyScope, UnitDeps};
pub use desired::{DesiredState, DesiredValue};
/// One difference between two persistent maps (the desired state, the
/// status view): what their `diff` yields.
pub use imbl::ordmap::DiffItem;
pub use keys::{ObjectKey, UnitKey};
pub use kind::{
    AnyObject, Input, Kind, SourceKind, StatusStyle, StatusTarget, Unit, UnitKind, UnitOps,
    WatchWhen,
};
pub use snapshot::{Objects, Snapshot, Store, Touched};
pub use status_view::{CrStatusInput, ReportStatusInput, StatusView, UnitFailure};
pub use translation::{
    ListenerRef, TranslateConfig, TranslateError, TranslateInput, Translation, UnitObjects,
};
