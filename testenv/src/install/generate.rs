//! The derived files of `deploy/`, computed from the chart, `crds/` and
//! `examples/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{CHART, InstallTools, NAMESPACE, bundle, parse_documents};
use crate::TestEnvError;

/// A file the generator owns: its path relative to the repository root and
/// its exact contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: PathBuf,
    pub contents: String,
}

impl GeneratedFile {
    pub(super) fn new(path: impl Into<PathBuf>, contents: String) -> GeneratedFile {
        GeneratedFile {
            path: path.into(),
            contents,
        }
    }
}

pub(super) fn read(root: &Path, relative: &str) -> Result<String, TestEnvError> {
    std::fs::read_to_string(root.join(relative))
        .map_err(|e| TestEnvError::io(format!("reading {relative}"), e))
}

/// Every derived file, as it should be.
pub fn generated_files(
    root: &Path,
    tools: &InstallTools,
) -> Result<Vec<GeneratedFile>, TestEnvError> {
    let crds_text = read(root, "crds/apisix-operator-crds.yaml")?;
    let crds = parse_documents(&crds_text, "crds/apisix-operator-crds.yaml")?;
    let mut files = vec![
        GeneratedFile::new(
            format!("{CHART}/crds/apisix-operator-crds.yaml"),
            crds_text.clone(),
        ),
        GeneratedFile::new("deploy/manifests/crds.yaml", crds_text),
    ];

    let render = tools.helm_template(&root.join(CHART), NAMESPACE, &[], false)?;
    for (template, documents) in split_by_template(&render)? {
        files.push(GeneratedFile::new(
            format!("deploy/manifests/{template}"),
            format!(
                "# Generated from {CHART}/templates/{template} with default values by\n\
                 # `make deploy-manifests`: edit the chart, not this file.\n{}",
                documents.join("---\n")
            ),
        ));
    }
    let rendered = parse_documents(&render, "the chart's default render")?;
    files.extend(bundle::bundle_files(root, &rendered, &crds)?);
    Ok(files)
}

/// Splits `helm template` output by the template each document came from
/// (its `# Source:` line), dropping that line.
fn split_by_template(render: &str) -> Result<BTreeMap<String, Vec<String>>, TestEnvError> {
    let mut by_template: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for document in render
        .split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
    {
        if document.trim().is_empty() {
            continue;
        }
        let (first, rest) = document.split_once('\n').unwrap_or((document, ""));
        let template = first
            .strip_prefix("# Source: ")
            .and_then(|source| source.split_once("/templates/"))
            .map(|(_, file)| file.to_string())
            .ok_or_else(|| {
                TestEnvError::Install(format!(
                    "a rendered document does not start with its # Source line: {first}"
                ))
            })?;
        let mut text = rest.trim_end().to_string();
        text.push('\n');
        by_template.entry(template).or_default().push(text);
    }
    Ok(by_template)
}

/// The generated files whose contents on disk differ (or that are missing).
pub fn stale_files(root: &Path, files: &[GeneratedFile]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|file| {
            std::fs::read_to_string(root.join(&file.path))
                .ok()
                .as_deref()
                != Some(file.contents.as_str())
        })
        .map(|file| file.path.clone())
        .collect()
}

/// Writes the files that changed; returns their paths.
pub fn write_files(root: &Path, files: &[GeneratedFile]) -> Result<Vec<PathBuf>, TestEnvError> {
    let stale = stale_files(root, files);
    for file in files.iter().filter(|f| stale.contains(&f.path)) {
        let path = root.join(&file.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| TestEnvError::io(format!("creating {}", dir.display()), e))?;
        }
        std::fs::write(&path, &file.contents)
            .map_err(|e| TestEnvError::io(format!("writing {}", path.display()), e))?;
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_helm_output_by_template() {
        let render = "---\n# Source: c/templates/a.yaml\nkind: A\n---\n# Source: c/templates/b.yaml\nkind: B\n---\n# Source: c/templates/a.yaml\nkind: A2\n";
        let split = split_by_template(render).unwrap();
        assert_eq!(split["a.yaml"], vec!["kind: A\n", "kind: A2\n"]);
        assert_eq!(split["b.yaml"], vec!["kind: B\n"]);
        assert!(split_by_template("---\nkind: A\n").is_err());
    }
}
