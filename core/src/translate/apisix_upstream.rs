//! ApisixUpstream: it writes nothing of its own; it decorates the upstreams
//! of the routes whose backend Service has its name (or that reference it as
//! an external upstream). As a unit it is checked on its own (Accepted) and
//! counts as Programmed once the routes using it are.

use super::{TranslateInput, Translation, upstream_settings};
use crate::api::{ApisixStatus, ApisixUpstream};
use crate::model::{
    Dependency, Objects, SourceKind, StatusStyle, UnitDeps, UnitKey, UnitKind, UnitObjects,
    WatchWhen,
};

pub const KIND: &str = "ApisixUpstream";

pub struct ApisixUpstreamKind;

impl SourceKind for ApisixUpstreamKind {
    type Object = ApisixUpstream;
    type Store = Objects<ApisixUpstream>;
    const KIND: &'static str = KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for ApisixUpstreamKind {
    const STATUS: StatusStyle = StatusStyle::Conditions;

    /// Every setting, top-level and per port, must apply cleanly.
    fn translate(input: TranslateInput<'_>, upstream: &ApisixUpstream) -> Translation {
        let mut deps = UnitDeps::new();
        let result = upstream_settings::validate(input.snapshot, &mut deps, &upstream.spec)
            .map(|()| UnitObjects::default());
        Translation { result, deps }
    }

    fn current_status(upstream: &ApisixUpstream) -> Option<&ApisixStatus> {
        upstream.status.as_ref()
    }

    /// The routes that use it.
    fn programmed_with(
        unit: &UnitKey,
        dependents_of: &dyn Fn(&Dependency) -> Vec<UnitKey>,
    ) -> Vec<UnitKey> {
        dependents_of(&Dependency::object(KIND, unit.object_key()))
    }
}
