//! ApisixUpstream: decorates the upstreams of the Service of the same name
//! (load balancing, scheme, retries, timeouts, health checks, upstream mTLS,
//! subsets, host passing, per-port settings), or defines a standalone
//! upstream from external nodes or service discovery.

use std::collections::BTreeMap;

use kube_derive::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{ApisixStatus, SecretReference, TimeoutSettings};

#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "apisix.apache.org",
    version = "v2",
    kind = "ApisixUpstream",
    namespaced,
    shortname = "au",
    status = "ApisixStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("!(has(self.externalNodes) && has(self.discovery))").message("externalNodes and discovery exclude each other"))]
#[serde(rename_all = "camelCase")]
pub struct ApisixUpstreamSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub external_nodes: Option<Vec<ExternalNode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Discovery>,
    #[serde(flatten)]
    pub settings: UpstreamSettings,
    /// Settings for one Service port, laid over the top-level ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub port_level_settings: Option<Vec<PortLevelSettings>>,
}

/// Everything that shapes an upstream.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadbalancer: Option<LoadBalancer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<UpstreamScheme>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Client certificate for upstream mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<SecretReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub subsets: Option<Vec<Subset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_host: Option<PassHost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PortLevelSettings {
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    #[serde(flatten)]
    pub settings: UpstreamSettings,
}

#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'chash' || has(self.hashOn)").message("chash needs hashOn"))]
pub struct LoadBalancer {
    #[serde(rename = "type")]
    pub type_: LoadBalancerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<HashOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerType {
    Roundrobin,
    LeastConn,
    Ewma,
    Chash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HashOn {
    Vars,
    VarsCombinations,
    Header,
    Cookie,
    Consumer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamScheme {
    Http,
    Https,
    Grpc,
    Grpcs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PassHost {
    Pass,
    Node,
    Rewrite,
}

#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("!has(self.passive) || has(self.active)").message("a passive health check needs an active one"))]
pub struct HealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<PassiveHealthCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckType {
    Http,
    Https,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveHealthCheck {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<HealthCheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(ms|s|m)$"))]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub concurrency: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    #[serde(default, rename = "strictTLS", skip_serializing_if = "Option::is_none")]
    pub strict_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<ActiveHealthy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<ActiveUnhealthy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveHealthy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(range(min = 200, max = 599)))]
    pub http_codes: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub successes: Option<i32>,
    /// At least 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(s|m)$"))]
    pub interval: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveUnhealthy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(range(min = 200, max = 599)))]
    pub http_codes: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub http_failures: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub tcp_failures: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub timeouts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(s|m)$"))]
    pub interval: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PassiveHealthCheck {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<HealthCheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<PassiveHealthy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<PassiveUnhealthy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassiveHealthy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(range(min = 200, max = 599)))]
    pub http_codes: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub successes: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassiveUnhealthy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(range(min = 200, max = 599)))]
    pub http_codes: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub http_failures: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub tcp_failures: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub timeouts: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Subset {
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Pods whose labels include these serve the subset.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ExternalNodeType {
    /// A DNS name.
    Domain,
    /// An ExternalName Service.
    Service,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExternalNode {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(rename = "type")]
    pub type_: ExternalNodeType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
    /// Defaults from the scheme: 80 for http/grpc, 443 for https/grpcs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    #[schemars(length(min = 1))]
    pub service_name: String,
    /// An APISIX discovery type (dns, consul, nacos, eureka, kubernetes, ...).
    #[serde(rename = "type")]
    #[schemars(length(min = 1))]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<BTreeMap<String, String>>,
}
