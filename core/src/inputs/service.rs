//! Services: backends' ports, types (ExternalName), cluster IPs, and the
//! publish Service's load-balancer addresses.

use k8s_openapi::api::core::v1::Service;

use crate::model::{Objects, SourceKind, WatchWhen};

pub struct ServiceKind;

impl SourceKind for ServiceKind {
    type Object = Service;
    type Store = Objects<Service>;
    const KIND: &'static str = "Service";
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::Always;
}
