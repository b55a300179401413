//! How to reach Kubernetes: a kubeconfig file, else `KUBECONFIG` or
//! `~/.kube/config`, else the in-cluster service account.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// A kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "APISIX_OPERATOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

impl KubeArgs {
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .with_context(|| format!("using the kubeconfig {}", path.display()))?
            }
            None => kube::Config::infer()
                .await
                .context("finding Kubernetes (KUBECONFIG, ~/.kube/config or in-cluster)")?,
        };
        kube::Client::try_from(config).context("building the Kubernetes client")
    }
}
