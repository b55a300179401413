//! The core stays pure: its dependencies are data, serialization, schema and
//! crypto crates, never a runtime, a client, a server or a filesystem crate.
//! (The compiler then refuses any I/O the list below does not bring, and
//! `clippy.toml` refuses std's own.)

const ALLOWED: &[&str] = &[
    "aes",
    "base64",
    "cbc",
    "imbl",
    "jsonschema",
    "k8s-openapi",
    "kube-core",
    "kube-derive",
    "regex",
    "schemars",
    "serde",
    "serde_json",
    "serde-saphyr",
    "serde_path_to_error",
    "sha2",
    "thiserror",
    // Parses certificates (an HTTPS listener without a hostname serves its
    // certificate's DNS names).
    "x509-parser",
];

/// The names under `[dependencies]` of the core's manifest.
fn dependencies(manifest: &str) -> Vec<&str> {
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[dependencies]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split_once("=").map(|(name, _)| name.trim()))
        .map(|name| name.trim_end_matches(".workspace"))
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

#[test]
fn the_core_depends_only_on_pure_crates() {
    let manifest = include_str!("../Cargo.toml");
    let deps = dependencies(manifest);
    assert!(deps.contains(&"serde"), "the manifest parses: {deps:?}");
    let impure: Vec<&&str> = deps.iter().filter(|d| !ALLOWED.contains(d)).collect();
    assert!(
        impure.is_empty(),
        "the core must not depend on {impure:?}: I/O belongs in the operator crate"
    );
    for forbidden in ["tokio", "kube", "etcd-client", "axum", "hyper", "reqwest"] {
        assert!(!deps.contains(&forbidden));
    }
}
