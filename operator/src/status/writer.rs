//! The leader-only status writer.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use tokio::sync::watch;

use super::{LoadBalancerSource, StatusView, desired_lb};
use crate::leader::Leadership;
use crate::sync::UnitKey;

pub struct StatusWriter {
    pub client: kube::Client,
    pub controller: String,
    pub identity: String,
    pub lb_source: Option<LoadBalancerSource>,
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
        loop {
            if leadership.borrow_and_update().leading {
                let current = view.borrow_and_update().clone();
                self.report_failures(&recorder, &current, &mut reported)
                    .await;
                self.write_lb(&current).await;
            } else {
                reported.clear();
            }
            tokio::select! {
                changed = view.changed() => if changed.is_err() { return },
                changed = leadership.changed() => if changed.is_err() { return },
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
