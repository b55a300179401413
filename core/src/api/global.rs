//! ApisixPluginConfig (shared plugin sets), ApisixGlobalRule (plugins on
//! every request) and ApisixClusterConfig (cluster-wide monitoring plugins).

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{ApisixStatus, Plugin};

#[derive(CustomResource, JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "apisix.apache.org",
    version = "v2",
    kind = "ApisixPluginConfig",
    namespaced,
    shortname = "apc",
    status = "ApisixStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApisixPluginConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[schemars(length(min = 1, max = 64))]
    pub plugins: Vec<Plugin>,
}

#[derive(CustomResource, JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "apisix.apache.org",
    version = "v2",
    kind = "ApisixGlobalRule",
    namespaced,
    shortname = "agr",
    status = "ApisixStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApisixGlobalRuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[schemars(length(min = 1, max = 64))]
    pub plugins: Vec<Plugin>,
}

#[derive(CustomResource, JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "apisix.apache.org",
    version = "v2",
    kind = "ApisixClusterConfig",
    shortname = "acc",
    status = "ApisixStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApisixClusterConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    /// The reference controller re-points its Admin API client with this;
    /// this operator writes etcd directly and only validates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminSettings>,
}

#[derive(JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitoring {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skywalking: Option<SkywalkingSettings>,
}

#[derive(JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrometheusSettings {
    pub enable: bool,
    #[serde(
        default,
        rename = "prefer_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub prefer_name: Option<bool>,
}

#[derive(JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkywalkingSettings {
    pub enable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.00001, max = 1.0))]
    pub sample_ratio: Option<f64>,
}

#[derive(JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminSettings {
    #[serde(rename = "baseURL")]
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_timeout: Option<String>,
}
