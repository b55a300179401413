//! Which units read which inputs, so a change to a Service, its
//! EndpointSlices, a Secret or an IngressClass re-translates only the units
//! that depend on it.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Dependency, UnitDeps, UnitKey};

#[derive(Debug, Default, Clone)]
pub struct DependencyIndex {
    by_unit: BTreeMap<UnitKey, UnitDeps>,
    by_dependency: BTreeMap<Dependency, BTreeSet<UnitKey>>,
}

impl DependencyIndex {
    /// Records what `unit` read in its latest translation.
    /// Records `unit`'s dependencies; whether they changed.
    pub fn set(&mut self, unit: &UnitKey, deps: UnitDeps) -> bool {
        if self.by_unit.get(unit) == Some(&deps) {
            return false;
        }
        self.remove(unit);
        for dep in &deps {
            self.by_dependency
                .entry(dep.clone())
                .or_default()
                .insert(unit.clone());
        }
        self.by_unit.insert(unit.clone(), deps);
        true
    }

    /// Forgets `unit`'s dependencies; whether it had any recorded.
    pub fn remove(&mut self, unit: &UnitKey) -> bool {
        let Some(old) = self.by_unit.remove(unit) else {
            return false;
        };
        for dep in old {
            if let Some(units) = self.by_dependency.get_mut(&dep) {
                units.remove(unit);
                if units.is_empty() {
                    self.by_dependency.remove(&dep);
                }
            }
        }
        true
    }

    /// What `unit` read in its latest translation.
    pub fn get(&self, unit: &UnitKey) -> Option<&UnitDeps> {
        self.by_unit.get(unit)
    }

    /// The units that read `dep`.
    pub fn dependents(&self, dep: &Dependency) -> impl Iterator<Item = &UnitKey> {
        self.by_dependency.get(dep).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectKey;

    #[test]
    fn tracks_and_forgets_dependents() {
        let mut index = DependencyIndex::default();
        let a = UnitKey::new("Ingress", Some("ns"), "a");
        let b = UnitKey::new("Ingress", Some("ns"), "b");
        let svc = Dependency::object("Service", ObjectKey::new("ns", "svc"));
        let secret = Dependency::object("Secret", ObjectKey::new("ns", "tls"));
        index.set(&a, [svc.clone(), secret.clone()].into());
        index.set(&b, [svc.clone()].into());
        assert_eq!(index.dependents(&svc).count(), 2);
        assert_eq!(index.dependents(&secret).collect::<Vec<_>>(), vec![&a]);
        // A re-translation that no longer reads the Secret.
        index.set(&a, [svc.clone()].into());
        assert_eq!(index.dependents(&secret).count(), 0);
        index.remove(&b);
        assert_eq!(index.dependents(&svc).collect::<Vec<_>>(), vec![&a]);
    }
}
