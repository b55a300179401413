//! Loading the cluster once, through the same watches and feeder that `run`
//! uses: list every registered kind until each watch has synced, then stop.
//! `diff --live` builds its desired state this way, so it cannot read the
//! cluster differently from what `run` writes.

use std::time::Duration;

use tokio::sync::mpsc;

use super::watch::{Namespaces, WatchMessage, spawn_watches};
use super::{ClusterIndex, Feeder};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A list failed (permissions, an API server error): reading it as
    /// empty would look like "delete everything".
    #[error("listing {kind} failed: {error}")]
    List { kind: &'static str, error: String },
    #[error("the watches did not finish listing within {0:?}")]
    Timeout(Duration),
}

/// What was loaded.
pub struct LoadedCluster {
    pub index: ClusterIndex,
    /// Kinds skipped because their CRD is not installed (as `run` skips them).
    pub not_installed: Vec<&'static str>,
}

/// Lists the cluster into `index` (every kind `run` would watch, in the same
/// namespaces) and returns it once every watch has listed.
pub async fn load_cluster(
    client: &kube::Client,
    namespaces: &Namespaces,
    mut index: ClusterIndex,
    timeout: Duration,
) -> Result<LoadedCluster, LoadError> {
    let (tx, mut rx) = mpsc::channel(1024);
    let watches = spawn_watches(client, namespaces, tx).await;
    let mut feeder = Feeder::default();
    let result = tokio::time::timeout(timeout, async {
        while feeder.synced() < watches.expected_syncs {
            match rx.recv().await {
                Some(WatchMessage::Change(change)) => feeder.apply(&mut index, change),
                Some(WatchMessage::Failed { kind, error }) => {
                    return Err(LoadError::List { kind, error });
                }
                None => break,
            }
        }
        Ok(())
    })
    .await;
    watches.abort();
    match result {
        Ok(Ok(())) => Ok(LoadedCluster {
            index,
            not_installed: watches.not_installed,
        }),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(LoadError::Timeout(timeout)),
    }
}
