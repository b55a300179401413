//! Namespaces. With `--namespace-selector` only those it selects are
//! watched (by its labels): the store holds exactly the served namespaces,
//! and a unit's served-ness depends on its namespace's presence here.
//! Without one, every Namespace is watched while the Gateway API is
//! installed: a listener's `allowedRoutes` may select route namespaces by
//! their labels.

use k8s_openapi::api::core::v1::Namespace;

use crate::model::{Objects, SourceKind, WatchWhen};

pub struct NamespaceKind;

impl SourceKind for NamespaceKind {
    type Object = Namespace;
    type Store = Objects<Namespace>;
    const KIND: &'static str = "Namespace";
    const NAMESPACED: bool = false;
    const WATCH: WatchWhen = WatchWhen::WithNamespaceSelectorOrWhenServed {
        group: crate::api::gateway::GROUP,
        version: "v1",
        kind: "Gateway",
    };
}
