//! `apisix-operator-testenv up`: starts the local environment (kube-apiserver,
//! its etcd, the APISIX etcd), prints how to reach it, and keeps it running
//! until Ctrl-C or SIGTERM.

use apisix_operator_testenv::TestEnv;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "up".to_string());
    if command != "up" {
        eprintln!("usage: apisix-operator-testenv [up]");
        return std::process::ExitCode::from(2);
    }
    let env = match TestEnv::start().await {
        Ok(env) => env,
        Err(err) => {
            eprintln!("error: the local environment did not start: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let versions = apisix_operator_testenv::Versions::pinned().expect("checked at start");
    println!("local environment is up:");
    println!(
        "  kube-apiserver {}  {}",
        versions.kube_apiserver,
        env.apiserver.url()
    );
    println!(
        "  kubeconfig      {}",
        env.apiserver.kubeconfig_path().display()
    );
    println!(
        "  APISIX etcd {}   {}  (prefix /apisix)",
        versions.etcd,
        env.apisix_etcd.client_url()
    );
    println!(
        "  work directory  {}  (logs of every process)",
        env.workdir.path().display()
    );
    println!(
        "try: KUBECONFIG={} kubectl get ns   (if you have kubectl)",
        env.apiserver.kubeconfig_path().display()
    );
    println!("press Ctrl-C to stop");
    wait_for_shutdown().await;
    println!("stopping");
    std::process::ExitCode::SUCCESS
}

async fn wait_for_shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
