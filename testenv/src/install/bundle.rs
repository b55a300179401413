//! The OLM bundle's derived files: the CRDs, the PodDisruptionBudget and the
//! metrics Service, and the generated parts of the ClusterServiceVersion.
//!
//! OLM manages the admission webhook itself: it creates the webhook
//! configuration from the CSV's `webhookdefinitions` (its own Service, CA
//! and `caBundle`, and a namespace selector matching the OperatorGroup's
//! namespaces) and mounts the serving certificate into the Deployment at
//! [`OLM_CERT_DIR`]. So the chart's ValidatingWebhookConfiguration, webhook
//! Service and certificate RBAC are not bundle manifests: the webhooks
//! become `webhookdefinitions`, and the Deployment serves OLM's certificate
//! instead of managing its own.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use super::generate::{GeneratedFile, read};
use super::{BUNDLE, CHART, of_kind, parse_documents, to_yaml};
use crate::TestEnvError;

pub(super) const CSV_FILE: &str = "apisix-operator.clusterserviceversion.yaml";

/// The fields a webhook and its OLM definition share, copied both ways
/// (chart → definition here, definition → configuration in `olm`).
pub const WEBHOOK_FIELDS: [&str; 7] = [
    "rules",
    "failurePolicy",
    "matchPolicy",
    "objectSelector",
    "sideEffects",
    "timeoutSeconds",
    "admissionReviewVersions",
];

/// Where OLM mounts a webhook's `tls.crt` and `tls.key` in the Deployment.
const OLM_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";

/// The flags of operator-managed webhook certificates (its Secret, the
/// configuration whose caBundle it patches, the names it certifies): with
/// OLM's certificate the operator needs none of them.
const MANAGED_CERT_FLAGS: [&str; 3] = [
    "--webhook-secret",
    "--webhook-configuration",
    "--webhook-hosts",
];

pub(super) fn bundle_files(
    root: &Path,
    rendered: &[Value],
    crds: &[Value],
) -> Result<Vec<GeneratedFile>, TestEnvError> {
    let mut files = Vec::new();
    for crd in crds {
        files.push(GeneratedFile::new(
            format!(
                "{BUNDLE}/manifests/{}_{}.yaml",
                crd["spec"]["group"].as_str().unwrap_or_default(),
                crd["spec"]["names"]["plural"].as_str().unwrap_or_default()
            ),
            to_yaml(crd),
        ));
    }
    // OLM creates these next to the Deployment, in the install namespace.
    let name = deployment_name(rendered)?;
    for object in [
        of_kind(rendered, "PodDisruptionBudget")?,
        named(rendered, "Service", &format!("{name}-metrics"))?,
    ] {
        let mut object = object.clone();
        strip_namespace(&mut object);
        files.push(GeneratedFile::new(
            format!("{BUNDLE}/manifests/{}", bundle_file_name(&object)),
            to_yaml(&object),
        ));
    }

    let csv_path = format!("{BUNDLE}/manifests/{CSV_FILE}");
    let mut csv = parse_documents(&read(root, &csv_path)?, &csv_path)?
        .into_iter()
        .next()
        .ok_or_else(|| TestEnvError::Install(format!("{csv_path} is empty")))?;
    fill_csv(root, &mut csv, rendered, crds)?;
    files.push(GeneratedFile::new(csv_path, to_yaml(&csv)));
    Ok(files)
}

/// operator-sdk's naming: `<name>_<group>_<version>_<kind>.yaml`.
fn bundle_file_name(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default().to_lowercase();
    format!("{name}_{}_{kind}.yaml", api_version.replace('/', "_"))
}

fn deployment_name(rendered: &[Value]) -> Result<String, TestEnvError> {
    of_kind(rendered, "Deployment")?["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| TestEnvError::Install("the chart's Deployment has no name".into()))
}

/// The object of `kind` named `name` in the render.
fn named<'a>(rendered: &'a [Value], kind: &str, name: &str) -> Result<&'a Value, TestEnvError> {
    rendered
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .ok_or_else(|| TestEnvError::Install(format!("the chart renders no {kind} {name}")))
}

fn strip_namespace(object: &mut Value) {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("namespace");
    }
}

/// Overwrites the CSV's derived fields; keeps the hand-written ones.
fn fill_csv(
    root: &Path,
    csv: &mut Value,
    rendered: &[Value],
    crds: &[Value],
) -> Result<(), TestEnvError> {
    let chart = parse_documents(&read(root, &format!("{CHART}/Chart.yaml"))?, "Chart.yaml")?;
    let version = chart
        .first()
        .and_then(|c| c["appVersion"].as_str())
        .ok_or_else(|| TestEnvError::Install("Chart.yaml has no appVersion".into()))?
        .to_string();
    let deployment = of_kind(rendered, "Deployment")?;
    let name = deployment_name(rendered)?;
    let service_account = deployment["spec"]["template"]["spec"]["serviceAccountName"].clone();
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].clone();

    csv["metadata"]["name"] = json!(format!("apisix-operator.v{version}"));
    csv["spec"]["version"] = json!(version);
    let annotations = &mut csv["metadata"]["annotations"];
    annotations["containerImage"] = image;
    annotations["alm-examples"] = json!(alm_examples(root, crds)?);

    let icon = read(root, "deploy/olm/icon.svg")?;
    csv["spec"]["icon"] = json!([{
        "base64data": base64::engine::general_purpose::STANDARD.encode(icon),
        "mediatype": "image/svg+xml",
    }]);

    csv["spec"]["install"] = json!({
        "strategy": "deployment",
        "spec": {
            "deployments": [{
                "name": deployment["metadata"]["name"],
                "label": deployment["metadata"]["labels"],
                "spec": olm_deployment_spec(deployment)?,
            }],
            // The operator's own; not those of the certificate it manages
            // outside OLM (`<name>-webhook-cert`).
            "permissions": [{
                "serviceAccountName": service_account,
                "rules": named(rendered, "Role", &format!("{name}-leader-election"))?["rules"],
            }],
            "clusterPermissions": [{
                "serviceAccountName": service_account,
                "rules": named(rendered, "ClusterRole", &name)?["rules"],
            }],
        },
    });
    let webhooks = webhook_definitions(rendered)?;
    let spec = csv["spec"]
        .as_object_mut()
        .ok_or_else(|| TestEnvError::Install(format!("{CSV_FILE} has no spec")))?;
    if webhooks.is_empty() {
        spec.remove("webhookdefinitions");
    } else {
        spec.insert("webhookdefinitions".into(), json!(webhooks));
    }

    let described = csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut owned = Vec::new();
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let mut entry = described
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or_else(|| json!({}));
        for field in ["displayName", "description"] {
            if !entry[field].is_string() {
                return Err(TestEnvError::Install(format!(
                    "describe {name} in {BUNDLE}/manifests/{CSV_FILE}: \
                     spec.customresourcedefinitions.owned needs its {field}"
                )));
            }
        }
        let served = crd["spec"]["versions"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["storage"] == true))
            .ok_or_else(|| TestEnvError::Install(format!("{name} has no storage version")))?;
        entry["name"] = json!(name);
        entry["kind"] = crd["spec"]["names"]["kind"].clone();
        entry["version"] = served["name"].clone();
        owned.push(entry);
    }
    csv["spec"]["customresourcedefinitions"]["owned"] = json!(owned);
    Ok(())
}

/// The chart's Deployment spec, scoped by OLM: the namespaces of the
/// OperatorGroup arrive in the `olm.targetNamespaces` annotation (empty for
/// AllNamespaces, which the operator reads as "every namespace"); the
/// webhook, when on, serves the certificate OLM mounts.
fn olm_deployment_spec(deployment: &Value) -> Result<Value, TestEnvError> {
    let mut spec = deployment["spec"].clone();
    let container = &mut spec["template"]["spec"]["containers"][0];
    if let Some(env) = container["env"].as_array_mut() {
        env.push(json!({
            "name": "APISIX_OPERATOR_NAMESPACES",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['olm.targetNamespaces']"}},
        }));
    }
    if let Some(args) = container["args"].as_array_mut() {
        let has_flag = |arg: &Value, flag: &str| {
            arg.as_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        };
        if args.iter().any(|a| has_flag(a, "--webhook-cert-dir")) {
            return Err(TestEnvError::Install(
                "the chart's default Deployment must not set --webhook-cert-dir: OLM's certificate \
                 replaces the operator-managed one in the bundle"
                    .into(),
            ));
        }
        args.retain(|a| !MANAGED_CERT_FLAGS.iter().any(|flag| has_flag(a, flag)));
        if let Some(at) = args
            .iter()
            .position(|a| has_flag(a, "--webhook-listen-address"))
        {
            args.insert(at + 1, json!(format!("--webhook-cert-dir={OLM_CERT_DIR}")));
        }
    }
    settings_as_env(container);
    Ok(spec)
}

/// The container's `--flag=value` settings as `APISIX_OPERATOR_FLAG`
/// variables instead (in the same order, before the others): OLM users
/// configure an operator through their Subscription's `config.env`, which
/// replaces variables of the same name but cannot touch arguments, and a
/// flag would win over any variable.
fn settings_as_env(container: &mut Value) {
    let args = container["args"].as_array().cloned().unwrap_or_default();
    let mut kept = Vec::new();
    let mut settings = Vec::new();
    for arg in args {
        let setting = arg
            .as_str()
            .and_then(|a| a.strip_prefix("--"))
            .and_then(|a| a.split_once('='));
        match setting {
            Some((flag, value)) => settings.push(json!({
                "name": format!("APISIX_OPERATOR_{}", flag.to_ascii_uppercase().replace('-', "_")),
                "value": value,
            })),
            None => kept.push(arg),
        }
    }
    container["args"] = json!(kept);
    settings.extend(container["env"].as_array().cloned().unwrap_or_default());
    container["env"] = json!(settings);
}

/// The chart's webhooks as OLM webhook definitions: the same rules and
/// policies, served by the Deployment on the port the chart's webhook
/// Service targets. No namespaceSelector (OLM sets it to the
/// OperatorGroup's namespaces) and no clientConfig (OLM's own Service).
fn webhook_definitions(rendered: &[Value]) -> Result<Vec<Value>, TestEnvError> {
    let Some(configuration) = rendered
        .iter()
        .find(|o| o["kind"] == "ValidatingWebhookConfiguration")
    else {
        return Ok(Vec::new());
    };
    let deployment = of_kind(rendered, "Deployment")?;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut definitions = Vec::new();
    for webhook in configuration["webhooks"].as_array().into_iter().flatten() {
        let name = webhook["name"].as_str().unwrap_or_default();
        let service = &webhook["clientConfig"]["service"];
        let target = named(
            rendered,
            "Service",
            service["name"].as_str().unwrap_or_default(),
        )?["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"] == service["port"])
            .map(|p| p["targetPort"].clone())
            .ok_or_else(|| {
                TestEnvError::Install(format!(
                    "webhook {name}: its Service has no port {}",
                    service["port"]
                ))
            })?;
        // A named target port is the container's port of that name.
        let target_port = match target.as_str() {
            Some(port_name) => container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == port_name)
                .map(|p| p["containerPort"].clone())
                .ok_or_else(|| {
                    TestEnvError::Install(format!(
                        "webhook {name}: the container has no port {port_name}"
                    ))
                })?,
            None => target,
        };
        let mut definition = json!({
            "type": "ValidatingAdmissionWebhook",
            "generateName": name,
            "deploymentName": deployment["metadata"]["name"],
            "containerPort": service["port"],
            "targetPort": target_port,
            "webhookPath": service["path"],
        });
        for field in WEBHOOK_FIELDS {
            if !webhook[field].is_null() {
                definition[field] = webhook[field].clone();
            }
        }
        definitions.push(definition);
    }
    Ok(definitions)
}

/// One example per owned kind, from `examples/apisix/`, as the JSON the
/// console offers when creating one.
fn alm_examples(root: &Path, crds: &[Value]) -> Result<String, TestEnvError> {
    let path = "examples/apisix/shop-apisix.yaml";
    let objects = parse_documents(&read(root, path)?, path)?;
    let mut examples = Vec::new();
    for crd in crds {
        let kind = &crd["spec"]["names"]["kind"];
        let mut example = objects
            .iter()
            .find(|o| &o["kind"] == kind)
            .cloned()
            .ok_or_else(|| TestEnvError::Install(format!("{path} has no {kind} example")))?;
        strip_namespace(&mut example);
        examples.push(example);
    }
    Ok(serde_json::to_string_pretty(&examples).expect("JSON values serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_files_are_named_like_operator_sdk_names_them() {
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "m"}});
        assert_eq!(bundle_file_name(&service), "m_v1_service.yaml");
        let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}});
        assert_eq!(
            bundle_file_name(&pdb),
            "p_policy_v1_poddisruptionbudget.yaml"
        );
    }

    #[test]
    fn the_olm_deployment_reads_the_target_namespaces() {
        let deployment = json!({"spec": {"template": {"spec": {"containers": [{"env": []}]}}}});
        let spec = olm_deployment_spec(&deployment).unwrap();
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['olm.targetNamespaces']"
        );
    }

    #[test]
    fn the_olm_deployment_serves_olms_webhook_certificate() {
        let args = [
            "run",
            "--webhook-listen-address=0.0.0.0:9443",
            "--webhook-secret=s",
            "--webhook-configuration=c",
            "--webhook-hosts=a.b.svc",
            "--log-level=info",
        ];
        let deployment = json!({"spec": {"template": {"spec": {"containers": [{"args": args}]}}}});
        let spec = olm_deployment_spec(&deployment).unwrap();
        let container = &spec["template"]["spec"]["containers"][0];
        assert_eq!(container["args"], json!(["run"]));
        // Settings are variables, which a Subscription's config.env can
        // override (a flag would win over them).
        assert_eq!(
            container["env"],
            json!([
                {"name": "APISIX_OPERATOR_WEBHOOK_LISTEN_ADDRESS", "value": "0.0.0.0:9443"},
                {"name": "APISIX_OPERATOR_WEBHOOK_CERT_DIR", "value": OLM_CERT_DIR},
                {"name": "APISIX_OPERATOR_LOG_LEVEL", "value": "info"},
            ])
        );
        // Without the webhook, nothing is added.
        let deployment =
            json!({"spec": {"template": {"spec": {"containers": [{"args": ["run"]}]}}}});
        let spec = olm_deployment_spec(&deployment).unwrap();
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["args"],
            json!(["run"])
        );
    }

    #[test]
    fn webhooks_become_olm_definitions_on_the_container_port() {
        let rendered = vec![
            json!({"kind": "Deployment", "metadata": {"name": "op"},
                   "spec": {"template": {"spec": {"containers": [
                       {"ports": [{"name": "metrics", "containerPort": 9090},
                                  {"name": "webhook", "containerPort": 9443}]}]}}}}),
            json!({"kind": "Service", "metadata": {"name": "op-webhook"},
                   "spec": {"ports": [{"port": 443, "targetPort": "webhook"}]}}),
            json!({"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "op"},
                   "webhooks": [{"name": "a.b.c", "failurePolicy": "Fail", "sideEffects": "None",
                                 "rules": [{"apiGroups": ["x"]}],
                                 "namespaceSelector": {"matchLabels": {"a": "b"}},
                                 "clientConfig": {"service": {"name": "op-webhook", "namespace": "ns",
                                                              "path": "/validate", "port": 443}}}]}),
        ];
        let definitions = webhook_definitions(&rendered).unwrap();
        assert_eq!(
            definitions,
            vec![json!({
                "type": "ValidatingAdmissionWebhook", "generateName": "a.b.c",
                "deploymentName": "op", "containerPort": 443, "targetPort": 9443,
                "webhookPath": "/validate", "failurePolicy": "Fail", "sideEffects": "None",
                "rules": [{"apiGroups": ["x"]}],
            })]
        );
        assert!(webhook_definitions(&rendered[..2]).unwrap().is_empty());
    }
}
