//! What OLM creates from the bundle's ClusterServiceVersion when it installs
//! it in a namespace (AllNamespaces mode), so tests can install the bundle
//! as OLM would without OLM: the ServiceAccount and the RBAC of its
//! `permissions` and `clusterPermissions`, the Deployment of its install
//! strategy with a Subscription's `config.env` merged into the container,
//! and for its `webhookdefinitions` what OLM's webhook support makes: a
//! Service to the Deployment, a serving certificate signed by a CA of its
//! own, mounted at `/tmp/k8s-webhook-server/serving-certs`, and a
//! ValidatingWebhookConfiguration per definition with that CA.

use serde_json::{Value, json};

use crate::{CertificateAuthority, TestEnvError};

/// The objects OLM would create from `csv` in `namespace`, with
/// `subscription_env` (a Subscription's `spec.config.env`) overriding the
/// container's variables of the same names.
pub fn olm_objects(
    csv: &Value,
    namespace: &str,
    subscription_env: &[(String, String)],
) -> Result<Vec<Value>, TestEnvError> {
    let install = &csv["spec"]["install"]["spec"];
    let deployment = &install["deployments"][0];
    let name = deployment["name"]
        .as_str()
        .ok_or_else(|| TestEnvError::Install("the CSV's deployment has no name".into()))?;
    let sa = install["permissions"][0]["serviceAccountName"]
        .as_str()
        .ok_or_else(|| {
            TestEnvError::Install("the CSV's permissions name no ServiceAccount".into())
        })?;
    let subject = json!([{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]);
    let role_ref = |kind: &str, name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
    let cluster_role = format!("{namespace}-{sa}");
    let mut spec = deployment["spec"].clone();
    merge_env(&mut spec, subscription_env);
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": sa, "namespace": namespace}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": cluster_role}, "rules": install["clusterPermissions"][0]["rules"]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": cluster_role}, "roleRef": role_ref("ClusterRole", &cluster_role),
               "subjects": subject}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": sa, "namespace": namespace},
               "rules": install["permissions"][0]["rules"]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": sa, "namespace": namespace}, "roleRef": role_ref("Role", sa),
               "subjects": subject}),
    ];
    let definitions = csv["spec"]["webhookdefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !definitions.is_empty() {
        objects.extend(webhook_objects(name, namespace, &mut spec, &definitions)?);
    }
    objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": name, "namespace": namespace,
                                     "labels": deployment["label"]},
                        "spec": spec}));
    Ok(objects)
}

/// OLM's merge of a Subscription's `config.env`: same names replaced,
/// new ones appended, in every container.
fn merge_env(spec: &mut Value, overrides: &[(String, String)]) {
    let containers = spec["template"]["spec"]["containers"].as_array_mut();
    for container in containers.into_iter().flatten() {
        if !container["env"].is_array() {
            container["env"] = json!([]);
        }
        let env = container["env"].as_array_mut().expect("made an array");
        for (name, value) in overrides {
            env.retain(|var| var["name"] != name.as_str());
            env.push(json!({"name": name, "value": value}));
        }
    }
}

/// OLM's webhook Service, certificate Secret (mounted into `spec`) and
/// configurations.
fn webhook_objects(
    deployment: &str,
    namespace: &str,
    spec: &mut Value,
    definitions: &[Value],
) -> Result<Vec<Value>, TestEnvError> {
    let service = format!("{deployment}-service");
    let first = &definitions[0];
    let ca = CertificateAuthority::new(&format!("olm-{deployment}"))?;
    let host = format!("{service}.{namespace}.svc");
    let cert = ca.server_cert(&host, &[&host, &format!("{service}.{namespace}")])?;
    let secret = format!("{service}-cert");
    let pod = &mut spec["template"]["spec"];
    pod["volumes"] = json!([{"name": "webhook-cert", "secret": {"secretName": secret,
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}}]);
    pod["containers"][0]["volumeMounts"] = json!([{"name": "webhook-cert",
        "mountPath": "/tmp/k8s-webhook-server/serving-certs", "readOnly": true}]);
    let selector = spec["selector"]["matchLabels"].clone();
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": service, "namespace": namespace},
               "spec": {"selector": selector, "ports": [{"name": "443", "port": first["containerPort"],
                        "targetPort": first["targetPort"]}]}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
               "metadata": {"name": secret, "namespace": namespace},
               "stringData": {"tls.crt": cert.cert_pem, "tls.key": cert.key_pem}}),
    ];
    let bundle = base64(ca.cert_pem());
    for definition in definitions {
        let name = definition["generateName"].as_str().unwrap_or_default();
        let mut hook = json!({
            "name": name,
            "clientConfig": {"service": {"namespace": namespace, "name": service,
                                         "path": definition["webhookPath"], "port": definition["containerPort"]},
                             "caBundle": bundle},
        });
        for field in super::bundle::WEBHOOK_FIELDS {
            if !definition[field].is_null() {
                hook[field] = definition[field].clone();
            }
        }
        objects.push(json!({"apiVersion": "admissionregistration.k8s.io/v1",
                            "kind": "ValidatingWebhookConfiguration",
                            "metadata": {"name": format!("{name}-{namespace}")},
                            "webhooks": [hook]}));
    }
    Ok(objects)
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
