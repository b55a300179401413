//! The part of the index the status writer needs, published by the index
//! task after every flush.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;

use crate::index::ObjectKey;
use crate::sync::UnitKey;

/// A unit whose translation failed.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitFailure {
    pub object: ObjectReference,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusView {
    pub failures: BTreeMap<UnitKey, UnitFailure>,
    /// Ingresses this operator serves, with their current LB status.
    pub served_ingresses: BTreeMap<ObjectKey, Vec<IngressLoadBalancerIngress>>,
    /// The publish Service's load-balancer ingress, when one is configured
    /// and known.
    pub publish_service_lb: Option<Vec<IngressLoadBalancerIngress>>,
}
