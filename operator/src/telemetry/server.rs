//! The HTTP endpoints: `/metrics` (OpenMetrics), `/healthz` (the process
//! serves) and `/readyz` (caches synced and the etcd mirror loaded and
//! watching, and the webhook's certificate loaded when it is on; followers
//! are ready too, so a rollout does not wait for a leader change).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    pub caches_synced: watch::Receiver<bool>,
    /// True while the mirror is loaded and its etcd watch is established.
    pub etcd_watching: watch::Receiver<bool>,
    /// With the admission webhook: true once it has a certificate to serve.
    pub webhook_cert: Option<watch::Receiver<bool>>,
}

impl Readiness {
    /// `None` when ready, else why not.
    pub fn problem(&self) -> Option<&'static str> {
        if !*self.caches_synced.borrow() {
            return Some("Kubernetes caches have not synced yet");
        }
        if !*self.etcd_watching.borrow() {
            return Some("the etcd mirror is not loaded or its watch is down");
        }
        if self
            .webhook_cert
            .as_ref()
            .is_some_and(|loaded| !*loaded.borrow())
        {
            return Some("the admission webhook has no serving certificate yet");
        }
        None
    }
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            registry,
            readiness,
        })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "metrics encoding failed".to_string(),
        ),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.readiness.problem() {
        None => (StatusCode::OK, "ok".to_string()),
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}"),
        ),
    }
}

/// Binds `address` and serves until `shutdown` resolves.
pub async fn serve(
    address: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let app = router(registry, readiness);
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "the metrics and health server failed");
        }
    }))
}
