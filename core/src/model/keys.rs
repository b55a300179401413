//! The names of things: a Kubernetes object by namespace and name, and a
//! unit (one source object whose translation yields APISIX objects).

use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// `namespace/name` of an object; cluster-scoped objects have an empty
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// A cluster-scoped object's key.
    pub fn cluster(name: &str) -> ObjectKey {
        ObjectKey::new("", name)
    }

    /// The key of the object `meta` describes; a namespaced object without
    /// a namespace lands in `default`, as the API server would put it.
    pub fn of_meta(meta: &ObjectMeta, namespaced: bool) -> ObjectKey {
        let name = meta.name.as_deref().unwrap_or_default();
        if namespaced {
            ObjectKey::new(meta.namespace.as_deref().unwrap_or("default"), name)
        } else {
            ObjectKey::cluster(name)
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// One source object whose translation produces a set of APISIX objects:
/// an Ingress, an ApisixRoute, an ApisixTls, ... Displayed as
/// `Kind/namespace/name` (`Kind/name` when cluster-scoped). Cheap to clone.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitKey(Arc<UnitKeyParts>);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct UnitKeyParts {
    kind: &'static str,
    namespace: Option<String>,
    name: String,
}

impl UnitKey {
    pub fn new(kind: &'static str, namespace: Option<&str>, name: &str) -> UnitKey {
        UnitKey(Arc::new(UnitKeyParts {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }))
    }

    /// The unit of object `key` of `kind` (an empty namespace is cluster scope).
    pub fn of(kind: &'static str, key: &ObjectKey) -> UnitKey {
        let namespace = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
        UnitKey::new(kind, namespace, &key.name)
    }

    /// The source object's kind (a registered kind's name).
    pub fn kind(&self) -> &'static str {
        self.0.kind
    }

    /// `None` for a cluster-scoped object.
    pub fn namespace(&self) -> Option<&str> {
        self.0.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The source object's key.
    pub fn object_key(&self) -> ObjectKey {
        ObjectKey::new(self.namespace().unwrap_or(""), self.name())
    }
}

impl fmt::Display for UnitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.namespace() {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind(), self.name()),
            None => write!(f, "{}/{}", self.kind(), self.name()),
        }
    }
}

impl fmt::Debug for UnitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnitKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_key_round_trips_its_parts() {
        let unit = UnitKey::new("Ingress", Some("shop"), "web");
        assert_eq!(unit.to_string(), "Ingress/shop/web");
        assert_eq!(unit.object_key(), ObjectKey::new("shop", "web"));
        assert_eq!(UnitKey::of("Ingress", &unit.object_key()), unit);
        let cluster = UnitKey::of("ApisixClusterConfig", &ObjectKey::cluster("default"));
        assert_eq!(cluster.namespace(), None);
        assert_eq!(cluster.to_string(), "ApisixClusterConfig/default");
    }
}
