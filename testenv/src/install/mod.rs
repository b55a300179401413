//! The install artifacts under `deploy/`: the tools that check them (helm,
//! kustomize, the OLM bundle validator, all built by `testenv/provision.sh`)
//! and the generator that keeps the derived files equal to the Helm chart,
//! the single source of the Deployment, its RBAC and its Services:
//!
//! - `deploy/manifests/*.yaml` (the kustomize base) = the chart rendered with
//!   default values, one file per template;
//! - the CRDs in the chart, the kustomize base and the bundle = `crds/`;
//! - the OLM bundle's ClusterServiceVersion: install strategy, permissions,
//!   owned CRDs, `alm-examples` and icon filled in from the chart render,
//!   `crds/`, `examples/` and `deploy/olm/icon.svg`; the rest of it
//!   (descriptions, links, install modes...) is edited by hand in place.
//!
//! `apisix-operator-testenv render-deploy` writes them; the install tests
//! fail when they are stale.

mod bundle;
mod generate;
mod tools;
mod yaml;

pub use generate::{GeneratedFile, generated_files, stale_files, write_files};
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
