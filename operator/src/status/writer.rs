//! The leader-only status writer.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;
use std::sync::Arc;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use tokio::sync::watch;

use super::{LoadBalancerSource, StatusView, desired_lb};
use super::{desired_conditions, needs_update, programmed_units};
use crate::api::ApisixStatus;
use crate::leader::Leadership;
use crate::sync::UnitKey;
use crate::sync::mirror_task::read_mirror;
use crate::sync::{DesiredState, SharedMirror};

pub struct StatusWriter {
    pub client: kube::Client,
    pub controller: String,
    pub identity: String,
    pub lb_source: Option<LoadBalancerSource>,
    /// The desired state and the etcd mirror tell whether a unit is programmed.
    pub desired: watch::Receiver<Arc<DesiredState>>,
    pub mirror: SharedMirror,
    pub mirror_revision: watch::Receiver<i64>,
}

impl StatusWriter {
    pub async fn run(
        self,
        mut view: watch::Receiver<std::sync::Arc<StatusView>>,
        mut leadership: watch::Receiver<Leadership>,
    ) {
        let recorder = Recorder::new(
            self.client.clone(),
            Reporter {
                controller: self.controller.clone(),
                instance: Some(self.identity.clone()),
            },
        );
        // Failures already reported in this term, by unit → message.
        let mut reported: BTreeMap<UnitKey, String> = BTreeMap::new();
        // CR statuses written in this term (the watch echoes them later).
        let mut written: BTreeMap<UnitKey, ApisixStatus> = BTreeMap::new();
        let mut desired = self.desired.clone();
        let mut mirror_revision = self.mirror_revision.clone();
        loop {
            if leadership.borrow_and_update().leading {
                let current = view.borrow_and_update().clone();
                let desired_now = desired.borrow_and_update().clone();
                mirror_revision.borrow_and_update();
                self.report_failures(&recorder, &current, &mut reported)
                    .await;
                self.write_lb(&current).await;
                self.write_cr_statuses(&current, &desired_now, &mut written)
                    .await;
            } else {
                reported.clear();
                written.clear();
            }
            tokio::select! {
                changed = view.changed() => if changed.is_err() { return },
                changed = leadership.changed() => if changed.is_err() { return },
                changed = desired.changed() => if changed.is_err() { return },
                changed = mirror_revision.changed() => if changed.is_err() { return },
            }
        }
    }

    /// `Accepted` and `Programmed` on every served CR, written only when
    /// they differ from what the object already says.
    async fn write_cr_statuses(
        &self,
        view: &StatusView,
        desired: &DesiredState,
        written: &mut BTreeMap<UnitKey, ApisixStatus>,
    ) {
        let now = jiff::Timestamp::now().to_string();
        written.retain(|unit, _| view.crs.contains_key(unit));
        for (unit, input) in &view.crs {
            let programmed = {
                let mirror = read_mirror(&self.mirror);
                programmed_units(desired, &mirror, &input.units)
            };
            let wanted = desired_conditions(input, programmed, &now);
            if !needs_update(input.current.as_ref(), &wanted) {
                written.remove(unit);
                continue;
            }
            if written
                .get(unit)
                .is_some_and(|last| !needs_update(Some(last), &wanted))
            {
                continue;
            }
            let name = input.object.name.clone().unwrap_or_default();
            let api: Api<DynamicObject> = match &input.object.namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &input.api_resource),
                None => Api::all_with(self.client.clone(), &input.api_resource),
            };
            let patch = json!({"status": wanted});
            let result = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await;
            match result {
                Ok(Ok(_)) => {
                    written.insert(unit.clone(), wanted);
                }
                Ok(Err(err)) => tracing::warn!(%unit, error = %err, "could not update the status"),
                Err(_) => tracing::warn!(%unit, "updating the status timed out"),
            }
        }
    }

    async fn report_failures(
        &self,
        recorder: &Recorder,
        view: &StatusView,
        reported: &mut BTreeMap<UnitKey, String>,
    ) {
        reported.retain(|unit, _| view.failures.contains_key(unit));
        for (unit, failure) in &view.failures {
            if reported.get(unit) == Some(&failure.message) {
                continue;
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
                    reported.insert(unit.clone(), failure.message.clone());
                }
                Err(err) => tracing::warn!(%unit, error = %err, "could not publish an Event"),
            }
        }
    }

    async fn write_lb(&self, view: &StatusView) {
        let Some(source) = &self.lb_source else {
            return;
        };
        let Some(want) = desired_lb(source, view.publish_service_lb.as_ref()) else {
            return;
        };
        for (key, current) in &view.served_ingresses {
            if *current == want {
                continue;
            }
            let api: Api<Ingress> = Api::namespaced(self.client.clone(), &key.namespace);
            let patch = json!({"status": {"loadBalancer": {"ingress": want}}});
            let result = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await;
            match result {
                Ok(Ok(_)) => tracing::info!(ingress = %key, "updated the load-balancer status"),
                Ok(Err(err)) => {
                    tracing::warn!(ingress = %key, error = %err, "could not update the load-balancer status")
                }
                Err(_) => {
                    tracing::warn!(ingress = %key, "updating the load-balancer status timed out")
                }
            }
        }
    }
}
