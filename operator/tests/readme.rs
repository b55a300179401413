//! The README's metric table is checked against the code, so it cannot go stale.

use apisix_operator::telemetry::SyncMetrics;

fn readme_section(title: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find(title)
        .unwrap_or_else(|| panic!("README has no {title}"));
    let rest = &readme[start + title.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn the_readme_documents_exactly_the_registered_metrics() {
    let section = readme_section("### Metrics");
    let documented: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect();
    let mut registered: Vec<String> = SyncMetrics::NAMES.iter().map(|n| n.to_string()).collect();
    let mut sorted_documented = documented.clone();
    sorted_documented.sort();
    registered.sort();
    assert_eq!(sorted_documented, registered);
}
