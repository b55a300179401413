//! Creating and applying arbitrary Kubernetes objects (any kind the API
//! server serves, CRDs included) from JSON, as `kubectl create` and
//! `kubectl apply --server-side` would.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::Scope;
use serde_json::Value;

/// The API for `object`'s kind (discovered), in its namespace when the kind
/// is namespaced (default "default"); and that namespace.
async fn api_for(
    client: &kube::Client,
    object: &Value,
) -> Result<(Api<DynamicObject>, Option<String>), kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk).await?;
    Ok(match capabilities.scope {
        Scope::Namespaced => {
            let ns = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            (
                Api::namespaced_with(client.clone(), &ns, &resource),
                Some(ns),
            )
        }
        Scope::Cluster => (Api::all_with(client.clone(), &resource), None),
    })
}

/// Creates `object`, and its namespace first when that does not exist.
pub async fn create_object(client: &kube::Client, object: &Value) -> Result<(), kube::Error> {
    let (api, namespace) = api_for(client, object).await?;
    if let Some(ns) = namespace {
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))
                .expect("a valid Namespace");
        match Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(err) => return Err(err),
        }
    }
    let dynamic: DynamicObject =
        serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &dynamic)
        .await
        .map(|_| ())
}

/// Deletes `object` (by kind, namespace and name); one already gone is not
/// an error.
pub async fn delete_object(client: &kube::Client, object: &Value) -> Result<(), kube::Error> {
    let (api, _) = api_for(client, object).await?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Server-side applies `object` as `field_manager`, taking ownership of
/// conflicting fields, as `kubectl apply --server-side --force-conflicts`.
pub async fn server_side_apply(
    client: &kube::Client,
    object: &Value,
    field_manager: &str,
) -> Result<(), kube::Error> {
    let (api, namespace) = api_for(client, object).await?;
    let mut object = object.clone();
    if namespace.is_none()
        && let Some(metadata) = object["metadata"].as_object_mut()
    {
        metadata.remove("namespace");
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&object),
    )
    .await
    .map(|_| ())
}

/// Server-side applies `objects` in order, each retried until accepted (a
/// CR waits for its just-applied CRD to be served); panics after `limit`.
pub async fn apply_all(client: &kube::Client, objects: &[Value], limit: Duration) {
    for object in objects {
        crate::eventually(
            &format!(
                "{} {} to be applied",
                object["kind"], object["metadata"]["name"]
            ),
            limit,
            || async {
                server_side_apply(client, object, "apisix-operator-tests")
                    .await
                    .ok()
            },
        )
        .await;
    }
}

/// Waits until every webhook of the ValidatingWebhookConfiguration `name`
/// has a CA bundle (the operator's leader patches its CA in).
pub async fn ca_bundle_patched(client: &kube::Client, name: &str, limit: std::time::Duration) {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    crate::eventually(
        &format!("the CA bundle of {name} to be patched in"),
        limit,
        || {
            let configurations = configurations.clone();
            async move {
                let hooks = configurations.get(name).await.ok()?.webhooks?;
                let patched =
                    |hook: &k8s_openapi::api::admissionregistration::v1::ValidatingWebhook| {
                        hook.client_config
                            .ca_bundle
                            .as_ref()
                            .is_some_and(|b| !b.0.is_empty())
                    };
                hooks.iter().all(patched).then_some(())
            }
        },
    )
    .await;
}
