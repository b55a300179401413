//! The webhook's HTTPS server: `POST /validate` takes an AdmissionReview,
//! decodes the object by its registered kind, asks the index task for a
//! verdict and answers. The certificate is read per handshake from
//! [`ServingCert`], so a renewed one is served without a restart.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::{mpsc, oneshot};

use crate::index::watch::Namespaces;
use crate::index::{Review, ReviewRequest};
use crate::model::{Kind, UnitKey};
use crate::registry;
use crate::telemetry::AdmissionMetrics;

/// How long a review may wait for the index task. The API server's own
/// timeout (`timeoutSeconds`) is longer; past this the object is admitted
/// with a warning (translation still refuses to write it if it is bad).
const REVIEW_BUDGET: Duration = Duration::from_secs(3);

/// The certificate the server presents; empty until one is loaded.
#[derive(Debug, Default)]
pub struct ServingCert(RwLock<Option<Served>>);

/// What is served, and the PEM it was made from (to tell a renewal from
/// the same certificate read again).
#[derive(Debug)]
struct Served {
    pem: (String, String),
    key: Arc<CertifiedKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServingCertError {
    #[error("the serving certificate is not PEM: {0}")]
    Cert(String),
    #[error("the serving key is not a PEM private key: {0}")]
    Key(String),
    #[error("the serving key is not usable: {0}")]
    Unusable(#[from] rustls::Error),
}

impl ServingCert {
    /// Serves `cert` (a PEM chain) with `key` from the next handshake on;
    /// false when exactly these are served already (nothing is parsed).
    pub fn set(&self, cert: &str, key: &str) -> Result<bool, ServingCertError> {
        let pem = (cert.to_string(), key.to_string());
        let current = self.0.read().expect("never poisoned");
        if current.as_ref().is_some_and(|served| served.pem == pem) {
            return Ok(false);
        }
        drop(current);
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServingCertError::Cert(e.to_string()))?;
        if chain.is_empty() {
            return Err(ServingCertError::Cert("no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|e| ServingCertError::Key(e.to_string()))?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)?;
        let certified = Arc::new(CertifiedKey::new(chain, signer));
        *self
            .0
            .write()
            .expect("the certificate lock is never poisoned") = Some(Served {
            pem,
            key: certified,
        });
        Ok(true)
    }

    pub fn is_loaded(&self) -> bool {
        self.0.read().expect("never poisoned").is_some()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let served = self.0.read().expect("never poisoned");
        served.as_ref().map(|served| served.key.clone())
    }
}

#[derive(Clone)]
struct Reviewer {
    reviews: mpsc::Sender<ReviewRequest>,
    /// Objects outside `--namespace` are never watched, hence not ours.
    namespaces: Namespaces,
    metrics: AdmissionMetrics,
}

pub fn router(
    reviews: mpsc::Sender<ReviewRequest>,
    namespaces: Namespaces,
    metrics: AdmissionMetrics,
) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .with_state(Reviewer {
            reviews,
            namespaces,
            metrics,
        })
}

/// Serves `router` over TLS on `listener` until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, cert: Arc<ServingCert>) {
    let mut config = rustls::ServerConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_no_client_auth()
    .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "webhook: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(error) => {
                    tracing::debug!(%peer, %error, "webhook: TLS handshake failed");
                    return;
                }
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, %error, "webhook: connection ended with an error");
            }
        });
    }
}

async fn validate(
    State(reviewer): State<Reviewer>,
    axum::Json(review): axum::Json<AdmissionReview<DynamicObject>>,
) -> axum::Json<AdmissionReview<DynamicObject>> {
    let started = Instant::now();
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(%error, "webhook: a review without a request");
            return axum::Json(AdmissionResponse::invalid(error).into_review());
        }
    };
    let (response, verdict) = reviewer.answer(&request).await;
    reviewer
        .metrics
        .observe(&request.kind.kind, verdict, started.elapsed());
    axum::Json(response.into_review())
}

impl Reviewer {
    /// The response to `request`, and the verdict's metric label.
    async fn answer(
        &self,
        request: &AdmissionRequest<DynamicObject>,
    ) -> (AdmissionResponse, &'static str) {
        let response = AdmissionResponse::from(request);
        let api_version = match request.kind.group.as_str() {
            "" => request.kind.version.clone(),
            group => format!("{group}/{}", request.kind.version),
        };
        let kind = registry::kind_of_manifest(&api_version, &request.kind.kind);
        let (Some(kind), Some(object)) = (kind, request.object.as_ref()) else {
            return (response, "not_reviewed");
        };
        let being_deleted = object.metadata.deletion_timestamp.is_some();
        let watched = match (&self.namespaces, request.namespace.as_deref()) {
            (Namespaces::Only(names), Some(namespace)) if kind.namespaced() => {
                names.iter().any(|name| name == namespace)
            }
            _ => true,
        };
        let reviewed = matches!(request.operation, Operation::Create | Operation::Update);
        if !reviewed || being_deleted || !watched {
            return (response, "not_reviewed");
        }
        let unit = UnitKey::of(kind.name(), &unit_object_key(kind, request));
        let candidate = match decode(kind, object) {
            Ok(candidate) => candidate,
            Err(error) => {
                tracing::info!(%unit, %error, "webhook: refused an object that does not decode");
                return (response.deny(format!("{unit}: {error}")), "refused");
            }
        };
        let old = request
            .old_object
            .as_ref()
            .and_then(|old| decode(kind, old).ok());
        match self.review(kind, candidate, old).await {
            Some(review @ Review::Refused { .. }) => {
                let message = review.message(&unit).unwrap_or_default();
                tracing::info!(%unit, "webhook: refused: {message}");
                (response.deny(message), "refused")
            }
            Some(Review::Admitted { warnings }) => (with_warnings(response, warnings), "admitted"),
            None => (
                with_warnings(
                    response,
                    vec![format!(
                        "{unit} was not reviewed in time; the operator checks it again before writing it"
                    )],
                ),
                "timed_out",
            ),
        }
    }

    /// The index task's verdict, or `None` past [`REVIEW_BUDGET`].
    async fn review(
        &self,
        kind: &'static dyn Kind,
        object: crate::model::AnyObject,
        old: Option<crate::model::AnyObject>,
    ) -> Option<Review> {
        let (reply, verdict) = oneshot::channel();
        let request = ReviewRequest {
            kind,
            object,
            old,
            reply,
        };
        let asked = async {
            self.reviews.send(request).await.ok()?;
            verdict.await.ok()
        };
        tokio::time::timeout(REVIEW_BUDGET, asked)
            .await
            .ok()
            .flatten()
    }
}

fn with_warnings(mut response: AdmissionResponse, warnings: Vec<String>) -> AdmissionResponse {
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

/// The object's key as the request names it (a create by `generateName`
/// has no name in the object yet).
fn unit_object_key(
    kind: &'static dyn Kind,
    request: &AdmissionRequest<DynamicObject>,
) -> crate::model::ObjectKey {
    match request.namespace.as_deref().filter(|_| kind.namespaced()) {
        Some(namespace) => crate::model::ObjectKey::new(namespace, &request.name),
        None => crate::model::ObjectKey::cluster(&request.name),
    }
}

fn decode(
    kind: &'static dyn Kind,
    object: &DynamicObject,
) -> Result<crate::model::AnyObject, crate::model::DecodeError> {
    let value = serde_json::to_value(object).map_err(|e| crate::model::DecodeError {
        path: "(object)".into(),
        reason: e.to_string(),
    })?;
    kind.decode(value)
}
