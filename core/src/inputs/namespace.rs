//! Namespaces matching `--namespace-selector` (watched only with it, by its
//! labels): the store holds exactly the served namespaces, and a unit's
//! served-ness depends on its namespace's presence here.

use k8s_openapi::api::core::v1::Namespace;

use crate::model::{Objects, SourceKind, WatchWhen};

pub struct NamespaceKind;

impl SourceKind for NamespaceKind {
    type Object = Namespace;
    type Store = Objects<Namespace>;
    const KIND: &'static str = "Namespace";
    const NAMESPACED: bool = false;
    const WATCH: WatchWhen = WatchWhen::WithNamespaceSelector;
}
