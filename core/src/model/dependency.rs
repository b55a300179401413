//! What a translation read (or looked for and did not find): the edges that
//! tell the index which units to translate again when an input changes.

use std::collections::BTreeSet;
use std::fmt;

use super::ObjectKey;

/// An input of a translation: one object of a kind, every object of a kind
/// in a namespace, or every object of a kind. A change of object `k` of kind
/// `K` re-translates the units that depend on `(K, k)`, on `(K, k's
/// namespace)` and on `(K, any)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    pub kind: &'static str,
    pub scope: DependencyScope,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DependencyScope {
    Object(ObjectKey),
    Namespace(String),
    Any,
}

impl Dependency {
    /// One object of `kind`.
    pub fn object(kind: &'static str, key: ObjectKey) -> Dependency {
        Dependency {
            kind,
            scope: DependencyScope::Object(key),
        }
    }

    /// Every object of `kind` in `namespace`.
    pub fn namespace(kind: &'static str, namespace: &str) -> Dependency {
        Dependency {
            kind,
            scope: DependencyScope::Namespace(namespace.to_string()),
        }
    }

    /// Every object of `kind`.
    pub fn any(kind: &'static str) -> Dependency {
        Dependency {
            kind,
            scope: DependencyScope::Any,
        }
    }

    /// The dependencies a change of object `key` of `kind` touches.
    pub fn touched_by(kind: &'static str, key: &ObjectKey) -> [Dependency; 3] {
        [
            Dependency::object(kind, key.clone()),
            Dependency::namespace(kind, &key.namespace),
            Dependency::any(kind),
        ]
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            DependencyScope::Object(key) => write!(f, "{} {key}", self.kind),
            DependencyScope::Namespace(ns) => write!(f, "every {} of namespace {ns}", self.kind),
            DependencyScope::Any => write!(f, "every {}", self.kind),
        }
    }
}

/// What one translation read.
pub type UnitDeps = BTreeSet<Dependency>;
