//! Creating arbitrary Kubernetes objects (any kind the API server serves,
//! CRDs included) from JSON, as `kubectl create` would.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::Scope;

/// Creates `object`, and its namespace first when that does not exist.
pub async fn create_object(
    client: &kube::Client,
    object: &serde_json::Value,
) -> Result<(), kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => {
            let ns = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default");
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
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let dynamic: DynamicObject =
        serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &dynamic)
        .await
        .map(|_| ())
}

/// Server-side applies `object` (any served kind) as `field_manager`,
/// taking ownership of conflicting fields, as `kubectl apply
/// --server-side --force-conflicts` does.
pub async fn server_side_apply(
    client: &kube::Client,
    object: &serde_json::Value,
    field_manager: &str,
) -> Result<(), kube::Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk).await?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let mut object = object.clone();
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => {
            let ns = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            Api::namespaced_with(client.clone(), &ns, &resource)
        }
        Scope::Cluster => {
            if let Some(metadata) = object["metadata"].as_object_mut() {
                metadata.remove("namespace");
            }
            Api::all_with(client.clone(), &resource)
        }
    };
    api.patch(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&object),
    )
    .await
    .map(|_| ())
}
