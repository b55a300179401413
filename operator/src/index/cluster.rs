//! The whole translation state of a replica, fed by watch events (or, for
//! `translate`, by files): source objects, the snapshot of their inputs, the
//! dependency index, and the resulting desired state. Pure: no I/O.
//!
//! Every event marks the units it affects dirty; [`ClusterIndex::flush`]
//! re-translates exactly those. A unit that fails keeps its last good
//! objects in the desired state (nothing serving traffic is lost) and its
//! error is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use super::sources::ApisixObject;
use super::{Dependency, DependencyIndex, ObjectKey, Snapshot};
use crate::sync::{DesiredState, UnitKey};
use crate::translate::{TranslateConfig, TranslateError, TranslateInput, ingress};

/// What happened to one unit in a flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitOutcome {
    /// Translated; `objects` APISIX objects (0 when the unit is not ours).
    Translated { unit: UnitKey, objects: usize },
    /// The source object is gone; its objects were removed.
    Removed { unit: UnitKey },
    /// Translation failed; the unit's previous objects stay.
    Failed {
        unit: UnitKey,
        error: TranslateError,
    },
}

#[derive(Debug, Clone)]
pub struct ClusterIndex {
    config: TranslateConfig,
    snapshot: Snapshot,
    ingresses: BTreeMap<ObjectKey, Arc<Ingress>>,
    /// The APISIX CRs, by unit.
    apisix: BTreeMap<UnitKey, ApisixObject>,
    deps: DependencyIndex,
    desired: DesiredState,
    errors: BTreeMap<UnitKey, TranslateError>,
    dirty: BTreeSet<UnitKey>,
    /// With a namespace label selector: the namespaces that match it.
    /// `None` serves every namespace.
    selected_namespaces: Option<BTreeSet<String>>,
    /// Bumped by every change the status view can depend on (see
    /// [`ClusterIndex::status_revision`]).
    status_revision: u64,
}

pub(crate) fn ingress_key(unit: &UnitKey) -> Option<ObjectKey> {
    let rest = unit.as_str().strip_prefix("Ingress/")?;
    let (namespace, name) = rest.split_once('/')?;
    Some(ObjectKey::new(namespace, name))
}

fn meta_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default(),
    )
}

impl ClusterIndex {
    pub fn new(config: TranslateConfig) -> ClusterIndex {
        ClusterIndex {
            config,
            snapshot: Snapshot::default(),
            ingresses: BTreeMap::new(),
            apisix: BTreeMap::new(),
            deps: DependencyIndex::default(),
            desired: DesiredState::new(),
            errors: BTreeMap::new(),
            dirty: BTreeSet::new(),
            selected_namespaces: None,
            status_revision: 0,
        }
    }

    /// Serves only namespaces passed to [`ClusterIndex::select_namespace`]
    /// (a namespace label selector is in use).
    pub fn with_namespace_filter(mut self) -> ClusterIndex {
        self.selected_namespaces = Some(BTreeSet::new());
        self
    }

    /// Whether Ingresses of `namespace` are served.
    pub fn serves_namespace(&self, namespace: &str) -> bool {
        self.selected_namespaces
            .as_ref()
            .is_none_or(|selected| selected.contains(namespace))
    }

    /// Marks `namespace` as matching the selector or not; its Ingresses are
    /// translated again (or withdrawn).
    pub fn select_namespace(&mut self, namespace: &str, selected: bool) {
        let Some(set) = self.selected_namespaces.as_mut() else {
            return;
        };
        let changed = if selected {
            set.insert(namespace.to_string())
        } else {
            set.remove(namespace)
        };
        if changed {
            self.status_changed();
            let units: Vec<UnitKey> = self
                .ingresses
                .iter()
                .filter(|(key, _)| key.namespace == namespace)
                .map(|(_, ingress)| ingress::unit_key(ingress))
                .chain(
                    self.apisix
                        .iter()
                        .filter(|(_, o)| o.namespace() == Some(namespace))
                        .map(|(unit, _)| unit.clone()),
                )
                .collect();
            self.dirty.extend(units);
        }
    }

    /// The namespaces currently selected (with a selector).
    pub fn selected_namespaces(&self) -> Option<&BTreeSet<String>> {
        self.selected_namespaces.as_ref()
    }

    /// Moves whenever something the status view reads may have changed:
    /// Ingresses, APISIX CRs, ApisixUpstreams, Services, Secrets,
    /// IngressClasses, the selected namespaces, a unit's error or
    /// dependencies. EndpointSlices and Pods only reach the view through
    /// errors, so endpoint churn leaves it (and the view) alone.
    pub fn status_revision(&self) -> u64 {
        self.status_revision
    }

    fn status_changed(&mut self) {
        self.status_revision += 1;
    }

    pub fn config(&self) -> &TranslateConfig {
        &self.config
    }

    pub fn desired(&self) -> &DesiredState {
        &self.desired
    }

    pub fn errors(&self) -> &BTreeMap<UnitKey, TranslateError> {
        &self.errors
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn ingress(&self, key: &ObjectKey) -> Option<&Ingress> {
        self.ingresses.get(key).map(Arc::as_ref)
    }

    pub fn ingress_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.ingresses.keys()
    }

    pub fn ingresses(&self) -> impl Iterator<Item = &Ingress> {
        self.ingresses.values().map(Arc::as_ref)
    }

    fn mark_dependents(&mut self, dep: &Dependency) {
        let units: Vec<UnitKey> = self.deps.dependents(dep).cloned().collect();
        self.dirty.extend(units);
    }

    pub fn apply_ingress(&mut self, ingress: Ingress) {
        let key = meta_key(&ingress.metadata);
        self.status_changed();
        self.dirty.insert(ingress::unit_key(&ingress));
        self.ingresses.insert(key, Arc::new(ingress));
    }

    pub fn delete_ingress(&mut self, key: &ObjectKey) {
        if let Some(ingress) = self.ingresses.remove(key) {
            self.status_changed();
            self.dirty.insert(ingress::unit_key(&ingress));
        }
    }

    /// Adds or updates an APISIX CR.
    pub fn apply_apisix(&mut self, object: ApisixObject) {
        let unit = object.unit_key();
        self.status_changed();
        if let ApisixObject::PluginConfig(pc) = &object {
            let key = meta_key(&pc.metadata);
            self.snapshot.apply_plugin_config(key.clone());
            self.mark_dependents(&Dependency::PluginConfig(key));
        }
        self.dirty.insert(unit.clone());
        self.apisix.insert(unit, object);
    }

    /// Removes an APISIX CR by its unit key.
    pub fn delete_apisix(&mut self, unit: &UnitKey) {
        self.status_changed();
        if let Some(ApisixObject::PluginConfig(pc)) = self.apisix.remove(unit) {
            let key = meta_key(&pc.metadata);
            self.snapshot.delete_plugin_config(&key);
            self.mark_dependents(&Dependency::PluginConfig(key));
        }
        self.dirty.insert(unit.clone());
    }

    /// The APISIX CRs of one kind.
    pub fn apisix_objects(&self, kind: &str) -> impl Iterator<Item = &ApisixObject> {
        self.apisix.values().filter(move |o| o.kind() == kind)
    }

    /// Every APISIX CR this replica serves (namespace and class selected).
    pub fn apisix_units(&self) -> impl Iterator<Item = (&UnitKey, &ApisixObject)> {
        self.apisix.iter().filter(|(_, o)| {
            o.namespace().is_none_or(|ns| self.serves_namespace(ns))
                && self.serves_class(o.ingress_class_name())
        })
    }

    pub fn apisix_object(&self, unit: &UnitKey) -> Option<&ApisixObject> {
        self.apisix.get(unit)
    }

    /// The status inputs of ApisixUpstreams: valid on their own (Accepted),
    /// and Programmed once the routes that use them are.
    pub fn apisix_upstream_statuses(&self) -> Vec<(UnitKey, crate::status::CrStatusInput)> {
        use kube::Resource;
        self.snapshot
            .apisix_upstream_keys()
            .filter(|key| self.serves_namespace(&key.namespace))
            .filter_map(|key| {
                let upstream = self.snapshot.apisix_upstream(key)?;
                let unit = UnitKey::new("ApisixUpstream", Some(&key.namespace), &key.name);
                let users: Vec<UnitKey> = self
                    .deps
                    .dependents(&Dependency::ApisixUpstream(key.clone()))
                    .filter(|u| !self.errors.contains_key(*u))
                    .cloned()
                    .collect();
                let error =
                    crate::translate::upstream_settings::validate(&self.snapshot, &upstream.spec)
                        .err()
                        .map(|e| e.to_string());
                Some((
                    unit,
                    crate::status::CrStatusInput {
                        object: upstream.object_ref(&()),
                        api_resource: kube::discovery::ApiResource::erase::<
                            crate::api::ApisixUpstream,
                        >(&()),
                        generation: upstream.metadata.generation,
                        current: upstream.status.clone(),
                        error,
                        units: users,
                    },
                ))
            })
            .collect()
    }

    /// Records a Pod's labels (metadata-only watch).
    pub fn apply_pod(
        &mut self,
        pod: &kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Pod>,
    ) {
        self.apply_pod_metadata(&pod.metadata);
    }

    /// Records the labels of the Pod described by `metadata`.
    pub fn apply_pod_metadata(
        &mut self,
        metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) {
        let key = meta_key(metadata);
        let labels = metadata.labels.clone().unwrap_or_default();
        if self.snapshot.apply_pod_labels(key.clone(), labels) {
            self.mark_dependents(&Dependency::PodLabels(key.namespace));
        }
    }

    pub fn delete_pod(&mut self, key: &ObjectKey) {
        if self.snapshot.delete_pod(key) {
            self.mark_dependents(&Dependency::PodLabels(key.namespace.clone()));
        }
    }

    /// Adds or updates an ApisixUpstream (an input of routes).
    pub fn apply_apisix_upstream(&mut self, upstream: crate::api::ApisixUpstream) {
        self.status_changed();
        let key = self.snapshot.apply_apisix_upstream(upstream);
        self.mark_dependents(&Dependency::ApisixUpstream(key));
    }

    pub fn delete_apisix_upstream(&mut self, key: &ObjectKey) {
        self.status_changed();
        self.snapshot.delete_apisix_upstream(key);
        self.mark_dependents(&Dependency::ApisixUpstream(key.clone()));
    }

    pub fn apply_service(&mut self, service: Service) {
        self.status_changed();
        let key = self.snapshot.apply_service(service);
        self.mark_dependents(&Dependency::Service(key));
    }

    pub fn delete_service(&mut self, key: &ObjectKey) {
        self.status_changed();
        self.snapshot.delete_service(key);
        self.mark_dependents(&Dependency::Service(key.clone()));
    }

    pub fn apply_endpoint_slice(&mut self, slice: EndpointSlice) {
        for service in self.snapshot.apply_endpoint_slice(slice) {
            self.mark_dependents(&Dependency::Service(service));
        }
    }

    pub fn delete_endpoint_slice(&mut self, key: &ObjectKey) {
        for service in self.snapshot.delete_endpoint_slice(key) {
            self.mark_dependents(&Dependency::Service(service));
        }
    }

    pub fn apply_secret(&mut self, secret: Secret) {
        self.status_changed();
        let key = self.snapshot.apply_secret(secret);
        self.mark_dependents(&Dependency::Secret(key));
    }

    pub fn delete_secret(&mut self, key: &ObjectKey) {
        self.status_changed();
        self.snapshot.delete_secret(key);
        self.mark_dependents(&Dependency::Secret(key.clone()));
    }

    pub fn apply_ingress_class(&mut self, class: IngressClass) {
        self.status_changed();
        self.snapshot.apply_ingress_class(class);
        self.mark_dependents(&Dependency::IngressClasses);
    }

    pub fn delete_ingress_class(&mut self, name: &str) {
        self.status_changed();
        self.snapshot.delete_ingress_class(name);
        self.mark_dependents(&Dependency::IngressClasses);
    }

    /// Marks every unit dirty (a full recompute, as a resync does).
    pub fn mark_all(&mut self) {
        let units: Vec<UnitKey> = self
            .ingresses
            .values()
            .map(|i| ingress::unit_key(i))
            .chain(self.apisix.keys().cloned())
            .collect();
        self.dirty.extend(units);
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Re-translates every dirty unit and updates the desired state.
    pub fn flush(&mut self) -> Vec<UnitOutcome> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|unit| self.retranslate(unit))
            .collect()
    }

    fn retranslate(&mut self, unit: UnitKey) -> UnitOutcome {
        if let Some(object) = self.apisix.get(&unit).cloned() {
            return self.retranslate_apisix(unit, &object);
        }
        if !unit.as_str().starts_with("Ingress/") {
            self.desired.remove_unit(&unit);
            self.forget_unit(&unit);
            return UnitOutcome::Removed { unit };
        }
        self.retranslate_ingress(unit)
    }

    /// Whether a CR's `ingressClassName` selects this operator: unset, our
    /// class name, or one of our IngressClasses.
    fn clear_error(&mut self, unit: &UnitKey) {
        if self.errors.remove(unit).is_some() {
            self.status_changed();
        }
    }

    /// A unit that no longer translates: no dependencies, no error.
    fn forget_unit(&mut self, unit: &UnitKey) {
        if self.deps.remove(unit) {
            self.status_changed();
        }
        self.clear_error(unit);
    }

    fn serves_class(&self, class: Option<&str>) -> bool {
        class.is_none_or(|name| {
            name == self.config.ingress_class
                || self
                    .snapshot
                    .ingress_class(name)
                    .and_then(|c| c.spec.as_ref())
                    .and_then(|spec| spec.controller.as_deref())
                    == Some(self.config.controller_name.as_str())
        })
    }

    fn retranslate_apisix(&mut self, unit: UnitKey, object: &ApisixObject) -> UnitOutcome {
        let served = object
            .namespace()
            .is_none_or(|ns| self.serves_namespace(ns))
            && self.serves_class(object.ingress_class_name());
        let translation = if served {
            object.translate(TranslateInput {
                config: &self.config,
                snapshot: &self.snapshot,
            })
        } else {
            crate::translate::Translation {
                result: Ok(Default::default()),
                deps: Default::default(),
            }
        };
        let mut deps = translation.deps;
        if object.ingress_class_name().is_some() {
            deps.insert(Dependency::IngressClasses);
        }
        self.apply_translation(unit, deps, translation.result)
    }

    fn retranslate_ingress(&mut self, unit: UnitKey) -> UnitOutcome {
        let Some(ingress) = ingress_key(&unit).and_then(|key| self.ingresses.get(&key).cloned())
        else {
            self.desired.remove_unit(&unit);
            self.forget_unit(&unit);
            return UnitOutcome::Removed { unit };
        };
        let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
        if !self.serves_namespace(namespace) {
            // Outside the selected namespaces: not ours, like another class.
            self.desired.remove_unit(&unit);
            self.forget_unit(&unit);
            return UnitOutcome::Translated { unit, objects: 0 };
        }
        let translation = ingress::translate(
            TranslateInput {
                config: &self.config,
                snapshot: &self.snapshot,
            },
            &ingress,
        );
        self.apply_translation(unit, translation.deps, translation.result)
    }

    /// Records a unit's translation: its objects replace the previous ones,
    /// or its error is kept and the previous objects stay.
    fn apply_translation(
        &mut self,
        unit: UnitKey,
        deps: crate::index::UnitDeps,
        result: Result<crate::translate::UnitObjects, TranslateError>,
    ) -> UnitOutcome {
        if self.deps.set(&unit, deps) {
            self.status_changed();
        }
        let result = result.and_then(|objects| {
            // Ids are 96-bit hashes: two units producing one key means a
            // hash collision or a bug; refuse it rather than let one unit
            // overwrite another's object.
            for key in objects.objects.keys() {
                if let Some(owner) = self.desired.unit_of(key).filter(|owner| **owner != unit) {
                    return Err(TranslateError::Internal(format!(
                        "object {key} is already produced by {owner}"
                    )));
                }
            }
            Ok(objects)
        });
        match result {
            Ok(objects) => {
                let count = objects.objects.len();
                self.desired.replace_unit(&unit, objects.objects);
                self.clear_error(&unit);
                UnitOutcome::Translated {
                    unit,
                    objects: count,
                }
            }
            Err(error) => {
                if self.errors.get(&unit) != Some(&error) {
                    self.status_changed();
                }
                self.errors.insert(unit.clone(), error.clone());
                UnitOutcome::Failed { unit, error }
            }
        }
    }
}
