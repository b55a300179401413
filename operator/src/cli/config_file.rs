//! The optional YAML settings file of `run`, and `run` as the default
//! subcommand.
//!
//! Precedence, highest first: command-line flags, environment variables
//! (`APISIX_OPERATOR_*`), the file given by `--config` (or
//! `APISIX_OPERATOR_CONFIG`), built-in defaults. The file maps flag names
//! without the leading dashes to values (lists as YAML sequences):
//!
//! ```yaml
//! cluster: prod-eu
//! etcd-endpoints: [https://etcd-0:2379, https://etcd-1:2379]
//! resync-interval: 10m
//! ```

use std::ffi::OsString;
use std::path::PathBuf;

use clap::CommandFactory;
use serde_json::Value;

use super::Cli;

const SUBCOMMANDS: [&str; 6] = ["run", "translate", "diff", "crds", "version", "help"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not a YAML mapping of settings: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("the config file {path} sets {key:?}, which is not a setting of `run` (see --help)")]
    UnknownSetting { path: PathBuf, key: String },
    #[error(
        "the config file {path} sets {key:?} to a nested value; use a string, number, boolean or list"
    )]
    BadValue { path: PathBuf, key: String },
}

/// Rewrites the command line: `run` when no subcommand is given, and the
/// config file's settings as flags for everything neither the command line
/// nor the environment sets.
pub fn expand(argv: Vec<OsString>) -> Result<Vec<OsString>, ConfigFileError> {
    expand_with(argv, |name| std::env::var_os(name))
}

/// [`expand`] with the environment given as a lookup (for tests).
pub fn expand_with(
    argv: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<OsString>, ConfigFileError> {
    let mut argv = argv;
    let first = argv.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let is_top_level_flag = matches!(first, "-h" | "--help" | "-V" | "--version");
    if !SUBCOMMANDS.contains(&first) && !is_top_level_flag {
        argv.insert(1, "run".into());
    }
    if argv.get(1).and_then(|a| a.to_str()) != Some("run") {
        return Ok(argv);
    }
    let given: Vec<String> = argv[2..]
        .iter()
        .filter_map(|a| a.to_str().map(str::to_string))
        .collect();
    let path = config_path(&given).or_else(|| env("APISIX_OPERATOR_CONFIG").map(PathBuf::from));
    let Some(path) = path else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Read {
        path: path.clone(),
        source,
    })?;
    let settings: serde_json::Map<String, Value> = match serde_saphyr::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => serde_json::Map::new(),
        Ok(_) => {
            return Err(ConfigFileError::Parse {
                path,
                reason: "the top level is not a mapping".into(),
            });
        }
        Err(e) => {
            return Err(ConfigFileError::Parse {
                path,
                reason: e.to_string(),
            });
        }
    };
    let command = Cli::command();
    let run = command.find_subcommand("run").expect("run is a subcommand");
    let mut injected = Vec::new();
    for (key, value) in settings {
        let Some(arg) = run
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != "config")
        else {
            return Err(ConfigFileError::UnknownSetting { path, key });
        };
        let on_command_line = given
            .iter()
            .any(|a| a == &format!("--{key}") || a.starts_with(&format!("--{key}=")));
        let in_environment = arg
            .get_env()
            .and_then(|name| name.to_str())
            .is_some_and(|name| env(name).is_some_and(|v| !v.is_empty()));
        if on_command_line || in_environment {
            continue;
        }
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(ConfigFileError::BadValue {
                        path: path.clone(),
                        key: key.clone(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => return Err(ConfigFileError::BadValue { path, key }),
        };
        injected.push(OsString::from(format!("--{key}={text}")));
    }
    argv.splice(2..2, injected);
    Ok(argv)
}

fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("apisix-operator")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn run_args(argv: Vec<OsString>) -> super::super::run::RunArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            super::super::Command::Run(args) => *args,
            other => panic!("not run: {other:?}"),
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn run_is_the_default_subcommand() {
        let expanded = expand_with(args(&["--cluster", "a"]), |_| None).unwrap();
        assert_eq!(expanded[1], "run");
        assert_eq!(run_args(expanded).translation.cluster, "a");
        assert_eq!(
            expand_with(args(&["version"]), |_| None).unwrap(),
            args(&["version"])
        );
    }

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let config = file(
            "cluster: from-file\nlease-name: file-lease\nresync-interval: 10m\nnamespace: [a, b]\netcd-endpoints:\n  - http://e1:2379\n  - http://e2:2379\n",
        );
        let path = config.path().to_str().unwrap().to_string();
        // The environment sets the lease name; the command line sets the cluster.
        let env = |name: &str| {
            (name == "APISIX_OPERATOR_LEASE_NAME").then(|| OsString::from("env-lease"))
        };
        let argv = expand_with(
            args(&["run", "--config", &path, "--cluster=from-flag"]),
            env,
        )
        .unwrap();
        let parsed = run_args(argv);
        assert_eq!(parsed.translation.cluster, "from-flag");
        // clap reads the environment itself; here the file must simply not
        // have injected its value, so the default stands in for the env.
        assert_eq!(parsed.lease_name, "apisix-operator-leader");
        assert_eq!(parsed.resync_interval, std::time::Duration::from_secs(600));
        assert_eq!(parsed.scope.namespaces, ["a", "b"]);
        assert_eq!(
            parsed.etcd.etcd_endpoints,
            ["http://e1:2379", "http://e2:2379"]
        );
        // Defaults where nobody says anything.
        assert_eq!(parsed.lease_duration, std::time::Duration::from_secs(5));
        assert_eq!(parsed.translation.prefix, "/apisix");
    }

    #[test]
    fn the_config_file_is_also_found_through_the_environment() {
        let config = file("cluster: via-env-file\n");
        let path = OsString::from(config.path());
        let env = move |name: &str| (name == "APISIX_OPERATOR_CONFIG").then(|| path.clone());
        assert_eq!(
            run_args(expand_with(args(&["run"]), env).unwrap())
                .translation
                .cluster,
            "via-env-file"
        );
    }

    #[test]
    fn bad_config_files_are_clear_errors() {
        let unknown = file("clustr: typo\n");
        let err = expand_with(
            args(&["run", "--config", unknown.path().to_str().unwrap()]),
            |_| None,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"clustr\", which is not a setting"),
            "{err}"
        );
        let nested = file("cluster: {a: 1}\n");
        let err = expand_with(
            args(&["run", "--config", nested.path().to_str().unwrap()]),
            |_| None,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigFileError::BadValue { .. }), "{err}");
        let missing =
            expand_with(args(&["run", "--config", "/nonexistent.yaml"]), |_| None).unwrap_err();
        assert!(matches!(missing, ConfigFileError::Read { .. }), "{missing}");
    }

    #[test]
    fn invalid_settings_are_reported_at_start() {
        let parsed =
            run_args(expand_with(args(&["run", "--renew-deadline", "9s"]), |_| None).unwrap());
        assert!(parsed.settings().err().unwrap().contains("renew deadline"));
        let parsed = run_args(
            expand_with(args(&["run", "--fence-prefix", "/apisix/fence"]), |_| None).unwrap(),
        );
        assert!(
            parsed
                .settings()
                .err()
                .unwrap()
                .contains("APISIX would read the fence")
        );
        let parsed = run_args(
            expand_with(args(&["run", "--ingress-publish-service", "nope"]), |_| {
                None
            })
            .unwrap(),
        );
        assert!(parsed.settings().err().unwrap().contains("namespace/name"));
        assert!(Cli::try_parse_from(args(&["run", "--lease-duration", "soon"])).is_err());
    }
}
