//! Ingress class selection: is an Ingress ours?
//!
//! In order: `spec.ingressClassName` (an IngressClass whose controller is
//! ours), then the legacy `kubernetes.io/ingress.class` annotation (our
//! class name, or an IngressClass of ours); with neither, the Ingress is ours
//! when one of our IngressClasses is marked as the cluster default.

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use super::TranslateConfig;
use crate::inputs::IngressClassKind;
use crate::model::{ObjectKey, Snapshot};

pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

fn is_ours(config: &TranslateConfig, class: &IngressClass) -> bool {
    class
        .spec
        .as_ref()
        .and_then(|spec| spec.controller.as_deref())
        == Some(config.controller_name.as_str())
}

pub fn is_default(class: &IngressClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether the IngressClass `name` exists and is ours.
fn named_class_is_ours(config: &TranslateConfig, snapshot: &Snapshot, name: &str) -> bool {
    snapshot
        .get::<IngressClassKind>(&ObjectKey::cluster(name))
        .is_some_and(|class| is_ours(config, class))
}

/// Whether a CR's `spec.ingressClassName` selects this operator: our class
/// name, or one of our IngressClasses.
pub fn names_our_class(config: &TranslateConfig, snapshot: &Snapshot, name: &str) -> bool {
    name == config.ingress_class || named_class_is_ours(config, snapshot, name)
}

/// Whether this operator serves `ingress`.
pub fn selects(config: &TranslateConfig, snapshot: &Snapshot, ingress: &Ingress) -> bool {
    let named_class_is_ours = |name: &str| named_class_is_ours(config, snapshot, name);
    if let Some(name) = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
    {
        return named_class_is_ours(name);
    }
    let legacy = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION));
    if let Some(name) = legacy {
        return name == &config.ingress_class || named_class_is_ours(name);
    }
    snapshot
        .store::<IngressClassKind>()
        .into_iter()
        .flat_map(|classes| classes.values())
        .any(|class| is_ours(config, class) && is_default(class))
}
