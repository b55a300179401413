//! The desired state: every APISIX key the operator wants, with its value and
//! the units (source objects) it comes from. Most keys have one unit; an
//! upstream that several units need identically (one Service port, the same
//! settings) is one key owned jointly, kept while any of them produces it.

use std::sync::Arc;

use imbl::OrdMap;

use super::UnitKey;
use crate::apisix::{ApisixDir, CanonicalValue, EtcdKey};

/// A desired key's value and the units producing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredValue {
    pub value: CanonicalValue,
    /// The unit producing it (the first in order, when several do).
    pub unit: UnitKey,
    /// The other units producing it too (sorted); `None` for most keys.
    pub co_owners: Option<Arc<[UnitKey]>>,
}

impl DesiredValue {
    fn new(value: CanonicalValue, unit: UnitKey) -> DesiredValue {
        DesiredValue {
            value,
            unit,
            co_owners: None,
        }
    }

    /// Every unit producing the key.
    pub fn owners(&self) -> impl Iterator<Item = &UnitKey> {
        std::iter::once(&self.unit).chain(self.co_owners.iter().flat_map(|c| c.iter()))
    }

    /// Whether several units produce the key.
    pub fn is_shared(&self) -> bool {
        self.co_owners.is_some()
    }

    fn owned_by(&self, unit: &UnitKey) -> bool {
        self.owners().any(|owner| owner == unit)
    }

    fn with_owner(&self, unit: &UnitKey) -> DesiredValue {
        let mut owners: Vec<UnitKey> = self.owners().cloned().collect();
        owners.push(unit.clone());
        self.with_owners(owners).expect("at least one owner")
    }

    /// Without `unit` among its owners; `None` when it was the last.
    fn without_owner(&self, unit: &UnitKey) -> Option<DesiredValue> {
        let owners: Vec<UnitKey> = self.owners().filter(|o| *o != unit).cloned().collect();
        self.with_owners(owners)
    }

    /// The same value owned by `owners`: the smallest is the unit, so the
    /// state does not depend on the order units were translated in.
    fn with_owners(&self, mut owners: Vec<UnitKey>) -> Option<DesiredValue> {
        owners.sort();
        owners.dedup();
        let mut owners = owners.into_iter();
        let unit = owners.next()?;
        let rest: Vec<UnitKey> = owners.collect();
        Some(DesiredValue {
            value: self.value.clone(),
            unit,
            co_owners: (!rest.is_empty()).then(|| rest.into()),
        })
    }
}

/// Every key the operator wants in etcd. Keys sort in APISIX write order.
///
/// The maps are persistent (structurally shared): a clone costs O(1) and a
/// change to one unit copies only the paths it touches, so the index task can
/// publish a snapshot after every batch of changes whatever the cluster size.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    entries: OrdMap<EtcdKey, DesiredValue>,
    /// The keys of each unit (sorted), so replacing a unit costs its own size.
    by_unit: OrdMap<UnitKey, Vec<EtcdKey>>,
    /// Bumped by every change of content, so copies of one state can tell
    /// whether they differ without comparing contents (see [`Self::revision`]).
    revision: u64,
}

/// Equal contents; the revision is bookkeeping.
impl PartialEq for DesiredState {
    fn eq(&self, other: &DesiredState) -> bool {
        self.entries == other.entries
    }
}

impl Eq for DesiredState {}

impl DesiredState {
    pub fn new() -> DesiredState {
        DesiredState::default()
    }

    /// How many content changes this state has seen. Between a state and its
    /// own earlier clone, equal revisions mean equal contents (O(1)); states
    /// built separately must be compared with `==`.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Sets `key` to `value`, produced by `unit` alone (any other owner
    /// loses it).
    pub fn insert(&mut self, key: EtcdKey, value: CanonicalValue, unit: UnitKey) {
        let desired = DesiredValue::new(value, unit);
        match self.entries.get(&key) {
            Some(previous) if *previous == desired => return,
            Some(previous) => {
                let owners: Vec<UnitKey> = previous
                    .owners()
                    .filter(|o| **o != desired.unit)
                    .cloned()
                    .collect();
                for owner in owners {
                    self.forget_key(&owner, &key);
                }
            }
            None => {}
        }
        let keys = self.by_unit.entry(desired.unit.clone()).or_default();
        if let Err(at) = keys.binary_search(&key) {
            keys.insert(at, key.clone());
        }
        self.entries.insert(key, desired);
        self.revision += 1;
    }

    fn forget_key(&mut self, unit: &UnitKey, key: &EtcdKey) {
        if let Some(keys) = self.by_unit.get_mut(unit) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_unit.remove(unit);
            }
        }
    }

    /// Replaces everything `unit` contributes with `objects`. A key another
    /// unit produces too becomes jointly owned; its value is the latest
    /// translation's (units producing one key read the same inputs, so they
    /// agree once all are translated). Re-translating a unit to the same
    /// objects changes nothing (not even the revision).
    pub fn replace_unit(
        &mut self,
        unit: &UnitKey,
        objects: impl IntoIterator<Item = (EtcdKey, CanonicalValue)>,
    ) {
        let mut objects: Vec<(EtcdKey, CanonicalValue)> = objects.into_iter().collect();
        // Sorted by key; of a key given twice, the last value wins (the
        // stable sort keeps the reversed order among equal keys).
        objects.reverse();
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        objects.dedup_by(|later, earlier| later.0 == earlier.0);
        if self.unit_holds_exactly(unit, &objects) {
            return;
        }
        let old = self.by_unit.remove(unit).unwrap_or_default();
        let new_keys: Vec<EtcdKey> = objects.iter().map(|(key, _)| key.clone()).collect();
        for key in old.iter().filter(|k| new_keys.binary_search(k).is_err()) {
            self.release(key, unit);
        }
        for (key, value) in objects {
            self.claim(key, value, unit);
        }
        if !new_keys.is_empty() {
            self.by_unit.insert(unit.clone(), new_keys);
        }
        self.revision += 1;
    }

    /// `unit` produces `key` with `value`.
    fn claim(&mut self, key: EtcdKey, value: CanonicalValue, unit: &UnitKey) {
        let entry = match self.entries.get(&key) {
            None => DesiredValue::new(value, unit.clone()),
            Some(current) => {
                let mut entry = if current.owned_by(unit) {
                    current.clone()
                } else {
                    current.with_owner(unit)
                };
                entry.value = value;
                entry
            }
        };
        if self.entries.get(&key) != Some(&entry) {
            self.entries.insert(key, entry);
        }
    }

    /// `unit` no longer produces `key`: it goes when no other unit does.
    fn release(&mut self, key: &EtcdKey, unit: &UnitKey) {
        let Some(current) = self.entries.get(key) else {
            return;
        };
        match current.without_owner(unit) {
            Some(rest) => {
                self.entries.insert(key.clone(), rest);
            }
            None => {
                self.entries.remove(key);
            }
        }
    }

    fn unit_holds_exactly(&self, unit: &UnitKey, objects: &[(EtcdKey, CanonicalValue)]) -> bool {
        let keys = self
            .by_unit
            .get(unit)
            .map(Vec::as_slice)
            .unwrap_or_default();
        keys.len() == objects.len()
            && keys.iter().zip(objects).all(|(held, (key, value))| {
                held == key
                    && self
                        .entries
                        .get(key)
                        .is_some_and(|d| d.owned_by(unit) && d.value == *value)
            })
    }

    pub fn remove_unit(&mut self, unit: &UnitKey) {
        let Some(keys) = self.by_unit.remove(unit) else {
            return;
        };
        for key in keys {
            self.release(&key, unit);
        }
        self.revision += 1;
    }

    /// The unit producing `key` (the first in order, when several do).
    pub fn unit_of(&self, key: &EtcdKey) -> Option<&UnitKey> {
        self.entries.get(key).map(|d| &d.unit)
    }

    /// Every unit producing `key`.
    pub fn owners_of(&self, key: &EtcdKey) -> impl Iterator<Item = &UnitKey> {
        self.entries
            .get(key)
            .into_iter()
            .flat_map(DesiredValue::owners)
    }

    /// The keys of `unit`.
    pub fn keys_of(&self, unit: &UnitKey) -> impl Iterator<Item = &EtcdKey> {
        self.by_unit.get(unit).into_iter().flatten()
    }

    pub fn get(&self, key: &EtcdKey) -> Option<&DesiredValue> {
        self.entries.get(key)
    }

    /// The state's own copy of `key`, if desired.
    pub fn key(&self, key: &EtcdKey) -> Option<&EtcdKey> {
        self.entries.get_key_value(key).map(|(key, _)| key)
    }

    /// The keys whose value or unit differs between `older` and this state
    /// (added, changed or removed). Between a state and its own earlier
    /// clone this skips every shared subtree, so it costs the number of
    /// changes, not the size of the state.
    pub fn changed_keys<'a>(
        &'a self,
        older: &'a DesiredState,
    ) -> impl Iterator<Item = &'a EtcdKey> {
        older.entries.diff(&self.entries).map(|item| match item {
            imbl::ordmap::DiffItem::Add(key, _)
            | imbl::ordmap::DiffItem::Remove(key, _)
            | imbl::ordmap::DiffItem::Update { new: (key, _), .. } => key,
        })
    }

    /// The units owning the keys that changed between `older` and this
    /// state, in either of them.
    pub fn changed_units(&self, older: &DesiredState) -> std::collections::BTreeSet<UnitKey> {
        older
            .entries
            .diff(&self.entries)
            .flat_map(|item| match item {
                imbl::ordmap::DiffItem::Add(_, new) => [None, Some(new)],
                imbl::ordmap::DiffItem::Remove(_, old) => [Some(old), None],
                imbl::ordmap::DiffItem::Update {
                    old: (_, old),
                    new: (_, new),
                } => [Some(old), Some(new)],
            })
            .flatten()
            .flat_map(DesiredValue::owners)
            .cloned()
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&EtcdKey, &DesiredValue)> {
        self.entries.iter()
    }

    /// The keys of one APISIX directory (keys sort by directory first).
    pub fn in_dir(&self, dir: ApisixDir) -> impl Iterator<Item = (&EtcdKey, &DesiredValue)> {
        self.entries
            .iter()
            .skip_while(move |(key, _)| key.dir() < dir)
            .take_while(move |(key, _)| key.dir() == dir)
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

    #[test]
    fn the_revision_moves_only_when_contents_change() {
        let a = UnitKey::new("K", None, "a");
        let mut state = DesiredState::new();
        state.replace_unit(&a, [(key("1"), value(1)), (key("2"), value(2))]);
        let published = state.clone();
        // The same objects, in another order: nothing changes.
        state.replace_unit(&a, [(key("2"), value(2)), (key("1"), value(1))]);
        assert_eq!(state.revision(), published.revision());
        state.replace_unit(&a, [(key("1"), value(1)), (key("2"), value(3))]);
        assert_ne!(state.revision(), published.revision());
        assert_ne!(state, published);
        // A key given twice: the last value wins.
        state.replace_unit(&a, [(key("1"), value(1)), (key("1"), value(4))]);
        assert_eq!(state.get(&key("1")).unwrap().value, value(4));
        assert_eq!(state.len(), 1);
        let revision = state.revision();
        state.remove_unit(&UnitKey::new("K", None, "absent"));
        assert_eq!(state.revision(), revision);
    }

    #[test]
    fn changed_keys_are_what_differs_from_an_earlier_clone() {
        let (a, b) = (UnitKey::new("K", None, "a"), UnitKey::new("K", None, "b"));
        let mut state = DesiredState::new();
        for i in 0..1000u32 {
            let unit = if i % 2 == 0 { &a } else { &b };
            state.insert(key(&i.to_string()), value((i % 7) as u8), unit.clone());
        }
        let earlier = state.clone();
        assert_eq!(state.changed_keys(&earlier).count(), 0);
        state.insert(key("5"), value(99), b.clone());
        state.insert(key("new"), value(1), a.clone());
        state.remove_unit(&UnitKey::new("K", None, "absent"));
        let changed: Vec<String> = state
            .changed_keys(&earlier)
            .map(|k| k.id().to_string())
            .collect();
        assert_eq!(changed, ["5", "new"]);
        assert_eq!(
            state.changed_units(&earlier),
            [a.clone(), b.clone()].into_iter().collect()
        );
        state.remove_unit(&a);
        assert_eq!(state.changed_keys(&earlier).count(), 501);
    }

    #[test]
    fn a_key_several_units_produce_is_shared_until_the_last_lets_go() {
        let (a, b, c) = (
            UnitKey::new("K", None, "a"),
            UnitKey::new("K", None, "b"),
            UnitKey::new("K", None, "c"),
        );
        let mut state = DesiredState::new();
        state.replace_unit(&a, [(key("1"), value(1)), (key("2"), value(2))]);
        state.replace_unit(&b, [(key("1"), value(1))]);
        state.replace_unit(&c, [(key("1"), value(1))]);
        let shared = state.get(&key("1")).unwrap();
        assert!(shared.is_shared());
        assert_eq!(
            shared.owners().cloned().collect::<Vec<_>>(),
            [a.clone(), b.clone(), c.clone()]
        );
        assert_eq!(state.keys_of(&b).collect::<Vec<_>>(), [&key("1")]);
        // The latest translation's value wins (the others follow in the same flush).
        state.replace_unit(&b, [(key("1"), value(7))]);
        assert_eq!(state.get(&key("1")).unwrap().value, value(7));
        // An owner leaves: the key stays with the others.
        state.remove_unit(&a);
        assert_eq!(state.unit_of(&key("1")), Some(&b));
        assert!(state.get(&key("2")).is_none());
        state.replace_unit(&b, [(key("3"), value(3))]);
        let last = state.get(&key("1")).unwrap();
        assert_eq!(last.unit, c);
        assert!(!last.is_shared());
        state.remove_unit(&c);
        assert!(state.get(&key("1")).is_none());
        assert_eq!(state.len(), 1);
        // An exclusive insert takes a key from its owners.
        state.replace_unit(&a, [(key("3"), value(3))]);
        state.insert(key("3"), value(4), c.clone());
        assert_eq!(state.owners_of(&key("3")).collect::<Vec<_>>(), [&c]);
        assert_eq!(state.keys_of(&b).count(), 0);
    }
}
