//! The operator's identity in the test environment: the Helm chart's
//! ServiceAccount with the chart's RBAC, applied once per environment, and a
//! kubeconfig that acts as it (impersonation). Every test that runs the
//! operator uses it, so a permission the chart lacks fails a test (DESIGN §5).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::{InstallTools, render_chart};
use crate::{TestEnv, TestEnvError, server_side_apply};

/// Where the chart's ServiceAccount lives in the test environment.
pub const OPERATOR_NAMESPACE: &str = "apisix-operator";
/// The user the operator acts as.
pub const OPERATOR_USER: &str = "system:serviceaccount:apisix-operator:apisix-operator";
/// Namespaces where tests keep their Leases: the chart's Role (made for the
/// release namespace) is bound there too.
const LEASE_NAMESPACES: [&str; 2] = [OPERATOR_NAMESPACE, "default"];

/// The chart's ServiceAccount and RBAC, as rendered with a namespace
/// selector (the superset: it adds `namespaces` list/watch), with the
/// leader-election Role and binding repeated in every lease namespace.
pub(crate) fn operator_rbac(tools: &InstallTools) -> Result<Vec<Value>, TestEnvError> {
    let values = json!({"operator": {"namespaceSelector": "apisix-operator/serve=true"}});
    let rendered = render_chart(tools, OPERATOR_NAMESPACE, &values, false)?;
    let mut objects = vec![json!({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": OPERATOR_NAMESPACE}})];
    for object in rendered {
        match object["kind"].as_str() {
            Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding") => objects.push(object),
            Some("Role" | "RoleBinding") => {
                for namespace in LEASE_NAMESPACES {
                    let mut copy = object.clone();
                    copy["metadata"]["namespace"] = json!(namespace);
                    objects.push(copy);
                }
            }
            _ => {}
        }
    }
    Ok(objects)
}

impl TestEnv {
    /// A kubeconfig acting as the chart's ServiceAccount, with the chart's
    /// RBAC applied (once per environment).
    pub async fn operator_kubeconfig(&self) -> Result<PathBuf, TestEnvError> {
        self.operator_kubeconfig
            .get_or_try_init(|| async {
                let objects = operator_rbac(&InstallTools::locate()?)?;
                let client = self.kube_client().await?;
                for object in &objects {
                    apply_with_retries(&client, object).await?;
                }
                let path = self.workdir.path().join("operator.kubeconfig");
                crate::kubeconfig::write(
                    &path,
                    &self.apiserver.impersonating_kubeconfig(OPERATOR_USER)?,
                )?;
                Ok(path)
            })
            .await
            .cloned()
    }

    /// Starts the operator `binary` with `args` as the chart's ServiceAccount
    /// (`KUBECONFIG` set to [`TestEnv::operator_kubeconfig`]), logging at
    /// info to `<workdir>/<name>.log`.
    pub async fn spawn_operator(
        &self,
        name: &str,
        binary: &std::path::Path,
        args: &[String],
    ) -> Result<crate::ManagedProcess, TestEnvError> {
        self.spawn_operator_with_env(name, binary, args, &[]).await
    }

    /// Like [`TestEnv::spawn_operator`], with extra environment variables.
    pub async fn spawn_operator_with_env(
        &self,
        name: &str,
        binary: &std::path::Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<crate::ManagedProcess, TestEnvError> {
        let kubeconfig = self.operator_kubeconfig().await?;
        let kubeconfig = kubeconfig.display().to_string();
        let mut vars = vec![("KUBECONFIG", kubeconfig.as_str()), ("RUST_LOG", "info")];
        vars.extend_from_slice(env);
        crate::ManagedProcess::spawn_with_env(
            name,
            binary,
            args,
            &vars,
            &self.workdir.path().join(format!("{name}.log")),
        )
    }

    /// A kube client acting as the chart's ServiceAccount.
    pub async fn operator_client(&self) -> Result<kube::Client, TestEnvError> {
        let path = self.operator_kubeconfig().await?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TestEnvError::io(format!("reading {}", path.display()), e))?;
        crate::kubeconfig::client_from(&text).await
    }
}

async fn apply_with_retries(client: &kube::Client, object: &Value) -> Result<(), TestEnvError> {
    let mut attempts = 0;
    loop {
        match server_side_apply(client, object, "apisix-operator-testenv").await {
            Ok(()) => return Ok(()),
            Err(err) if attempts >= 30 => {
                return Err(TestEnvError::Install(format!(
                    "applying {} {}: {err}",
                    object["kind"], object["metadata"]["name"]
                )));
            }
            Err(_) => attempts += 1,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_role_is_bound_in_every_lease_namespace() {
        let Ok(tools) = InstallTools::locate() else {
            return; // not provisioned: the install tests report it
        };
        let objects = operator_rbac(&tools).unwrap();
        for namespace in LEASE_NAMESPACES {
            for kind in ["Role", "RoleBinding"] {
                assert!(
                    objects
                        .iter()
                        .any(|o| o["kind"] == kind && o["metadata"]["namespace"] == namespace)
                );
            }
        }
        let cluster_role = objects.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
        assert!(cluster_role["rules"].to_string().contains("\"namespaces\""));
        let binding = objects
            .iter()
            .find(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == "default")
            .unwrap();
        assert_eq!(binding["subjects"][0]["namespace"], OPERATOR_NAMESPACE);
    }
}
