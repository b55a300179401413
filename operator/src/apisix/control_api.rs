//! Fetching `GET /v1/schema` from an APISIX node's Control API (plain HTTP
//! on the node's loopback or pod network; `apisix.control` in config.yaml).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::schema::{ApisixSchemas, SchemaError};

/// Fetches and parses the schema of the node at `base_url` (e.g.
/// `http://127.0.0.1:9090`).
pub async fn fetch_schemas(base_url: &str) -> Result<ApisixSchemas, SchemaError> {
    let url = format!("{}/v1/schema", base_url.trim_end_matches('/'));
    let load = |reason: String| SchemaError::Load {
        source_name: url.clone(),
        reason,
    };
    let uri: hyper::Uri = url.parse().map_err(|e| load(format!("not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(load("the Control API is plain http://".into()));
    }
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(Duration::from_secs(10), client.get(uri))
        .await
        .map_err(|_| load("no answer within 10s".into()))?
        .map_err(|e| load(e.to_string()))?;
    let status = response.status();
    let body = tokio::time::timeout(Duration::from_secs(30), response.into_body().collect())
        .await
        .map_err(|_| load("the body did not arrive within 30s".into()))?
        .map_err(|e| load(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(load(format!("HTTP {status}")));
    }
    let value = serde_json::from_slice(&body).map_err(|e| SchemaError::Format {
        source_name: url.clone(),
        reason: e.to_string(),
    })?;
    ApisixSchemas::from_value(&url, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves a canned `/v1/schema` on loopback with axum and fetches it.
    #[tokio::test]
    async fn fetches_the_schema_over_http() {
        let body =
            serde_json::json!({"main": {}, "plugins": {"echo": {"schema": {"type": "object"}}}});
        let app = axum::Router::new().route(
            "/v1/schema",
            axum::routing::get(move || {
                let body = body.clone();
                async move { axum::Json(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let schemas = fetch_schemas(&format!("http://{address}")).await.unwrap();
        assert!(schemas.has_plugin("echo", crate::apisix::PluginUse::Http));
        let missing = fetch_schemas(&format!("http://{address}/nope"))
            .await
            .unwrap_err();
        assert!(missing.to_string().contains("404"), "{missing}");
        assert!(fetch_schemas("https://127.0.0.1:1").await.is_err());
    }
}
