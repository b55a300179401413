//! What the status writer needs from the index, gathered in one view: the
//! served CRs with their errors, the failed units, the served Ingresses with
//! their current LB status, and the publish Service's addresses.

use kube::Resource;

use super::ClusterIndex;
use crate::status::{LoadBalancerSource, StatusView, UnitFailure};
use crate::translate::class;

impl ClusterIndex {
    /// The status view of the current index (O(served objects)); the index
    /// task rebuilds it only when [`ClusterIndex::status_revision`] moved.
    pub fn status_view(&self, lb_source: Option<&LoadBalancerSource>) -> StatusView {
        let failures = self
            .errors()
            .iter()
            .filter_map(|(unit, error)| {
                let object =
                    match super::cluster::ingress_key(unit).and_then(|key| self.ingress(&key)) {
                        Some(ingress) => ingress.object_ref(&()),
                        None => self.apisix_object(unit)?.object_ref(),
                    };
                Some((
                    unit.clone(),
                    UnitFailure {
                        object,
                        message: error.to_string(),
                    },
                ))
            })
            .collect();
        let served_ingresses = self
            .ingresses()
            .filter(|ingress| {
                self.serves_namespace(ingress.metadata.namespace.as_deref().unwrap_or("default"))
                    && class::selects(self.config(), self.snapshot(), ingress)
            })
            .map(|ingress| {
                let current = ingress
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.clone())
                    .unwrap_or_default();
                (super::watch::key_of(ingress), current)
            })
            .collect();
        let publish_service_lb = match lb_source {
            Some(LoadBalancerSource::PublishService(key)) => self
                .snapshot()
                .service(key)
                .map(crate::status::service_addresses),
            _ => None,
        };
        let crs = self
            .apisix_units()
            .map(|(unit, object)| {
                (
                    unit.clone(),
                    crate::status::CrStatusInput {
                        object: object.object_ref(),
                        api_resource: object.api_resource(),
                        generation: object.generation(),
                        current: object.status().cloned(),
                        error: self.errors().get(unit).map(|e| e.to_string()),
                        units: vec![unit.clone()],
                    },
                )
            })
            .chain(self.apisix_upstream_statuses())
            .collect();
        StatusView {
            crs,
            failures,
            served_ingresses,
            publish_service_lb,
        }
    }
}
