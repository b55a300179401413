//! `apisix-operator diff`: the desired state (from YAML files, or from the
//! live cluster with `--live`) compared with a live etcd. Prints what a
//! sync would change (`+` create, `~` update, `-` delete); exit status 2 on
//! drift, 1 on errors, 0 when etcd matches.

use std::path::PathBuf;

use clap::Args;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, ListParams};

use super::etcd_args::EtcdArgs;
use super::kube_args::KubeArgs;
use super::{TranslationArgs, translate};
use crate::api::{
    ApisixClusterConfig, ApisixConsumer, ApisixGlobalRule, ApisixPluginConfig, ApisixTls,
};
use crate::api::{ApisixRoute, ApisixUpstream};
use crate::index::{ApisixObject, ClusterIndex, UnitOutcome};
use crate::sync::etcd_read::list_prefix;
use crate::sync::{Expectation, KeyChange, PlanInput, PlanLimits, plan};

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

async fn load_live(index: &mut ClusterIndex, kube: &KubeArgs) -> anyhow::Result<()> {
    let client = kube.client().await?;
    let lp = ListParams::default();
    for class in Api::<IngressClass>::all(client.clone())
        .list(&lp)
        .await?
        .items
    {
        index.apply_ingress_class(class);
    }
    for service in Api::<Service>::all(client.clone()).list(&lp).await?.items {
        index.apply_service(service);
    }
    for slice in Api::<EndpointSlice>::all(client.clone())
        .list(&lp)
        .await?
        .items
    {
        index.apply_endpoint_slice(slice);
    }
    for secret in Api::<Secret>::all(client.clone()).list(&lp).await?.items {
        index.apply_secret(secret);
    }
    for ingress in Api::<Ingress>::all(client.clone()).list(&lp).await?.items {
        index.apply_ingress(ingress);
    }
    // The APISIX CRs, for the kinds whose CRD is installed.
    macro_rules! list_crs {
        ($kind:ty, $variant:path) => {
            if let Ok(list) = Api::<$kind>::all(client.clone()).list(&lp).await {
                for object in list.items {
                    index.apply_apisix($variant(std::sync::Arc::new(object)));
                }
            }
        };
    }
    list_crs!(ApisixRoute, ApisixObject::Route);
    list_crs!(ApisixTls, ApisixObject::Tls);
    if let Ok(list) = Api::<ApisixUpstream>::all(client.clone()).list(&lp).await {
        for upstream in list.items {
            index.apply_apisix_upstream(upstream);
        }
    }
    list_crs!(ApisixConsumer, ApisixObject::Consumer);
    list_crs!(ApisixPluginConfig, ApisixObject::PluginConfig);
    list_crs!(ApisixGlobalRule, ApisixObject::GlobalRule);
    list_crs!(ApisixClusterConfig, ApisixObject::ClusterConfig);
    Ok(())
}

async fn run(
    config: crate::translate::TranslateConfig,
    args: &DiffArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let mut failed = false;
    let mut index = ClusterIndex::new(config.clone());
    if args.live {
        load_live(&mut index, &args.kube).await?;
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
