//! Keeps the webhook's serving certificate loaded. Either from files that
//! someone else manages (cert-manager's mounted Secret, OLM's
//! `/tmp/k8s-webhook-server/serving-certs`), reloaded when they change, or
//! operator-managed: any replica creates the Secret when it is missing (a
//! create that loses the race re-reads), the leader renews it before expiry
//! and keeps the ValidatingWebhookConfiguration's `caBundle` equal to it,
//! and every replica reloads what the Secret holds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

use super::certs::{CA_BUNDLE_KEY, CA_KEY_KEY, CERT_KEY, CertError, KEY_KEY, WebhookCerts};
use super::server::{ServingCert, ServingCertError};
use crate::leader::Leadership;

/// How often the Secret (or the files) are looked at again.
const CHECK_EVERY: Duration = Duration::from_secs(30);
/// The first retry after a failure (a configuration created just after the
/// operator, a Secret another replica is creating); doubled per failure up
/// to [`CHECK_EVERY`].
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The wait before the next look, after `failures` failed ones in a row.
fn next_check(failures: u32) -> Duration {
    if failures == 0 {
        return CHECK_EVERY;
    }
    RETRY_EVERY
        .saturating_mul(1 << failures.saturating_sub(1).min(5))
        .min(CHECK_EVERY)
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// `tls.crt` and `tls.key` in this directory, managed by someone else.
    Files(PathBuf),
    Managed(ManagedCerts),
}

/// Operator-managed certificates.
#[derive(Debug, Clone)]
pub struct ManagedCerts {
    pub namespace: String,
    pub secret: String,
    /// The serving certificate's DNS names and IP addresses.
    pub hosts: Vec<String>,
    /// The ValidatingWebhookConfiguration whose `caBundle` the leader keeps.
    pub configuration: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertTaskError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Secret {namespace}/{name}: {source}")]
    Secret {
        namespace: String,
        name: String,
        #[source]
        source: CertError,
    },
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error(transparent)]
    Serving(#[from] ServingCertError),
}

pub struct CertTask {
    pub source: CertSource,
    pub client: kube::Client,
    pub serving: Arc<ServingCert>,
    pub leadership: watch::Receiver<Leadership>,
    /// Set once a certificate is served (readiness).
    pub loaded: watch::Sender<bool>,
}

impl CertTask {
    pub async fn run(mut self) {
        let mut failures: u32 = 0;
        loop {
            let step = match &self.source {
                CertSource::Files(dir) => self.load_files(dir).await,
                CertSource::Managed(managed) => self.keep_managed(managed).await,
            };
            match &step {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "webhook certificate");
                }
            }
            self.loaded.send_if_modified(|loaded| {
                let now = self.serving.is_loaded();
                std::mem::replace(loaded, now) != now
            });
            // Without a certificate (another replica is creating the
            // Secret), look again soon as after a failure.
            let wait = if self.serving.is_loaded() {
                next_check(failures)
            } else {
                next_check(failures.max(1))
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // A new leader renews and patches at once.
                changed = self.leadership.changed() => if changed.is_err() {
                    tokio::time::sleep(wait).await;
                },
            }
        }
    }

    async fn load_files(&self, dir: &std::path::Path) -> Result<(), CertTaskError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| CertTaskError::Read { path, source })
        };
        if self.serving.set(&read(CERT_KEY)?, &read(KEY_KEY)?)? {
            tracing::info!(dir = %dir.display(), "webhook: serving certificate loaded");
        }
        Ok(())
    }

    async fn keep_managed(&self, managed: &ManagedCerts) -> Result<(), CertTaskError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &managed.namespace);
        let leading = self.leadership.borrow().leading;
        let now = jiff::Timestamp::now().as_second();
        let secret_error = |source| CertTaskError::Secret {
            namespace: managed.namespace.clone(),
            name: managed.secret.clone(),
            source,
        };
        let certs = match secrets
            .get_opt(&managed.secret)
            .await
            .map_err(|source| kube_error(format!("reading Secret {}", managed.secret), source))?
        {
            None => {
                let certs = WebhookCerts::issue(&managed.hosts, now)?;
                let created = secrets
                    .create(&PostParams::default(), &secret_of(managed, &certs, None))
                    .await;
                match created {
                    Ok(_) => {
                        tracing::info!(secret = %managed.secret, "webhook: certificate created")
                    }
                    // Another replica created it first: use theirs next time.
                    Err(kube::Error::Api(status)) if status.code == 409 => return Ok(()),
                    Err(source) => {
                        return Err(kube_error(
                            format!("creating Secret {}", managed.secret),
                            source,
                        ));
                    }
                }
                certs
            }
            Some(secret) => {
                let stored = certs_of(&secret).map_err(secret_error)?;
                match stored.renewal(&managed.hosts, now).map_err(secret_error)? {
                    Some(renewal) if leading => {
                        let renewed = stored.renewed(renewal, &managed.hosts, now)?;
                        let version = secret.metadata.resource_version.clone();
                        let replaced = secret_of(managed, &renewed, version);
                        secrets
                            .replace(&managed.secret, &PostParams::default(), &replaced)
                            .await
                            .map_err(|source| {
                                kube_error(format!("renewing Secret {}", managed.secret), source)
                            })?;
                        tracing::info!(secret = %managed.secret, ?renewal, "webhook: certificate renewed");
                        renewed
                    }
                    _ => stored,
                }
            }
        };
        if self.serving.set(&certs.cert, &certs.key)? {
            tracing::info!(secret = %managed.secret, "webhook: serving certificate loaded");
        }
        if let Some(configuration) = managed.configuration.as_deref().filter(|_| leading) {
            self.keep_ca_bundle(configuration, &certs.ca_bundle).await?;
        }
        Ok(())
    }

    /// Patches every webhook of `configuration` whose `caBundle` differs.
    async fn keep_ca_bundle(&self, configuration: &str, bundle: &str) -> Result<(), CertTaskError> {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        let action =
            || format!("updating the caBundle of ValidatingWebhookConfiguration {configuration}");
        let current = api
            .get(configuration)
            .await
            .map_err(|source| kube_error(action(), source))?;
        let stale: Vec<String> = current
            .webhooks
            .iter()
            .flatten()
            .filter(|hook| {
                hook.client_config
                    .ca_bundle
                    .as_ref()
                    .map(|b| b.0.as_slice())
                    != Some(bundle.as_bytes())
            })
            .map(|hook| hook.name.clone())
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let encoded = ByteString(bundle.as_bytes().to_vec());
        let hooks: Vec<_> = stale
            .iter()
            .map(|name| json!({"name": name, "clientConfig": {"caBundle": encoded}}))
            .collect();
        api.patch(
            configuration,
            &PatchParams::default(),
            &Patch::Strategic(json!({"webhooks": hooks})),
        )
        .await
        .map_err(|source| kube_error(action(), source))?;
        tracing::info!(%configuration, webhooks = stale.len(), "webhook: caBundle updated");
        Ok(())
    }
}

fn kube_error(action: String, source: kube::Error) -> CertTaskError {
    CertTaskError::Kube { action, source }
}

fn secret_of(managed: &ManagedCerts, certs: &WebhookCerts, version: Option<String>) -> Secret {
    let data: BTreeMap<String, ByteString> = [
        (CA_BUNDLE_KEY, &certs.ca_bundle),
        (CA_KEY_KEY, &certs.ca_key),
        (CERT_KEY, &certs.cert),
        (KEY_KEY, &certs.key),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), ByteString(value.as_bytes().to_vec())))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(managed.secret.clone()),
            namespace: Some(managed.namespace.clone()),
            resource_version: version,
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "apisix-operator".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Secret::default()
    }
}

fn certs_of(secret: &Secret) -> Result<WebhookCerts, CertError> {
    let field = |key: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .and_then(|value| String::from_utf8(value.0.clone()).ok())
            .ok_or(CertError::MissingKey(key))
    };
    Ok(WebhookCerts {
        ca_bundle: field(CA_BUNDLE_KEY)?,
        ca_key: field(CA_KEY_KEY)?,
        cert: field(CERT_KEY)?,
        key: field(KEY_KEY)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_retried_soon_then_less_often() {
        let waits: Vec<u64> = (0..8).map(|n| next_check(n).as_secs()).collect();
        assert_eq!(waits, vec![30, 1, 2, 4, 8, 16, 30, 30]);
    }
}
