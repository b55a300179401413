//! Running the cached helm, kustomize and olm-bundle-validate binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binaries::cached;
use crate::{TestEnvError, Versions};

/// The install tooling, at the pinned versions.
#[derive(Debug, Clone)]
pub struct InstallTools {
    pub helm: PathBuf,
    pub kustomize: PathBuf,
    pub olm_bundle_validate: PathBuf,
    /// The Kubernetes version `helm template` and the bundle checks assume.
    pub kube_version: String,
}

impl InstallTools {
    pub fn locate() -> Result<InstallTools, TestEnvError> {
        let versions = Versions::pinned()?;
        Ok(InstallTools {
            helm: cached("helm", &versions.helm)?,
            kustomize: cached("kustomize", &versions.kustomize)?,
            olm_bundle_validate: cached("olm-bundle-validate", &versions.operator_framework_api)?,
            kube_version: versions.kube_apiserver.trim_start_matches('v').to_string(),
        })
    }

    /// `helm template` of `chart` as release [`super::RELEASE`] in
    /// `namespace`, with values files (JSON is YAML too); CRDs included when
    /// asked.
    pub fn helm_template(
        &self,
        chart: &Path,
        namespace: &str,
        values_files: &[PathBuf],
        include_crds: bool,
    ) -> Result<String, TestEnvError> {
        let mut command = Command::new(&self.helm);
        command
            .arg("template")
            .arg(super::RELEASE)
            .arg(chart)
            .args(["--namespace", namespace])
            .args(["--kube-version", &self.kube_version]);
        if include_crds {
            command.arg("--include-crds");
        }
        for file in values_files {
            command.arg("--values").arg(file);
        }
        run(command)
    }

    /// `helm lint --strict` with a values file (or the defaults).
    pub fn helm_lint(&self, chart: &Path, values: Option<&Path>) -> Result<String, TestEnvError> {
        let mut command = Command::new(&self.helm);
        command
            .arg("lint")
            .arg("--strict")
            .arg(chart)
            .args(["--kube-version", &self.kube_version]);
        if let Some(values) = values {
            command.arg("--values").arg(values);
        }
        run(command)
    }

    /// Any other helm command (install, upgrade, uninstall...).
    pub fn helm(&self, args: &[&str]) -> Result<String, TestEnvError> {
        let mut command = Command::new(&self.helm);
        command.args(args);
        run(command)
    }

    pub fn kustomize_build(&self, dir: &Path) -> Result<String, TestEnvError> {
        let mut command = Command::new(&self.kustomize);
        command.arg("build").arg(dir);
        run(command)
    }

    /// The operator framework's bundle validation (default and OperatorHub
    /// suites); warnings fail too.
    pub fn olm_validate(&self, bundle: &Path) -> Result<String, TestEnvError> {
        let minor = self.kube_version.rsplit_once('.').map_or("", |(mm, _)| mm);
        let mut command = Command::new(&self.olm_bundle_validate);
        command.args(["-strict", "-k8s-version", minor]).arg(bundle);
        run(command)
    }
}

/// Runs `command`; its stdout on success, else an error with both streams.
fn run(mut command: Command) -> Result<String, TestEnvError> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| TestEnvError::io(format!("running {shown}"), e))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(TestEnvError::Install(format!(
            "{shown} failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
