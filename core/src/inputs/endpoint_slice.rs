//! EndpointSlices, filed under the Service they belong to (their
//! `kubernetes.io/service-name` label): a slice change touches its Service,
//! so only the units using that Service translate again.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::inputs::ServiceKind;
use crate::model::{Dependency, ObjectKey, SourceKind, Store, Touched, WatchWhen};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub struct EndpointSliceKind;

impl SourceKind for EndpointSliceKind {
    type Object = EndpointSlice;
    type Store = EndpointSlices;
    const KIND: &'static str = "EndpointSlice";
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::Always;
}

/// Slices by slice key, and by the Service they belong to.
#[derive(Debug, Clone, Default)]
pub struct EndpointSlices {
    slices: BTreeMap<ObjectKey, Arc<EndpointSlice>>,
    /// Slice names by Service.
    by_service: BTreeMap<ObjectKey, BTreeMap<String, Arc<EndpointSlice>>>,
    /// Which Service each slice was filed under (a slice's label may change).
    owner: BTreeMap<ObjectKey, ObjectKey>,
}

impl EndpointSlices {
    /// The EndpointSlices of a Service, in name order.
    pub fn of_service(&self, service: &ObjectKey) -> impl Iterator<Item = &EndpointSlice> {
        self.by_service
            .get(service)
            .into_iter()
            .flat_map(|slices| slices.values().map(Arc::as_ref))
    }

    fn unfile(&mut self, key: &ObjectKey) -> Option<ObjectKey> {
        self.slices.remove(key);
        let owner = self.owner.remove(key)?;
        if let Some(slices) = self.by_service.get_mut(&owner) {
            slices.remove(&key.name);
            if slices.is_empty() {
                self.by_service.remove(&owner);
            }
        }
        Some(owner)
    }
}

fn touched_services(services: impl IntoIterator<Item = ObjectKey>) -> Touched {
    let deps: Vec<Dependency> = services
        .into_iter()
        .map(|service| Dependency::object(ServiceKind::KIND, service))
        .collect();
    if deps.is_empty() {
        Touched::Nothing
    } else {
        Touched::These(deps)
    }
}

impl Store for EndpointSlices {
    type Object = EndpointSlice;

    /// Touches the Service it belongs to, and the old one if its label moved.
    fn apply(&mut self, key: ObjectKey, slice: EndpointSlice) -> Touched {
        let old_owner = self.unfile(&key);
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
            .map(|name| ObjectKey::new(&key.namespace, name));
        let slice = Arc::new(slice);
        self.slices.insert(key.clone(), slice.clone());
        if let Some(service) = &service {
            self.by_service
                .entry(service.clone())
                .or_default()
                .insert(key.name.clone(), slice);
            self.owner.insert(key, service.clone());
        }
        let mut touched: Vec<ObjectKey> = old_owner.into_iter().collect();
        if let Some(service) = service.filter(|s| !touched.contains(s)) {
            touched.push(service);
        }
        touched_services(touched)
    }

    fn delete(&mut self, key: &ObjectKey) -> Touched {
        touched_services(self.unfile(key))
    }

    fn get(&self, key: &ObjectKey) -> Option<&EndpointSlice> {
        self.slices.get(key).map(Arc::as_ref)
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.slices.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(name: &str, service: &str) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": name, "labels": {SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4", "endpoints": [],
        }))
        .unwrap()
    }

    #[test]
    fn a_relabelled_slice_touches_both_services() {
        let mut store = EndpointSlices::default();
        let key = ObjectKey::new("ns", "s1");
        store.apply(key.clone(), slice("s1", "a"));
        let touched = store.apply(key.clone(), slice("s1", "b"));
        let Touched::These(deps) = touched else {
            panic!("{touched:?}")
        };
        assert_eq!(deps.len(), 2);
        assert_eq!(store.of_service(&ObjectKey::new("ns", "a")).count(), 0);
        assert_eq!(store.of_service(&ObjectKey::new("ns", "b")).count(), 1);
        assert_eq!(
            store.delete(&key),
            touched_services([ObjectKey::new("ns", "b")])
        );
        assert!(store.keys().is_empty());
    }
}
