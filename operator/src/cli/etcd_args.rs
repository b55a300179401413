//! How to reach the APISIX etcd: endpoints, TLS and authentication. Shared
//! by `run` and `diff`. The password is read from a file or the
//! environment, never from a flag (it would show in process lists), and it
//! is never logged.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

#[derive(Debug, Clone, Args)]
pub struct EtcdArgs {
    /// etcd endpoints of the APISIX store (https:// for TLS).
    #[arg(
        long,
        env = "APISIX_OPERATOR_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd_endpoints: Vec<String>,
    /// CA certificate (PEM) that signed the etcd server certificate.
    #[arg(long, env = "APISIX_OPERATOR_ETCD_CA_FILE")]
    pub etcd_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for etcd mutual TLS.
    #[arg(
        long,
        env = "APISIX_OPERATOR_ETCD_CERT_FILE",
        requires = "etcd_key_file"
    )]
    pub etcd_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for etcd mutual TLS.
    #[arg(
        long,
        env = "APISIX_OPERATOR_ETCD_KEY_FILE",
        requires = "etcd_cert_file"
    )]
    pub etcd_key_file: Option<PathBuf>,
    /// Server name to verify in the etcd certificate (default: the endpoint's host).
    #[arg(long, env = "APISIX_OPERATOR_ETCD_TLS_SERVER_NAME")]
    pub etcd_tls_server_name: Option<String>,
    /// etcd user (with a password from --etcd-password-file or APISIX_OPERATOR_ETCD_PASSWORD).
    #[arg(long, env = "APISIX_OPERATOR_ETCD_USER")]
    pub etcd_user: Option<String>,
    /// File holding the etcd password.
    #[arg(long, env = "APISIX_OPERATOR_ETCD_PASSWORD_FILE")]
    pub etcd_password_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdConnectError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--etcd-user is set but no password: set APISIX_OPERATOR_ETCD_PASSWORD or --etcd-password-file"
    )]
    MissingPassword,
    #[error("cannot reach etcd at {endpoints}: {reason}")]
    Unreachable { endpoints: String, reason: String },
}

fn read(what: &'static str, path: &PathBuf) -> Result<String, EtcdConnectError> {
    std::fs::read_to_string(path).map_err(|source| EtcdConnectError::Read {
        what,
        path: path.clone(),
        source,
    })
}

impl EtcdArgs {
    fn options(&self) -> Result<ConnectOptions, EtcdConnectError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(10))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let tls_wanted = self.etcd_ca_file.is_some() || self.etcd_cert_file.is_some();
        if tls_wanted {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.etcd_ca_file {
                tls = tls.ca_certificate(Certificate::from_pem(read("the etcd CA file", ca)?));
            }
            if let (Some(cert), Some(key)) = (&self.etcd_cert_file, &self.etcd_key_file) {
                tls = tls.identity(Identity::from_pem(
                    read("the etcd client certificate", cert)?,
                    read("the etcd client key", key)?,
                ));
            }
            if let Some(name) = &self.etcd_tls_server_name {
                tls = tls.domain_name(name.clone());
            }
            options = options.with_tls(tls);
        }
        if let Some(user) = &self.etcd_user {
            let password = match (
                &self.etcd_password_file,
                std::env::var("APISIX_OPERATOR_ETCD_PASSWORD"),
            ) {
                (Some(file), _) => read("the etcd password file", file)?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
                (None, Ok(password)) => password,
                (None, Err(_)) => return Err(EtcdConnectError::MissingPassword),
            };
            options = options
                .with_user(user.clone(), password)
                .with_auto_token_refresh(true);
        }
        Ok(options)
    }

    /// Connects and checks that etcd answers (with these credentials), so a
    /// misconfiguration is one clear error at start, not a retry loop.
    pub async fn connect(&self) -> Result<etcd_client::Client, EtcdConnectError> {
        let endpoints = self.etcd_endpoints.join(",");
        let unreachable = |reason: String| EtcdConnectError::Unreachable {
            endpoints: endpoints.clone(),
            reason,
        };
        let mut client = etcd_client::Client::connect(&self.etcd_endpoints, Some(self.options()?))
            .await
            .map_err(|e| unreachable(describe(&e)))?;
        match tokio::time::timeout(
            Duration::from_secs(10),
            client.get("/", Some(etcd_client::GetOptions::new().with_count_only())),
        )
        .await
        {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(err)) => Err(unreachable(describe(&err))),
            Err(_) => Err(unreachable("no answer within 10s".into())),
        }
    }
}

/// A one-line reason: the gRPC message rather than the whole error chain.
fn describe(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                text = format!("{text}: {inner}");
                source = inner.source();
            }
            text
        }
    }
}
