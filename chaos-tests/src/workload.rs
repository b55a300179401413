//! The seeded workload of a chaos run (pure: a seed in, a reproducible
//! sequence of Kubernetes changes out). It keeps creating, updating and
//! deleting Ingresses, ApisixRoutes, ApisixUpstreams, Services,
//! EndpointSlices and Secrets, and it never gives an APISIX key a value the
//! key held before: every change carries its round number, and deleted
//! objects are never created again under the same name. That is what lets
//! the history checker call any returning value a regression.
//!
//! Two sets of objects:
//! - **lanes** (`svc-<i>`, its EndpointSlice, `route-<i>`, the ApisixUpstream
//!   `svc-<i>`, the Secret `cert-<i>` and ApisixTls `tls-<i>`): never
//!   deleted, so their keys are desired throughout (the "stable" keys);
//! - **churn units** (`ing-<round>`: a Service, its EndpointSlice and an
//!   Ingress): created, updated and deleted.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

/// The lanes of every run.
pub const LANES: usize = 8;
/// Churn units alive at most at once.
const MAX_CHURN: usize = 6;

/// One step: objects to apply (server-side, in order), then to delete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub apply: Vec<Value>,
    pub delete: Vec<Value>,
}

/// What a step changed, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    RoutePath,
    EndpointScale,
    UpstreamTimeout,
    SecretRotation,
    IngressCreate,
    IngressUpdate,
    IngressDelete,
}

/// The workload's state: every object as last applied.
pub struct Workload {
    namespace: String,
    rng: StdRng,
    round: u64,
    objects: BTreeMap<String, Value>,
    /// Names of the churn units alive, oldest first.
    churn: Vec<String>,
}

impl Workload {
    pub fn new(namespace: &str, seed: u64) -> Workload {
        Workload {
            namespace: namespace.to_string(),
            rng: StdRng::seed_from_u64(seed),
            round: 0,
            objects: BTreeMap::new(),
            churn: Vec::new(),
        }
    }

    /// The lanes' objects at round 0 (dependencies before dependants).
    pub fn initial(&mut self) -> Vec<Value> {
        let mut objects = Vec::new();
        for lane in 0..LANES {
            objects.push(self.service(&format!("svc-{lane}")));
            objects.push(self.endpoints(&format!("svc-{lane}"), lane, 0, 1));
            objects.push(self.upstream(lane, 0));
            objects.push(self.secret(lane, 0));
            objects.push(self.tls(lane));
            objects.push(self.route(lane, 0));
        }
        for object in &objects {
            self.objects.insert(key_of(object), object.clone());
        }
        objects
    }

    pub fn round(&self) -> u64 {
        self.round
    }

    /// Every object now, as last applied.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.objects.values()
    }

    /// The objects that are never deleted (their keys stay desired).
    pub fn lane_objects(&self) -> impl Iterator<Item = &Value> {
        self.objects
            .iter()
            .filter(|(key, _)| !self.churn.iter().any(|unit| is_of_unit(key, unit)))
            .map(|(_, object)| object)
    }

    /// The next seeded change, already counted as applied.
    pub fn next_change(&mut self) -> (ChangeKind, Change) {
        self.round += 1;
        let lane = self.rng.random_range(0..LANES);
        let (kind, change) = match self.rng.random_range(0..100) {
            0..35 => (
                ChangeKind::RoutePath,
                Change::applying(self.route(lane, self.round)),
            ),
            35..55 => {
                let endpoints = self.rng.random_range(1..=3);
                let name = format!("svc-{lane}");
                let slice = self.endpoints(&name, lane, self.round, endpoints);
                (ChangeKind::EndpointScale, Change::applying(slice))
            }
            55..65 => (
                ChangeKind::UpstreamTimeout,
                Change::applying(self.upstream(lane, self.round)),
            ),
            65..75 => (
                ChangeKind::SecretRotation,
                Change::applying(self.secret(lane, self.round)),
            ),
            _ => self.churn_step(lane),
        };
        self.record(&change);
        (kind, change)
    }

    /// Route changes only, `count` of them, spread over the lanes.
    pub fn route_burst(&mut self, count: usize) -> Vec<Value> {
        let routes: Vec<Value> = (0..count)
            .map(|_| {
                self.round += 1;
                self.route(self.round as usize % LANES, self.round)
            })
            .collect();
        for route in &routes {
            self.objects.insert(key_of(route), route.clone());
        }
        routes
    }

    fn record(&mut self, change: &Change) {
        for object in &change.apply {
            self.objects.insert(key_of(object), object.clone());
        }
        for object in &change.delete {
            self.objects.remove(&key_of(object));
        }
    }

    fn churn_step(&mut self, lane: usize) -> (ChangeKind, Change) {
        let create =
            self.churn.is_empty() || (self.churn.len() < MAX_CHURN && self.rng.random_bool(0.5));
        if create {
            let unit = format!("ing-{}", self.round);
            self.churn.push(unit.clone());
            let change = Change {
                apply: vec![
                    self.service(&unit),
                    self.endpoints(&unit, lane, self.round, 2),
                    self.ingress(&unit, self.round),
                ],
                delete: Vec::new(),
            };
            return (ChangeKind::IngressCreate, change);
        }
        let at = self.rng.random_range(0..self.churn.len());
        if self.rng.random_bool(0.5) {
            let unit = self.churn[at].clone();
            return (
                ChangeKind::IngressUpdate,
                Change::applying(self.ingress(&unit, self.round)),
            );
        }
        let unit = self.churn.remove(at);
        let delete = ["Ingress", "EndpointSlice", "Service"]
            .iter()
            .filter_map(|kind| {
                self.objects
                    .get(&format!("{kind}/{}", slice_or(kind, &unit)))
            })
            .cloned()
            .collect();
        (
            ChangeKind::IngressDelete,
            Change {
                apply: Vec::new(),
                delete,
            },
        )
    }

    /// A lane's host, of this namespace only (runs in other namespaces
    /// may serve the same lanes with certificates of their own).
    fn host(&self, lane: usize) -> String {
        format!("r{lane}.{}.example", self.namespace)
    }

    fn meta(&self, name: &str) -> Value {
        json!({"namespace": self.namespace, "name": name})
    }

    fn service(&self, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": self.meta(name),
               "spec": {"ports": [{"name": "http", "port": 80}]}})
    }

    /// `count` ready endpoints whose first address encodes `round`, so the
    /// node list never repeats.
    fn endpoints(&self, service: &str, lane: usize, round: u64, count: usize) -> Value {
        let addresses: Vec<Value> = (0..count)
            .map(|j| {
                let address = format!(
                    "10.{}.{}.{}",
                    100 + lane * 4 + j,
                    (round / 250) % 250,
                    round % 250 + 1
                );
                json!({"addresses": [address], "conditions": {"ready": true}})
            })
            .collect();
        let mut metadata = self.meta(&format!("{service}-a"));
        metadata["labels"] = json!({"kubernetes.io/service-name": service});
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": metadata, "addressType": "IPv4",
               "ports": [{"name": "http", "port": 8080}], "endpoints": addresses})
    }

    fn route(&self, lane: usize, round: u64) -> Value {
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
               "metadata": self.meta(&format!("route-{lane}")),
               "spec": {"ingressClassName": "apisix", "http": [{"name": "main",
                        "match": {"hosts": [self.host(lane)],
                                  "paths": [format!("/r{lane}/round-{round}/*")]},
                        "backends": [{"serviceName": format!("svc-{lane}"), "servicePort": 80}]}]}})
    }

    fn upstream(&self, lane: usize, round: u64) -> Value {
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixUpstream",
               "metadata": self.meta(&format!("svc-{lane}")),
               "spec": {"ingressClassName": "apisix",
                        "timeout": {"read": format!("{}s", round + 1)}}})
    }

    /// A new self-signed certificate for the lane's host at every round.
    fn secret(&self, lane: usize, round: u64) -> Value {
        let issued = rcgen::generate_simple_self_signed(vec![self.host(lane)])
            .expect("rcgen signs a certificate for a valid DNS name");
        let secret = Secret {
            type_: Some("kubernetes.io/tls".into()),
            data: Some(
                [
                    ("tls.crt", issued.cert.pem()),
                    ("tls.key", issued.signing_key.serialize_pem()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
                .collect(),
            ),
            ..Secret::default()
        };
        let mut value = serde_json::to_value(secret).expect("a Secret serializes");
        value["apiVersion"] = json!("v1");
        value["kind"] = json!("Secret");
        value["metadata"] = self.meta(&format!("cert-{lane}"));
        value["metadata"]["annotations"] = json!({"chaos.round": round.to_string()});
        value
    }

    fn tls(&self, lane: usize) -> Value {
        json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixTls",
               "metadata": self.meta(&format!("tls-{lane}")),
               "spec": {"ingressClassName": "apisix", "hosts": [self.host(lane)],
                        "secret": {"name": format!("cert-{lane}"), "namespace": self.namespace}}})
    }

    /// An Ingress of the legacy class annotation (no IngressClass needed).
    fn ingress(&self, unit: &str, round: u64) -> Value {
        let mut metadata = self.meta(unit);
        metadata["annotations"] = json!({"kubernetes.io/ingress.class": "apisix"});
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata,
               "spec": {"rules": [{"host": format!("{unit}.chaos.example"), "http": {"paths": [{
                   "path": format!("/{unit}/round-{round}"), "pathType": "Prefix",
                   "backend": {"service": {"name": unit, "port": {"number": 80}}}}]}}]}})
    }
}

impl Change {
    fn applying(object: Value) -> Change {
        Change {
            apply: vec![object],
            delete: Vec::new(),
        }
    }
}

/// A churn unit's object name of `kind` (its EndpointSlice is `<unit>-a`).
fn slice_or(kind: &str, unit: &str) -> String {
    if kind == "EndpointSlice" {
        format!("{unit}-a")
    } else {
        unit.to_string()
    }
}

fn is_of_unit(key: &str, unit: &str) -> bool {
    let name = key.split_once('/').map_or(key, |(_, name)| name);
    name == unit || name == format!("{unit}-a")
}

/// `Kind/name`: the workload's objects live in one namespace.
pub fn key_of(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn run(seed: u64, steps: usize) -> Vec<(ChangeKind, Change)> {
        let mut workload = Workload::new("ns", seed);
        workload.initial();
        (0..steps).map(|_| workload.next_change()).collect()
    }

    /// Secrets are random by nature: compare everything but their data.
    fn shape(changes: &[(ChangeKind, Change)]) -> Vec<(ChangeKind, Vec<String>, Vec<String>)> {
        changes
            .iter()
            .map(|(kind, change)| {
                let names = |objects: &[Value]| objects.iter().map(key_of).collect();
                (*kind, names(&change.apply), names(&change.delete))
            })
            .collect()
    }

    #[test]
    fn a_seed_reproduces_its_run_and_another_seed_differs() {
        assert_eq!(shape(&run(7, 300)), shape(&run(7, 300)));
        assert_ne!(shape(&run(7, 300)), shape(&run(8, 300)));
    }

    #[test]
    fn every_kind_of_change_happens() {
        let kinds: BTreeSet<ChangeKind> = run(1, 400).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
    }

    #[test]
    fn no_object_is_ever_applied_twice_with_the_same_content() {
        let mut workload = Workload::new("ns", 3);
        let mut seen: BTreeSet<String> = workload.initial().iter().map(Value::to_string).collect();
        for _ in 0..2_000 {
            for object in workload.next_change().1.apply {
                assert!(seen.insert(object.to_string()), "repeated: {object}");
            }
        }
    }

    #[test]
    fn a_deleted_name_is_never_created_again_and_lanes_are_never_deleted() {
        let mut workload = Workload::new("ns", 5);
        let lanes: BTreeSet<String> = workload.initial().iter().map(key_of).collect();
        let mut deleted = BTreeSet::new();
        for _ in 0..2_000 {
            let (_, change) = workload.next_change();
            for object in &change.apply {
                assert!(
                    !deleted.contains(&key_of(object)),
                    "{} came back",
                    key_of(object)
                );
            }
            for object in &change.delete {
                assert!(!lanes.contains(&key_of(object)));
                deleted.insert(key_of(object));
            }
        }
        assert!(!deleted.is_empty());
        let now: BTreeSet<String> = workload.lane_objects().map(key_of).collect();
        assert_eq!(now, lanes);
    }

    #[test]
    fn a_burst_changes_routes_only_each_lane_in_round_order() {
        let mut workload = Workload::new("ns", 9);
        workload.initial();
        let burst = workload.route_burst(40);
        assert!(burst.iter().all(|o| o["kind"] == "ApisixRoute"));
        assert_eq!(workload.round(), 40);
        let last = workload
            .objects()
            .find(|o| key_of(o) == "ApisixRoute/route-0")
            .unwrap();
        assert_eq!(
            last["spec"]["http"][0]["match"]["paths"][0],
            "/r0/round-40/*"
        );
    }
}
