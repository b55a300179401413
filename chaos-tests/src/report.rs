//! What a chaos scenario reports (one JSON file per scenario and seed), and
//! the Markdown table `make chaos` builds from a directory of them.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One scenario's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub seed: u64,
    /// The fault → the first commit under a newer fence claim; `None` when
    /// no other replica (or the same, re-elected) had to take over.
    pub failover_gap_ms: Option<u64>,
    /// The fault healed → etcd equal to the translation of the final state.
    pub converged_ms: u64,
    /// Workload changes made during the run (each one API write or a few).
    pub changes: u64,
    /// Puts under the APISIX prefix during the run.
    pub puts: u64,
    /// The invariants checked, each with whether it held.
    pub invariants: Vec<(String, bool)>,
}

impl ScenarioReport {
    pub fn held(&self) -> bool {
        self.invariants.iter().all(|(_, held)| *held)
    }

    /// Puts per workload change (a change can touch several keys: a shared
    /// upstream, a route and its TLS object).
    pub fn writes_per_change(&self) -> f64 {
        if self.changes == 0 {
            return 0.0;
        }
        self.puts as f64 / self.changes as f64
    }

    /// Writes `<dir>/<scenario>-<seed>.json`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}-{}.json", self.scenario, self.seed));
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

/// Every report in `dir`, by scenario then seed.
pub fn read_all(dir: &Path) -> std::io::Result<Vec<ScenarioReport>> {
    let mut reports = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            let report: ScenarioReport = serde_json::from_str(&text)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
            reports.push(report);
        }
    }
    reports.sort_by(|a, b| (&a.scenario, a.seed).cmp(&(&b.scenario, b.seed)));
    Ok(reports)
}

/// One row per scenario over all its seeds: runs, failover gap and
/// convergence (median and worst), writes per change, invariants.
pub fn markdown(reports: &[ScenarioReport]) -> String {
    let mut out = String::from(
        "| scenario | runs | failover gap median / max | converged median / max | writes per change | invariants |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut scenarios: Vec<&str> = reports.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.dedup();
    for scenario in scenarios {
        let runs: Vec<&ScenarioReport> =
            reports.iter().filter(|r| r.scenario == scenario).collect();
        let gaps: Vec<u64> = runs.iter().filter_map(|r| r.failover_gap_ms).collect();
        let converged: Vec<u64> = runs.iter().map(|r| r.converged_ms).collect();
        let writes = runs.iter().map(|r| r.writes_per_change()).sum::<f64>() / runs.len() as f64;
        let failed: Vec<String> = runs
            .iter()
            .flat_map(|r| r.invariants.iter().filter(|(_, held)| !held))
            .map(|(name, _)| name.clone())
            .collect();
        let invariants = if failed.is_empty() {
            format!("all {} held", runs[0].invariants.len())
        } else {
            format!("FAILED: {}", failed.join(", "))
        };
        out.push_str(&format!(
            "| {scenario} | {} | {} | {} | {writes:.2} | {invariants} |\n",
            runs.len(),
            median_max(&gaps),
            median_max(&converged),
        ));
    }
    out
}

fn median_max(values: &[u64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match (sorted.get(sorted.len() / 2), sorted.last()) {
        (Some(median), Some(max)) => format!("{median} / {max} ms"),
        _ => "no takeover".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: &str, seed: u64, gap: Option<u64>, held: bool) -> ScenarioReport {
        ScenarioReport {
            scenario: scenario.into(),
            seed,
            failover_gap_ms: gap,
            converged_ms: 100 * seed,
            changes: 40,
            puts: 60,
            invariants: vec![("convergence".into(), true), ("no regression".into(), held)],
        }
    }

    #[test]
    fn one_row_per_scenario_with_median_and_worst() {
        let reports = [
            report("kill", 1, Some(1800), true),
            report("kill", 2, Some(2200), true),
            report("kill", 3, Some(1900), true),
            report("lossy", 1, None, true),
        ];
        let table = markdown(&reports);
        assert!(
            table.contains("| kill | 3 | 1900 / 2200 ms | 200 / 300 ms | 1.50 | all 2 held |"),
            "{table}"
        );
        assert!(table.contains("| lossy | 1 | no takeover |"), "{table}");
    }

    #[test]
    fn a_failed_invariant_is_named_in_its_row() {
        let table = markdown(&[report("kill", 1, Some(5), false)]);
        assert!(table.contains("FAILED: no regression"), "{table}");
    }

    #[test]
    fn reports_round_trip_through_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let written = [report("b", 2, None, true), report("a", 1, Some(3), true)];
        for r in &written {
            r.write_to(dir.path()).unwrap();
        }
        let read = read_all(dir.path()).unwrap();
        assert_eq!(read, vec![written[1].clone(), written[0].clone()]);
    }
}
