//! GatewayClass: ours when its `spec.controllerName` is our controller
//! name (`--controller-name`, the one IngressClasses name too).

use super::{GatewayClassKind, Verdict};
use crate::api::gateway::GatewayClass;
use crate::model::{Dependency, ObjectKey, SourceKind, UnitDeps};
use crate::translate::{TranslateConfig, TranslateInput};

pub fn is_ours(config: &TranslateConfig, class: &GatewayClass) -> bool {
    class.spec.controller_name == config.controller_name
}

/// A class of ours is accepted unless it asks for parameters: this
/// controller defines no parameters kind, so any `parametersRef` is one it
/// cannot honour.
pub fn acceptance(class: &GatewayClass) -> Verdict {
    match &class.spec.parameters_ref {
        None => Verdict::yes("Accepted"),
        Some(_) => Verdict::no(
            "InvalidParameters",
            "this controller takes no GatewayClass parameters: remove spec.parametersRef",
        ),
    }
}

/// Whether Gateways of class `name` are ours to serve: the class exists,
/// names our controller and is accepted. Records the dependency on it.
pub fn serves(input: TranslateInput<'_>, deps: &mut UnitDeps, name: &str) -> bool {
    let key = ObjectKey::cluster(name);
    deps.insert(Dependency::object(GatewayClassKind::KIND, key.clone()));
    input
        .snapshot
        .get::<GatewayClassKind>(&key)
        .is_some_and(|class| is_ours(input.config, class) && acceptance(class).ok)
}
