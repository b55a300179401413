//! The `apisix-operator` command line.

pub mod config_file;
pub mod diff;
pub mod etcd_args;
pub mod kube_args;
pub mod run;
pub mod scope_args;
pub mod translate;
pub mod webhook_args;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::apisix::{Keyring, Ownership};
use crate::translate::TranslateConfig;
use crate::translate::gateway::ServedPorts;

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
        translation: Box<TranslationArgs>,
    },
    /// Compare the desired state (from files or the live cluster) with a live etcd; exit 2 on drift.
    Diff(Box<diff::DiffArgs>),
    /// Print the CRDs (apisix.apache.org/v2) as YAML.
    Crds,
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
    /// IngressClasses whose spec.controller, and GatewayClasses whose spec.controllerName, equal this are served.
    #[arg(long, env = "APISIX_OPERATOR_CONTROLLER_NAME", default_value = TranslateConfig::DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
    /// The class accepted in the legacy kubernetes.io/ingress.class annotation.
    #[arg(long, env = "APISIX_OPERATOR_INGRESS_CLASS", default_value = TranslateConfig::DEFAULT_INGRESS_CLASS)]
    pub ingress_class: String,
    /// APISIX's data-encryption keyring (16- or 32-byte keys, first one encrypts); secret fields are written encrypted with it. Prefer the environment variable to the flag.
    #[arg(
        long,
        env = "APISIX_OPERATOR_DATA_ENCRYPTION_KEYRING",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub data_encryption_keyring: Vec<String>,
    /// A saved APISIX Control API `/v1/schema` response: every object and plugin configuration is checked against it before it is written (default: the schemas of APISIX 3.18.0, shipped with the operator; give your data plane's when it loads other plugins).
    #[arg(
        long,
        env = "APISIX_OPERATOR_APISIX_SCHEMA",
        conflicts_with = "apisix_control_url"
    )]
    pub apisix_schema: Option<PathBuf>,
    /// An APISIX Control API base URL (e.g. http://apisix:9090) to fetch `/v1/schema` from at start, instead of --apisix-schema.
    #[arg(long, env = "APISIX_OPERATOR_APISIX_CONTROL_URL")]
    pub apisix_control_url: Option<String>,
    /// Copy Ingresses' labels into the APISIX routes and ssls made from them (the APISIX CRs' labels are always copied).
    #[arg(long, env = "APISIX_OPERATOR_COPY_INGRESS_LABELS")]
    pub copy_ingress_labels: bool,
    /// Gateway listener ports the APISIX data plane serves HTTP on (its Service's ports and APISIX's own); an HTTP listener on another port is not accepted (PortUnavailable).
    #[arg(
        long,
        env = "APISIX_OPERATOR_GATEWAY_HTTP_PORTS",
        value_delimiter = ',',
        default_value = "80,9080"
    )]
    pub gateway_http_ports: Vec<i32>,
    /// Gateway listener ports the APISIX data plane serves HTTPS on; an HTTPS listener on another port is not accepted (PortUnavailable).
    #[arg(
        long,
        env = "APISIX_OPERATOR_GATEWAY_HTTPS_PORTS",
        value_delimiter = ',',
        default_value = "443,9443"
    )]
    pub gateway_https_ports: Vec<i32>,
}

impl TranslationArgs {
    /// Loads the APISIX schema from the file or the Control API, else the
    /// shipped one. Called before any runtime exists, so a URL is fetched on
    /// a runtime of its own.
    fn load_schemas(&self) -> Result<Option<crate::apisix::ApisixSchemas>, String> {
        if let Some(path) = &self.apisix_schema {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--apisix-schema {}: {e}", path.display()))?;
            return crate::apisix::ApisixSchemas::from_text(&path.display().to_string(), &text)
                .map(Some)
                .map_err(|e| e.to_string());
        }
        let Some(url) = &self.apisix_control_url else {
            return Ok(Some(crate::apisix::ApisixSchemas::shipped().clone()));
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(crate::apisix::control_api::fetch_schemas(url))
            .map(Some)
            .map_err(|e| e.to_string())
    }

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
            schemas: self.load_schemas()?.map(std::sync::Arc::new),
            copy_ingress_labels: self.copy_ingress_labels,
            gateway_ports: ServedPorts {
                http: self.gateway_http_ports.clone(),
                https: self.gateway_https_ports.clone(),
            },
            keyring: match self.data_encryption_keyring.as_slice() {
                [] => None,
                keys => Some(
                    Keyring::new(keys).map_err(|e| format!("--data-encryption-keyring: {e}"))?,
                ),
            },
        })
    }
}

/// Parses the command line (with the config file, see `config_file`) and
/// runs the chosen subcommand.
pub fn main() -> std::process::ExitCode {
    let argv = match config_file::expand(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(argv);
    match cli.command {
        Command::Run(args) => run::main(*args),
        Command::Diff(args) => diff::main(*args),
        Command::Translate { paths, translation } => match translation.to_config() {
            Ok(config) => translate::run(config, &paths),
            Err(err) => {
                eprintln!("error: {err}");
                std::process::ExitCode::from(2)
            }
        },
        Command::Crds => {
            print!("{}", crate::api::crds_yaml());
            std::process::ExitCode::SUCCESS
        }
        Command::Version => {
            println!("apisix-operator {}", crate::VERSION);
            std::process::ExitCode::SUCCESS
        }
    }
}

/// The README's settings table of `run`, generated from the flag
/// definitions (a test keeps the README equal to it).
pub fn settings_table() -> String {
    use clap::CommandFactory;
    let command = Cli::command();
    let run = command.find_subcommand("run").expect("run is a subcommand");
    let mut table = String::from(
        "| flag | environment variable | default | meaning |\n| --- | --- | --- | --- |\n",
    );
    for arg in run.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(", ");
        let help = arg
            .get_help()
            .map(|h| h.to_string())
            .unwrap_or_default()
            .replace('|', "\\|");
        table.push_str(&format!("| `--{long}` | {env} | {default} | {help} |\n"));
    }
    table
}
