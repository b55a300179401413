//! `apisix-operator-testenv up`: starts the local environment (kube-apiserver,
//! its etcd, the APISIX etcd), prints how to reach it, and keeps it running
//! until Ctrl-C or SIGTERM.
//!
//! `apisix-operator-testenv render-deploy`: rewrites the files of `deploy/`
//! derived from the Helm chart, `crds/` and `examples/` (see
//! `apisix_operator_testenv::install`).
//!
//! `apisix-operator-testenv olm-objects NAMESPACE [NAME=VALUE ...]`: prints
//! (YAML) what OLM would create from the bundle's CSV in NAMESPACE, with
//! those variables as a Subscription's `config.env` (see
//! `apisix_operator_testenv::install::olm_objects`).

use apisix_operator_testenv::TestEnv;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "up".to_string());
    match command.as_str() {
        "up" => {}
        "render-deploy" => return render_deploy(),
        "olm-objects" => return olm_objects(std::env::args().skip(2).collect()),
        _ => {
            eprintln!(
                "usage: apisix-operator-testenv [up | render-deploy | olm-objects NAMESPACE [NAME=VALUE ...]]"
            );
            return std::process::ExitCode::from(2);
        }
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

fn render_deploy() -> std::process::ExitCode {
    use apisix_operator_testenv::install;
    let root = install::repo_root();
    let written = install::InstallTools::locate()
        .and_then(|tools| install::generated_files(&root, &tools))
        .and_then(|files| install::write_files(&root, &files));
    match written {
        Ok(written) => {
            for path in &written {
                println!("wrote {}", path.display());
            }
            if written.is_empty() {
                println!("deploy/ is up to date");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn olm_objects(args: Vec<String>) -> std::process::ExitCode {
    use apisix_operator_testenv::install;
    let Some((namespace, env)) = args.split_first() else {
        eprintln!("usage: apisix-operator-testenv olm-objects NAMESPACE [NAME=VALUE ...]");
        return std::process::ExitCode::from(2);
    };
    let env: Vec<(String, String)> = env
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let path = install::repo_root()
        .join(install::BUNDLE)
        .join("manifests/apisix-operator.clusterserviceversion.yaml");
    let objects = std::fs::read_to_string(&path)
        .map_err(|e| {
            apisix_operator_testenv::TestEnvError::Install(format!(
                "reading {}: {e}",
                path.display()
            ))
        })
        .and_then(|text| install::parse_documents(&text, "the CSV"))
        .and_then(|csv| install::olm_objects(&csv[0], namespace, &env));
    match objects {
        Ok(objects) => {
            for object in objects {
                println!("---\n{}", install::to_yaml(&object));
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
