//! A kube-apiserver process backed by an etcd of the environment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::pki::CertificateAuthority;
use crate::{Binaries, ManagedProcess, TestEnvError, kubeconfig, ports};

const START_ATTEMPTS: usize = 3;

const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:apiserver"]
  - level: Metadata
"#;
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A running kube-apiserver with RBAC authorization and client-certificate
/// authentication, killed on drop.
pub struct KubeApiServer {
    /// Behind a lock so that a shared environment can be restarted.
    process: Mutex<ManagedProcess>,
    /// How it was started, for [`KubeApiServer::restart`].
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    port: u16,
    ca: Arc<CertificateAuthority>,
    admin_kubeconfig: String,
    kubeconfig_path: PathBuf,
    audit_log: PathBuf,
}

impl KubeApiServer {
    /// Starts a kube-apiserver in `dir` on the etcd at `etcd_url` and waits
    /// until `/readyz` answers (which includes RBAC's bootstrap roles).
    pub async fn start(
        binaries: &Binaries,
        dir: &Path,
        etcd_url: &str,
    ) -> Result<KubeApiServer, TestEnvError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| TestEnvError::io(format!("creating {}", dir.display()), e))?;
        let ca = Arc::new(CertificateAuthority::new("testenv-kubernetes-ca")?);
        let ca_file = dir.join("ca.crt");
        crate::pki::write_file(&ca_file, ca.cert_pem())?;
        let (serving_cert, serving_key) = ca
            .server_cert(
                "kube-apiserver",
                &["kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            )?
            .write(dir, "apiserver")?;
        let sa_key_pair = rcgen::KeyPair::generate()?;
        let sa_key = dir.join("sa.key");
        let sa_pub = dir.join("sa.pub");
        crate::pki::write_file(&sa_key, &sa_key_pair.serialize_pem())?;
        crate::pki::write_file(&sa_pub, &sa_key_pair.public_key_pem())?;
        let admin = ca.client_cert("testenv-admin", Some("system:masters"))?;
        // Every request but the server's own, at Metadata level: tests read
        // it to see which permissions a client really used.
        let audit_policy = dir.join("audit-policy.yaml");
        crate::pki::write_file(&audit_policy, AUDIT_POLICY)?;
        let audit_log = dir.join("audit.log");

        let mut last_error = None;
        for attempt in 0..START_ATTEMPTS {
            let port = ports::free_port()?;
            let args = vec![
                format!("--etcd-servers={etcd_url}"),
                // Each attempt gets its own etcd key prefix so that a failed
                // attempt's half-written bootstrap data cannot confuse the next.
                format!("--etcd-prefix=/registry-{attempt}"),
                "--bind-address=127.0.0.1".to_string(),
                "--advertise-address=127.0.0.1".to_string(),
                format!("--secure-port={port}"),
                format!("--cert-dir={}", dir.display()),
                format!("--tls-cert-file={}", serving_cert.display()),
                format!("--tls-private-key-file={}", serving_key.display()),
                format!("--client-ca-file={}", ca_file.display()),
                "--authorization-mode=RBAC".to_string(),
                "--service-account-issuer=https://kubernetes.default.svc".to_string(),
                format!("--service-account-key-file={}", sa_pub.display()),
                format!("--service-account-signing-key-file={}", sa_key.display()),
                "--service-cluster-ip-range=10.0.0.0/24".to_string(),
                "--allow-privileged=true".to_string(),
                // No controller-manager runs to create service-account tokens.
                "--disable-admission-plugins=ServiceAccount".to_string(),
                // Flow control costs CPU and only matters under real load.
                "--enable-priority-and-fairness=false".to_string(),
                format!("--audit-policy-file={}", audit_policy.display()),
                format!("--audit-log-path={}", audit_log.display()),
                "--audit-log-format=json".to_string(),
                "--audit-log-mode=blocking".to_string(),
                "--v=0".to_string(),
            ];
            let log = dir.join(format!("kube-apiserver-{attempt}.log"));
            let process =
                ManagedProcess::spawn("kube-apiserver", &binaries.kube_apiserver, &args, &log)?;
            let server_url = format!("https://127.0.0.1:{port}");
            let admin_kubeconfig = kubeconfig::render(&server_url, ca.cert_pem(), &admin);
            let kubeconfig_path = dir.join("admin.kubeconfig");
            kubeconfig::write(&kubeconfig_path, &admin_kubeconfig)?;
            let server = KubeApiServer {
                process: Mutex::new(process),
                program: binaries.kube_apiserver.clone(),
                args: args.clone(),
                dir: dir.to_path_buf(),
                port,
                ca: ca.clone(),
                admin_kubeconfig,
                kubeconfig_path,
                audit_log: audit_log.clone(),
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                // A lost port race shows as an early exit: try another port.
                Err(err @ TestEnvError::ExitedEarly { .. }) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt ran"))
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, SIGKILL 5 s later), starts it
    /// again on the same port, certificates and etcd, and waits until it is
    /// ready: clients see connection errors, then the same cluster.
    pub async fn restart(&self) -> Result<(), TestEnvError> {
        self.lock()
            .signal(libc::SIGTERM)
            .map_err(|e| TestEnvError::io("signalling kube-apiserver", e))?;
        // Draining its watches would take a minute; like a kubelet at the
        // end of a short grace period, kill it after a few seconds.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.lock().exited().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        static RESTARTS: AtomicUsize = AtomicUsize::new(0);
        let log = self.dir.join(format!(
            "kube-apiserver-restart-{}.log",
            RESTARTS.fetch_add(1, Ordering::Relaxed)
        ));
        let process = ManagedProcess::spawn("kube-apiserver", &self.program, &self.args, &log)?;
        // The old process (exited or not) is killed and reaped on drop.
        *self.lock() = process;
        self.wait_ready().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManagedProcess> {
        self.process
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The audit log (JSON lines, Metadata level, the API server's own
    /// requests left out); see [`crate::audit`].
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// The cluster CA (PEM), for clients and for signing extra users.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// A cluster-admin kubeconfig (system:masters).
    pub fn admin_kubeconfig(&self) -> &str {
        &self.admin_kubeconfig
    }

    /// Where the admin kubeconfig is written.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// A kubeconfig for a client-certificate user `user` in `groups`.
    pub fn kubeconfig_for(&self, user: &str, group: Option<&str>) -> Result<String, TestEnvError> {
        let cert = self.ca.client_cert(user, group)?;
        Ok(kubeconfig::render(&self.url(), self.ca.cert_pem(), &cert))
    }

    /// A kubeconfig whose admin credentials act as `user` (impersonation),
    /// e.g. `system:serviceaccount:<ns>:<name>`, so that user's RBAC applies.
    pub fn impersonating_kubeconfig(&self, user: &str) -> Result<String, TestEnvError> {
        let admin = self
            .ca
            .client_cert("testenv-impersonator", Some("system:masters"))?;
        Ok(kubeconfig::render_as(
            &self.url(),
            self.ca.cert_pem(),
            &admin,
            Some(user),
        ))
    }

    /// A new cluster-admin client (each test runtime needs its own).
    pub async fn admin_client(&self) -> Result<kube::Client, TestEnvError> {
        kubeconfig::client_from(&self.admin_kubeconfig).await
    }

    async fn wait_ready(&self) -> Result<(), TestEnvError> {
        let started = Instant::now();
        let mut last_error = String::from("not tried yet");
        let client = self.admin_client().await?;
        while started.elapsed() < READY_TIMEOUT {
            if let Some(error) = self.exited_error() {
                return Err(error);
            }
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a static request is valid");
            match tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await {
                Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
                Ok(Ok(body)) => last_error = body,
                Ok(Err(err)) => last_error = err.to_string(),
                Err(_) => last_error = "GET /readyz timed out".to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(self.lock().not_ready_error(started.elapsed(), last_error))
    }

    fn exited_error(&self) -> Option<TestEnvError> {
        let mut process = self.lock();
        let status = process.exited()?;
        Some(process.exited_early_error(status))
    }
}
