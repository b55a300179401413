//! Where the cached control-plane binaries live.

use std::path::{Path, PathBuf};

use crate::TestEnvError;

const VERSIONS_ENV: &str = include_str!("../versions.env");

/// The pinned versions from `testenv/versions.env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    pub kube_apiserver: String,
    pub etcd: String,
    /// The install tooling (deploy/ tests and generation).
    pub helm: String,
    pub kustomize: String,
    pub operator_framework_api: String,
    /// The Gateway API CRDs (`gateway_api::crds`).
    pub gateway_api: String,
}

impl Versions {
    pub fn pinned() -> Result<Versions, TestEnvError> {
        Versions::parse(VERSIONS_ENV)
    }

    fn parse(text: &str) -> Result<Versions, TestEnvError> {
        let value = |name: &str| {
            text.lines()
                .filter_map(|line| line.trim().split_once('='))
                .find(|(key, _)| key.trim() == name)
                .map(|(_, value)| value.trim().to_string())
                .filter(|value| !value.is_empty())
                .ok_or_else(|| TestEnvError::Versions(format!("{name} is not set")))
        };
        Ok(Versions {
            kube_apiserver: value("KUBE_APISERVER_VERSION")?,
            etcd: value("ETCD_VERSION")?,
            helm: value("HELM_VERSION")?,
            kustomize: value("KUSTOMIZE_VERSION")?,
            operator_framework_api: value("OPERATOR_FRAMEWORK_API_VERSION")?,
            gateway_api: value("GATEWAY_API_VERSION")?,
        })
    }
}

/// Paths of the binaries the environment runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub versions: Versions,
    pub kube_apiserver: PathBuf,
    pub etcd: PathBuf,
}

impl Binaries {
    /// The cache directory: `$APISIX_OPERATOR_CACHE`, else
    /// `$XDG_CACHE_HOME/apisix-operator`, else `~/.cache/apisix-operator`.
    /// `testenv/provision.sh` uses the same rule.
    pub fn cache_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("APISIX_OPERATOR_CACHE") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return Path::new(&dir).join("apisix-operator");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
        Path::new(&home).join(".cache").join("apisix-operator")
    }

    /// Finds the pinned binaries in the cache, with a clear error naming the
    /// provisioning step when one is missing.
    pub fn locate() -> Result<Binaries, TestEnvError> {
        let versions = Versions::pinned()?;
        Ok(Binaries {
            kube_apiserver: cached("kube-apiserver", &versions.kube_apiserver)?,
            etcd: cached("etcd", &versions.etcd)?,
            versions,
        })
    }
}

/// The cached binary `name` at `version`, or an error naming the
/// provisioning step.
pub(crate) fn cached(name: &'static str, version: &str) -> Result<PathBuf, TestEnvError> {
    let path = Binaries::cache_dir()
        .join("bin")
        .join(format!("{name}-{version}"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestEnvError::MissingBinary {
            name,
            version: version.to_string(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_pinned_versions() {
        let versions = Versions::pinned().unwrap();
        assert!(versions.kube_apiserver.starts_with("v1."));
        assert!(versions.etcd.starts_with("v3."));
    }

    #[test]
    fn a_missing_version_is_an_error() {
        let err = Versions::parse("ETCD_VERSION=v3.6.0\n").unwrap_err();
        assert!(err.to_string().contains("KUBE_APISERVER_VERSION"), "{err}");
    }
}
