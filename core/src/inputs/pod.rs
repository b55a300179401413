//! Pods, for backend subsets: only their labels and IPs are read (never
//! specs; the rest of a Pod is skipped while decoding), and a change touches
//! translation only when those change. An endpoint is matched to its Pod by
//! its `targetRef`, else by the Pod whose IP is the endpoint's address
//! (slices written by other controllers, or mirrored from hand-made
//! Endpoints, often carry no `targetRef`).

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

/// What the operator reads of a Pod: its metadata and IPs. The rest of the
/// object is skipped while decoding, and managed fields are dropped by the
/// watch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PodSummary {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodAddresses>,
}

/// `status.podIP` and `status.podIPs` of a Pod.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAddresses {
    #[serde(default, rename = "podIP", skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    #[serde(default, rename = "podIPs", skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<PodIp>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PodIp {
    pub ip: String,
}

impl PodSummary {
    /// Every IP of the Pod.
    pub fn ips(&self) -> Vec<&str> {
        let Some(status) = &self.status else {
            return Vec::new();
        };
        let mut ips: Vec<&str> = status.pod_ips.iter().map(|p| p.ip.as_str()).collect();
        if let Some(ip) = status.pod_ip.as_deref()
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
        ips
    }
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

/// Pods by key, and by (namespace, IP).
#[derive(Debug, Clone, Default)]
pub struct Pods {
    pods: BTreeMap<ObjectKey, Arc<PodSummary>>,
    by_ip: BTreeMap<(String, String), ObjectKey>,
}

impl Pods {
    pub fn labels(&self, key: &ObjectKey) -> Option<&BTreeMap<String, String>> {
        self.pods.get(key)?.metadata.labels.as_ref()
    }

    /// The labels of the Pod of `namespace` whose IP is `ip`.
    pub fn labels_by_ip(&self, namespace: &str, ip: &str) -> Option<&BTreeMap<String, String>> {
        let key = self.by_ip.get(&(namespace.to_string(), ip.to_string()))?;
        self.labels(key)
    }

    fn unindex(&mut self, key: &ObjectKey) -> Option<Arc<PodSummary>> {
        let old = self.pods.remove(key)?;
        for ip in old.ips() {
            let entry = (key.namespace.clone(), ip.to_string());
            if self.by_ip.get(&entry) == Some(key) {
                self.by_ip.remove(&entry);
            }
        }
        Some(old)
    }
}

impl Store for Pods {
    type Object = PodSummary;

    fn apply(&mut self, key: ObjectKey, pod: PodSummary) -> Touched {
        let old = self.unindex(&key);
        let changed = old
            .is_none_or(|old| old.metadata.labels != pod.metadata.labels || old.ips() != pod.ips());
        for ip in pod.ips() {
            self.by_ip
                .insert((key.namespace.clone(), ip.to_string()), key.clone());
        }
        self.pods.insert(key, Arc::new(pod));
        if changed {
            Touched::Itself
        } else {
            Touched::Nothing
        }
    }

    fn delete(&mut self, key: &ObjectKey) -> Touched {
        match self.unindex(key) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: Option<&str>, version: &str) -> PodSummary {
        serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": name, "labels": {"version": version}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"podIP": ip, "podIPs": ip.map(|ip| vec![json!({"ip": ip})]).unwrap_or_default()},
        }))
        .unwrap()
    }

    #[test]
    fn pods_are_found_by_ip_and_an_ip_change_touches_translation() {
        let mut pods = Pods::default();
        let key = ObjectKey::new("ns", "a");
        assert_eq!(
            pods.apply(key.clone(), pod("a", None, "v1")),
            Touched::Itself
        );
        assert_eq!(pods.labels_by_ip("ns", "10.0.0.1"), None);
        // The kubelet sets the IP: a change translation sees.
        assert_eq!(
            pods.apply(key.clone(), pod("a", Some("10.0.0.1"), "v1")),
            Touched::Itself
        );
        assert_eq!(
            pods.labels_by_ip("ns", "10.0.0.1").unwrap()["version"],
            "v1"
        );
        assert_eq!(pods.labels_by_ip("other", "10.0.0.1"), None);
        // Nothing translation reads changed.
        assert_eq!(
            pods.apply(key.clone(), pod("a", Some("10.0.0.1"), "v1")),
            Touched::Nothing
        );
        assert_eq!(
            pods.apply(key.clone(), pod("a", Some("10.0.0.2"), "v1")),
            Touched::Itself
        );
        assert_eq!(pods.labels_by_ip("ns", "10.0.0.1"), None);
        assert_eq!(pods.delete(&key), Touched::Itself);
        assert_eq!(pods.labels_by_ip("ns", "10.0.0.2"), None);
    }
}
