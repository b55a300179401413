//! A rendered Deployment's container run as a local process, the way a
//! kubelet would start it: its args, its environment (literal values, the
//! downward API, Secret and ConfigMap keys read from the API server) and
//! its Secret and ConfigMap volumes written under a local root, with the
//! args' mount paths pointed there. The install tests use it to run the
//! operator exactly as the chart configures it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::Value;

use crate::{ManagedProcess, TestEnvError};

/// The container's command line, environment and files, materialized.
#[derive(Debug, Clone)]
pub struct LocalPod {
    pub name: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the volumes were written (mount paths are relative to it).
    pub root: PathBuf,
    /// containerPort by port name.
    pub ports: BTreeMap<String, u16>,
    container: Value,
}

impl LocalPod {
    /// Materializes the first container of `deployment` as pod `name`.
    pub async fn materialize(
        client: &kube::Client,
        deployment: &Value,
        name: &str,
        root: &Path,
    ) -> Result<LocalPod, TestEnvError> {
        let namespace = deployment["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let template = &deployment["spec"]["template"];
        let container = template["spec"]["containers"][0].clone();
        let sources = Sources { client, namespace };

        let mut env = Vec::new();
        for var in container["env"].as_array().into_iter().flatten() {
            let var_name = text(&var["name"]).to_string();
            let value = if let Some(value) = var["value"].as_str() {
                value.to_string()
            } else if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                downward_api(field, name, namespace, template)?
            } else if var["valueFrom"]["secretKeyRef"].is_object() {
                let reference = &var["valueFrom"]["secretKeyRef"];
                let data = sources.secret(text(&reference["name"])).await?;
                key_of(&data, text(&reference["key"]), "Secret")?
            } else if var["valueFrom"]["configMapKeyRef"].is_object() {
                let reference = &var["valueFrom"]["configMapKeyRef"];
                let data = sources.config_map(text(&reference["name"])).await?;
                key_of(&data, text(&reference["key"]), "ConfigMap")?
            } else {
                return Err(unsupported(format!("env {var_name}: {var}")));
            };
            env.push((var_name, value));
        }

        let volumes: BTreeMap<&str, &Value> = template["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (text(&v["name"]), v))
            .collect();
        let mut args: Vec<String> = container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| text(a).to_string())
            .collect();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let mount_path = text(&mount["mountPath"]);
            let volume = volumes
                .get(text(&mount["name"]))
                .ok_or_else(|| unsupported(format!("mount of an undeclared volume: {mount}")))?;
            let (data, items) = if volume["secret"].is_object() {
                (
                    sources
                        .secret(text(&volume["secret"]["secretName"]))
                        .await?,
                    &volume["secret"]["items"],
                )
            } else if volume["configMap"].is_object() {
                (
                    sources
                        .config_map(text(&volume["configMap"]["name"]))
                        .await?,
                    &volume["configMap"]["items"],
                )
            } else {
                return Err(unsupported(format!("volume {volume}")));
            };
            let dir = root.join(mount_path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir)
                .map_err(|e| TestEnvError::io(format!("creating {}", dir.display()), e))?;
            let files: Vec<(String, String)> = match items.as_array() {
                Some(items) => items
                    .iter()
                    .map(|i| (text(&i["key"]).to_string(), text(&i["path"]).to_string()))
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (key, path) in files {
                let contents = key_of(&data, &key, "volume source")?;
                std::fs::write(dir.join(&path), contents)
                    .map_err(|e| TestEnvError::io(format!("writing {path}"), e))?;
            }
            let local = dir.display().to_string();
            for arg in &mut args {
                *arg = arg.replace(mount_path, &local);
            }
        }

        let ports = container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    text(&p["name"]).to_string(),
                    p["containerPort"].as_u64()? as u16,
                ))
            })
            .collect();
        Ok(LocalPod {
            name: name.to_string(),
            args,
            env,
            root: root.to_path_buf(),
            ports,
            container,
        })
    }

    /// What a kubelet would probe for `probe` (`livenessProbe`,
    /// `readinessProbe`): the port (on loopback here) and the path.
    pub fn probe(&self, probe: &str) -> Option<(u16, String)> {
        let get = &self.container[probe]["httpGet"];
        let port = match &get["port"] {
            Value::Number(n) => n.as_u64()? as u16,
            Value::String(name) => *self.ports.get(name)?,
            _ => return None,
        };
        Some((port, get["path"].as_str()?.to_string()))
    }

    /// Starts `binary` (the image's entrypoint) with the container's args and
    /// environment, plus `extra_env` (e.g. KUBECONFIG for the test cluster).
    pub fn spawn(
        &self,
        binary: &Path,
        extra_env: &[(&str, &str)],
        log: &Path,
    ) -> Result<ManagedProcess, TestEnvError> {
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend_from_slice(extra_env);
        ManagedProcess::spawn_with_env(&self.name, binary, &self.args, &env, log)
    }
}

struct Sources<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
}

impl Sources<'_> {
    async fn secret(&self, name: &str) -> Result<BTreeMap<String, String>, TestEnvError> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), self.namespace)
            .get(name)
            .await
            .map_err(|e| unsupported(format!("Secret {}/{name}: {e}", self.namespace)))?;
        Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect())
    }

    async fn config_map(&self, name: &str) -> Result<BTreeMap<String, String>, TestEnvError> {
        let map = Api::<ConfigMap>::namespaced(self.client.clone(), self.namespace)
            .get(name)
            .await
            .map_err(|e| unsupported(format!("ConfigMap {}/{name}: {e}", self.namespace)))?;
        Ok(map.data.unwrap_or_default())
    }
}

/// The downward API's `fieldRef` values a local process can have.
fn downward_api(
    field: &str,
    pod: &str,
    namespace: &str,
    template: &Value,
) -> Result<String, TestEnvError> {
    let metadata = &template["metadata"];
    let from_map = |map: &str| {
        field
            .strip_prefix(&format!("metadata.{map}['"))
            .and_then(|rest| rest.strip_suffix("']"))
            .map(|key| metadata[map][key].as_str().unwrap_or_default().to_string())
    };
    match field {
        "metadata.name" => Ok(pod.to_string()),
        "metadata.namespace" => Ok(namespace.to_string()),
        "spec.serviceAccountName" => Ok(text(&template["spec"]["serviceAccountName"]).into()),
        "status.podIP" | "status.hostIP" => Ok("127.0.0.1".into()),
        _ => from_map("annotations")
            .or_else(|| from_map("labels"))
            .ok_or_else(|| unsupported(format!("fieldRef {field}"))),
    }
}

fn key_of(data: &BTreeMap<String, String>, key: &str, what: &str) -> Result<String, TestEnvError> {
    data.get(key)
        .cloned()
        .ok_or_else(|| unsupported(format!("the {what} has no key {key}")))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn unsupported(what: String) -> TestEnvError {
    TestEnvError::Install(format!("cannot run the container locally: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_downward_api_gives_the_pod_fields() {
        let template = json!({
            "metadata": {"annotations": {"olm.targetNamespaces": "a,b"}, "labels": {"app": "x"}},
            "spec": {"serviceAccountName": "sa"},
        });
        let get = |field| downward_api(field, "pod-0", "ns", &template);
        assert_eq!(get("metadata.name").unwrap(), "pod-0");
        assert_eq!(get("metadata.namespace").unwrap(), "ns");
        assert_eq!(get("spec.serviceAccountName").unwrap(), "sa");
        assert_eq!(
            get("metadata.annotations['olm.targetNamespaces']").unwrap(),
            "a,b"
        );
        assert_eq!(get("metadata.annotations['missing']").unwrap(), "");
        assert_eq!(get("metadata.labels['app']").unwrap(), "x");
        assert!(get("spec.nodeName").is_err());
    }
}
