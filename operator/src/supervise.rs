//! Supervision: every long-lived task of a replica is watched, and if one
//! ends (returns or panics) the replica releases its Lease and exits
//! non-zero, so the kubelet restarts it, instead of serving a frozen
//! desired state while `/healthz` says ok.

use tokio::task::{JoinError, JoinHandle};

/// How a task ended, for the log line.
pub fn how_it_ended(ended: Result<(), JoinError>) -> String {
    match ended {
        Ok(()) => "returned".into(),
        Err(err) if err.is_panic() => "panicked".into(),
        Err(_) => "was cancelled".into(),
    }
}

/// Named long-lived tasks.
#[derive(Default)]
pub struct Tasks {
    tasks: Vec<(String, Option<JoinHandle<()>>)>,
}

impl Tasks {
    pub fn add(&mut self, name: impl Into<String>, task: JoinHandle<()>) {
        self.tasks.push((name.into(), Some(task)));
    }

    /// Waits until one of the tasks ends: its name and how.
    pub async fn first_to_end(&mut self) -> (String, String) {
        let running: Vec<_> = self
            .tasks
            .iter_mut()
            .filter_map(|(name, task)| {
                let handle = task.as_mut()?;
                let name = name.clone();
                Some(Box::pin(async move { (name, handle.await) }))
            })
            .collect();
        if running.is_empty() {
            return std::future::pending().await;
        }
        let ((name, ended), _, _) = futures::future::select_all(running).await;
        for (task_name, task) in &mut self.tasks {
            if *task_name == name {
                *task = None;
            }
        }
        (name, how_it_ended(ended))
    }

    pub fn abort_all(&self) {
        for task in self.tasks.iter().filter_map(|(_, task)| task.as_ref()) {
            task.abort();
        }
    }
}

/// Test builds only (the `fault-injection` feature): whether
/// `APISIX_OPERATOR_FAULT` names `task`, which should then end on its own
/// (supervision must catch it). Always false in a normal build.
pub fn fault_injected(task: &str) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        std::env::var("APISIX_OPERATOR_FAULT").is_ok_and(|fault| fault == task)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = task;
        false
    }
}
