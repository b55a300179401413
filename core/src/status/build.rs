//! What the status writer needs from the index, gathered in one view: the
//! served units with conditions and their errors, the failed units and the
//! objects that do not decode, the served Ingresses with their current LB
//! status, and the publish Service's addresses.

use super::{CrStatusInput, LoadBalancerSource, StatusView, UnitFailure};
use crate::index::ClusterIndex;
use crate::inputs::ServiceKind;
use crate::model::{StatusStyle, UnitKey};
use crate::registry;
use crate::translate::class;
use crate::translate::ingress::IngressKind;

impl ClusterIndex {
    /// The status view of the current index (O(served objects)); the index
    /// task rebuilds it only when [`ClusterIndex::status_revision`] moved.
    pub fn status_view(&self, lb_source: Option<&LoadBalancerSource>) -> StatusView {
        StatusView {
            crs: self.condition_inputs(),
            failures: self.failures(),
            served_ingresses: self.served_ingresses(),
            publish_service_lb: match lb_source {
                Some(LoadBalancerSource::PublishService(key)) => self
                    .snapshot()
                    .get::<ServiceKind>(key)
                    .map(super::service_addresses),
                _ => None,
            },
        }
    }

    /// Failed units (on their object) and objects that do not decode.
    fn failures(&self) -> std::collections::BTreeMap<UnitKey, UnitFailure> {
        let units = self.errors().iter().filter_map(|(unit, error)| {
            let object = match self.rejected().get(unit) {
                Some(rejected) => rejected.object.clone(),
                None => {
                    let ops = registry::kind(unit.kind())?.unit()?;
                    ops.status_target(self.snapshot(), &unit.object_key())?
                        .object
                }
            };
            let message = error.to_string();
            Some((unit.clone(), UnitFailure { object, message }))
        });
        // Inputs that do not decode have no unit to fail: report them too.
        let inputs = self
            .rejected()
            .iter()
            .filter(|(unit, _)| !self.errors().contains_key(*unit))
            .map(|(unit, rejected)| {
                let message =
                    crate::model::TranslateError::Decode(rejected.error.clone()).to_string();
                let object = rejected.object.clone();
                (unit.clone(), UnitFailure { object, message })
            });
        units.chain(inputs).collect()
    }

    fn served_ingresses(
        &self,
    ) -> std::collections::BTreeMap<
        crate::model::ObjectKey,
        Vec<k8s_openapi::api::networking::v1::IngressLoadBalancerIngress>,
    > {
        let ingresses = self.snapshot().store::<IngressKind>();
        ingresses
            .into_iter()
            .flat_map(|store| store.iter())
            .filter(|(key, ingress)| {
                self.serves_namespace(&key.namespace)
                    && class::selects(self.config(), self.snapshot(), ingress)
            })
            .map(|(key, ingress)| {
                let current = ingress
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.clone())
                    .unwrap_or_default();
                (key.clone(), current)
            })
            .collect()
    }

    /// Every served unit whose kind reports conditions.
    fn condition_inputs(&self) -> std::collections::BTreeMap<UnitKey, CrStatusInput> {
        let dependents_of = |dep: &crate::model::Dependency| self.healthy_dependents(dep);
        registry::KINDS
            .iter()
            .filter_map(|kind| Some((*kind, kind.unit()?)))
            .filter(|(_, ops)| ops.status_style() == StatusStyle::Conditions)
            .flat_map(|(kind, ops)| {
                kind.keys(self.snapshot())
                    .into_iter()
                    .filter_map(move |key| {
                        let unit = UnitKey::of(kind.name(), &key);
                        if !self.serves(&unit) {
                            return None;
                        }
                        let target = ops.status_target(self.snapshot(), &key)?;
                        let input = CrStatusInput {
                            object: target.object,
                            api_resource: target.api_resource,
                            generation: target.generation,
                            current: target.current,
                            error: self.errors().get(&unit).map(|e| e.to_string()),
                            units: ops.programmed_with(&unit, &dependents_of),
                        };
                        Some((unit, input))
                    })
            })
            .collect()
    }
}
