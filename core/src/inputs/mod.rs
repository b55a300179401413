//! The input kinds: objects translation reads but does not translate on
//! their own. Each file is one [`SourceKind`](crate::model::SourceKind)
//! implementation: how the kind is watched, how it is stored, what a change
//! of it touches.

mod endpoint_slice;
mod ingress_class;
mod namespace;
mod pod;
mod secret;
mod service;

pub use endpoint_slice::{EndpointSliceKind, EndpointSlices, SERVICE_NAME_LABEL};
pub use ingress_class::IngressClassKind;
pub use namespace::NamespaceKind;
pub use pod::{PodAddresses, PodIp, PodKind, PodSummary, Pods};
pub use secret::SecretKind;
pub use service::ServiceKind;
