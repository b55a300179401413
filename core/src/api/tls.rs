//! ApisixTls: a certificate for SNIs, optionally with a client CA (mTLS).

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{ApisixStatus, SecretReference};

#[derive(CustomResource, JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "apisix.apache.org",
    version = "v2",
    kind = "ApisixTls",
    namespaced,
    shortname = "atls",
    status = "ApisixStatus",
    printcolumn = r#"{"name":"SNIs","type":"string","jsonPath":".spec.hosts"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".spec.secret.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApisixTlsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// SNIs; a leading `*.` is a wildcard.
    #[schemars(
        length(min = 1, max = 64),
        inner(regex(pattern = r"^\*?[0-9a-zA-Z-.]+$"))
    )]
    pub hosts: Vec<String>,
    /// The certificate and key (`tls.crt`/`tls.key`, or `cert`/`key`).
    pub secret: SecretReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientTls>,
}

/// Client-certificate verification (downstream mTLS).
#[derive(JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    /// The CA (`ca.crt`, `tls.crt` or `cert`).
    pub ca_secret: SecretReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub depth: Option<i64>,
    /// Request URIs (regular expressions) that skip client verification.
    #[serde(
        default,
        rename = "skip_mtls_uri_regex",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_mtls_uri_regex: Option<Vec<String>>,
}
