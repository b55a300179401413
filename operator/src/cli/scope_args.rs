//! Which namespaces are served: shared by `run` and `diff --live`, so both
//! read the same objects.

use clap::Args;

use crate::index::watch::Namespaces;

#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// Serve only namespaces whose labels match this selector (e.g. `apisix=enabled`).
    #[arg(
        long,
        env = "APISIX_OPERATOR_NAMESPACE_SELECTOR",
        conflicts_with = "namespaces"
    )]
    pub namespace_selector: Option<String>,
    /// Namespaces to watch (repeat or comma-separate); all when empty.
    #[arg(
        long = "namespace",
        env = "APISIX_OPERATOR_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
}

impl ScopeArgs {
    pub fn namespaces(&self) -> Namespaces {
        Namespaces::from_args(self.namespace_selector.as_deref(), &self.namespaces)
    }

    /// An empty index for this scope (filtered by namespace with a selector).
    pub fn index(&self, config: crate::translate::TranslateConfig) -> crate::index::ClusterIndex {
        let index = crate::index::ClusterIndex::new(config);
        match self.namespaces() {
            Namespaces::Selector(_) => index.with_namespace_filter(),
            _ => index,
        }
    }
}
