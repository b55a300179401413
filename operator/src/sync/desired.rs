//! The desired state: every APISIX key the operator wants, with its value and
//! the unit (source object) it comes from.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::apisix::{CanonicalValue, EtcdKey};

/// One source object whose translation produces a set of APISIX objects:
/// an Ingress, an ApisixRoute, an ApisixTls, ... Written as `Kind/ns/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitKey(Arc<str>);

impl UnitKey {
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> UnitKey {
        match namespace {
            Some(ns) => UnitKey(format!("{kind}/{ns}/{name}").into()),
            None => UnitKey(format!("{kind}/{name}").into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A desired key's value and owning unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredValue {
    pub value: CanonicalValue,
    pub unit: UnitKey,
}

/// Every key the operator wants in etcd. Keys sort in APISIX write order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    entries: BTreeMap<EtcdKey, DesiredValue>,
}

impl DesiredState {
    pub fn new() -> DesiredState {
        DesiredState::default()
    }

    pub fn insert(&mut self, key: EtcdKey, value: CanonicalValue, unit: UnitKey) {
        self.entries.insert(key, DesiredValue { value, unit });
    }

    /// Replaces everything `unit` contributes with `objects`.
    pub fn replace_unit(
        &mut self,
        unit: &UnitKey,
        objects: impl IntoIterator<Item = (EtcdKey, CanonicalValue)>,
    ) {
        self.remove_unit(unit);
        for (key, value) in objects {
            self.insert(key, value, unit.clone());
        }
    }

    pub fn remove_unit(&mut self, unit: &UnitKey) {
        self.entries.retain(|_, desired| &desired.unit != unit);
    }

    pub fn get(&self, key: &EtcdKey) -> Option<&DesiredValue> {
        self.entries.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&EtcdKey, &DesiredValue)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(EtcdKey, DesiredValue)> for DesiredState {
    fn from_iter<T: IntoIterator<Item = (EtcdKey, DesiredValue)>>(iter: T) -> Self {
        DesiredState {
            entries: iter.into_iter().collect(),
        }
    }
}
