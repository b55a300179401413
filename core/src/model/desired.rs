//! The desired state: every APISIX key the operator wants, with its value and
//! the unit (source object) it comes from.

use imbl::OrdMap;

use super::UnitKey;
use crate::apisix::{CanonicalValue, EtcdKey};

/// A desired key's value and owning unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredValue {
    pub value: CanonicalValue,
    pub unit: UnitKey,
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

    pub fn insert(&mut self, key: EtcdKey, value: CanonicalValue, unit: UnitKey) {
        let desired = DesiredValue { value, unit };
        match self.entries.get(&key) {
            Some(previous) if *previous == desired => return,
            Some(previous) if previous.unit != desired.unit => {
                let previous_unit = previous.unit.clone();
                self.forget_key(&previous_unit, &key);
            }
            _ => {}
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

    /// Replaces everything `unit` contributes with `objects`. Re-translating
    /// a unit to the same objects changes nothing (not even the revision).
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
        self.remove_unit(unit);
        for (key, value) in objects {
            self.insert(key, value, unit.clone());
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
                        .is_some_and(|d| d.unit == *unit && d.value == *value)
            })
    }

    pub fn remove_unit(&mut self, unit: &UnitKey) {
        let Some(keys) = self.by_unit.remove(unit) else {
            return;
        };
        for key in keys {
            self.entries.remove(&key);
        }
        self.revision += 1;
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
                imbl::ordmap::DiffItem::Add(_, new) => [None, Some(&new.unit)],
                imbl::ordmap::DiffItem::Remove(_, old) => [Some(&old.unit), None],
                imbl::ordmap::DiffItem::Update {
                    old: (_, old),
                    new: (_, new),
                } => [Some(&old.unit), Some(&new.unit)],
            })
            .flatten()
            .cloned()
            .collect()
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
    fn a_key_moving_between_units_leaves_the_old_unit() {
        let (a, b) = (UnitKey::new("K", None, "a"), UnitKey::new("K", None, "b"));
        let mut state = DesiredState::new();
        state.replace_unit(&a, [(key("1"), value(1))]);
        state.replace_unit(&b, [(key("1"), value(1))]);
        assert_eq!(state.unit_of(&key("1")), Some(&b));
        assert_eq!(state.keys_of(&a).count(), 0);
        state.remove_unit(&a);
        assert_eq!(state.len(), 1);
    }
}
