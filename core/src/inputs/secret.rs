//! Secrets: TLS certificates, consumer credentials, plugin `secretRef`s.
//! Every type can be referenced, so all are watched.

use k8s_openapi::api::core::v1::Secret;

use crate::model::{Objects, SourceKind, WatchWhen};

pub struct SecretKind;

impl SourceKind for SecretKind {
    type Object = Secret;
    type Store = Objects<Secret>;
    const KIND: &'static str = "Secret";
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::Always;
}
