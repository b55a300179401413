//! The whole translation state of a replica, fed by watch events (or, for
//! `translate -f`, by files): the snapshot of watched objects, which of them
//! are served, the per-unit bookkeeping, and the resulting desired state.
//! Pure: no I/O.
//!
//! Every change marks the units it affects dirty; [`ClusterIndex::flush`]
//! re-translates exactly those. A unit that fails (to decode, translate or
//! validate) keeps its last good objects in the desired state (nothing
//! serving traffic is lost) and its error is reported.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ObjectReference;

use super::DependencyIndex;
use crate::inputs::{IngressClassKind, NamespaceKind};
use crate::model::{
    AnyObject, DecodeError, Dependency, DependencyScope, DesiredState, InvalidObject, Kind,
    ObjectKey, Snapshot, SourceKind, StatusStyle, StatusView, Touched, TranslateConfig,
    TranslateError, TranslateInput, UnitDeps, UnitKey, UnitObjects,
};
use crate::registry;
use crate::translate::class;
use crate::translate::gateway::GatewayKind;

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

/// An object as a watch (or a file) delivered it: decoded, or not.
#[derive(Debug)]
pub struct WatchedObject {
    pub key: ObjectKey,
    pub object: Result<AnyObject, Box<InvalidObject>>,
}

/// A stored object that does not decode: reported on the object itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub object: ObjectReference,
    pub generation: Option<i64>,
    pub error: DecodeError,
}

/// Per-unit bookkeeping: what each read, which failed, which must be
/// translated again.
#[derive(Debug, Clone, Default)]
struct UnitBook {
    deps: DependencyIndex,
    errors: BTreeMap<UnitKey, TranslateError>,
    /// What the latest translation left out without failing (labels APISIX
    /// would refuse).
    warnings: BTreeMap<UnitKey, Vec<String>>,
    /// Status bodies computed by translation (the Gateway API kinds).
    reports: BTreeMap<UnitKey, serde_json::Value>,
    /// Routes by the Gateway listeners they attached to.
    attachments: super::attachments::Attachments,
    /// Gateways whose attached routes changed since their status entry was
    /// last refreshed.
    gateways_touched: BTreeSet<ObjectKey>,
    dirty: BTreeSet<UnitKey>,
}

#[derive(Debug, Clone)]
pub struct ClusterIndex {
    config: TranslateConfig,
    snapshot: Snapshot,
    /// With a namespace label selector, only namespaces in the Namespace
    /// store (those matching it) are served.
    namespace_filter: bool,
    units: UnitBook,
    /// Objects (of any kind) that do not decode, by their object's unit key.
    rejected: BTreeMap<UnitKey, Rejected>,
    desired: DesiredState,
    /// The status view, kept current by every flush (see `status_book`).
    pub(super) status: StatusView,
    /// Bumped by every change of the status view (see
    /// [`ClusterIndex::status_revision`]).
    status_revision: u64,
}

impl ClusterIndex {
    pub fn new(config: TranslateConfig) -> ClusterIndex {
        ClusterIndex {
            config,
            snapshot: Snapshot::default(),
            namespace_filter: false,
            units: UnitBook::default(),
            rejected: BTreeMap::new(),
            desired: DesiredState::new(),
            status: StatusView::default(),
            status_revision: 0,
        }
    }

    /// Serves only the namespaces held by the Namespace kind (a namespace
    /// label selector is in use).
    pub fn with_namespace_filter(mut self) -> ClusterIndex {
        self.namespace_filter = true;
        self
    }

    pub fn config(&self) -> &TranslateConfig {
        &self.config
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn desired(&self) -> &DesiredState {
        &self.desired
    }

    /// The units whose latest translation failed.
    pub fn errors(&self) -> &BTreeMap<UnitKey, TranslateError> {
        &self.units.errors
    }

    /// The objects that do not decode.
    pub fn rejected(&self) -> &BTreeMap<UnitKey, Rejected> {
        &self.rejected
    }

    /// What each unit's latest translation left out without failing.
    pub fn warnings(&self) -> &BTreeMap<UnitKey, Vec<String>> {
        &self.units.warnings
    }

    pub(super) fn units_attachments(&self) -> &super::attachments::Attachments {
        &self.units.attachments
    }

    /// The status bodies of the units whose translation computes one.
    pub fn reports(&self) -> &BTreeMap<UnitKey, serde_json::Value> {
        &self.units.reports
    }

    /// The units that read `dep` and whose latest translation succeeded.
    pub fn healthy_dependents(&self, dep: &Dependency) -> Vec<UnitKey> {
        self.units
            .deps
            .dependents(dep)
            .filter(|unit| !self.units.errors.contains_key(*unit))
            .cloned()
            .collect()
    }

    /// Moves whenever the kept status view changes. Endpoint churn only
    /// reaches the view through errors, so it leaves it alone.
    pub fn status_revision(&self) -> u64 {
        self.status_revision
    }

    pub(super) fn status_changed(&mut self) {
        self.status_revision += 1;
    }

    // --- Changes ----------------------------------------------------------

    /// Records an object of kind `K` (tests and benches; watches go through
    /// [`ClusterIndex::receive`]).
    pub fn apply<K: SourceKind>(&mut self, object: K::Object) {
        let kind = registered::<K>();
        let key = K::key_of(&object);
        self.apply_object(kind, key, Box::new(object));
    }

    /// Forgets object `key` of kind `K`.
    pub fn delete<K: SourceKind>(&mut self, key: &ObjectKey) {
        self.delete_object(registered::<K>(), key);
    }

    /// Records what a watch or a file delivered.
    pub fn receive(&mut self, kind: &'static dyn Kind, watched: WatchedObject) {
        match watched.object {
            Ok(object) => self.apply_object(kind, watched.key, object),
            Err(invalid) => self.reject_object(kind, watched.key, *invalid),
        }
    }

    pub fn apply_object(&mut self, kind: &'static dyn Kind, key: ObjectKey, object: AnyObject) {
        self.unreject(kind, &key);
        let touched = kind.apply(&mut self.snapshot, key.clone(), object);
        self.after_change(kind, &key, touched);
    }

    pub fn delete_object(&mut self, kind: &'static dyn Kind, key: &ObjectKey) {
        self.unreject(kind, key);
        let touched = kind.delete(&mut self.snapshot, key);
        self.after_change(kind, key, touched);
    }

    /// The object decodes again (or is gone): no longer reported as such.
    fn unreject(&mut self, kind: &'static dyn Kind, key: &ObjectKey) {
        let unit = UnitKey::of(kind.name(), key);
        if self.rejected.remove(&unit).is_some() && kind.unit().is_none() {
            // A unit's entries follow at its flush; an input has no flush.
            self.refresh_status(&unit);
        }
    }

    /// A stored object that does not decode. Its last good version (if
    /// any) stays in the snapshot, so what reads it keeps its objects; as a
    /// unit it fails, keeping its last good APISIX objects too.
    pub fn reject_object(
        &mut self,
        kind: &'static dyn Kind,
        key: ObjectKey,
        invalid: InvalidObject,
    ) {
        let unit = UnitKey::of(kind.name(), &key);
        let api = kind.api_resource();
        let object = ObjectReference {
            api_version: Some(api.api_version),
            kind: Some(api.kind),
            namespace: (!key.namespace.is_empty()).then(|| key.namespace.clone()),
            name: Some(key.name.clone()),
            uid: invalid.metadata.uid.clone(),
            resource_version: invalid.metadata.resource_version.clone(),
            ..Default::default()
        };
        let rejected = Rejected {
            object,
            generation: invalid.metadata.generation,
            error: invalid.error,
        };
        self.rejected.insert(unit.clone(), rejected);
        if kind.unit().is_some() {
            self.units.dirty.insert(unit);
        } else {
            self.refresh_status(&unit);
        }
    }

    fn after_change(&mut self, kind: &'static dyn Kind, key: &ObjectKey, touched: Touched) {
        if kind.unit().is_some() {
            self.units.dirty.insert(UnitKey::of(kind.name(), key));
        }
        let deps: Vec<Dependency> = match touched {
            Touched::Nothing => Vec::new(),
            Touched::Itself => Dependency::touched_by(kind.name(), key).into(),
            Touched::These(deps) => deps,
        };
        for dep in deps {
            let dependents: Vec<UnitKey> = self.units.deps.dependents(&dep).cloned().collect();
            self.units.dirty.extend(dependents);
        }
    }

    /// Every key the index knows of `kind`, decodable or not (a re-list
    /// removes those it did not see).
    pub fn known_keys(&self, kind: &'static dyn Kind) -> Vec<ObjectKey> {
        let mut keys: BTreeSet<ObjectKey> = kind.keys(&self.snapshot).into_iter().collect();
        keys.extend(
            self.rejected
                .keys()
                .filter(|unit| unit.kind() == kind.name())
                .map(UnitKey::object_key),
        );
        keys.into_iter().collect()
    }

    /// Every unit the index knows of.
    pub fn unit_keys(&self) -> Vec<UnitKey> {
        registry::KINDS
            .iter()
            .filter(|kind| kind.unit().is_some())
            .flat_map(|kind| {
                self.known_keys(*kind)
                    .into_iter()
                    .map(|key| UnitKey::of(kind.name(), &key))
            })
            .collect()
    }

    /// Marks those of `units` whose object still exists dirty: a recompute
    /// done a part at a time (see the operator's index task), so changes
    /// are never queued behind a whole cluster's translation.
    pub fn mark_existing(&mut self, units: impl IntoIterator<Item = UnitKey>) {
        for unit in units {
            let exists = registry::kind(unit.kind())
                .is_some_and(|kind| kind.contains(&self.snapshot, &unit.object_key()));
            if exists {
                self.units.dirty.insert(unit);
            }
        }
    }

    pub fn has_dirty(&self) -> bool {
        !self.units.dirty.is_empty()
    }

    // --- Serving ------------------------------------------------------------

    /// Whether objects of `namespace` are served.
    pub fn serves_namespace(&self, namespace: &str) -> bool {
        !self.namespace_filter
            || self
                .snapshot
                .get::<NamespaceKind>(&ObjectKey::cluster(namespace))
                .is_some()
    }

    /// Whether `unit` is served: its namespace is, and its class (where it
    /// names one) is ours.
    pub fn serves(&self, unit: &UnitKey) -> bool {
        let Some(ops) = registry::kind(unit.kind()).and_then(|kind| kind.unit()) else {
            return false;
        };
        let class = ops.ingress_class_name(&self.snapshot, &unit.object_key());
        self.serves_scope(unit.namespace(), class.as_deref())
    }

    /// Whether an object in `namespace` naming `class` (when it names one)
    /// is ours: the namespace is served and the class is ours.
    pub(super) fn serves_scope(&self, namespace: Option<&str>, class: Option<&str>) -> bool {
        namespace.is_none_or(|ns| self.serves_namespace(ns))
            && class.is_none_or(|name| class::names_our_class(&self.config, &self.snapshot, name))
    }

    // --- Translation ----------------------------------------------------------

    /// Re-translates every dirty unit and updates the desired state and the
    /// status view.
    pub fn flush(&mut self) -> Vec<UnitOutcome> {
        self.flush_at_most(usize::MAX)
    }

    /// [`ClusterIndex::flush`] for the first `limit` dirty units (in unit
    /// order) only; the others stay dirty. Flushing in parts until none is
    /// dirty gives what one flush would.
    pub fn flush_at_most(&mut self, limit: usize) -> Vec<UnitOutcome> {
        let dirty: Vec<UnitKey> = if limit >= self.units.dirty.len() {
            std::mem::take(&mut self.units.dirty).into_iter().collect()
        } else {
            std::iter::from_fn(|| self.units.dirty.pop_first())
                .take(limit)
                .collect()
        };
        dirty
            .into_iter()
            .map(|unit| {
                let before = self.decorated(&unit);
                let outcome = self.retranslate(unit.clone());
                self.refresh_status(&unit);
                for gateway in std::mem::take(&mut self.units.gateways_touched) {
                    self.refresh_status(&UnitKey::of(GatewayKind::KIND, &gateway));
                }
                // The units with conditions it reads (before or now), whose
                // Programmed may depend on it (an ApisixUpstream is
                // Programmed once the routes using it are).
                let mut decorated = self.decorated(&unit);
                decorated.extend(before);
                decorated.sort();
                decorated.dedup();
                for other in decorated {
                    self.refresh_status(&other);
                }
                outcome
            })
            .collect()
    }

    /// The units with conditions whose objects `unit` reads.
    fn decorated(&self, unit: &UnitKey) -> Vec<UnitKey> {
        self.units
            .deps
            .get(unit)
            .into_iter()
            .flatten()
            .filter_map(|dep| match &dep.scope {
                DependencyScope::Object(key) => Some((dep.kind, key)),
                _ => None,
            })
            .filter(|(kind, _)| {
                registry::kind(kind)
                    .and_then(|k| k.unit())
                    .is_some_and(|ops| ops.status_style() == StatusStyle::Conditions)
            })
            .map(|(kind, key)| UnitKey::of(kind, key))
            .collect()
    }

    fn retranslate(&mut self, unit: UnitKey) -> UnitOutcome {
        let Some((kind, ops)) =
            registry::kind(unit.kind()).and_then(|kind| Some((kind, kind.unit()?)))
        else {
            return self.remove_unit(unit);
        };
        if let Some(rejected) = self.rejected.get(&unit) {
            let error = TranslateError::Decode(rejected.error.clone());
            return self.record_failure(unit, error);
        }
        let key = unit.object_key();
        let mut scope_deps = UnitDeps::new();
        if let Some(namespace) = unit.namespace().filter(|_| self.namespace_filter) {
            scope_deps.insert(Dependency::object(
                NamespaceKind::KIND,
                ObjectKey::cluster(namespace),
            ));
        }
        if ops.ingress_class_name(&self.snapshot, &key).is_some() {
            scope_deps.insert(Dependency::any(IngressClassKind::KIND));
        }
        if !self.serves(&unit) && kind.contains(&self.snapshot, &key) {
            // Not ours (namespace or class): no objects, like another class.
            return self.record(unit, scope_deps, Ok(UnitObjects::default()));
        }
        let input = TranslateInput {
            config: &self.config,
            snapshot: &self.snapshot,
        };
        match ops.translate(input, &key) {
            None => self.remove_unit(unit),
            Some(translation) => {
                let mut deps = translation.deps;
                deps.extend(scope_deps);
                self.record(unit, deps, translation.result)
            }
        }
    }

    /// The source object is gone: so are its objects, dependencies and error.
    fn remove_unit(&mut self, unit: UnitKey) -> UnitOutcome {
        self.desired.remove_unit(&unit);
        self.units.deps.remove(&unit);
        self.units.errors.remove(&unit);
        self.units.warnings.remove(&unit);
        self.units.reports.remove(&unit);
        let touched = self.units.attachments.set(&unit, Vec::new());
        self.units.gateways_touched.extend(touched);
        UnitOutcome::Removed { unit }
    }

    fn record_failure(&mut self, unit: UnitKey, error: TranslateError) -> UnitOutcome {
        self.units.errors.insert(unit.clone(), error.clone());
        UnitOutcome::Failed { unit, error }
    }

    /// Records a unit's translation: its objects replace the previous ones,
    /// or its error is kept and the previous objects stay.
    fn record(
        &mut self,
        unit: UnitKey,
        deps: UnitDeps,
        result: Result<UnitObjects, TranslateError>,
    ) -> UnitOutcome {
        self.units.deps.set(&unit, deps);
        match result.and_then(|objects| self.refuse_collisions(&unit, objects)) {
            Ok(objects) => {
                let count = objects.objects.len();
                match objects.status {
                    Some(status) => self.units.reports.insert(unit.clone(), status),
                    None => self.units.reports.remove(&unit),
                };
                let touched = self.units.attachments.set(&unit, objects.attached_to);
                self.units.gateways_touched.extend(touched);
                if objects.warnings.is_empty() {
                    self.units.warnings.remove(&unit);
                } else {
                    self.units.warnings.insert(unit.clone(), objects.warnings);
                }
                self.desired.replace_unit(&unit, objects.objects);
                self.units.errors.remove(&unit);
                UnitOutcome::Translated {
                    unit,
                    objects: count,
                }
            }
            Err(error) => self.record_failure(unit, error),
        }
    }

    /// Ids are 96-bit hashes of what an object stands for: two units
    /// producing one key means a hash collision or a bug, refused rather than
    /// let one unit overwrite another's object. Upstreams are the exception:
    /// units needing the same Service port with the same settings share one
    /// by design (see `translate::shared_upstream`).
    pub(super) fn refuse_collisions(
        &self,
        unit: &UnitKey,
        objects: UnitObjects,
    ) -> Result<UnitObjects, TranslateError> {
        let exclusive = objects
            .objects
            .keys()
            .filter(|key| key.dir() != crate::apisix::ApisixDir::Upstreams);
        for key in exclusive {
            if let Some(owner) = self.desired.unit_of(key).filter(|owner| *owner != unit) {
                return Err(TranslateError::Internal(format!(
                    "object {key} is already produced by {owner}"
                )));
            }
        }
        for reference in &objects.references {
            let produced =
                objects.objects.contains_key(reference) || self.desired.get(reference).is_some();
            if !produced {
                return Err(TranslateError::Reference {
                    what: "an object of",
                    key: unit.to_string(),
                    missing: reference.to_string(),
                });
            }
        }
        Ok(objects)
    }
}

/// The registry's entry of `K`.
pub fn registered<K: SourceKind>() -> &'static dyn Kind {
    registry::kind(K::KIND).unwrap_or_else(|| panic!("{} is not in the kind registry", K::KIND))
}
