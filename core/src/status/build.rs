//! The status view built from scratch: every unit's entries, computed by the
//! same functions the index uses to keep its view current (`index`'s
//! `status_book`). Tests compare the two; `publish_service_lb` completes
//! either with the publish Service's addresses.

use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;

use super::{LoadBalancerSource, StatusView};
use crate::index::ClusterIndex;
use crate::inputs::ServiceKind;
use crate::translate::ingress;

impl ClusterIndex {
    /// The whole status view, O(objects): what the kept view
    /// ([`ClusterIndex::status`]) must always equal.
    pub fn status_view(&self, lb_source: Option<&LoadBalancerSource>) -> StatusView {
        let mut view = StatusView::default();
        let units = self
            .unit_keys()
            .into_iter()
            .chain(self.rejected().keys().cloned());
        for unit in units {
            if let Some(entry) = self.conditions_entry(&unit) {
                view.crs.insert(unit.clone(), entry);
            }
            if let Some(entry) = self.report_entry(&unit) {
                view.reports.insert(unit.clone(), entry);
            }
            if let Some(failure) = self.failure_entry(&unit) {
                view.failures.insert(unit.clone(), failure);
            }
            if let Some(warning) = self.warnings_entry(&unit) {
                view.warnings.insert(unit.clone(), warning);
            }
            if unit.kind() == ingress::KIND {
                let key = unit.object_key();
                if let Some(current) = self.served_ingress_entry(&key) {
                    view.served_ingresses.insert(key, current);
                }
            }
        }
        view.publish_service_lb = publish_service_lb(self, lb_source);
        view
    }
}

/// The publish Service's load-balancer addresses, when one is configured
/// (`--ingress-publish-service`) and known.
pub fn publish_service_lb(
    index: &ClusterIndex,
    lb_source: Option<&LoadBalancerSource>,
) -> Option<Vec<IngressLoadBalancerIngress>> {
    match lb_source {
        Some(LoadBalancerSource::PublishService(key)) => index
            .snapshot()
            .get::<ServiceKind>(key)
            .map(super::service_addresses),
        _ => None,
    }
}
