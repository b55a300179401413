//! The `apisix-operator` command line.

pub mod run;
pub mod translate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::apisix::Ownership;
use crate::translate::TranslateConfig;

#[derive(Debug, Parser)]
#[command(name = "apisix-operator", version = crate::VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one replica of the operator (watch, translate, and while leading, write to etcd).
    Run(Box<run::RunArgs>),
    /// Translate Kubernetes YAML offline and print the APISIX etcd keys and values as JSON.
    Translate {
        /// Files or directories of Kubernetes YAML (multi-document).
        #[arg(short = 'f', long = "filename", required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        translation: TranslationArgs,
    },
    /// Print the version.
    Version,
}

/// Options that shape translation (shared by `translate` and `run`).
#[derive(Debug, Clone, Args)]
pub struct TranslationArgs {
    /// The APISIX etcd prefix.
    #[arg(long, env = "APISIX_OPERATOR_PREFIX", default_value = "/apisix")]
    pub prefix: String,
    /// The cluster name that scopes ownership of APISIX objects (a DNS label, at most 20 characters).
    #[arg(long, env = "APISIX_OPERATOR_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// IngressClasses whose spec.controller equals this are served.
    #[arg(long, env = "APISIX_OPERATOR_CONTROLLER_NAME", default_value = TranslateConfig::DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
    /// The class accepted in the legacy kubernetes.io/ingress.class annotation.
    #[arg(long, env = "APISIX_OPERATOR_INGRESS_CLASS", default_value = TranslateConfig::DEFAULT_INGRESS_CLASS)]
    pub ingress_class: String,
}

impl TranslationArgs {
    pub fn to_config(&self) -> Result<TranslateConfig, String> {
        let prefix = self.prefix.trim_end_matches('/').to_string();
        if !prefix.starts_with('/') || prefix.len() < 2 {
            return Err(format!(
                "--prefix {:?} must be an absolute key prefix such as /apisix",
                self.prefix
            ));
        }
        Ok(TranslateConfig {
            prefix,
            ownership: Ownership::new(&self.cluster).map_err(|e| format!("--cluster: {e}"))?,
            controller_name: self.controller_name.clone(),
            ingress_class: self.ingress_class.clone(),
        })
    }
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::main(*args),
        Command::Translate { paths, translation } => match translation.to_config() {
            Ok(config) => translate::run(config, &paths),
            Err(err) => {
                eprintln!("error: {err}");
                std::process::ExitCode::from(2)
            }
        },
        Command::Version => {
            println!("apisix-operator {}", crate::VERSION);
            std::process::ExitCode::SUCCESS
        }
    }
}
