//! `apisix-operator diff`: the desired state (from YAML files, or from the
//! live cluster with `--live`, read through the same watches as `run`)
//! compared with a live etcd. Prints what a sync would change (`+` create,
//! `~` update, `-` delete); exit status 2 on drift or when the cluster
//! cannot be listed, 1 on other errors, 0 when etcd matches.

use std::path::PathBuf;

use clap::Args;

use super::etcd_args::EtcdArgs;
use super::kube_args::KubeArgs;
use super::scope_args::ScopeArgs;
use super::{TranslationArgs, translate};
use crate::index::{ClusterIndex, LoadedCluster, UnitOutcome, load_cluster};
use crate::sync::etcd_read::list_prefix;
use crate::sync::{Expectation, KeyChange, PlanInput, PlanLimits, plan};

/// How long `--live` may take to list the cluster.
const LIVE_LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// Files or directories of Kubernetes YAML to compute the desired state from.
    #[arg(
        short = 'f',
        long = "filename",
        conflicts_with = "live",
        required_unless_present = "live"
    )]
    pub paths: Vec<PathBuf>,
    /// Compute the desired state from the live cluster (kubeconfig or in-cluster).
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub translation: TranslationArgs,
    /// With `--live`: the namespaces `run` serves.
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub etcd: EtcdArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
}

pub fn main(args: DiffArgs) -> std::process::ExitCode {
    let config = match args.translation.to_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(config, &args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The cluster as `run` sees it: the same watches, listed once. A failed
/// list is an error (exit status 2), never an empty input.
async fn load_live(args: &DiffArgs, index: ClusterIndex) -> Result<ClusterIndex, String> {
    let client = args.kube.client().await.map_err(|e| format!("{e:#}"))?;
    let LoadedCluster {
        index,
        not_installed,
    } = load_cluster(&client, &args.scope.namespaces(), index, LIVE_LIST_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    for kind in not_installed {
        eprintln!("note: the {kind} CRD is not installed; like `run`, diff reads no {kind}");
    }
    Ok(index)
}

async fn run(
    config: crate::translate::TranslateConfig,
    args: &DiffArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let mut failed = false;
    let mut index = args.scope.index(config.clone());
    if args.live {
        index = match load_live(args, index).await {
            Ok(index) => index,
            Err(err) => {
                eprintln!("error: {err}");
                return Ok(std::process::ExitCode::from(2));
            }
        };
    } else {
        for file in translate::collect_files(&args.paths)? {
            for object in translate::read_objects(&file)? {
                if let Err(err) = translate::apply_object(&mut index, &file, object) {
                    eprintln!("error: {err}");
                    failed = true;
                }
            }
        }
    }
    for outcome in index.flush() {
        if let UnitOutcome::Failed { unit, error } = outcome {
            eprintln!("error: {unit}: {error}");
            failed = true;
        }
    }
    let mut etcd = args.etcd.connect().await?;
    let stored = list_prefix(
        &mut etcd,
        &config.prefix,
        std::time::Duration::from_secs(30),
    )
    .await?;
    let planned = plan(PlanInput {
        desired: index.desired(),
        mirror: &stored,
        ownership: &config.ownership,
        prefix: &config.prefix,
        limits: PlanLimits::default(),
        deletions_allowed: true,
    });
    for change in planned.changes() {
        match change {
            KeyChange::Put {
                key,
                value,
                expect: Expectation::Absent,
                ..
            } => {
                println!("+ {key}");
                println!("    want: {}", String::from_utf8_lossy(value.as_bytes()));
            }
            KeyChange::Put { key, value, .. } => {
                println!("~ {key}");
                let have = stored
                    .get(key.as_str())
                    .and_then(|m| m.canonical())
                    .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
                    .unwrap_or_else(|| "(not a JSON object)".into());
                println!("    etcd: {have}");
                println!("    want: {}", String::from_utf8_lossy(value.as_bytes()));
            }
            KeyChange::Delete { key, .. } => println!("- {key}"),
        }
    }
    for key in &planned.refused {
        eprintln!(
            "error: desired key {key} is not owned by cluster {}",
            config.ownership.cluster()
        );
        failed = true;
    }
    let changes = planned.changes().count();
    eprintln!(
        "{changes} change(s): {} to write, {} to delete",
        planned.puts(),
        planned.deletes()
    );
    Ok(if changes > 0 {
        std::process::ExitCode::from(2)
    } else if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
