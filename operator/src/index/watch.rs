//! Watches of the Kubernetes objects translation reads, feeding one channel
//! of changes to the index task. Every replica runs them (warm followers).

use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
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
}

/// Which namespaces to watch.
#[derive(Debug, Clone, Default)]
pub enum Namespaces {
    #[default]
    All,
    Only(Vec<String>),
    /// Namespaces whose labels match this selector (objects are watched in
    /// every namespace, and served only in matching ones).
    Selector(String),
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

/// Starts every watch; the returned tasks run until the receiver is dropped.
pub fn spawn_watches(
    client: &kube::Client,
    namespaces: &Namespaces,
    changes: mpsc::Sender<Change>,
) -> Vec<JoinHandle<()>> {
    let default = watcher::Config::default();
    // Only TLS Secrets are read (Ingress tls); a field selector keeps every
    // other Secret out of memory.
    let tls_secrets = watcher::Config::default().fields("type=kubernetes.io/tls");
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
            tls_secrets.clone(),
            ns,
            changes.clone(),
            KindEvent::Secret,
        ));
    }
    tasks
}

/// How many initial lists must complete before the caches count as synced.
pub fn expected_syncs(namespaces: &Namespaces) -> usize {
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
