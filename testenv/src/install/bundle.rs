//! The OLM bundle's derived files: the CRDs, the PodDisruptionBudget and the
//! metrics Service, and the generated parts of the ClusterServiceVersion.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use super::generate::{GeneratedFile, read};
use super::{BUNDLE, CHART, of_kind, parse_documents, to_yaml};
use crate::TestEnvError;

pub(super) const CSV_FILE: &str = "apisix-operator.clusterserviceversion.yaml";

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
    for kind in ["PodDisruptionBudget", "Service"] {
        let mut object = of_kind(rendered, kind)?.clone();
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
                "spec": olm_deployment_spec(deployment),
            }],
            "permissions": [{
                "serviceAccountName": service_account,
                "rules": of_kind(rendered, "Role")?["rules"],
            }],
            "clusterPermissions": [{
                "serviceAccountName": service_account,
                "rules": of_kind(rendered, "ClusterRole")?["rules"],
            }],
        },
    });

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
/// AllNamespaces, which the operator reads as "every namespace").
fn olm_deployment_spec(deployment: &Value) -> Value {
    let mut spec = deployment["spec"].clone();
    if let Some(env) = spec["template"]["spec"]["containers"][0]["env"].as_array_mut() {
        env.push(json!({
            "name": "APISIX_OPERATOR_NAMESPACES",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['olm.targetNamespaces']"}},
        }));
    }
    spec
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
        let spec = olm_deployment_spec(&deployment);
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['olm.targetNamespaces']"
        );
    }
}
