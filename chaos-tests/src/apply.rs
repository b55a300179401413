//! Applying a workload change to a cluster (server-side apply, then
//! deletes), for the local suite and the cluster driver alike.

use crate::workload::{Change, key_of};
use apisix_operator_testenv::{delete_object, server_side_apply};

pub const FIELD_MANAGER: &str = "chaos-workload";

#[derive(Debug, thiserror::Error)]
#[error("{verb} {object}: {source}")]
pub struct ApplyError {
    verb: &'static str,
    object: String,
    #[source]
    source: kube::Error,
}

pub async fn apply_change(client: &kube::Client, change: &Change) -> Result<(), ApplyError> {
    for object in &change.apply {
        server_side_apply(client, object, FIELD_MANAGER)
            .await
            .map_err(|source| ApplyError {
                verb: "applying",
                object: key_of(object),
                source,
            })?;
    }
    for object in &change.delete {
        delete_object(client, object)
            .await
            .map_err(|source| ApplyError {
                verb: "deleting",
                object: key_of(object),
                source,
            })?;
    }
    Ok(())
}
