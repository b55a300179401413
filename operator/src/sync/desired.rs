//! The desired state: every APISIX key the operator wants, with its value and
//! the unit (source object) it comes from.

use std::collections::{BTreeMap, BTreeSet};
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
    /// The keys of each unit, so replacing a unit costs its own size.
    by_unit: BTreeMap<UnitKey, BTreeSet<EtcdKey>>,
}

impl DesiredState {
    pub fn new() -> DesiredState {
        DesiredState::default()
    }

    pub fn insert(&mut self, key: EtcdKey, value: CanonicalValue, unit: UnitKey) {
        if let Some(previous) = self.entries.get(&key).filter(|p| p.unit != unit) {
            let previous_unit = previous.unit.clone();
            self.forget_key(&previous_unit, &key);
        }
        self.by_unit
            .entry(unit.clone())
            .or_default()
            .insert(key.clone());
        self.entries.insert(key, DesiredValue { value, unit });
    }

    fn forget_key(&mut self, unit: &UnitKey, key: &EtcdKey) {
        if let Some(keys) = self.by_unit.get_mut(unit) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_unit.remove(unit);
            }
        }
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
        for key in self.by_unit.remove(unit).unwrap_or_default() {
            self.entries.remove(&key);
        }
    }

    /// The unit that currently owns `key`, if any.
    pub fn unit_of(&self, key: &EtcdKey) -> Option<&UnitKey> {
        self.entries.get(key).map(|d| &d.unit)
    }

    /// The keys of `unit`.
    pub fn keys_of(&self, unit: &UnitKey) -> impl Iterator<Item = &EtcdKey> {
        self.by_unit.get(unit).into_iter().flatten()
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
        let mut state = DesiredState::new();
        for (key, desired) in iter {
            state.insert(key, desired.value, desired.unit);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apisix::ApisixDir;

    fn key(id: &str) -> EtcdKey {
        EtcdKey::new("/apisix", ApisixDir::Routes, id).unwrap()
    }

    fn value(n: u8) -> CanonicalValue {
        CanonicalValue::from_json(serde_json::json!({ "n": n })).unwrap()
    }

    #[test]
    fn replacing_a_unit_drops_its_old_keys_only() {
        let a = UnitKey::new("K", None, "a");
        let b = UnitKey::new("K", None, "b");
        let mut state = DesiredState::new();
        state.replace_unit(&a, [(key("1"), value(1)), (key("2"), value(2))]);
        state.replace_unit(&b, [(key("3"), value(3))]);
        state.replace_unit(&a, [(key("2"), value(9))]);
        assert_eq!(state.len(), 2);
        assert_eq!(state.get(&key("2")).unwrap().value, value(9));
        assert_eq!(state.keys_of(&a).collect::<Vec<_>>(), vec![&key("2")]);
        state.remove_unit(&b);
        assert_eq!(state.len(), 1);
        assert_eq!(state.unit_of(&key("2")), Some(&a));
    }
}
