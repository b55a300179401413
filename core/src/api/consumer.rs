//! ApisixConsumer: an APISIX consumer with one authentication method, its
//! credentials inline or from a Secret.

use kube_derive::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{ApisixStatus, Plugin};

#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "apisix.apache.org",
    version = "v2",
    kind = "ApisixConsumer",
    namespaced,
    shortname = "ac",
    status = "ApisixStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApisixConsumerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    pub auth_parameter: AuthParameter,
    /// Extra plugins on the consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub plugins: Option<Vec<Plugin>>,
}

/// Exactly one authentication method.
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.basicAuth), has(self.keyAuth), has(self.jwtAuth), has(self.wolfRBAC), has(self.hmacAuth), has(self.ldapAuth)].filter(x, x).size() == 1").message("set exactly one authentication method"))]
pub struct AuthParameter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuthCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_auth: Option<KeyAuthCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_auth: Option<JwtAuthCredential>,
    #[serde(default, rename = "wolfRBAC", skip_serializing_if = "Option::is_none")]
    pub wolf_rbac: Option<WolfRbacCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_auth: Option<HmacAuthCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_auth: Option<LdapAuthCredential>,
}

/// Credentials inline (`value`) or from a Secret in the consumer's
/// namespace. (A macro, not a generic: the schema derive needs concrete types.)
macro_rules! credential {
    ($name:ident, $value:ty) => {
        #[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[x_kube(crates(kube_core = "::kube_core"))]
        #[serde(rename_all = "camelCase")]
        #[x_kube(validation = Rule::new("has(self.value) != has(self.secretRef)").message("set either value or secretRef"))]
        pub struct $name {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub value: Option<$value>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub secret_ref: Option<LocalSecretReference>,
        }
    };
}

credential!(BasicAuthCredential, BasicAuthValue);
credential!(KeyAuthCredential, KeyAuthValue);
credential!(JwtAuthCredential, JwtAuthValue);
credential!(WolfRbacCredential, WolfRbacValue);
credential!(HmacAuthCredential, HmacAuthValue);
credential!(LdapAuthCredential, LdapAuthValue);

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSecretReference {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicAuthValue {
    #[schemars(length(min = 1))]
    pub username: String,
    #[schemars(length(min = 1))]
    pub password: String,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAuthValue {
    #[schemars(length(min = 1))]
    pub key: String,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtAuthValue {
    #[schemars(length(min = 1))]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64_secret: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub lifetime_grace_period: Option<i64>,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WolfRbacValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_prefix: Option<String>,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HmacAuthValue {
    #[schemars(length(min = 1))]
    pub access_key: String,
    #[schemars(length(min = 1))]
    pub secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub clock_skew: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_headers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encode_uri_params: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_request_body: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_req_body: Option<i64>,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapAuthValue {
    #[schemars(length(min = 1))]
    pub user_dn: String,
}
