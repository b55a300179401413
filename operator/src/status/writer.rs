//! The leader-only status writer: Warning Events for failed units, CR
//! conditions, the Gateway API statuses and the Ingress load-balancer
//! status.
//!
//! It follows the status view, the desired state and the etcd mirror, and
//! each time one moves it looks only at the units whose inputs changed (a
//! diff of the persistent view, of the desired state, and the mirror's
//! journal), never at every object: a change costs its own units, whatever
//! the size of the cluster. Writes are server-side applies with our own
//! field manager, paced (at most [`WRITES_PER_SECOND`], [`IN_FLIGHT`] at a
//! time) so that thousands of conditions after a cold sync trickle out in
//! the background, and each is checked against current leadership first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use super::{
    CrStatusInput, LoadBalancerSource, ProgrammedState, ReportStatusInput, StatusView,
    desired_conditions, desired_lb, gateway as gateway_status, needs_update, programmed_units,
};
use crate::api::ApisixStatus;
use crate::apisix::EtcdKey;
use crate::leader::Leadership;
use crate::model::{DiffItem, ObjectKey};
use crate::sync::mirror_task::read_mirror;
use crate::sync::{DesiredState, EngineStatus, JournalCursor, MirrorState, SharedMirror, UnitKey};

/// The field manager of every status the operator applies.
pub const FIELD_MANAGER: &str = "apisix-operator";
/// Status writes per second, at most.
pub const WRITES_PER_SECOND: u32 = 100;
/// Status writes in flight at once, at most.
pub const IN_FLIGHT: usize = 4;
/// Units handled per round, so a flood of pending statuses never delays
/// noticing newer changes for long.
const ROUND: usize = 128;
/// After a failed write, its unit is tried again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long after its desired objects changed a unit is looked at.
const SETTLE: Duration = Duration::from_millis(250);
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub struct StatusWriter {
    pub client: kube::Client,
    pub controller: String,
    pub identity: String,
    pub lb_source: Option<LoadBalancerSource>,
    /// The APISIX prefix (mirror keys are matched to units through it).
    pub prefix: String,
    /// The desired state and the etcd mirror tell whether a unit is programmed.
    pub desired: watch::Receiver<Arc<DesiredState>>,
    pub mirror: SharedMirror,
    pub mirror_revision: watch::Receiver<i64>,
    /// A term's status work starts only once the engine has synced etcd in
    /// that term: after a cold start or a failover, thousands of conditions
    /// must not compete with the first writes to etcd.
    pub engine: watch::Receiver<EngineStatus>,
}

/// What one term (one Lease token) has seen, has left to do and has written.
struct Term {
    token: i64,
    view: Arc<StatusView>,
    desired: Arc<DesiredState>,
    mirror_cursor: JournalCursor,
    /// Units whose conditions (or Gateway API status) must be looked at again.
    conditions: BTreeSet<UnitKey>,
    failures: BTreeSet<UnitKey>,
    warnings: BTreeSet<UnitKey>,
    ingresses: BTreeSet<ObjectKey>,
    /// Units to look at later (after a failed write, or once their new
    /// objects have had time to be committed), by when.
    later: BTreeMap<Instant, Vec<UnitKey>>,
    /// Conditions written in this term (the watch echoes them later).
    written: BTreeMap<UnitKey, ApisixStatus>,
    /// Gateway API statuses written in this term.
    written_reports: BTreeMap<UnitKey, serde_json::Value>,
    /// Failures reported in this term, by unit → message.
    reported: BTreeMap<UnitKey, String>,
    /// Warnings reported in this term, by unit → message.
    warned: BTreeMap<UnitKey, String>,
    /// Units whose Programmed depends on other units (an ApisixUpstream on
    /// the routes using it): member → units depending on it.
    members: BTreeMap<UnitKey, BTreeSet<UnitKey>>,
}

impl Term {
    /// A new term: everything is looked at once.
    fn start(
        token: i64,
        view: Arc<StatusView>,
        desired: Arc<DesiredState>,
        mirror: &MirrorState,
    ) -> Term {
        let mut term = Term {
            token,
            view: Arc::new(StatusView::default()),
            desired: desired.clone(),
            mirror_cursor: mirror.cursor(),
            conditions: BTreeSet::new(),
            failures: BTreeSet::new(),
            warnings: BTreeSet::new(),
            ingresses: BTreeSet::new(),
            later: BTreeMap::new(),
            written: BTreeMap::new(),
            written_reports: BTreeMap::new(),
            reported: BTreeMap::new(),
            warned: BTreeMap::new(),
            members: BTreeMap::new(),
        };
        term.take_view(view);
        term.ingresses = term.view.served_ingresses.keys().cloned().collect();
        term
    }

    /// Notes what changed in the view since the last one seen.
    fn take_view(&mut self, view: Arc<StatusView>) {
        let old = std::mem::replace(&mut self.view, view);
        let view = self.view.clone();
        for item in old.crs.diff(&view.crs) {
            let (unit, before, after) = match item {
                DiffItem::Add(unit, entry) => (unit, None, Some(entry)),
                DiffItem::Remove(unit, entry) => (unit, Some(entry), None),
                DiffItem::Update {
                    old: (unit, before),
                    new: (_, after),
                } => (unit, Some(before), Some(after)),
            };
            self.track_members(unit, before, after);
            self.conditions.insert(unit.clone());
        }
        for item in old.reports.diff(&view.reports) {
            self.conditions.insert(diff_key(item).clone());
        }
        for item in old.failures.diff(&view.failures) {
            self.failures.insert(diff_key(item).clone());
        }
        for item in old.warnings.diff(&view.warnings) {
            self.warnings.insert(diff_key(item).clone());
        }
        if old.publish_service_lb != view.publish_service_lb {
            self.ingresses.extend(view.served_ingresses.keys().cloned());
            // Gateways publish the same addresses.
            let gateways = view.reports.keys().filter(|u| u.kind() == "Gateway");
            self.conditions.extend(gateways.cloned());
        }
        for item in old.served_ingresses.diff(&view.served_ingresses) {
            self.ingresses.insert(diff_key(item).clone());
        }
    }

    fn track_members(
        &mut self,
        unit: &UnitKey,
        before: Option<&CrStatusInput>,
        after: Option<&CrStatusInput>,
    ) {
        let others = |entry: Option<&CrStatusInput>| -> Vec<UnitKey> {
            entry
                .into_iter()
                .flat_map(|e| e.units.iter())
                .filter(|member| *member != unit)
                .cloned()
                .collect()
        };
        for member in others(before) {
            if let Some(set) = self.members.get_mut(&member) {
                set.remove(unit);
                if set.is_empty() {
                    self.members.remove(&member);
                }
            }
        }
        for member in others(after) {
            self.members.entry(member).or_default().insert(unit.clone());
        }
    }

    /// Notes the units whose objects changed in the desired state or in etcd.
    /// Those whose desired objects changed are looked at a little later
    /// ([`SETTLE`]): by then the engine has normally committed them, and the
    /// status goes straight to the new revision instead of through Pending.
    fn take_objects(&mut self, desired: Arc<DesiredState>, mirror: &MirrorState, prefix: &str) {
        let changed: Vec<UnitKey> = desired.changed_units(&self.desired).into_iter().collect();
        if !changed.is_empty() {
            self.later
                .entry(Instant::now() + SETTLE)
                .or_default()
                .extend(changed);
        }
        let mut units = BTreeSet::new();
        match mirror.changed_since(self.mirror_cursor) {
            Some(keys) => units.extend(
                keys.into_iter()
                    .filter_map(|raw| EtcdKey::parse(prefix, raw).ok())
                    .flat_map(|key| desired.owners_of(&key).cloned().collect::<Vec<_>>()),
            ),
            // The journal cannot tell: look at every unit.
            None => {
                units.extend(self.view.crs.keys().cloned());
                units.extend(self.view.reports.keys().cloned());
            }
        }
        for unit in units {
            self.mark(unit);
        }
        self.desired = desired;
        self.mirror_cursor = mirror.cursor();
    }

    /// `unit`'s conditions, and those of the units whose Programmed depends
    /// on it, are to be looked at.
    fn mark(&mut self, unit: UnitKey) {
        if let Some(dependents) = self.members.get(&unit) {
            self.conditions.extend(dependents.iter().cloned());
        }
        self.conditions.insert(unit);
    }

    fn take_due_retries(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.later.first_entry() {
            if *entry.key() > now {
                break;
            }
            for unit in entry.remove() {
                self.mark(unit);
            }
        }
    }

    fn look_again(&mut self, unit: UnitKey, after: Duration) {
        self.later
            .entry(Instant::now() + after)
            .or_default()
            .push(unit);
    }

    fn idle(&self) -> bool {
        self.conditions.is_empty()
            && self.failures.is_empty()
            && self.warnings.is_empty()
            && self.ingresses.is_empty()
    }

    fn next_retry(&self) -> Option<Instant> {
        self.later.keys().next().copied()
    }
}

fn diff_key<'a, K, V>(item: DiffItem<'a, 'a, K, V>) -> &'a K {
    match item {
        DiffItem::Add(key, _)
        | DiffItem::Remove(key, _)
        | DiffItem::Update { new: (key, _), .. } => key,
    }
}

fn take_batch<T: Ord + Clone>(set: &mut BTreeSet<T>, max: usize) -> Vec<T> {
    let batch: Vec<T> = set.iter().take(max).cloned().collect();
    for item in &batch {
        set.remove(item);
    }
    batch
}

/// Spaces writes out to at most [`WRITES_PER_SECOND`].
struct Pacer {
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        let interval = Duration::from_secs(1) / WRITES_PER_SECOND;
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// One status write.
enum Write {
    Conditions {
        unit: UnitKey,
        input: Box<CrStatusInput>,
        wanted: ApisixStatus,
    },
    Report {
        unit: UnitKey,
        input: Box<ReportStatusInput>,
        body: serde_json::Value,
    },
    LoadBalancer {
        key: ObjectKey,
        want: Vec<IngressLoadBalancerIngress>,
    },
}

impl StatusWriter {
    pub async fn run(
        self,
        mut view: watch::Receiver<Arc<StatusView>>,
        mut leadership: watch::Receiver<Leadership>,
    ) {
        let recorder = Recorder::new(
            self.client.clone(),
            Reporter {
                controller: self.controller.clone(),
                instance: Some(self.identity.clone()),
            },
        );
        let pacer = Pacer {
            next: Mutex::new(Instant::now()),
        };
        let mut desired = self.desired.clone();
        let mut mirror_revision = self.mirror_revision.clone();
        let mut engine = self.engine.clone();
        let mut term: Option<Term> = None;
        loop {
            let now = leadership.borrow_and_update().clone();
            let synced = engine.borrow_and_update().synced_token == Some(now.token);
            if now.leading && (synced || term.as_ref().is_some_and(|t| t.token == now.token)) {
                let view_now = view.borrow_and_update().clone();
                let desired_now = desired.borrow_and_update().clone();
                mirror_revision.borrow_and_update();
                let mirror = read_mirror(&self.mirror);
                match term.as_mut().filter(|t| t.token == now.token) {
                    Some(t) => {
                        t.take_view(view_now);
                        t.take_objects(desired_now, &mirror, &self.prefix);
                    }
                    None => {
                        term = Some(Term::start(now.token, view_now, desired_now, &mirror));
                    }
                }
            } else {
                term = None;
            }
            if let Some(t) = term.as_mut() {
                t.take_due_retries();
                if !t.idle() {
                    self.round(t, &recorder, &pacer, &leadership).await;
                    continue;
                }
            }
            let retry = term.as_ref().and_then(Term::next_retry);
            tokio::select! {
                changed = view.changed() => if changed.is_err() { return },
                changed = leadership.changed() => if changed.is_err() { return },
                changed = desired.changed() => if changed.is_err() { return },
                changed = mirror_revision.changed() => if changed.is_err() { return },
                changed = engine.changed() => if changed.is_err() { return },
                _ = sleep_until_some(retry) => {}
            }
        }
    }

    /// Handles up to [`ROUND`] pending units: Events, then conditions and
    /// load-balancer statuses that differ from what the objects say.
    async fn round(
        &self,
        term: &mut Term,
        recorder: &Recorder,
        pacer: &Pacer,
        leadership: &watch::Receiver<Leadership>,
    ) {
        for unit in take_batch(&mut term.failures, ROUND) {
            self.report_failure(term, recorder, &unit).await;
        }
        for unit in take_batch(&mut term.warnings, ROUND) {
            self.report_warning(term, recorder, &unit).await;
        }
        let now = jiff::Timestamp::now().to_string();
        let addresses = self
            .lb_source
            .as_ref()
            .and_then(|source| desired_lb(source, term.view.publish_service_lb.as_ref()))
            .unwrap_or_default();
        let mut writes: Vec<Write> = take_batch(&mut term.conditions, ROUND)
            .into_iter()
            .filter_map(|unit| match term.view.reports.contains_key(&unit) {
                true => report_write(term, &self.mirror, unit, &now, &addresses),
                false => conditions_write(term, &self.mirror, unit, &now),
            })
            .collect();
        if let Some(source) = &self.lb_source
            && let Some(want) = desired_lb(source, term.view.publish_service_lb.as_ref())
        {
            for key in take_batch(&mut term.ingresses, ROUND) {
                let current = term.view.served_ingresses.get(&key);
                if current.is_some_and(|current| *current != want) {
                    writes.push(Write::LoadBalancer {
                        key,
                        want: want.clone(),
                    });
                }
            }
        } else {
            term.ingresses.clear();
        }
        let token = term.token;
        let results: Vec<(Write, bool)> = futures::stream::iter(writes)
            .map(|write| async move {
                pacer.wait().await;
                let current = leadership.borrow().clone();
                if !current.leading || current.token != token {
                    return (write, false);
                }
                let ok = self.apply(&write).await;
                (write, ok)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (write, ok) in results {
            match (write, ok) {
                (Write::Conditions { unit, wanted, .. }, true) => {
                    term.written.insert(unit, wanted);
                }
                (Write::Conditions { unit, .. }, false) | (Write::Report { unit, .. }, false) => {
                    term.look_again(unit, RETRY_AFTER);
                }
                (Write::Report { unit, body, .. }, true) => {
                    term.written_reports.insert(unit, body);
                }
                (Write::LoadBalancer { key, .. }, true) => {
                    tracing::info!(ingress = %key, "updated the load-balancer status");
                }
                (Write::LoadBalancer { key, .. }, false) => {
                    term.ingresses.insert(key);
                }
            }
        }
    }

    async fn report_failure(&self, term: &mut Term, recorder: &Recorder, unit: &UnitKey) {
        let Some(failure) = term.view.failures.get(unit) else {
            term.reported.remove(unit);
            return;
        };
        if term.reported.get(unit) == Some(&failure.message) {
            return;
        }
        let event = Event {
            type_: EventType::Warning,
            reason: "TranslationFailed".into(),
            note: Some(format!(
                "{} (the last good APISIX objects stay in place)",
                failure.message
            )),
            action: "Translate".into(),
            secondary: None,
        };
        match recorder.publish(&event, &failure.object).await {
            Ok(()) => {
                term.reported.insert(unit.clone(), failure.message.clone());
            }
            Err(err) => {
                tracing::warn!(%unit, error = %err, "could not publish an Event");
                term.failures.insert(unit.clone());
            }
        }
    }

    /// What a translation left out (a label APISIX would refuse): a Warning
    /// Event, once per message and term.
    async fn report_warning(&self, term: &mut Term, recorder: &Recorder, unit: &UnitKey) {
        let Some(warning) = term.view.warnings.get(unit) else {
            term.warned.remove(unit);
            return;
        };
        if term.warned.get(unit) == Some(&warning.message) {
            return;
        }
        let event = Event {
            type_: EventType::Warning,
            reason: "NotCopied".into(),
            note: Some(warning.message.clone()),
            action: "Translate".into(),
            secondary: None,
        };
        match recorder.publish(&event, &warning.object).await {
            Ok(()) => {
                term.warned.insert(unit.clone(), warning.message.clone());
            }
            Err(err) => {
                tracing::warn!(%unit, error = %err, "could not publish an Event");
                term.warnings.insert(unit.clone());
            }
        }
    }

    /// One server-side apply of a status; whether it succeeded.
    async fn apply(&self, write: &Write) -> bool {
        let (what, result) = match write {
            Write::Conditions {
                unit,
                input,
                wanted,
            } => {
                let status = json!(wanted);
                let result = self
                    .apply_dynamic(&input.object, &input.api_resource, &status)
                    .await;
                (unit.to_string(), result)
            }
            Write::Report { unit, input, body } => {
                let result = self
                    .apply_dynamic(&input.object, &input.api_resource, body)
                    .await;
                (unit.to_string(), result)
            }
            Write::LoadBalancer { key, want } => {
                let api: Api<Ingress> = Api::namespaced(self.client.clone(), &key.namespace);
                let body = json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "metadata": {"name": key.name},
                    "status": {"loadBalancer": {"ingress": want}},
                });
                (
                    format!("Ingress/{key}"),
                    apply_status(&api, &key.name, &body).await,
                )
            }
        };
        if let Err(error) = &result {
            tracing::warn!(object = %what, %error, "could not update the status");
        }
        result.is_ok()
    }
}

impl StatusWriter {
    /// Applies `status` to the object `object` of `api_resource`.
    async fn apply_dynamic(
        &self,
        object: &k8s_openapi::api::core::v1::ObjectReference,
        api_resource: &kube::core::ApiResource,
        status: &serde_json::Value,
    ) -> Result<(), String> {
        let name = object.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> = match &object.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, api_resource),
            None => Api::all_with(self.client.clone(), api_resource),
        };
        let body = json!({
            "apiVersion": api_resource.api_version,
            "kind": api_resource.kind,
            "metadata": {"name": name},
            "status": status,
        });
        apply_status(&api, &name, &body).await
    }
}

/// Server-side applies `body`'s status. An object whose stored spec does
/// not fit its CRD's schema (left by an older, looser CRD) cannot be
/// applied to (the API server cannot type it); its status is then merged
/// instead, with the same field manager.
async fn apply_status<K>(api: &Api<K>, name: &str, body: &serde_json::Value) -> Result<(), String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    match timed(api.patch_status(name, &apply, &Patch::Apply(body))).await {
        Ok(_) => Ok(()),
        Err(CallError::Kube(kube::Error::Api(status))) if status.code == 500 => {
            let merge = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            let status_only = json!({"status": body["status"]});
            timed(api.patch_status(name, &merge, &Patch::Merge(&status_only)))
                .await
                .map(|_| ())
                .map_err(|e| e.describe())
        }
        Err(err) => Err(err.describe()),
    }
}

/// A failed API call.
enum CallError {
    Kube(kube::Error),
    Timeout,
}

impl CallError {
    /// For logs: the API server's answer without its message, which can
    /// quote the object's contents.
    fn describe(&self) -> String {
        match self {
            CallError::Kube(kube::Error::Api(status)) => format!(
                "the API server answered {} ({})",
                status.code,
                if status.reason.is_empty() {
                    "no reason given"
                } else {
                    &status.reason
                }
            ),
            CallError::Kube(err) => crate::model::decode::redact(&err.to_string()),
            CallError::Timeout => format!("timed out after {CALL_TIMEOUT:?}"),
        }
    }
}

/// The conditions write `unit` needs, if any: none when the object (or our
/// latest write, not yet echoed by the watch) already says so.
fn conditions_write(
    term: &mut Term,
    mirror: &SharedMirror,
    unit: UnitKey,
    now: &str,
) -> Option<Write> {
    let Some(input) = term.view.crs.get(&unit).cloned() else {
        term.written.remove(&unit);
        return None;
    };
    let programmed = {
        let mirror = read_mirror(mirror);
        programmed_units(&term.desired, &mirror, &input.units)
    };
    let wanted = desired_conditions(&input, programmed, now);
    if !needs_update(input.current.as_ref(), &wanted) {
        term.written.remove(&unit);
        return None;
    }
    if term
        .written
        .get(&unit)
        .is_some_and(|last| !needs_update(Some(last), &wanted))
    {
        return None;
    }
    Some(Write::Conditions {
        unit,
        input: Box::new(input),
        wanted,
    })
}

/// The Gateway API status write `unit` needs, if any: none until its
/// objects are in etcd, and none when the object (or our latest write, not
/// yet echoed by the watch) already says it.
fn report_write(
    term: &mut Term,
    mirror: &SharedMirror,
    unit: UnitKey,
    now: &str,
    addresses: &[IngressLoadBalancerIngress],
) -> Option<Write> {
    let mut input = term.view.reports.get(&unit).cloned()?;
    if unit.kind() == "Gateway" {
        input.wanted = gateway_status::with_addresses(&input.wanted, addresses);
    }
    let programmed = {
        let mirror = read_mirror(mirror);
        programmed_units(&term.desired, &mirror, &input.units)
    };
    if programmed == ProgrammedState::Pending {
        // Looked at again when the mirror sees its objects.
        return None;
    }
    let body = gateway_status::stamp(&input.wanted, input.current.as_ref(), now);
    if gateway_status::holds(input.current.as_ref(), &body) {
        term.written_reports.remove(&unit);
        return None;
    }
    if term.written_reports.get(&unit).is_some_and(|last| {
        gateway_status::holds(
            Some(last),
            &gateway_status::stamp(&input.wanted, Some(last), now),
        )
    }) {
        return None;
    }
    Some(Write::Report {
        unit,
        input: Box::new(input),
        body,
    })
}

async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(CallError::Kube(err)),
        Err(_) => Err(CallError::Timeout),
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
