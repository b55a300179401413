//! The kind registry: every watched Kubernetes kind, listed once. The watches
//! (`apisix-operator run` and `diff --live`), the feeder, the index,
//! `translate -f` and the metrics all iterate this list, so they cannot
//! disagree about which kinds exist or how each is read.
//!
//! Adding a kind: implement [`SourceKind`] (and [`UnitKind`] if its objects
//! are translated) next to its translation, then add one line below.
//!
//! [`UnitKind`]: crate::model::UnitKind

use crate::inputs::{
    EndpointSliceKind, IngressClassKind, NamespaceKind, PodKind, SecretKind, ServiceKind,
};
use crate::model::{Input, Kind, SourceKind, Unit};
use crate::translate::apisix_route::ApisixRouteKind;
use crate::translate::apisix_tls::ApisixTlsKind;
use crate::translate::apisix_upstream::ApisixUpstreamKind;
use crate::translate::consumer::ApisixConsumerKind;
use crate::translate::gateway::{
    GatewayClassKind, GatewayKind, GrpcRouteKind, HttpRouteKind, ReferenceGrantKind,
};
use crate::translate::ingress::IngressKind;
use crate::translate::plugin_sets::{
    ApisixClusterConfigKind, ApisixGlobalRuleKind, ApisixPluginConfigKind,
};

/// Something done once per registered kind, with the kind's type (the
/// watches need it to decode objects).
pub trait KindVisitor {
    fn visit<K: SourceKind>(&mut self, kind: &'static dyn Kind);
}

macro_rules! registry {
    (inputs: [$($input:ty),* $(,)?], units: [$($unit:ty),* $(,)?] $(,)?) => {
        /// Every registered kind: inputs first, then units.
        pub static KINDS: &[&dyn Kind] = &[$(&Input::<$input>::NEW,)* $(&Unit::<$unit>::NEW,)*];

        /// Calls `visitor` once per registered kind, in [`KINDS`] order.
        pub fn visit<V: KindVisitor>(visitor: &mut V) {
            let mut kinds = KINDS.iter();
            $(visitor.visit::<$input>(*kinds.next().expect("one entry per kind"));)*
            $(visitor.visit::<$unit>(*kinds.next().expect("one entry per kind"));)*
        }
    };
}

registry! {
    inputs: [
        IngressClassKind,
        NamespaceKind,
        ServiceKind,
        EndpointSliceKind,
        SecretKind,
        PodKind,
        ReferenceGrantKind,
    ],
    units: [
        IngressKind,
        ApisixRouteKind,
        ApisixUpstreamKind,
        ApisixTlsKind,
        ApisixConsumerKind,
        ApisixPluginConfigKind,
        ApisixGlobalRuleKind,
        ApisixClusterConfigKind,
        GatewayClassKind,
        GatewayKind,
        HttpRouteKind,
        GrpcRouteKind,
    ],
}

/// The registered kind named `name` (a unit key's or a metric's kind).
pub fn kind(name: &str) -> Option<&'static dyn Kind> {
    // Unit keys hold the registry's own name strings: compare addresses
    // first, then contents.
    KINDS
        .iter()
        .copied()
        .find(|kind| std::ptr::eq(kind.name(), name))
        .or_else(|| KINDS.iter().copied().find(|kind| kind.name() == name))
}

/// The registered kind of a manifest's `apiVersion` and `kind`.
pub fn kind_of_manifest(api_version: &str, kind_name: &str) -> Option<&'static dyn Kind> {
    KINDS
        .iter()
        .copied()
        .find(|kind| kind.name() == kind_name && kind.api_version() == api_version)
}

/// The names of the unit kinds (the `kind` label of the translation metrics).
pub fn unit_kind_names() -> impl Iterator<Item = &'static str> {
    KINDS
        .iter()
        .filter(|kind| kind.unit().is_some())
        .map(|kind| kind.name())
}

#[cfg(test)]
mod tests {
    use std::any::TypeId;
    use std::collections::BTreeSet;

    use kube_core::Resource;

    use super::*;

    /// What the registry's own list must satisfy, checked for every kind.
    struct Checks(Vec<&'static str>);

    impl KindVisitor for Checks {
        fn visit<K: SourceKind>(&mut self, kind: &'static dyn Kind) {
            assert_eq!(kind.name(), K::KIND, "visit order follows KINDS");
            assert_eq!(K::Object::kind(&()), K::KIND, "KIND is the Kubernetes kind");
            let scope = TypeId::of::<<K::Object as Resource>::Scope>();
            let namespaced = scope == TypeId::of::<k8s_openapi::NamespaceResourceScope>();
            assert_eq!(namespaced, K::NAMESPACED, "{} scope", K::KIND);
            self.0.push(K::KIND);
        }
    }

    #[test]
    fn every_kind_is_registered_once_and_truthfully() {
        let mut checks = Checks(Vec::new());
        visit(&mut checks);
        assert_eq!(checks.0.len(), KINDS.len());
        let unique: BTreeSet<_> = checks.0.iter().collect();
        assert_eq!(unique.len(), KINDS.len(), "kind names are unique");
        assert_eq!(kind("ApisixRoute").map(|k| k.name()), Some("ApisixRoute"));
        assert!(kind_of_manifest("networking.k8s.io/v1", "Ingress").is_some());
        assert!(kind_of_manifest("v1", "Ingress").is_none());
    }
}
