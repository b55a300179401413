//! Watches of the Kubernetes objects translation reads, feeding one channel
//! of changes to the index task. Every replica runs them (warm followers).

use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use crate::api::{
    ApisixClusterConfig, ApisixConsumer, ApisixGlobalRule, ApisixPluginConfig, ApisixTls,
};
use crate::api::{ApisixRoute, ApisixUpstream};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One watch event, with the namespace its watch covers (`None`: all, or
/// cluster-scoped), so a re-list can tell which objects it replaces.
#[derive(Debug)]
pub struct Change {
    pub scope: Option<String>,
    pub event: KindEvent,
}

/// A watch event of one of the watched kinds. Variants differ in size (a
/// Service is larger than an IngressClass); each event crosses the channel
/// once, so boxing would only add an allocation per event.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum KindEvent {
    Ingress(watcher::Event<Ingress>),
    IngressClass(watcher::Event<IngressClass>),
    Service(watcher::Event<Service>),
    EndpointSlice(watcher::Event<EndpointSlice>),
    Secret(watcher::Event<Secret>),
    /// Namespaces matching the namespace label selector.
    Namespace(watcher::Event<Namespace>),
    /// Pod metadata (labels, for backend subsets); never whole Pods.
    Pod(watcher::Event<PartialObjectMeta<Pod>>),
    ApisixRoute(watcher::Event<ApisixRoute>),
    ApisixUpstream(watcher::Event<ApisixUpstream>),
    ApisixTls(watcher::Event<ApisixTls>),
    ApisixPluginConfig(watcher::Event<ApisixPluginConfig>),
    ApisixGlobalRule(watcher::Event<ApisixGlobalRule>),
    ApisixClusterConfig(watcher::Event<ApisixClusterConfig>),
    ApisixConsumer(watcher::Event<ApisixConsumer>),
}

/// Which namespaces to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespaces {
    #[default]
    All,
    Only(Vec<String>),
    /// Namespaces whose labels match this selector (objects are watched in
    /// every namespace, and served only in matching ones).
    Selector(String),
}

impl Namespaces {
    /// The scope chosen by `--namespace-selector` and `--namespace`. Empty
    /// names are dropped: OLM's AllNamespaces mode hands an empty
    /// `olm.targetNamespaces` annotation to APISIX_OPERATOR_NAMESPACES,
    /// which means every namespace.
    pub fn from_args(selector: Option<&str>, names: &[String]) -> Self {
        let names: Vec<String> = names
            .iter()
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect();
        match (selector, names.is_empty()) {
            (Some(selector), _) => Namespaces::Selector(selector.to_string()),
            (None, true) => Namespaces::All,
            (None, false) => Namespaces::Only(names),
        }
    }
}

fn strip<K: Resource>(object: &mut K) {
    // managedFields and the last-applied copy are close to half of an
    // object's metadata and translation reads neither.
    object.meta_mut().managed_fields = None;
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    scope: Option<&str>,
    changes: mpsc::Sender<Change>,
    wrap: fn(watcher::Event<K>) -> KindEvent,
) -> JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    let scope = scope.map(str::to_string);
    tokio::spawn(async move {
        let mut stream = watcher(api, config)
            .default_backoff()
            .modify(strip::<K>)
            .boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    let change = Change {
                        scope: scope.clone(),
                        event: wrap(event),
                    };
                    if changes.send(change).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(kind = K::kind(&Default::default()).as_ref(), error = %err, "watch error; retrying")
                }
            }
        }
    })
}

fn namespaced<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Whether the API server serves `K` (its CRD is installed).
async fn served<K>(client: &kube::Client) -> bool
where
    K: Resource<DynamicType = ()>,
{
    let gvk = kube::api::GroupVersionKind::gvk(&K::group(&()), &K::version(&()), &K::kind(&()));
    kube::discovery::pinned_kind(client, &gvk).await.is_ok()
}

/// Starts every watch: the built-in kinds, and each APISIX CRD kind that is
/// installed (a missing CRD is logged and skipped, so it cannot hold
/// readiness back). Returns the tasks and how many watches must finish
/// their first list before the caches count as synced.
pub async fn spawn_watches(
    client: &kube::Client,
    namespaces: &Namespaces,
    changes: mpsc::Sender<Change>,
) -> (Vec<JoinHandle<()>>, usize) {
    let mut tasks = spawn_builtin_watches(client, namespaces, changes.clone());
    let scopes: Vec<Option<&str>> = match namespaces {
        Namespaces::All | Namespaces::Selector(_) => vec![None],
        Namespaces::Only(list) => list.iter().map(|ns| Some(ns.as_str())).collect(),
    };
    let default = watcher::Config::default();
    let mut crd_watches = 0;
    macro_rules! watch_crd {
        ($kind:ty, $variant:path) => {
            if served::<$kind>(client).await {
                for ns in &scopes {
                    tasks.push(spawn_watch(
                        namespaced::<$kind>(client, *ns),
                        default.clone(),
                        *ns,
                        changes.clone(),
                        $variant,
                    ));
                    crd_watches += 1;
                }
            } else {
                tracing::warn!(
                    kind = <$kind>::kind(&()).as_ref(),
                    "CRD not installed: this kind is ignored until the operator restarts"
                );
            }
        };
    }
    watch_crd!(ApisixRoute, KindEvent::ApisixRoute);
    if served::<ApisixUpstream>(client).await {
        // Subsets select Pods by label: watch Pod metadata only.
        for ns in &scopes {
            tasks.push(spawn_watch(
                namespaced::<PartialObjectMeta<Pod>>(client, *ns),
                default.clone(),
                *ns,
                changes.clone(),
                KindEvent::Pod,
            ));
            crd_watches += 1;
        }
    }
    watch_crd!(ApisixUpstream, KindEvent::ApisixUpstream);
    watch_crd!(ApisixTls, KindEvent::ApisixTls);
    watch_crd!(ApisixPluginConfig, KindEvent::ApisixPluginConfig);
    watch_crd!(ApisixGlobalRule, KindEvent::ApisixGlobalRule);
    watch_crd!(ApisixConsumer, KindEvent::ApisixConsumer);
    if served::<ApisixClusterConfig>(client).await {
        tasks.push(spawn_watch(
            Api::<ApisixClusterConfig>::all(client.clone()),
            default.clone(),
            None,
            changes.clone(),
            KindEvent::ApisixClusterConfig,
        ));
        crd_watches += 1;
    } else {
        tracing::warn!(
            kind = "ApisixClusterConfig",
            "CRD not installed: this kind is ignored until the operator restarts"
        );
    }
    (tasks, expected_syncs(namespaces) + crd_watches)
}

/// The watches of the built-in kinds.
fn spawn_builtin_watches(
    client: &kube::Client,
    namespaces: &Namespaces,
    changes: mpsc::Sender<Change>,
) -> Vec<JoinHandle<()>> {
    let default = watcher::Config::default();
    // Every type of Secret can be referenced (TLS, consumer credentials,
    // plugin secretRef), so all are watched; their data is what is read.
    let secrets = watcher::Config::default();
    let mut tasks = vec![spawn_watch(
        Api::<IngressClass>::all(client.clone()),
        default.clone(),
        None,
        changes.clone(),
        KindEvent::IngressClass,
    )];
    let scopes: Vec<Option<&str>> = match namespaces {
        Namespaces::All | Namespaces::Selector(_) => vec![None],
        Namespaces::Only(list) => list.iter().map(|ns| Some(ns.as_str())).collect(),
    };
    if let Namespaces::Selector(selector) = namespaces {
        tasks.push(spawn_watch(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default().labels(selector),
            None,
            changes.clone(),
            KindEvent::Namespace,
        ));
    }
    for ns in scopes {
        tasks.push(spawn_watch(
            namespaced::<Ingress>(client, ns),
            default.clone(),
            ns,
            changes.clone(),
            KindEvent::Ingress,
        ));
        tasks.push(spawn_watch(
            namespaced::<Service>(client, ns),
            default.clone(),
            ns,
            changes.clone(),
            KindEvent::Service,
        ));
        tasks.push(spawn_watch(
            namespaced::<EndpointSlice>(client, ns),
            default.clone(),
            ns,
            changes.clone(),
            KindEvent::EndpointSlice,
        ));
        tasks.push(spawn_watch(
            namespaced::<Secret>(client, ns),
            secrets.clone(),
            ns,
            changes.clone(),
            KindEvent::Secret,
        ));
    }
    tasks
}

/// How many initial lists of the built-in kinds must complete.
fn expected_syncs(namespaces: &Namespaces) -> usize {
    let per_scope = 4;
    match namespaces {
        Namespaces::All => 1 + per_scope,
        Namespaces::Only(list) => 1 + per_scope * list.len(),
        // Plus the Namespace watch.
        Namespaces::Selector(_) => 2 + per_scope,
    }
}

/// `namespace/name` of an object.
pub fn key_of<K: Resource>(object: &K) -> super::ObjectKey {
    super::ObjectKey::new(
        &object.namespace().unwrap_or_else(|| "default".to_string()),
        &object.name_any(),
    )
}

#[cfg(test)]
mod tests {
    use super::Namespaces;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_scope_follows_the_flags() {
        assert_eq!(Namespaces::from_args(None, &[]), Namespaces::All);
        // OLM AllNamespaces: an empty targetNamespaces annotation.
        assert_eq!(Namespaces::from_args(None, &names(&[""])), Namespaces::All);
        assert_eq!(
            Namespaces::from_args(None, &names(&["shop", " ", "web "])),
            Namespaces::Only(names(&["shop", "web"]))
        );
        assert_eq!(
            Namespaces::from_args(Some("team=a"), &names(&["shop"])),
            Namespaces::Selector("team=a".into())
        );
    }
}
