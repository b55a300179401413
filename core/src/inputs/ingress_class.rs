//! IngressClasses: which classes are ours (`spec.controller`), and the
//! default class. Class selection reads them all, so units depend on
//! "every IngressClass".

use k8s_openapi::api::networking::v1::IngressClass;

use crate::model::{Objects, SourceKind, WatchWhen};

pub struct IngressClassKind;

impl SourceKind for IngressClassKind {
    type Object = IngressClass;
    type Store = Objects<IngressClass>;
    const KIND: &'static str = "IngressClass";
    const NAMESPACED: bool = false;
    const WATCH: WatchWhen = WatchWhen::Always;
}
