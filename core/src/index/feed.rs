//! Applies watch changes to the cluster index, including re-lists: after a
//! watch re-lists (`Init` … `InitDone`), objects of its scope that the new
//! list did not contain were deleted while the watch was down, and are
//! removed. Counts initial syncs so the caller knows when every cache is
//! warm (no deletion is planned before that). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{ClusterIndex, WatchedObject};
use crate::model::{Kind, ObjectKey};

/// One watch event, as the runtime's watches deliver it (kube's watcher
/// events, with each object already decoded or rejected).
#[derive(Debug)]
pub enum SourceEvent {
    Apply(WatchedObject),
    Delete(ObjectKey),
    /// A (re-)list starts.
    Init,
    InitApply(WatchedObject),
    /// The list is complete.
    InitDone,
}

/// One event of one watch: its kind and the namespace it covers (`None`:
/// every namespace, or cluster scope), so a re-list knows what it replaces.
pub struct Change {
    pub kind: &'static dyn Kind,
    pub scope: Option<String>,
    pub event: SourceEvent,
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Change")
            .field("kind", &self.kind.name())
            .field("scope", &self.scope)
            .field("event", &self.event)
            .finish()
    }
}

/// A watch: a kind and the namespace it covers.
type Scope = (&'static str, Option<String>);

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
        let kind = change.kind;
        let scope = (kind.name(), change.scope);
        match change.event {
            SourceEvent::Apply(object) => index.receive(kind, object),
            SourceEvent::Delete(key) => index.delete_object(kind, &key),
            SourceEvent::Init => {
                self.relisting.insert(scope, BTreeSet::new());
            }
            SourceEvent::InitApply(object) => {
                self.relisting
                    .entry(scope)
                    .or_default()
                    .insert(object.key.clone());
                index.receive(kind, object);
            }
            SourceEvent::InitDone => {
                let seen = self.relisting.remove(&scope).unwrap_or_default();
                let gone: Vec<ObjectKey> = index
                    .known_keys(kind)
                    .into_iter()
                    .filter(|key| scope.1.as_ref().is_none_or(|ns| &key.namespace == ns))
                    .filter(|key| !seen.contains(key))
                    .collect();
                for key in &gone {
                    index.delete_object(kind, key);
                }
                self.synced.insert(scope);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{config, mk_class, mk_ingress, mk_service};
    use crate::index::registered;
    use crate::inputs::{NamespaceKind, ServiceKind};
    use crate::model::{InvalidObject, SourceKind, TranslateConfig};
    use crate::translate::ingress::IngressKind;
    use serde_json::json;

    fn watched<K: SourceKind>(object: K::Object) -> WatchedObject {
        WatchedObject {
            key: K::key_of(&object),
            object: Ok(Box::new(object)),
        }
    }

    fn change<K: SourceKind>(scope: Option<&str>, event: SourceEvent) -> Change {
        Change {
            kind: registered::<K>(),
            scope: scope.map(str::to_string),
            event,
        }
    }

    #[test]
    fn a_relist_removes_what_disappeared_in_its_scope_only() {
        let mut index = ClusterIndex::new(config());
        let mut feeder = Feeder::default();
        let svc = |ns: &str, name: &str| {
            SourceEvent::InitApply(watched::<ServiceKind>(mk_service(
                ns,
                name,
                json!([{"port": 80}]),
            )))
        };
        for (scope, ns) in [(Some("a"), "a"), (Some("b"), "b")] {
            feeder.apply(&mut index, change::<ServiceKind>(scope, SourceEvent::Init));
            feeder.apply(&mut index, change::<ServiceKind>(scope, svc(ns, "one")));
            feeder.apply(&mut index, change::<ServiceKind>(scope, svc(ns, "two")));
            feeder.apply(
                &mut index,
                change::<ServiceKind>(scope, SourceEvent::InitDone),
            );
        }
        assert_eq!(feeder.synced(), 2);
        // Namespace a's watch re-lists and "two" is gone; b is untouched.
        feeder.apply(
            &mut index,
            change::<ServiceKind>(Some("a"), SourceEvent::Init),
        );
        feeder.apply(
            &mut index,
            change::<ServiceKind>(Some("a"), svc("a", "one")),
        );
        feeder.apply(
            &mut index,
            change::<ServiceKind>(Some("a"), SourceEvent::InitDone),
        );
        let keys: Vec<String> = index
            .known_keys(registered::<ServiceKind>())
            .iter()
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
        let key = IngressKind::key_of(&ing);
        feeder.apply(
            &mut index,
            change::<IngressKind>(None, SourceEvent::Apply(watched::<IngressKind>(ing))),
        );
        assert_eq!(index.unit_keys().len(), 1);
        feeder.apply(
            &mut index,
            change::<IngressKind>(None, SourceEvent::Delete(key)),
        );
        assert_eq!(index.unit_keys().len(), 0);
    }

    #[test]
    fn a_relist_forgets_an_object_that_never_decoded() {
        let mut index = ClusterIndex::new(config());
        let mut feeder = Feeder::default();
        let invalid = WatchedObject {
            key: ObjectKey::new("ns", "broken"),
            object: Err(Box::new(InvalidObject {
                metadata: Default::default(),
                error: crate::model::DecodeError {
                    path: "spec".into(),
                    reason: "invalid type: string, expected a map".into(),
                },
            })),
        };
        feeder.apply(
            &mut index,
            change::<IngressKind>(None, SourceEvent::Apply(invalid)),
        );
        index.flush();
        assert_eq!(index.errors().len(), 1);
        assert_eq!(index.rejected().len(), 1);
        feeder.apply(&mut index, change::<IngressKind>(None, SourceEvent::Init));
        feeder.apply(
            &mut index,
            change::<IngressKind>(None, SourceEvent::InitDone),
        );
        index.flush();
        assert!(index.rejected().is_empty());
        assert!(index.errors().is_empty());
    }

    #[test]
    fn only_namespaces_matching_the_selector_are_served() {
        let mut index = ClusterIndex::new(config()).with_namespace_filter();
        let mut feeder = Feeder::default();
        let namespace = |name: &str| -> k8s_openapi::api::core::v1::Namespace {
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
        };
        index.apply::<crate::inputs::IngressClassKind>(mk_class(
            "apisix",
            TranslateConfig::DEFAULT_CONTROLLER_NAME,
            true,
        ));
        for ns in ["team-a", "team-b"] {
            index.apply::<ServiceKind>(mk_service(ns, "web", json!([{"port": 80}])));
            index.apply::<IngressKind>(mk_ingress(ns, "i", json!({}), json!({"rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]})));
        }
        let ns_change = |event| change::<NamespaceKind>(None, event);
        feeder.apply(&mut index, ns_change(SourceEvent::Init));
        feeder.apply(
            &mut index,
            ns_change(SourceEvent::InitApply(watched::<NamespaceKind>(namespace(
                "team-a",
            )))),
        );
        feeder.apply(&mut index, ns_change(SourceEvent::InitDone));
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
            ns_change(SourceEvent::Apply(watched::<NamespaceKind>(namespace(
                "team-b",
            )))),
        );
        feeder.apply(
            &mut index,
            ns_change(SourceEvent::Delete(ObjectKey::cluster("team-a"))),
        );
        index.flush();
        assert_eq!(namespaces(&index), ["Ingress/team-b/i"]);
    }
}
