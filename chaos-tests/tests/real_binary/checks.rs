//! The invariants checked outside the etcd history: status truth (6) and
//! no panics or unexpected exits (7).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apisix_operator_chaos_tests::history::History;
use apisix_operator_chaos_tests::invariants::content;
use apisix_operator_chaos_tests::workload::key_of;
use kube::api::{DynamicObject, GroupVersionKind};
use serde_json::Value;

use crate::run::Run;

/// (6) Every lane CR whose status says `Programmed=True` for its current
/// generation names a revision at which its own keys (all but upstreams,
/// which follow endpoints) held their final values, and its upstreams
/// existed. Statuses are written after commits, so each CR gets `within`
/// to catch up; what is still untrue then is returned.
pub async fn status_truth(run: &Run, history: &History, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let untrue = untrue_statuses(run, history).await;
        if untrue.is_empty() || Instant::now() > deadline {
            return untrue;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn untrue_statuses(run: &Run, history: &History) -> Vec<String> {
    let desired = run.desired();
    let mut untrue = Vec::new();
    let lanes: Vec<Value> = run.workload.lane_objects().cloned().collect();
    for object in lanes
        .iter()
        .filter(|o| o["apiVersion"] == "apisix.apache.org/v2")
    {
        let name = key_of(object);
        let stored = match get(run, object).await {
            Ok(stored) => stored,
            Err(e) => {
                untrue.push(format!("{name}: {e}"));
                continue;
            }
        };
        let Some(revision) = programmed_revision(&stored) else {
            untrue.push(format!("{name}: not Programmed for its generation"));
            continue;
        };
        let others = run.translate(run.workload.objects().filter(|o| key_of(o) != name));
        let state = history.state_at(revision);
        for (key, want) in &desired {
            if others.get(key) == Some(want) {
                continue; // not this object's
            }
            let held = state.get(key).map(|v| content(v));
            let true_at_revision = if key.contains("/upstreams/") {
                held.is_some()
            } else {
                held.as_ref() == Some(want)
            };
            if !true_at_revision {
                untrue.push(format!("{name}: Programmed at revision {revision}, but {key} did not hold its value then"));
            }
        }
    }
    untrue
}

async fn get(run: &Run, object: &Value) -> Result<Value, kube::Error> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let gvk = GroupVersionKind::gvk("apisix.apache.org", "v2", kind);
    let (resource, _) = kube::discovery::pinned_kind(&run.client, &gvk).await?;
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(run.client.clone(), &run.namespace(), &resource);
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    Ok(serde_json::to_value(api.get(name).await?).unwrap_or_default())
}

/// The revision a `Programmed=True` condition of the object's current
/// generation names ("written to etcd at revision N").
fn programmed_revision(object: &Value) -> Option<i64> {
    let generation = object["metadata"]["generation"].as_i64()?;
    let conditions = object["status"]["conditions"].as_array()?;
    let programmed = conditions.iter().find(|c| {
        c["type"] == "Programmed"
            && c["status"] == "True"
            && c["observedGeneration"].as_i64() == Some(generation)
    })?;
    programmed["message"]
        .as_str()?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// (7) No replica panicked (any log), and none of `running` exited.
pub fn no_panics_or_exits(
    logs: &[PathBuf],
    running: &mut BTreeMap<String, apisix_operator_testenv::ManagedProcess>,
) -> Vec<String> {
    let mut found = Vec::new();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("panicked at") {
            found.push(format!("a panic in {}", log.display()));
        }
    }
    for (identity, replica) in running.iter_mut() {
        if let Some(status) = replica.exited() {
            found.push(format!("replica {identity} exited ({status}) uninjected"));
        }
    }
    found
}
