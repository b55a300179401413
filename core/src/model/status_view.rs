//! The part of the index the status writer needs, kept current by every
//! flush and published by the index task. Persistent maps: publishing is a
//! clone (O(1)), and the writer finds what changed between two views by a
//! diff that skips their shared parts.

use imbl::OrdMap;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;

use super::{ObjectKey, UnitKey};

/// A unit whose translation failed.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitFailure {
    pub object: ObjectReference,
    pub message: String,
}

/// What the status of one APISIX CR is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct CrStatusInput {
    pub object: ObjectReference,
    pub api_resource: kube_core::discovery::ApiResource,
    pub generation: Option<i64>,
    pub current: Option<crate::api::ApisixStatus>,
    /// The latest translation error, if it failed.
    pub error: Option<String>,
    /// The units whose objects must be in etcd for the CR to be Programmed:
    /// the CR's own unit, or for an ApisixUpstream the routes that use it.
    pub units: Vec<UnitKey>,
}

/// What the status of one Gateway API object is written from: the body
/// its translation computed (completed with other controllers' route
/// parents and the Gateway's attached routes), once its units' objects are
/// in etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportStatusInput {
    pub object: ObjectReference,
    pub api_resource: kube_core::discovery::ApiResource,
    pub wanted: serde_json::Value,
    /// The object's status as last read.
    pub current: Option<serde_json::Value>,
    pub units: Vec<UnitKey>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusView {
    /// Every served unit whose kind reports conditions (the APISIX CRs).
    pub crs: OrdMap<UnitKey, CrStatusInput>,
    /// Every served unit whose translation computes its status body (the
    /// Gateway API kinds).
    pub reports: OrdMap<UnitKey, ReportStatusInput>,
    /// Failed units, and objects that do not decode.
    pub failures: OrdMap<UnitKey, UnitFailure>,
    /// Units whose translation left something out (a label APISIX would
    /// refuse), reported as Warning Events without failing them.
    pub warnings: OrdMap<UnitKey, UnitFailure>,
    /// Ingresses this operator serves, with their current LB status.
    pub served_ingresses: OrdMap<ObjectKey, Vec<IngressLoadBalancerIngress>>,
    /// The publish Service's load-balancer ingress, when one is configured
    /// and known.
    pub publish_service_lb: Option<Vec<IngressLoadBalancerIngress>>,
}
