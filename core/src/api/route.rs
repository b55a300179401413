//! ApisixRoute: HTTP routes (matches, plugins, authentication, weighted
//! backends) and stream (TCP/UDP) routes.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{ApisixStatus, Plugin, TimeoutSettings};

#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "apisix.apache.org",
    version = "v2",
    kind = "ApisixRoute",
    namespaced,
    shortname = "ar",
    status = "ApisixStatus",
    printcolumn = r#"{"name":"Hosts","type":"string","jsonPath":".spec.http[*].match.hosts","priority":0}"#,
    printcolumn = r#"{"name":"URIs","type":"string","jsonPath":".spec.http[*].match.paths","priority":0}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.http) || has(self.stream)").message("an ApisixRoute needs http or stream rules"))]
#[serde(rename_all = "camelCase")]
pub struct ApisixRouteSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(o, o.name == r.name))").message("http rule names must be unique"))]
    #[schemars(length(max = 64))]
    pub http: Option<Vec<HttpRoute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(o, o.name == r.name))").message("stream rule names must be unique"))]
    #[schemars(length(max = 64))]
    pub stream: Option<Vec<StreamRoute>>,
}

/// One HTTP rule: becomes one APISIX route.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("has(self.backends) || has(self.upstreams) || has(self.plugins)").message("an http rule needs backends, upstreams or plugins"))]
pub struct HttpRoute {
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutSettings>,
    #[serde(rename = "match")]
    pub matches: HttpMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config_name: Option<String>,
    /// Defaults to the ApisixRoute's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub backends: Option<Vec<Backend>>,
    /// ApisixUpstreams with externalNodes or discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub upstreams: Option<Vec<UpstreamReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub plugins: Option<Vec<Plugin>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    /// URIs; a trailing `*` matches a prefix.
    #[schemars(length(min = 1, max = 64), inner(regex(pattern = r"^/[^\s]*$")))]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(regex(pattern = r"^\*?[0-9a-zA-Z-._]+$")))]
    pub hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 9))]
    pub methods: Option<Vec<HttpMethod>>,
    /// IPs or CIDRs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(max = 64)))]
    #[x_kube(validation = Rule::new("self.all(a, isCIDR(a) || isIP(a))").message("remoteAddrs must be IP addresses or CIDRs"))]
    pub remote_addrs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub exprs: Option<Vec<MatchExpr>>,
    /// A Lua function `function(vars) ... end`.
    #[serde(
        default,
        rename = "filter_func",
        skip_serializing_if = "Option::is_none"
    )]
    pub filter_func: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum HttpMethod {
    #[serde(rename = "CONNECT")]
    Connect,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
    #[serde(rename = "OPTIONS")]
    Options,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "TRACE")]
    Trace,
}

/// `subject op value` → an APISIX `vars` entry.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("(self.op in ['In', 'NotIn']) == has(self.set)").message("In and NotIn take set, the other operators take value"))]
#[x_kube(validation = Rule::new("(self.op in ['In', 'NotIn']) || has(self.value)").message("this operator needs value"))]
pub struct MatchExpr {
    pub subject: MatchSubject,
    pub op: MatchOperator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub set: Option<Vec<String>>,
}

#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("self.scope in ['Path'] || (has(self.name) && self.name != '')").message("this scope needs a name"))]
pub struct MatchSubject {
    pub scope: MatchScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum MatchScope {
    Header,
    Query,
    Cookie,
    Path,
    Variable,
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum MatchOperator {
    Equal,
    NotEqual,
    GreaterThan,
    GreaterThanEqual,
    LessThan,
    LessThanEqual,
    In,
    NotIn,
    RegexMatch,
    RegexNotMatch,
    RegexMatchCaseInsensitive,
    RegexNotMatchCaseInsensitive,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ResolveGranularity {
    /// One node per ready endpoint.
    #[default]
    Endpoint,
    /// One node: the Service's cluster IP.
    Service,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    #[schemars(length(min = 1, max = 63))]
    pub service_name: String,
    /// A port number or name of the Service.
    pub service_port: IntOrString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_granularity: Option<ResolveGranularity>,
    /// Share of traffic (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
    /// A subset of the Service's ApisixUpstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UpstreamReference {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
}

#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'ldapAuth' || has(self.ldapAuth)").message("ldapAuth needs its settings"))]
pub struct Authentication {
    pub enable: bool,
    #[serde(rename = "type")]
    pub type_: AuthType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_auth: Option<KeyAuthSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_auth: Option<JwtAuthSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_auth: Option<LdapAuthSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum AuthType {
    #[serde(rename = "basicAuth")]
    BasicAuth,
    #[serde(rename = "keyAuth")]
    KeyAuth,
    #[serde(rename = "jwtAuth")]
    JwtAuth,
    #[serde(rename = "wolfRBAC")]
    WolfRbac,
    #[serde(rename = "hmacAuth")]
    HmacAuth,
    #[serde(rename = "ldapAuth")]
    LdapAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyAuthSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JwtAuthSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LdapAuthSettings {
    pub base_dn: String,
    pub ldap_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One TCP/UDP rule: becomes one APISIX stream route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamRoute {
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")
    )]
    pub name: String,
    pub protocol: StreamProtocol,
    #[serde(rename = "match")]
    pub matches: StreamMatch,
    pub backend: StreamBackend,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub plugins: Option<Vec<Plugin>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum StreamProtocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamMatch {
    #[schemars(range(min = 1, max = 65535))]
    pub ingress_port: i32,
    /// SNI to match (TLS over TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamBackend {
    #[schemars(length(min = 1, max = 63))]
    pub service_name: String,
    pub service_port: IntOrString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_granularity: Option<ResolveGranularity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}
