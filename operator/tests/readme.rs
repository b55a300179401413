//! The README's settings and metrics tables are checked against the code,
//! so they cannot go stale.

use apisix_operator::telemetry::{SyncMetrics, TranslateMetrics};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

fn section(readme: &str, title: &str) -> String {
    let start = readme
        .find(title)
        .unwrap_or_else(|| panic!("README has no {title}"));
    let rest = &readme[start + title.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn the_readme_documents_exactly_the_registered_metrics() {
    let readme = readme();
    let section = section(&readme, "### Metrics");
    let mut documented: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect();
    let mut registered: Vec<String> = SyncMetrics::NAMES
        .iter()
        .chain(&TranslateMetrics::NAMES)
        .chain(&apisix_operator::telemetry::AdmissionMetrics::NAMES)
        .map(|n| n.to_string())
        .collect();
    documented.sort();
    registered.sort();
    assert_eq!(documented, registered);
}

#[test]
fn the_readme_documents_every_setting_of_run() {
    let table = apisix_operator::cli::settings_table();
    assert!(
        readme().contains(&table),
        "README.md must contain the settings table of `run`, exactly:\n{table}"
    );
}
