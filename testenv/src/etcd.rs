//! An etcd server process: the kube-apiserver's store, or the APISIX store.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use crate::pki::{CertificateAuthority, IssuedCert};
use crate::{Binaries, ManagedProcess, TestEnvError, ports};

const START_ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start an etcd.
#[derive(Default)]
pub struct EtcdOptions {
    /// Serve clients over TLS with a CA of the environment's own.
    pub tls: Option<EtcdTls>,
}

/// TLS settings for the client port.
pub struct EtcdTls {
    /// Require client certificates signed by the environment's CA (mTLS).
    pub client_cert_auth: bool,
}

/// The TLS material a client of a TLS etcd needs.
#[derive(Clone)]
pub struct EtcdClientTls {
    pub ca_pem: String,
    /// A client certificate signed by the server's CA (needed with mTLS).
    pub client: IssuedCert,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A running etcd member, killed on drop.
pub struct EtcdServer {
    process: ManagedProcess,
    client_port: u16,
    data_dir: PathBuf,
    tls: Option<EtcdClientTls>,
}

impl EtcdServer {
    /// Starts a single-member etcd in `dir` and waits until it answers.
    pub async fn start(
        binaries: &Binaries,
        dir: &Path,
        options: EtcdOptions,
    ) -> Result<EtcdServer, TestEnvError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| TestEnvError::io(format!("creating {}", dir.display()), e))?;
        let tls_files = match &options.tls {
            Some(tls) => Some((write_tls_material(dir)?, tls.client_cert_auth)),
            None => None,
        };
        let mut last_error = None;
        for attempt in 0..START_ATTEMPTS {
            let data_dir = dir.join(format!("data-{attempt}"));
            let client_port = ports::free_port()?;
            let peer_port = ports::free_port()?;
            let scheme = if tls_files.is_some() { "https" } else { "http" };
            let client_url = format!("{scheme}://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            let mut args = vec![
                "--name=testenv".to_string(),
                format!("--data-dir={}", data_dir.display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=testenv={peer_url}"),
                // Test data is throwaway: skipping fsync makes every write
                // (and so every test) several times faster.
                "--unsafe-no-fsync".to_string(),
                "--log-level=warn".to_string(),
            ];
            if let Some((tls, client_cert_auth)) = &tls_files {
                args.push(format!("--cert-file={}", tls.server_cert.display()));
                args.push(format!("--key-file={}", tls.server_key.display()));
                if *client_cert_auth {
                    args.push("--client-cert-auth".to_string());
                    args.push(format!(
                        "--trusted-ca-file={}",
                        tls.client.ca_file.display()
                    ));
                }
            }
            let log = dir.join(format!("etcd-{attempt}.log"));
            let process = ManagedProcess::spawn("etcd", &binaries.etcd, &args, &log)?;
            let mut server = EtcdServer {
                process,
                client_port,
                data_dir,
                tls: tls_files.as_ref().map(|(t, _)| t.client.clone()),
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                // A lost port race shows as an early exit: try other ports.
                Err(err @ TestEnvError::ExitedEarly { .. }) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt ran"))
    }

    /// `http(s)://127.0.0.1:<port>`.
    pub fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }

    /// TLS material for clients, when the server uses TLS.
    pub fn client_tls(&self) -> Option<&EtcdClientTls> {
        self.tls.as_ref()
    }

    /// Connect options that reach this server (TLS included).
    pub fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5));
        if let Some(tls) = &self.tls {
            options = options.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(&tls.ca_pem))
                    .identity(Identity::from_pem(
                        &tls.client.cert_pem,
                        &tls.client.key_pem,
                    ))
                    .domain_name("localhost"),
            );
        }
        options
    }

    /// A new client (each test runtime needs its own).
    pub async fn client(&self) -> Result<etcd_client::Client, TestEnvError> {
        Ok(etcd_client::Client::connect([self.client_url()], Some(self.connect_options())).await?)
    }

    async fn wait_ready(&mut self) -> Result<(), TestEnvError> {
        let started = Instant::now();
        let mut last_error = String::from("not tried yet");
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self.process.exited() {
                return Err(self.process.exited_early_error(status));
            }
            match self.client().await {
                Ok(mut client) => match client.status().await {
                    Ok(_) => return Ok(()),
                    Err(err) => last_error = err.to_string(),
                },
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.process.not_ready_error(started.elapsed(), last_error))
    }
}

struct TlsFiles {
    server_cert: PathBuf,
    server_key: PathBuf,
    client: EtcdClientTls,
}

fn write_tls_material(dir: &Path) -> Result<TlsFiles, TestEnvError> {
    let ca = CertificateAuthority::new("testenv-etcd-ca")?;
    let ca_file = dir.join("ca.crt");
    crate::pki::write_file(&ca_file, ca.cert_pem())?;
    let (server_cert, server_key) = ca.server_cert("etcd", &[])?.write(dir, "server")?;
    let client = ca.client_cert("apisix-operator", None)?;
    let (cert_file, key_file) = client.write(dir, "client")?;
    Ok(TlsFiles {
        server_cert,
        server_key,
        client: EtcdClientTls {
            ca_pem: ca.cert_pem().to_string(),
            client,
            ca_file,
            cert_file,
            key_file,
        },
    })
}
