//! Kubeconfig files for the environment's users.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::TestEnvError;
use crate::pki::IssuedCert;

/// Renders a kubeconfig (JSON, which every kubeconfig reader accepts as YAML)
/// for a client-certificate user.
pub fn render(server_url: &str, ca_pem: &str, user: &IssuedCert) -> String {
    render_as(server_url, ca_pem, user, None)
}

/// Like [`render`], acting as (impersonating) `act_as` when given.
pub fn render_as(
    server_url: &str,
    ca_pem: &str,
    user: &IssuedCert,
    act_as: Option<&str>,
) -> String {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "testenv",
            "cluster": {
                "server": server_url,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            }
        }],
        "users": [{
            "name": "testenv",
            "user": {
                "client-certificate-data": STANDARD.encode(&user.cert_pem),
                "client-key-data": STANDARD.encode(&user.key_pem),
            }
        }],
        "contexts": [{
            "name": "testenv",
            "context": {"cluster": "testenv", "user": "testenv", "namespace": "default"}
        }],
        "current-context": "testenv",
    });
    let mut config = config;
    if let Some(act_as) = act_as {
        config["users"][0]["user"]["as"] = act_as.into();
    }
    serde_json::to_string_pretty(&config).expect("a JSON value always serializes")
}

/// Builds a kube client from a rendered kubeconfig.
pub async fn client_from(kubeconfig: &str) -> Result<kube::Client, TestEnvError> {
    let parsed = kube::config::Kubeconfig::from_yaml(kubeconfig)
        .map_err(|e| TestEnvError::Kubeconfig(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(parsed, &Default::default())
        .await
        .map_err(|e| TestEnvError::Kubeconfig(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| TestEnvError::Kubeconfig(e.to_string()))
}

pub fn write(path: &Path, kubeconfig: &str) -> Result<(), TestEnvError> {
    crate::pki::write_file(path, kubeconfig)
}
