//! Applies watch changes to the cluster index, including re-lists: after a
//! watch re-lists (`Init` … `InitDone`), objects of its scope that the new
//! list did not contain were deleted while the watch was down, and are
//! removed. Counts initial syncs so the caller knows when every cache is
//! warm (no deletion is planned before that). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use kube::runtime::watcher::Event;

use super::watch::{Change, KindEvent, key_of};
use std::sync::Arc;

use super::{ApisixObject, ClusterIndex, ObjectKey};
use crate::sync::UnitKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ingress,
    IngressClass,
    Service,
    EndpointSlice,
    Secret,
    Namespace,
    ApisixUpstream,
    Pod,
    Apisix(&'static str),
}

type Scope = (Kind, Option<String>);

#[derive(Debug, Default)]
pub struct Feeder {
    /// Keys seen by a re-list in progress, per watch.
    relisting: BTreeMap<Scope, BTreeSet<ObjectKey>>,
    /// Watches that completed their first list.
    synced: BTreeSet<Scope>,
}

impl Feeder {
    /// How many watches have completed their first list.
    pub fn synced(&self) -> usize {
        self.synced.len()
    }

    pub fn apply(&mut self, index: &mut ClusterIndex, change: Change) {
        let scope = change.scope;
        match change.event {
            KindEvent::Ingress(event) => self.handle(
                index,
                (Kind::Ingress, scope),
                event,
                |i, o| i.apply_ingress(o),
                |i, k| i.delete_ingress(k),
            ),
            KindEvent::IngressClass(event) => self.handle(
                index,
                (Kind::IngressClass, None),
                event,
                |i, o| i.apply_ingress_class(o),
                |i, k| i.delete_ingress_class(&k.name),
            ),
            KindEvent::Service(event) => self.handle(
                index,
                (Kind::Service, scope),
                event,
                |i, o| i.apply_service(o),
                |i, k| i.delete_service(k),
            ),
            KindEvent::EndpointSlice(event) => self.handle(
                index,
                (Kind::EndpointSlice, scope),
                event,
                |i, o| i.apply_endpoint_slice(o),
                |i, k| i.delete_endpoint_slice(k),
            ),
            KindEvent::Namespace(event) => self.handle(
                index,
                (Kind::Namespace, None),
                event,
                |i, ns| i.select_namespace(&ns.metadata.name.clone().unwrap_or_default(), true),
                |i, k| i.select_namespace(&k.name, false),
            ),
            KindEvent::Pod(event) => self.handle(
                index,
                (Kind::Pod, scope),
                event,
                |i, o| i.apply_pod(&o),
                |i, k| i.delete_pod(k),
            ),
            KindEvent::ApisixRoute(event) => self.apisix(index, scope, event, ApisixObject::Route),
            KindEvent::ApisixUpstream(event) => self.handle(
                index,
                (Kind::ApisixUpstream, scope),
                event,
                |i, o| i.apply_apisix_upstream(o),
                |i, k| i.delete_apisix_upstream(k),
            ),
            KindEvent::ApisixTls(event) => self.apisix(index, scope, event, ApisixObject::Tls),
            KindEvent::ApisixPluginConfig(event) => {
                self.apisix(index, scope, event, ApisixObject::PluginConfig)
            }
            KindEvent::ApisixGlobalRule(event) => {
                self.apisix(index, scope, event, ApisixObject::GlobalRule)
            }
            KindEvent::ApisixConsumer(event) => {
                self.apisix(index, scope, event, ApisixObject::Consumer)
            }
            KindEvent::ApisixClusterConfig(event) => {
                self.apisix(index, None, event, ApisixObject::ClusterConfig)
            }
            KindEvent::Secret(event) => self.handle(
                index,
                (Kind::Secret, scope),
                event,
                |i, o| i.apply_secret(o),
                |i, k| i.delete_secret(k),
            ),
        }
    }

    fn apisix<K>(
        &mut self,
        index: &mut ClusterIndex,
        scope: Option<String>,
        event: Event<K>,
        wrap: fn(Arc<K>) -> ApisixObject,
    ) where
        K: kube::Resource<DynamicType = ()>,
    {
        let kind: &'static str = match wrap_kind::<K>() {
            Some(kind) => kind,
            None => return,
        };
        let cluster_scoped = kind == crate::translate::plugin_sets::CLUSTER_CONFIG_KIND;
        self.handle(
            index,
            (Kind::Apisix(kind), scope),
            event,
            |i, o| i.apply_apisix(wrap(Arc::new(o))),
            |i, k| {
                let namespace = (!cluster_scoped).then_some(k.namespace.as_str());
                i.delete_apisix(&UnitKey::new(kind, namespace, &k.name))
            },
        )
    }

    fn handle<K: kube::Resource>(
        &mut self,
        index: &mut ClusterIndex,
        scope: Scope,
        event: Event<K>,
        apply: impl Fn(&mut ClusterIndex, K),
        delete: impl Fn(&mut ClusterIndex, &ObjectKey),
    ) {
        match event {
            Event::Apply(object) => apply(index, object),
            Event::Delete(object) => delete(index, &cluster_scoped_key(scope.0, key_of(&object))),
            Event::Init => {
                self.relisting.insert(scope, BTreeSet::new());
            }
            Event::InitApply(object) => {
                let key = cluster_scoped_key(scope.0, key_of(&object));
                self.relisting.entry(scope).or_default().insert(key);
                apply(index, object);
            }
            Event::InitDone => {
                let seen = self.relisting.remove(&scope).unwrap_or_default();
                let gone: Vec<ObjectKey> = known(index, scope.0)
                    .into_iter()
                    .filter(|key| scope.1.as_ref().is_none_or(|ns| &key.namespace == ns))
                    .filter(|key| !seen.contains(key))
                    .collect();
                for key in &gone {
                    delete(index, key);
                }
                self.synced.insert(scope);
            }
        }
    }
}

/// The kind name of an APISIX CR type.
fn wrap_kind<K: kube::Resource<DynamicType = ()>>() -> Option<&'static str> {
    use crate::translate::{apisix_tls, consumer, plugin_sets};
    let kind = K::kind(&());
    [
        crate::translate::apisix_route::KIND,
        apisix_tls::KIND,
        consumer::KIND,
        plugin_sets::PLUGIN_CONFIG_KIND,
        plugin_sets::GLOBAL_RULE_KIND,
        plugin_sets::CLUSTER_CONFIG_KIND,
    ]
    .into_iter()
    .find(|k| *k == kind)
}

/// IngressClasses, Namespaces and ApisixClusterConfigs are cluster-scoped:
/// key them by name only.
fn cluster_scoped_key(kind: Kind, key: ObjectKey) -> ObjectKey {
    if matches!(
        kind,
        Kind::IngressClass
            | Kind::Namespace
            | Kind::Apisix(crate::translate::plugin_sets::CLUSTER_CONFIG_KIND)
    ) {
        ObjectKey::new("", &key.name)
    } else {
        key
    }
}

fn known(index: &ClusterIndex, kind: Kind) -> Vec<ObjectKey> {
    match kind {
        Kind::Ingress => index.ingress_keys().cloned().collect(),
        Kind::IngressClass => index
            .snapshot()
            .ingress_class_names()
            .map(|name| ObjectKey::new("", name))
            .collect(),
        Kind::Service => index.snapshot().service_keys().cloned().collect(),
        Kind::EndpointSlice => index.snapshot().endpoint_slice_keys().cloned().collect(),
        Kind::Secret => index.snapshot().secret_keys().cloned().collect(),
        Kind::ApisixUpstream => index.snapshot().apisix_upstream_keys().cloned().collect(),
        Kind::Pod => index.snapshot().pod_keys().cloned().collect(),
        Kind::Apisix(name) => index
            .apisix_objects(name)
            .map(|o| ObjectKey::new(o.namespace().unwrap_or(""), o.name()))
            .collect(),
        Kind::Namespace => index
            .selected_namespaces()
            .into_iter()
            .flatten()
            .map(|name| ObjectKey::new("", name))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::tests::{config, mk_ingress, mk_service};
    use serde_json::json;

    fn change(scope: Option<&str>, event: KindEvent) -> Change {
        Change {
            scope: scope.map(str::to_string),
            event,
        }
    }

    #[test]
    fn a_relist_removes_what_disappeared_in_its_scope_only() {
        let mut index = ClusterIndex::new(config());
        let mut feeder = Feeder::default();
        let svc = |ns: &str, name: &str| mk_service(ns, name, json!([{"port": 80}]));
        for (scope, ns) in [(Some("a"), "a"), (Some("b"), "b")] {
            feeder.apply(&mut index, change(scope, KindEvent::Service(Event::Init)));
            feeder.apply(
                &mut index,
                change(scope, KindEvent::Service(Event::InitApply(svc(ns, "one")))),
            );
            feeder.apply(
                &mut index,
                change(scope, KindEvent::Service(Event::InitApply(svc(ns, "two")))),
            );
            feeder.apply(
                &mut index,
                change(scope, KindEvent::Service(Event::InitDone)),
            );
        }
        assert_eq!(feeder.synced(), 2);
        // Namespace a's watch re-lists and "two" is gone; b is untouched.
        feeder.apply(
            &mut index,
            change(Some("a"), KindEvent::Service(Event::Init)),
        );
        feeder.apply(
            &mut index,
            change(
                Some("a"),
                KindEvent::Service(Event::InitApply(svc("a", "one"))),
            ),
        );
        feeder.apply(
            &mut index,
            change(Some("a"), KindEvent::Service(Event::InitDone)),
        );
        let keys: Vec<String> = index
            .snapshot()
            .service_keys()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(keys, ["a/one", "b/one", "b/two"]);
        assert_eq!(feeder.synced(), 2);
    }

    #[test]
    fn deletes_and_applies_reach_the_index() {
        let mut index = ClusterIndex::new(config());
        let mut feeder = Feeder::default();
        let ing = mk_ingress("ns", "i", json!({}), json!({"rules": []}));
        feeder.apply(
            &mut index,
            change(None, KindEvent::Ingress(Event::Apply(ing.clone()))),
        );
        assert_eq!(index.ingress_keys().count(), 1);
        feeder.apply(
            &mut index,
            change(None, KindEvent::Ingress(Event::Delete(ing))),
        );
        assert_eq!(index.ingress_keys().count(), 0);
    }
}

#[cfg(test)]
mod namespace_tests {
    use super::*;
    use crate::translate::TranslateConfig;
    use crate::translate::tests::{config, mk_class, mk_ingress, mk_service};
    use serde_json::json;

    fn namespace(name: &str) -> k8s_openapi::api::core::v1::Namespace {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    }

    #[test]
    fn only_namespaces_matching_the_selector_are_served() {
        let mut index = ClusterIndex::new(config()).with_namespace_filter();
        let mut feeder = Feeder::default();
        let change = |event| Change { scope: None, event };
        index.apply_ingress_class(mk_class(
            "apisix",
            TranslateConfig::DEFAULT_CONTROLLER_NAME,
            true,
        ));
        for ns in ["team-a", "team-b"] {
            index.apply_service(mk_service(ns, "web", json!([{"port": 80}])));
            index.apply_ingress(mk_ingress(ns, "i", json!({}), json!({"rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]})));
        }
        feeder.apply(&mut index, change(KindEvent::Namespace(Event::Init)));
        feeder.apply(
            &mut index,
            change(KindEvent::Namespace(Event::InitApply(namespace("team-a")))),
        );
        feeder.apply(&mut index, change(KindEvent::Namespace(Event::InitDone)));
        index.flush();
        let namespaces = |index: &ClusterIndex| -> Vec<String> {
            let mut units: Vec<String> = index
                .desired()
                .iter()
                .map(|(_, v)| v.unit.to_string())
                .collect();
            units.dedup();
            units
        };
        assert_eq!(namespaces(&index), ["Ingress/team-a/i"]);
        // team-b gains the label; team-a loses it.
        feeder.apply(
            &mut index,
            change(KindEvent::Namespace(Event::Apply(namespace("team-b")))),
        );
        feeder.apply(
            &mut index,
            change(KindEvent::Namespace(Event::Delete(namespace("team-a")))),
        );
        index.flush();
        assert_eq!(namespaces(&index), ["Ingress/team-b/i"]);
    }
}
