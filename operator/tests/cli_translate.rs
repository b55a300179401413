//! `apisix-operator translate` end to end: the examples translate, the
//! output is byte-identical across runs and passes validate.py, and a bad
//! unit is reported on stderr with exit status 1 while the others still print.

use std::path::Path;
use std::process::Command;

fn translate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_apisix-operator"))
        .arg("translate")
        .args(args)
        .output()
        .unwrap()
}

fn examples() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/ingress")
        .display()
        .to_string()
}

#[test]
fn examples_translate_deterministically_into_valid_keys() {
    let first = translate(&["-f", &examples()]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = translate(&["-f", &examples(), "--prefix", "/apisix"]);
    assert_eq!(first.stdout, second.stdout, "output is not byte-identical");
    let dump: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        dump.keys()
            .filter(|k| k.starts_with("/apisix/routes/"))
            .count(),
        6
    );
    assert_eq!(
        dump.keys()
            .filter(|k| k.starts_with("/apisix/ssls/"))
            .count(),
        1
    );
    assert!(dump.values().all(|v| v.get("create_time").is_none()));
    {
        let report = apisix_operator_testenv::apisix_schema::validate(&dump, "/apisix").unwrap();
        assert!(report.passed, "{}", report.output);
    }
}

#[test]
fn a_failing_unit_is_reported_and_the_rest_still_translates() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: broken
  namespace: shop
  annotations:
    kubernetes.io/ingress.class: apisix
    k8s.apisix.apache.org/upstream-retries: "lots"
spec:
  rules:
    - http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: storefront, port: {number: 80}}
"#,
    )
    .unwrap();
    let out = translate(&["-f", &examples(), "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Ingress/shop/broken"), "{stderr}");
    assert!(stderr.contains("upstream-retries"), "{stderr}");
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The examples' ten keys (legacy-admin and storefront share the
    // storefront:80 upstream); nothing of the broken Ingress.
    assert_eq!(dump.as_object().unwrap().len(), 10);
}

#[test]
fn a_bad_prefix_or_cluster_is_a_usage_error() {
    assert_eq!(
        translate(&["-f", &examples(), "--prefix", "apisix"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        translate(&["-f", &examples(), "--cluster", "Bad_Name"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn crds_and_version_subcommands() {
    let binary = env!("CARGO_BIN_EXE_apisix-operator");
    let crds = Command::new(binary).arg("crds").output().unwrap();
    assert!(crds.status.success());
    let checked_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/apisix-operator-crds.yaml"),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&crds.stdout), checked_in);
    let version = Command::new(binary).arg("version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("apisix-operator {}", env!("CARGO_PKG_VERSION"))
    );
}
