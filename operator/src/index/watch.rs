//! The watches of every registered kind, feeding one channel of changes to
//! the index task. Every replica runs them (warm followers); `diff --live`
//! runs the same ones until they have listed once.
//!
//! Objects are decoded one by one ([`Guarded`]): an object that does not
//! decode reaches the index as a rejected object of its own, so it can never
//! fail the list of its kind.

use std::collections::BTreeSet;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::index::{Change, SourceEvent, WatchedObject};
use crate::model::decode::redact;
use crate::model::{Guarded, Kind, ObjectKey, SourceKind, WatchWhen};
use crate::registry::{self, KindVisitor};

/// What the watches send the index task.
#[derive(Debug)]
pub enum WatchMessage {
    Change(Change),
    /// A list or watch call failed (it is retried with backoff). `run`
    /// logs it; `diff --live` stops on it.
    Failed {
        kind: &'static str,
        error: String,
    },
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

    /// The namespace each watch of a namespaced kind covers (`None`: all).
    fn scopes(&self) -> Vec<Option<String>> {
        match self {
            Namespaces::All | Namespaces::Selector(_) => vec![None],
            Namespaces::Only(list) => list.iter().cloned().map(Some).collect(),
        }
    }

    fn selector(&self) -> Option<&str> {
        match self {
            Namespaces::Selector(selector) => Some(selector),
            _ => None,
        }
    }
}

/// The watches that were started.
pub struct Watches {
    /// Each watch task, named for supervision ("the Service watch").
    pub tasks: Vec<(String, JoinHandle<()>)>,
    /// How many watches must finish their first list before the caches
    /// count as synced.
    pub expected_syncs: usize,
    /// Kinds not watched because their CRD is not installed (ignored until
    /// the operator restarts).
    pub not_installed: Vec<&'static str>,
}

impl Watches {
    pub fn abort(&self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

/// The API groups, versions and kinds the API server serves, of those the
/// registry may need (`WhenServed` kinds and what `WhenServedWith` names).
async fn served_kinds(client: &kube::Client) -> BTreeSet<(String, String, String)> {
    let mut wanted = BTreeSet::new();
    for kind in registry::KINDS {
        match kind.watch() {
            WatchWhen::WhenServed => {
                let api = kind.api_resource();
                wanted.insert((api.group, api.version, api.kind));
            }
            WatchWhen::WhenServedWith {
                group,
                version,
                kind,
            }
            | WatchWhen::WithNamespaceSelectorOrWhenServed {
                group,
                version,
                kind,
            } => {
                wanted.insert((group.into(), version.into(), kind.into()));
            }
            WatchWhen::Always => {}
        }
    }
    let mut served = BTreeSet::new();
    for (group, version, kind) in wanted {
        let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &kind);
        if kube::discovery::pinned_kind(client, &gvk).await.is_ok() {
            served.insert((group, version, kind));
        }
    }
    served
}

/// Starts a watch of every registered kind that applies: the built-in
/// kinds, and each custom resource kind whose CRD is installed.
pub async fn spawn_watches(
    client: &kube::Client,
    namespaces: &Namespaces,
    changes: mpsc::Sender<WatchMessage>,
) -> Watches {
    let served = served_kinds(client).await;
    let mut spawner = Spawner {
        client,
        namespaces,
        served: &served,
        changes,
        watches: Watches {
            tasks: Vec::new(),
            expected_syncs: 0,
            not_installed: Vec::new(),
        },
    };
    registry::visit(&mut spawner);
    for kind in &spawner.watches.not_installed {
        tracing::warn!(
            kind,
            "CRD not installed: this kind is ignored until the operator restarts"
        );
    }
    spawner.watches
}

struct Spawner<'a> {
    client: &'a kube::Client,
    namespaces: &'a Namespaces,
    served: &'a BTreeSet<(String, String, String)>,
    changes: mpsc::Sender<WatchMessage>,
    watches: Watches,
}

impl Spawner<'_> {
    fn is_served(&self, group: &str, version: &str, kind: &str) -> bool {
        self.served
            .contains(&(group.to_string(), version.to_string(), kind.to_string()))
    }

    /// The watch configuration of `kind`, or `None` when it is not watched.
    fn config_for(&mut self, kind: &'static dyn Kind) -> Option<watcher::Config> {
        let config = watcher::Config::default();
        match kind.watch() {
            WatchWhen::Always => Some(config),
            WatchWhen::WhenServed => {
                let api = kind.api_resource();
                let served = self.is_served(&api.group, &api.version, &api.kind);
                if !served {
                    self.watches.not_installed.push(kind.name());
                }
                served.then_some(config)
            }
            WatchWhen::WhenServedWith {
                group,
                version,
                kind: other,
            } => self.is_served(group, version, other).then_some(config),
            WatchWhen::WithNamespaceSelectorOrWhenServed {
                group,
                version,
                kind: other,
            } => match self.namespaces.selector() {
                Some(selector) => Some(config.labels(selector)),
                None => self.is_served(group, version, other).then_some(config),
            },
        }
    }
}

impl KindVisitor for Spawner<'_> {
    fn visit<K: SourceKind>(&mut self, kind: &'static dyn Kind) {
        let Some(config) = self.config_for(kind) else {
            return;
        };
        let scopes = if K::NAMESPACED {
            self.namespaces.scopes()
        } else {
            vec![None]
        };
        for scope in scopes {
            let api: Api<Guarded<K::Object>> = match &scope {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &()),
                None => Api::all_with(self.client.clone(), &()),
            };
            let name = match &scope {
                Some(ns) => format!("the {} watch of namespace {ns}", kind.name()),
                None => format!("the {} watch", kind.name()),
            };
            let task = watch_kind::<K>(api, config.clone(), kind, scope, self.changes.clone());
            self.watches.tasks.push((name, tokio::spawn(task)));
            self.watches.expected_syncs += 1;
        }
    }
}

/// How a failing watch retries: from 250 ms, doubling with jitter, to at
/// most 5 s, back to 250 ms after a minute without errors. kube's default
/// (800 ms to 30 s, client-go's) leaves a replica blind for up to 30 s
/// after an API server restart; with three replicas' watches this is still
/// gentle on a struggling API server (a few requests per second at most).
fn retry_backoff() -> impl kube::runtime::utils::Backoff {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(250))
        .with_max_delay(std::time::Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    kube::runtime::utils::ResetTimerBackoff::new(
        watcher::ExponentialBackoff::from(exponential),
        std::time::Duration::from_secs(60),
    )
}

/// One watch: kube's watcher (list, then watch; re-list after a gap), every
/// event turned into a [`Change`] of `kind`.
async fn watch_kind<K: SourceKind>(
    api: Api<Guarded<K::Object>>,
    config: watcher::Config,
    kind: &'static dyn Kind,
    scope: Option<String>,
    changes: mpsc::Sender<WatchMessage>,
) {
    let mut stream = watcher(api, config).backoff(retry_backoff()).boxed();
    while let Some(event) = stream.next().await {
        let message = match event {
            Ok(event) => match change_of::<K>(kind, &scope, event) {
                Some(change) => WatchMessage::Change(change),
                None => continue,
            },
            // serde's messages can quote object contents: redact them.
            Err(err) => WatchMessage::Failed {
                kind: kind.name(),
                error: redact(&err.to_string()),
            },
        };
        if changes.send(message).await.is_err() {
            return;
        }
    }
}

fn change_of<K: SourceKind>(
    kind: &'static dyn Kind,
    scope: &Option<String>,
    event: watcher::Event<Guarded<K::Object>>,
) -> Option<Change> {
    let event = match event {
        watcher::Event::Apply(object) => SourceEvent::Apply(watched::<K>(kind, object)?),
        watcher::Event::InitApply(object) => SourceEvent::InitApply(watched::<K>(kind, object)?),
        watcher::Event::Delete(object) => {
            SourceEvent::Delete(ObjectKey::of_meta(object.meta(), K::NAMESPACED))
        }
        watcher::Event::Init => SourceEvent::Init,
        watcher::Event::InitDone => SourceEvent::InitDone,
    };
    Some(Change {
        kind,
        scope: scope.clone(),
        event,
    })
}

/// A decoded object, stripped of what translation never reads; or the
/// reason it does not decode. `None` for an object without a name (its
/// metadata did not decode either: nothing can be reported on it).
fn watched<K: SourceKind>(
    kind: &'static dyn Kind,
    object: Guarded<K::Object>,
) -> Option<WatchedObject> {
    let key = ObjectKey::of_meta(object.meta(), K::NAMESPACED);
    if key.name.is_empty() {
        tracing::warn!(
            kind = kind.name(),
            "an object without readable metadata was skipped"
        );
        return None;
    }
    let object = match object {
        Guarded::Valid(mut object) => {
            strip(&mut object);
            Ok(Box::new(object) as crate::model::AnyObject)
        }
        Guarded::Invalid(invalid) => {
            if kind.unit().is_none() {
                // Units report it through their failed translation.
                tracing::warn!(kind = kind.name(), object = %key, error = %invalid.error, "object does not decode; its last good version stays in use");
            }
            Err(invalid)
        }
    };
    Some(WatchedObject { key, object })
}

fn strip<K: Resource>(object: &mut K) {
    // managedFields and the last-applied copy are close to half of an
    // object's metadata and translation reads neither.
    object.meta_mut().managed_fields = None;
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// `namespace/name` of an object.
pub fn key_of<K: Resource>(object: &K) -> ObjectKey {
    ObjectKey::new(
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
