//! The install artifacts under `deploy/`: the tools that check them (helm,
//! kustomize, the OLM bundle validator, all built by `testenv/provision.sh`)
//! and the generator that keeps the derived files equal to the Helm chart,
//! the single source of the Deployment, its RBAC and its Services:
//!
//! - `deploy/manifests/*.yaml` (the kustomize base) = the chart rendered with
//!   default values, one file per template;
//! - the CRDs in the chart, the kustomize base and the bundle = `crds/`;
//! - the OLM bundle's ClusterServiceVersion: install strategy, permissions,
//!   webhook definitions, owned CRDs, `alm-examples` and icon filled in from
//!   the chart render, `crds/`, `examples/` and `deploy/olm/icon.svg` (the
//!   chart's webhook, Service and certificate handling become OLM's); the
//!   rest of it (descriptions, links, install modes...) is edited by hand in
//!   place.
//!
//! `apisix-operator-testenv render-deploy` writes them; the install tests
//! fail when they are stale.

mod bundle;
mod generate;
mod olm;
mod pod;
mod service_account;
mod tools;
mod yaml;

pub use bundle::WEBHOOK_FIELDS;
pub use generate::{GeneratedFile, generated_files, stale_files, write_files};
pub use olm::olm_objects;
pub use pod::LocalPod;
pub use service_account::{OPERATOR_NAMESPACE, OPERATOR_USER};
pub use tools::InstallTools;
pub use yaml::{parse_documents, to_yaml};

/// The Helm release the generated manifests are rendered as.
pub const RELEASE: &str = "apisix-operator";
/// The namespace they install into.
pub const NAMESPACE: &str = "apisix-operator";
/// The chart, relative to the repository root.
pub const CHART: &str = "deploy/helm/apisix-operator";
/// The OLM bundle, relative to the repository root.
pub const BUNDLE: &str = "deploy/olm/bundle";

/// The repository root (this crate lives in `testenv/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The chart's objects rendered in `namespace` with `values` laid over the
/// defaults (and the CRDs when asked).
pub fn render_chart(
    tools: &InstallTools,
    namespace: &str,
    values: &serde_json::Value,
    include_crds: bool,
) -> Result<Vec<serde_json::Value>, crate::TestEnvError> {
    let file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .map_err(|e| crate::TestEnvError::io("creating a values file", e))?;
    std::fs::write(file.path(), values.to_string())
        .map_err(|e| crate::TestEnvError::io("writing a values file", e))?;
    let render = tools.helm_template(
        &repo_root().join(CHART),
        namespace,
        &[file.path().to_path_buf()],
        include_crds,
    )?;
    parse_documents(&render, "the chart's render")
}

/// The first of `objects` (a render) of `kind`.
pub fn of_kind<'a>(
    objects: &'a [serde_json::Value],
    kind: &str,
) -> Result<&'a serde_json::Value, crate::TestEnvError> {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .ok_or_else(|| crate::TestEnvError::Install(format!("the chart renders no {kind}")))
}
