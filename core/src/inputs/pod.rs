//! Pods, for backend subsets: only their labels are read (never specs), and
//! a change touches translation only when the labels change.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::Resource;
use serde::{Deserialize, Serialize};

use crate::api::GROUP;
use crate::model::{ObjectKey, SourceKind, Store, Touched, WatchWhen};

pub struct PodKind;

impl SourceKind for PodKind {
    type Object = PodSummary;
    type Store = Pods;
    const KIND: &'static str = "Pod";
    const NAMESPACED: bool = true;
    // Subsets are defined by ApisixUpstreams: without that CRD nothing
    // reads Pods.
    const WATCH: WatchWhen = WatchWhen::WhenServedWith {
        group: GROUP,
        version: "v2",
        kind: "ApisixUpstream",
    };
}

/// What the operator reads of a Pod: its metadata. The rest of the object
/// is skipped while decoding, and managed fields are dropped by the watch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PodSummary {
    #[serde(default)]
    pub metadata: ObjectMeta,
}

impl Resource for PodSummary {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Pod labels by Pod.
#[derive(Debug, Clone, Default)]
pub struct Pods {
    pods: BTreeMap<ObjectKey, Arc<PodSummary>>,
}

impl Pods {
    pub fn labels(&self, key: &ObjectKey) -> Option<&BTreeMap<String, String>> {
        self.pods.get(key)?.metadata.labels.as_ref()
    }
}

impl Store for Pods {
    type Object = PodSummary;

    fn apply(&mut self, key: ObjectKey, pod: PodSummary) -> Touched {
        let labels_changed = self
            .pods
            .get(&key)
            .is_none_or(|old| old.metadata.labels != pod.metadata.labels);
        self.pods.insert(key, Arc::new(pod));
        if labels_changed {
            Touched::Itself
        } else {
            Touched::Nothing
        }
    }

    fn delete(&mut self, key: &ObjectKey) -> Touched {
        match self.pods.remove(key) {
            Some(_) => Touched::Itself,
            None => Touched::Nothing,
        }
    }

    fn get(&self, key: &ObjectKey) -> Option<&PodSummary> {
        self.pods.get(key).map(Arc::as_ref)
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.pods.keys().cloned().collect()
    }
}
