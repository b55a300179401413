//! The objects translation reads, by namespace and name. Pure data: the
//! runtime applies watch events to it, `translate` (offline) fills it from
//! files, and tests build it directly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressClass;

use crate::api::ApisixUpstream;

/// `namespace/name` of a namespaced object.
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
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    services: BTreeMap<ObjectKey, Arc<Service>>,
    /// Slices by the Service they belong to, then by slice name.
    endpoint_slices: BTreeMap<ObjectKey, BTreeMap<String, Arc<EndpointSlice>>>,
    /// Which Service each slice was filed under (a slice's label may change).
    slice_owner: BTreeMap<ObjectKey, ObjectKey>,
    secrets: BTreeMap<ObjectKey, Arc<Secret>>,
    ingress_classes: BTreeMap<String, Arc<IngressClass>>,
    /// ApisixPluginConfig objects that exist (referenced by annotation).
    plugin_configs: BTreeSet<ObjectKey>,
    /// ApisixUpstreams: inputs of the routes that use their Service (or
    /// reference them as external upstreams).
    apisix_upstreams: BTreeMap<ObjectKey, Arc<ApisixUpstream>>,
    /// Pod labels only (for subsets): never whole Pods.
    pod_labels: BTreeMap<ObjectKey, BTreeMap<String, String>>,
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default(),
    )
}

impl Snapshot {
    pub fn service(&self, key: &ObjectKey) -> Option<&Service> {
        self.services.get(key).map(Arc::as_ref)
    }

    /// The EndpointSlices of a Service, in name order.
    pub fn endpoint_slices(&self, service: &ObjectKey) -> impl Iterator<Item = &EndpointSlice> {
        self.endpoint_slices
            .get(service)
            .into_iter()
            .flat_map(|slices| slices.values().map(Arc::as_ref))
    }

    pub fn secret(&self, key: &ObjectKey) -> Option<&Secret> {
        self.secrets.get(key).map(Arc::as_ref)
    }

    pub fn ingress_class(&self, name: &str) -> Option<&IngressClass> {
        self.ingress_classes.get(name).map(Arc::as_ref)
    }

    pub fn ingress_classes(&self) -> impl Iterator<Item = &IngressClass> {
        self.ingress_classes.values().map(Arc::as_ref)
    }

    pub fn has_plugin_config(&self, key: &ObjectKey) -> bool {
        self.plugin_configs.contains(key)
    }

    pub fn service_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.services.keys()
    }

    pub fn endpoint_slice_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.slice_owner.keys()
    }

    pub fn secret_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.secrets.keys()
    }

    pub fn ingress_class_names(&self) -> impl Iterator<Item = &String> {
        self.ingress_classes.keys()
    }

    pub fn apply_service(&mut self, service: Service) -> ObjectKey {
        let key = key_of(&service.metadata);
        self.services.insert(key.clone(), Arc::new(service));
        key
    }

    pub fn delete_service(&mut self, key: &ObjectKey) {
        self.services.remove(key);
    }

    /// Files a slice under its Service; returns the Services whose endpoints
    /// changed (the old owner too, if the label moved).
    pub fn apply_endpoint_slice(&mut self, slice: EndpointSlice) -> Vec<ObjectKey> {
        let key = key_of(&slice.metadata);
        let mut touched = self.delete_endpoint_slice(&key);
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
        else {
            return touched;
        };
        let owner = ObjectKey::new(&key.namespace, service);
        self.endpoint_slices
            .entry(owner.clone())
            .or_default()
            .insert(key.name.clone(), Arc::new(slice));
        self.slice_owner.insert(key, owner.clone());
        if !touched.contains(&owner) {
            touched.push(owner);
        }
        touched
    }

    /// Removes a slice; returns the Service it belonged to.
    pub fn delete_endpoint_slice(&mut self, key: &ObjectKey) -> Vec<ObjectKey> {
        let Some(owner) = self.slice_owner.remove(key) else {
            return Vec::new();
        };
        if let Some(slices) = self.endpoint_slices.get_mut(&owner) {
            slices.remove(&key.name);
            if slices.is_empty() {
                self.endpoint_slices.remove(&owner);
            }
        }
        vec![owner]
    }

    pub fn apply_secret(&mut self, secret: Secret) -> ObjectKey {
        let key = key_of(&secret.metadata);
        self.secrets.insert(key.clone(), Arc::new(secret));
        key
    }

    pub fn delete_secret(&mut self, key: &ObjectKey) {
        self.secrets.remove(key);
    }

    pub fn apply_ingress_class(&mut self, class: IngressClass) {
        let name = class.metadata.name.clone().unwrap_or_default();
        self.ingress_classes.insert(name, Arc::new(class));
    }

    pub fn delete_ingress_class(&mut self, name: &str) {
        self.ingress_classes.remove(name);
    }

    pub fn pod_labels(&self, key: &ObjectKey) -> Option<&BTreeMap<String, String>> {
        self.pod_labels.get(key)
    }

    pub fn pod_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.pod_labels.keys()
    }

    /// Records a Pod's labels; returns whether they changed.
    pub fn apply_pod_labels(&mut self, key: ObjectKey, labels: BTreeMap<String, String>) -> bool {
        self.pod_labels.insert(key, labels.clone()) != Some(labels)
    }

    pub fn delete_pod(&mut self, key: &ObjectKey) -> bool {
        self.pod_labels.remove(key).is_some()
    }

    pub fn apisix_upstream(&self, key: &ObjectKey) -> Option<&ApisixUpstream> {
        self.apisix_upstreams.get(key).map(Arc::as_ref)
    }

    pub fn apisix_upstream_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.apisix_upstreams.keys()
    }

    pub fn apply_apisix_upstream(&mut self, upstream: ApisixUpstream) -> ObjectKey {
        let key = key_of(&upstream.metadata);
        self.apisix_upstreams
            .insert(key.clone(), Arc::new(upstream));
        key
    }

    pub fn delete_apisix_upstream(&mut self, key: &ObjectKey) {
        self.apisix_upstreams.remove(key);
    }

    pub fn apply_plugin_config(&mut self, key: ObjectKey) {
        self.plugin_configs.insert(key);
    }

    pub fn delete_plugin_config(&mut self, key: &ObjectKey) {
        self.plugin_configs.remove(key);
    }
}
