//! Supervision: when a long-lived task ends (here the index task, made to
//! return by the test build's fault injection), the replica releases its
//! Lease and exits non-zero, naming the task, instead of serving a frozen
//! desired state while `/healthz` says ok.

use std::path::Path;
use std::time::Duration;

use apisix_operator_testenv::{TestEnv, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

const GENEROUS: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_task_that_ends_stops_the_replica_and_frees_the_lease() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let args: Vec<String> = vec![
        "run".into(),
        format!("--etcd-endpoints={}", env.apisix_etcd.client_url()),
        "--prefix=/it-supervision".into(),
        "--cluster=supervision".into(),
        "--lease-name=it-supervision".into(),
        "--lease-namespace=default".into(),
        "--identity=supervised-a".into(),
        "--listen-address=127.0.0.1:0".into(),
    ];
    // The replica leads (a steady state), then its index task ends.
    let mut operator = env
        .spawn_operator_with_env(
            "operator-supervision",
            Path::new(env!("CARGO_BIN_EXE_apisix-operator")),
            &args,
            &[("APISIX_OPERATOR_FAULT", "index")],
        )
        .await
        .unwrap();
    let status = eventually("the replica to exit", GENEROUS, || {
        let exited = operator.exited();
        async move { exited }
    })
    .await;
    assert_eq!(status.code(), Some(1), "{}", operator.log_tail());
    let log = std::fs::read_to_string(operator.log_path()).unwrap();
    assert!(
        log.contains("the index task") && log.contains("ended"),
        "{log}"
    );
    // It led before the task ended, and released the Lease on the way out.
    assert!(log.contains("became leader"), "{log}");
    let leases: Api<Lease> = Api::namespaced(env.kube_client().await.unwrap(), "default");
    let lease = leases.get("it-supervision").await.unwrap();
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(holder, None, "{log}");
}
