//! ReferenceGrant: an object in one namespace may refer to an object in
//! another (a route to a backend Service, a Gateway to a certificate
//! Secret) only when a ReferenceGrant in the target's namespace allows it.

use crate::api::gateway::ReferenceGrant;
use crate::model::Snapshot;
use crate::model::{Dependency, ObjectKey, Objects, SourceKind, UnitDeps, WatchWhen};

/// `gateway.networking.k8s.io/v1` ReferenceGrants: an input of route and
/// Gateway translation.
pub struct ReferenceGrantKind;

impl SourceKind for ReferenceGrantKind {
    type Object = ReferenceGrant;
    type Store = Objects<ReferenceGrant>;
    const KIND: &'static str = "ReferenceGrant";
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

/// Who refers: the referring object's group, kind and namespace.
#[derive(Debug, Clone, Copy)]
pub struct From<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
}

/// What is referred to: group (`""` for the core group), kind and key.
#[derive(Debug, Clone, Copy)]
pub struct To<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub key: &'a ObjectKey,
}

/// Whether `from` may refer to `to`: always within one namespace, else
/// when a ReferenceGrant of `to`'s namespace allows it. Records the
/// dependency on that namespace's grants, so a grant created or removed
/// later translates the referring unit again.
pub fn permits(snapshot: &Snapshot, deps: &mut UnitDeps, from: From<'_>, to: To<'_>) -> bool {
    if from.namespace == to.key.namespace {
        return true;
    }
    deps.insert(Dependency::namespace(
        ReferenceGrantKind::KIND,
        &to.key.namespace,
    ));
    let Some(grants) = snapshot.store::<ReferenceGrantKind>() else {
        return false;
    };
    grants
        .iter()
        .filter(|(key, _)| key.namespace == to.key.namespace)
        .any(|(_, grant)| grant_allows(grant, from, to))
}

fn grant_allows(grant: &ReferenceGrant, from: From<'_>, to: To<'_>) -> bool {
    let from_ok = grant
        .spec
        .from
        .iter()
        .any(|f| f.group == from.group && f.kind == from.kind && f.namespace == from.namespace);
    let to_ok = grant.spec.to.iter().any(|t| {
        t.group == to.group
            && t.kind == to.kind
            && t.name
                .as_deref()
                .is_none_or(|name| name.is_empty() || name == to.key.name)
    });
    from_ok && to_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Store;
    use serde_json::json;

    fn grant(namespace: &str, to_name: Option<&str>) -> ReferenceGrant {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "ReferenceGrant",
            "metadata": {"name": "g", "namespace": namespace},
            "spec": {
                "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "apps"}],
                "to": [{"group": "", "kind": "Service", "name": to_name}],
            }
        }))
        .unwrap()
    }

    fn check(snapshot: &Snapshot, from_ns: &str, kind: &str, to: &ObjectKey) -> (bool, UnitDeps) {
        let mut deps = UnitDeps::new();
        let from = From {
            group: "gateway.networking.k8s.io",
            kind: "HTTPRoute",
            namespace: from_ns,
        };
        let allowed = permits(
            snapshot,
            &mut deps,
            from,
            To {
                group: "",
                kind,
                key: to,
            },
        );
        (allowed, deps)
    }

    #[test]
    fn same_namespace_needs_no_grant_and_reads_none() {
        let (allowed, deps) = check(
            &Snapshot::default(),
            "apps",
            "Service",
            &ObjectKey::new("apps", "web"),
        );
        assert!(allowed);
        assert!(deps.is_empty());
    }

    #[test]
    fn cross_namespace_needs_a_matching_grant() {
        let web = ObjectKey::new("backends", "web");
        let (allowed, deps) = check(&Snapshot::default(), "apps", "Service", &web);
        assert!(!allowed);
        assert!(deps.contains(&Dependency::namespace("ReferenceGrant", "backends")));

        let mut snapshot = Snapshot::default();
        snapshot.store_mut::<ReferenceGrantKind>().apply(
            ObjectKey::new("backends", "g"),
            grant("backends", Some("web")),
        );
        assert!(check(&snapshot, "apps", "Service", &web).0);
        assert!(
            !check(&snapshot, "other", "Service", &web).0,
            "another namespace"
        );
        assert!(!check(&snapshot, "apps", "Secret", &web).0, "another kind");
        assert!(
            !check(
                &snapshot,
                "apps",
                "Service",
                &ObjectKey::new("backends", "db")
            )
            .0,
            "another name"
        );

        let mut snapshot = Snapshot::default();
        snapshot
            .store_mut::<ReferenceGrantKind>()
            .apply(ObjectKey::new("elsewhere", "g"), grant("elsewhere", None));
        assert!(
            !check(&snapshot, "apps", "Service", &web).0,
            "a grant of another namespace"
        );
        snapshot
            .store_mut::<ReferenceGrantKind>()
            .apply(ObjectKey::new("backends", "g"), grant("backends", None));
        assert!(
            check(&snapshot, "apps", "Service", &web).0,
            "no name: every Service"
        );
    }
}
