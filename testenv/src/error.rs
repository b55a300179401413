use std::path::PathBuf;

/// Why the test environment could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum TestEnvError {
    #[error(
        "{name} {version} is not built: {path} is missing; run `make provision` (or testenv/provision.sh)"
    )]
    MissingBinary {
        name: &'static str,
        version: String,
        path: PathBuf,
    },
    #[error("cannot read testenv/versions.env: {0}")]
    Versions(String),
    #[error("i/o error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} exited during start-up ({status}); its log {log}:\n{tail}")]
    ExitedEarly {
        name: String,
        status: std::process::ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("{name} was not ready after {waited:?}: {last_error}; its log {log}:\n{tail}")]
    NotReady {
        name: String,
        waited: std::time::Duration,
        last_error: String,
        log: PathBuf,
        tail: String,
    },
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("kubeconfig error: {0}")]
    Kubeconfig(String),
    #[error("install artifacts: {0}")]
    Install(String),
    #[error("no running etcd member reports itself the leader")]
    NoEtcdLeader,
    #[error("etcd client error: {0}")]
    Etcd(#[from] etcd_client::Error),
}

impl TestEnvError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TestEnvError::Io {
            context: context.into(),
            source,
        }
    }
}
