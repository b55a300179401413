//! Operations, with the real binary and the real environment: /readyz is 503
//! until the caches sync and /metrics is OpenMetrics with the documented
//! names; SIGTERM exits promptly and releases the Lease; `diff` reports a
//! hand-made drift with exit status 2; etcd TLS, mutual TLS and user/password
//! authentication work, and wrong credentials are one clear error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use apisix_operator::telemetry::{SyncMetrics, TranslateMetrics};
use apisix_operator_testenv::{EtcdOptions, EtcdTls, ManagedProcess, TestEnv, eventually, ports};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, PostParams};
use serde_json::json;

const GENEROUS: Duration = Duration::from_secs(90);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_apisix-operator"))
}

fn examples() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/ingress")
        .display()
        .to_string()
}

async fn env() -> &'static TestEnv {
    TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"))
}

/// A plain HTTP/1.0 GET on loopback: (status, body).
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

struct Replica {
    process: ManagedProcess,
    port: u16,
}

fn start(test: &str, identity: &str, kubeconfig: &Path, extra: &[&str]) -> Replica {
    let port = ports::free_port().unwrap();
    let mut args: Vec<String> = vec![
        format!("--etcd-endpoints={}", futures_lite_url()),
        format!("--prefix=/it-ops-{test}"),
        "--cluster=ops".into(),
        format!("--fence-prefix=/operator-it-ops-{test}"),
        format!("--lease-name=ops-{test}"),
        "--lease-namespace=default".into(),
        format!("--identity={identity}"),
        format!("--listen-address=127.0.0.1:{port}"),
        "--namespace=ops-empty".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let kubeconfig = kubeconfig.display().to_string();
    let log = kubeconfig_dir(&kubeconfig).join(format!("{test}-{identity}.log"));
    let process = ManagedProcess::spawn_with_env(
        identity,
        binary(),
        &args,
        &[("KUBECONFIG", kubeconfig.as_str()), ("RUST_LOG", "info")],
        &log,
    )
    .unwrap();
    Replica { process, port }
}

fn kubeconfig_dir(kubeconfig: &str) -> PathBuf {
    Path::new(kubeconfig).parent().unwrap().to_path_buf()
}

static ETCD_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn futures_lite_url() -> String {
    ETCD_URL.get().cloned().expect("set by the test")
}

#[tokio::test]
async fn readiness_metrics_sigterm_and_diff() {
    let env = env().await;
    let _ = ETCD_URL.set(env.apisix_etcd.client_url());
    let client = env.kube_client().await.unwrap();
    let dir = env.workdir.path().join("ops");
    std::fs::create_dir_all(&dir).unwrap();

    // A user with no permissions: its watches fail, so the caches never sync.
    let user_kubeconfig = write(
        &dir,
        "ops-user.kubeconfig",
        &env.apiserver.kubeconfig_for("ops-user", None).unwrap(),
    );
    let first = start("ready", "ops-a", &user_kubeconfig, &[]);
    let (status, body) = eventually("/readyz to answer", GENEROUS, || async {
        apisix_operator_testenv::http::get(first.port, "/readyz")
    })
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("caches"), "{body}");
    assert_eq!(
        apisix_operator_testenv::http::get(first.port, "/healthz")
            .unwrap()
            .0,
        200
    );

    // Grant permissions: the watches recover, the caches sync, /readyz is 200.
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "ops-user-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ops-user"}],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    eventually("/readyz to turn 200", GENEROUS, || async {
        (apisix_operator_testenv::http::get(first.port, "/readyz")?.0 == 200).then_some(())
    })
    .await;

    // /metrics: OpenMetrics text with every documented name.
    let (status, metrics) = apisix_operator_testenv::http::get(first.port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.ends_with("# EOF\n"), "not OpenMetrics: {metrics}");
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        assert!(series.starts_with("apisix_operator_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    for name in SyncMetrics::NAMES.iter().chain(&TranslateMetrics::NAMES) {
        assert!(
            metrics.contains(&format!("# TYPE apisix_operator_{name} ")),
            "{name} missing"
        );
    }

    // A second replica follows; SIGTERM on the leader exits promptly and
    // releases the Lease (the lease is long: waiting for expiry would time out).
    let operator = env.operator_kubeconfig().await.unwrap();
    let long_lease = [
        "--lease-duration=60s",
        "--renew-deadline=40s",
        "--retry-period=1s",
    ];
    let mut leader = start("term", "term-a", &operator, &long_lease);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let holder = |leases: Api<Lease>| async move {
        leases
            .get_opt("ops-term")
            .await
            .ok()
            .flatten()?
            .spec?
            .holder_identity
    };
    eventually("term-a to lead", GENEROUS, || {
        let leases = leases.clone();
        async move { (holder(leases).await.as_deref() == Some("term-a")).then_some(()) }
    })
    .await;
    let _follower = start("term", "term-b", &operator, &long_lease);
    tokio::time::sleep(Duration::from_secs(1)).await;
    leader.process.signal(libc::SIGTERM).unwrap();
    let stopped = std::time::Instant::now();
    let status = eventually("term-a to exit", GENEROUS, || {
        let exited = leader.process.exited();
        async move { exited }
    })
    .await;
    assert!(status.success(), "exit status {status}");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        stopped.elapsed()
    );
    eventually("term-b to lead after the release", GENEROUS, || {
        let leases = leases.clone();
        async move { (holder(leases).await.as_deref() == Some("term-b")).then_some(()) }
    })
    .await;
    drop(first);
}

fn diff(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(binary())
        .arg("diff")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test]
async fn diff_detects_drift_and_etcd_security_works() {
    let env = env().await;
    let examples = examples();
    // Plain etcd: write the translation with `diff`'s own view, then drift.
    let plain = env
        .private_etcd("diff", EtcdOptions::default())
        .await
        .unwrap();
    let url = plain.client_url();
    let first = diff(&["-f", &examples, "--etcd-endpoints", &url], &[]);
    assert_eq!(
        first.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    // The examples' ten keys (two Ingresses share the storefront:80 upstream).
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("+ ")).count(),
        10,
        "{stdout}"
    );
    // Make etcd equal to the translation, then change one key by hand.
    let translated = Command::new(binary())
        .args(["translate", "-f", &examples])
        .output()
        .unwrap();
    let dump: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&translated.stdout).unwrap();
    let mut etcd = plain.client().await.unwrap();
    for (key, value) in &dump {
        etcd.put(key.as_str(), value.to_string(), None)
            .await
            .unwrap();
    }
    let clean = diff(&["-f", &examples, "--etcd-endpoints", &url], &[]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    let (key, _) = dump.iter().find(|(k, _)| k.contains("/routes/")).unwrap();
    etcd.put(key.as_str(), r#"{"uri":"/hijacked"}"#, None)
        .await
        .unwrap();
    let drift = diff(&["-f", &examples, "--etcd-endpoints", &url], &[]);
    assert_eq!(drift.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&drift.stdout);
    assert!(stdout.contains(&format!("~ {key}")), "{stdout}");
    assert!(stdout.contains("/hijacked"), "{stdout}");

    // TLS with client certificates (mTLS).
    let tls = env
        .private_etcd(
            "mtls",
            EtcdOptions {
                tls: Some(EtcdTls {
                    client_cert_auth: true,
                }),
            },
        )
        .await
        .unwrap();
    let material = tls.client_tls().unwrap();
    let (ca, cert, key) = (
        material.ca_file.display().to_string(),
        material.cert_file.display().to_string(),
        material.key_file.display().to_string(),
    );
    let url = tls.client_url();
    let ok = diff(
        &[
            "-f",
            &examples,
            "--etcd-endpoints",
            &url,
            "--etcd-ca-file",
            &ca,
            "--etcd-cert-file",
            &cert,
            "--etcd-key-file",
            &key,
        ],
        &[],
    );
    assert_eq!(
        ok.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Server TLS checked, but no client certificate: refused, one clear error.
    let no_cert = diff(
        &[
            "-f",
            &examples,
            "--etcd-endpoints",
            &url,
            "--etcd-ca-file",
            &ca,
        ],
        &[],
    );
    assert_eq!(no_cert.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_cert.stderr);
    assert!(stderr.contains("cannot reach etcd"), "{stderr}");
    assert!(stderr.lines().count() <= 2, "{stderr}");
    // The wrong CA: refused.
    let wrong_ca = env
        .apiserver
        .kubeconfig_path()
        .parent()
        .unwrap()
        .join("ca.crt")
        .display()
        .to_string();
    let bad = diff(
        &[
            "-f",
            &examples,
            "--etcd-endpoints",
            &url,
            "--etcd-ca-file",
            &wrong_ca,
            "--etcd-cert-file",
            &cert,
            "--etcd-key-file",
            &key,
        ],
        &[],
    );
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // `run` itself works over mutual TLS: it loads its mirror (ready) and,
    // leading, claims the fence in that etcd.
    let port = ports::free_port().unwrap();
    let run = env
        .spawn_operator(
            "run-mtls",
            binary(),
            &[
                format!("--etcd-endpoints={url}"),
                format!("--etcd-ca-file={ca}"),
                format!("--etcd-cert-file={cert}"),
                format!("--etcd-key-file={key}"),
                "--cluster=mtls".into(),
                "--lease-name=ops-mtls".into(),
                "--lease-namespace=default".into(),
                "--identity=mtls-a".into(),
                format!("--listen-address=127.0.0.1:{port}"),
            ],
        )
        .await
        .unwrap();
    eventually("run over mTLS to be ready", GENEROUS, || async {
        (apisix_operator_testenv::http::get(port, "/readyz")?.0 == 200).then_some(())
    })
    .await;
    let mut mtls_client = tls.client().await.unwrap();
    eventually("the fence claimed over mTLS", GENEROUS, || {
        let mut client = mtls_client.clone();
        async move {
            let fence = client
                .get("/operator/apisix/mtls/leader", None)
                .await
                .ok()?;
            (!fence.kvs().is_empty()).then_some(())
        }
    })
    .await;
    let _ = mtls_client.status().await.unwrap();
    drop(run);

    // User and password authentication.
    let auth = env
        .private_etcd("auth", EtcdOptions::default())
        .await
        .unwrap();
    let mut admin = auth.client().await.unwrap();
    admin.role_add("root").await.unwrap();
    admin.user_add("root", "s3cret", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();
    let url = auth.client_url();
    let ok = diff(
        &[
            "-f",
            &examples,
            "--etcd-endpoints",
            &url,
            "--etcd-user",
            "root",
        ],
        &[("APISIX_OPERATOR_ETCD_PASSWORD", "s3cret")],
    );
    assert_eq!(
        ok.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let password_file = env.workdir.path().join("etcd-password");
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let from_file = diff(
        &[
            "-f",
            &examples,
            "--etcd-endpoints",
            &url,
            "--etcd-user",
            "root",
            "--etcd-password-file",
            password_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        from_file.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let wrong = diff(
        &[
            "-f",
            &examples,
            "--etcd-endpoints",
            &url,
            "--etcd-user",
            "root",
        ],
        &[("APISIX_OPERATOR_ETCD_PASSWORD", "wrong")],
    );
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("cannot reach etcd") && stderr.to_lowercase().contains("auth"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong"),
        "the password leaked into the error: {stderr}"
    );
    let anonymous = diff(&["-f", &examples, "--etcd-endpoints", &url], &[]);
    assert_eq!(
        anonymous.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&anonymous.stderr)
    );
}
