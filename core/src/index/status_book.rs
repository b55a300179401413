//! The status view kept by the index: after every flush, the entries of the
//! units it touched are brought up to date, so the view always equals the
//! one built from scratch ([`ClusterIndex::status_view`]) while costing only
//! the changed units. Each entry is computed by one function here, used by
//! both.

use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;

use super::ClusterIndex;
use crate::model::{
    CrStatusInput, Dependency, ObjectKey, ReportStatusInput, SourceKind, StatusStyle, StatusTarget,
    StatusView, TranslateError, UnitFailure, UnitKey,
};
use crate::registry;
use crate::status::gateway as gateway_status;
use crate::translate::class;
use crate::translate::gateway::{GatewayKind, GrpcRouteKind, HttpRouteKind};
use crate::translate::ingress::IngressKind;

impl ClusterIndex {
    /// The conditions entry of `unit`: present when its kind reports
    /// conditions, it is served and its object is known.
    pub(crate) fn conditions_entry(&self, unit: &UnitKey) -> Option<CrStatusInput> {
        let kind = registry::kind(unit.kind())?;
        let ops = kind.unit()?;
        if ops.status_style() != StatusStyle::Conditions || !self.serves(unit) {
            return None;
        }
        let stored = ops.status_target(self.snapshot(), &unit.object_key());
        // An object that does not decode is addressed by its metadata (it
        // may never have decoded); its last good version gives the status
        // it has, if any.
        let target = match self.rejected().get(unit) {
            Some(rejected) => StatusTarget {
                object: rejected.object.clone(),
                api_resource: kind.api_resource(),
                generation: rejected.generation,
                current: stored.and_then(|s| s.current),
            },
            None => stored?,
        };
        let dependents_of = |dep: &Dependency| self.healthy_dependents(dep);
        Some(CrStatusInput {
            object: target.object,
            api_resource: target.api_resource,
            generation: target.generation,
            current: target.current,
            error: self.errors().get(unit).map(|e| e.to_string()),
            units: ops.programmed_with(unit, &dependents_of),
        })
    }

    /// The report entry of `unit`: present when its kind's translation
    /// computes its status body, it is served and has one. A route's body
    /// keeps other controllers' parents; a Gateway's counts its routes.
    pub(crate) fn report_entry(&self, unit: &UnitKey) -> Option<ReportStatusInput> {
        let ops = registry::kind(unit.kind())?.unit()?;
        if ops.status_style() != StatusStyle::GatewayApi || !self.serves(unit) {
            return None;
        }
        let body = self.reports().get(unit)?;
        let key = unit.object_key();
        let target = ops.status_target(self.snapshot(), &key)?;
        let current = ops.current_status_value(self.snapshot(), &key);
        let wanted = match unit.kind() {
            GatewayKind::KIND => self.with_attached_routes(body, &key),
            HttpRouteKind::KIND | GrpcRouteKind::KIND => gateway_status::with_foreign_parents(
                body,
                current.as_ref(),
                &self.config().controller_name,
            ),
            _ => body.clone(),
        };
        Some(ReportStatusInput {
            object: target.object,
            api_resource: target.api_resource,
            wanted,
            current,
            units: vec![unit.clone()],
        })
    }

    fn with_attached_routes(
        &self,
        body: &serde_json::Value,
        gateway: &ObjectKey,
    ) -> serde_json::Value {
        let mut body = body.clone();
        for listener in body["listeners"].as_array_mut().into_iter().flatten() {
            let name = listener["name"].as_str().unwrap_or_default().to_string();
            listener["attachedRoutes"] = self.units_attachments().count(gateway, &name).into();
        }
        body
    }

    /// The failure entry of `unit` (or of an input object that does not
    /// decode): reported as a Warning Event on the object.
    pub(crate) fn failure_entry(&self, unit: &UnitKey) -> Option<UnitFailure> {
        let rejected = self.rejected().get(unit);
        let message = match (self.errors().get(unit), rejected) {
            (Some(error), _) => error.to_string(),
            (None, Some(rejected)) => TranslateError::Decode(rejected.error.clone()).to_string(),
            (None, None) => return None,
        };
        let object = match rejected {
            Some(rejected) => rejected.object.clone(),
            None => {
                let ops = registry::kind(unit.kind())?.unit()?;
                ops.status_target(self.snapshot(), &unit.object_key())?
                    .object
            }
        };
        Some(UnitFailure { object, message })
    }

    /// The warnings entry of `unit`: what its translation left out.
    pub(crate) fn warnings_entry(&self, unit: &UnitKey) -> Option<UnitFailure> {
        let messages = self.warnings().get(unit)?;
        let ops = registry::kind(unit.kind())?.unit()?;
        let object = ops
            .status_target(self.snapshot(), &unit.object_key())?
            .object;
        Some(UnitFailure {
            object,
            message: messages.join("; "),
        })
    }

    /// A served Ingress's current load-balancer status.
    pub(crate) fn served_ingress_entry(
        &self,
        key: &ObjectKey,
    ) -> Option<Vec<IngressLoadBalancerIngress>> {
        let ingress = self.snapshot().get::<IngressKind>(key)?;
        if !self.serves_namespace(&key.namespace)
            || !class::selects(self.config(), self.snapshot(), ingress)
        {
            return None;
        }
        Some(
            ingress
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.clone())
                .unwrap_or_default(),
        )
    }

    /// The kept status view (its `publish_service_lb` is left to the caller,
    /// which knows the setting).
    pub fn status(&self) -> &StatusView {
        &self.status
    }

    /// Brings the kept view's entries of `unit` up to date; whether any
    /// changed.
    pub(crate) fn refresh_status(&mut self, unit: &UnitKey) -> bool {
        let conditions = self.conditions_entry(unit);
        let report = self.report_entry(unit);
        let failure = self.failure_entry(unit);
        let warnings = self.warnings_entry(unit);
        let mut changed = put(&mut self.status.crs, unit, conditions);
        changed |= put(&mut self.status.reports, unit, report);
        changed |= put(&mut self.status.failures, unit, failure);
        changed |= put(&mut self.status.warnings, unit, warnings);
        if unit.kind() == crate::translate::ingress::KIND {
            let key = unit.object_key();
            let ingress = self.served_ingress_entry(&key);
            changed |= put(&mut self.status.served_ingresses, &key, ingress);
        }
        if changed {
            self.status_changed();
        }
        changed
    }
}

/// Sets or removes one entry, touching the map only when it differs (so
/// equal views keep sharing structure).
fn put<K: Ord + Clone, V: Clone + PartialEq>(
    map: &mut imbl::OrdMap<K, V>,
    key: &K,
    value: Option<V>,
) -> bool {
    match value {
        Some(value) if map.get(key) != Some(&value) => {
            map.insert(key.clone(), value);
            true
        }
        None if map.contains_key(key) => {
            map.remove(key);
            true
        }
        _ => false,
    }
}
