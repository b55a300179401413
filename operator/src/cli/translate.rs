//! `apisix-operator translate -f PATH...`: the same translation as `run`,
//! offline, from Kubernetes YAML files; prints the etcd dump (key → value)
//! that `validate.py` reads. Failures go to stderr; exit status 1 if any unit
//! failed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::index::{ClusterIndex, UnitOutcome};
use crate::registry;
use crate::translate::TranslateConfig;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML: {reason}")]
    Yaml { path: PathBuf, reason: String },
    #[error("{path}: {kind} {name}: {reason}")]
    Object {
        path: PathBuf,
        kind: String,
        name: String,
        reason: String,
    },
}

/// The YAML and JSON files under `paths` (directories recursively), sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(read_error)? {
            let entry = entry.map_err(read_error)?.path();
            let is_manifest = entry
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
            if entry.is_dir() || is_manifest {
                collect(&entry, files)?;
            }
        }
        Ok(())
    } else {
        std::fs::metadata(path).map_err(read_error)?;
        files.push(path.to_path_buf());
        Ok(())
    }
}

/// Every Kubernetes object in a file (multi-document YAML, `List` kinds
/// unwrapped).
pub fn read_objects(path: &Path) -> Result<Vec<Value>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| LoadError::Yaml {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut objects = Vec::new();
    for document in documents {
        unwrap_lists(document, &mut objects);
    }
    Ok(objects)
}

fn unwrap_lists(document: Value, out: &mut Vec<Value>) {
    match document {
        Value::Null => {}
        Value::Object(ref map)
            if map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List")) =>
        {
            if let Some(Value::Array(items)) = map.get("items") {
                for item in items.clone() {
                    unwrap_lists(item, out);
                }
            }
        }
        other => out.push(other),
    }
}

/// Feeds one object into the index, decoded by its registered kind (as a
/// watch would). Returns false for kinds translation does not read.
pub fn apply_object(
    index: &mut ClusterIndex,
    path: &Path,
    mut object: Value,
) -> Result<bool, LoadError> {
    let text = |field: &str| -> String {
        object
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind_name) = (text("apiVersion"), text("kind"));
    let Some(kind) = registry::kind_of_manifest(&api_version, &kind_name) else {
        return Ok(false);
    };
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if kind.namespaced() {
            // Namespaced objects without a namespace land in "default", as
            // kubectl would put them.
            meta.entry("namespace").or_insert_with(|| "default".into());
        } else {
            meta.remove("namespace");
        }
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let decoded = kind.decode(object).map_err(|e| LoadError::Object {
        path: path.to_path_buf(),
        kind: kind_name,
        name,
        reason: e.to_string(),
    })?;
    let key = kind.key_of(&decoded);
    index.apply_object(kind, key, decoded);
    Ok(true)
}

/// The dump: every desired key → its value (no timestamps).
pub fn dump(index: &ClusterIndex) -> BTreeMap<String, Value> {
    index
        .desired()
        .iter()
        .map(|(key, desired)| (key.as_str().to_string(), desired.value.to_json()))
        .collect()
}

/// Runs the subcommand; returns the exit status.
pub fn run(config: TranslateConfig, paths: &[PathBuf]) -> std::process::ExitCode {
    let mut index = ClusterIndex::new(config);
    let mut failed = false;
    let files = match collect_files(paths) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for file in &files {
        match read_objects(file) {
            Ok(objects) => {
                for object in objects {
                    if let Err(err) = apply_object(&mut index, file, object) {
                        eprintln!("error: {err}");
                        failed = true;
                    }
                }
            }
            Err(err) => {
                eprintln!("error: {err}");
                failed = true;
            }
        }
    }
    for outcome in index.flush() {
        if let UnitOutcome::Failed { unit, error } = outcome {
            eprintln!("error: {unit}: {error}");
            failed = true;
        }
    }
    let text = serde_json::to_string_pretty(&dump(&index)).expect("JSON values serialize");
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{text}").is_err() {
        return std::process::ExitCode::FAILURE;
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
