//! The admission webhook's settings of `run`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::admission::{CertSource, ManagedCerts};

#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Serve the validating admission webhook (HTTPS, path /validate) at this address; off when unset.
    #[arg(long, env = "APISIX_OPERATOR_WEBHOOK_LISTEN_ADDRESS")]
    pub webhook_listen_address: Option<SocketAddr>,
    /// Serve tls.crt and tls.key from this directory (cert-manager, OLM), reloaded when they change; the operator then neither creates certificates nor patches the CA bundle.
    #[arg(long, env = "APISIX_OPERATOR_WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Without --webhook-cert-dir: the Secret (in the Lease namespace) where the operator keeps its own CA and serving certificate; created when missing, renewed by the leader before expiry.
    #[arg(
        long,
        env = "APISIX_OPERATOR_WEBHOOK_SECRET",
        default_value = "apisix-operator-webhook-cert"
    )]
    pub webhook_secret: String,
    /// The ValidatingWebhookConfiguration whose caBundle the leader keeps equal to that Secret's CA (operator-managed certificates only).
    #[arg(long, env = "APISIX_OPERATOR_WEBHOOK_CONFIGURATION")]
    pub webhook_configuration: Option<String>,
    /// DNS names and IP addresses of the operator-managed serving certificate (comma-separated), e.g. the webhook Service's `name.namespace.svc`.
    #[arg(long, env = "APISIX_OPERATOR_WEBHOOK_HOSTS", value_delimiter = ',')]
    pub webhook_hosts: Vec<String>,
}

/// The webhook's checked settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub listen: SocketAddr,
    pub certs: CertSource,
}

impl WebhookArgs {
    /// `None` when the webhook is off; `namespace` holds the managed Secret.
    pub fn settings(&self, namespace: &str) -> Result<Option<WebhookSettings>, String> {
        let Some(listen) = self.webhook_listen_address else {
            return Ok(None);
        };
        let certs = match &self.webhook_cert_dir {
            Some(dir) => CertSource::Files(dir.clone()),
            None => {
                let hosts: Vec<String> = self
                    .webhook_hosts
                    .iter()
                    .map(|host| host.trim().to_string())
                    .filter(|host| !host.is_empty())
                    .collect();
                if hosts.is_empty() {
                    return Err("--webhook-listen-address without --webhook-cert-dir needs --webhook-hosts (the names the API server calls the webhook by)".into());
                }
                if let Some(bad) = hosts
                    .iter()
                    .find(|host| rcgen::CertificateParams::new(vec![(*host).clone()]).is_err())
                {
                    return Err(format!(
                        "--webhook-hosts: {bad:?} is not a DNS name or IP address"
                    ));
                }
                CertSource::Managed(ManagedCerts {
                    namespace: namespace.to_string(),
                    secret: self.webhook_secret.clone(),
                    hosts,
                    configuration: self.webhook_configuration.clone(),
                })
            }
        };
        Ok(Some(WebhookSettings { listen, certs }))
    }
}
