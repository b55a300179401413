//! End-to-end: the real binary on real objects at scale (see
//! `apisix_operator_benches::e2e`). `cargo bench --bench e2e` (what `make
//! bench` runs) measures 1,000 and 10,000 ApisixRoutes plus 2,000 Ingresses
//! (`E2E_SCALES=1000,10000,100000` adds more) and writes
//! `benches/results/e2e.json` and `e2e.md` (`E2E_RESULTS` elsewhere;
//! `E2E_COLD_ONLY=1` stops after the cold start and keeps the leader's log,
//! `E2E_LOG_LEVEL` sets its level, for profiling); under `cargo test` a small scale
//! runs every scenario once, numbers printed, not asserted.

use std::time::Duration;

use apisix_operator_benches::e2e::report::{Machine, Report};
use apisix_operator_benches::e2e::workload::Scale;
use apisix_operator_benches::e2e::{self, Settings};
use apisix_operator_benches::full_run;

fn scales(full: bool) -> Vec<Scale> {
    if !full {
        return vec![Scale {
            routes: 120,
            ingresses: 40,
        }];
    }
    let routes: Vec<usize> = std::env::var("E2E_SCALES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    routes
        .into_iter()
        .map(|routes| Scale {
            routes,
            ingresses: 2_000,
        })
        .collect()
}

fn main() {
    let full = full_run();
    let settings = if full {
        Settings {
            changes: 500,
            settle: Duration::from_secs(60),
            churn: Duration::from_secs(60),
            churn_per_second: 100,
            burst: 1_000,
            failover: true,
            resync_interval: Duration::from_secs(60),
            binary: e2e::operator_binary(),
        }
    } else {
        Settings {
            changes: 24,
            settle: Duration::from_secs(2),
            churn: Duration::from_secs(3),
            churn_per_second: 50,
            burst: 100,
            failover: true,
            resync_interval: Duration::from_secs(10),
            binary: e2e::operator_binary(),
        }
    };
    let machine = Machine::describe();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut reports = Vec::new();
    for scale in scales(full) {
        reports.push(runtime.block_on(e2e::run(scale, &settings)));
    }
    let report = Report {
        machine,
        settings,
        command: if full {
            "make bench".into()
        } else {
            "cargo test (smoke)".into()
        },
        scales: reports,
    };
    let markdown = report.markdown();
    println!("{markdown}");
    if full {
        let dir = e2e::results_dir();
        std::fs::create_dir_all(&dir).expect("benches/results");
        std::fs::write(
            dir.join("e2e.json"),
            serde_json::to_string_pretty(&report).expect("JSON"),
        )
        .expect("writing e2e.json");
        std::fs::write(dir.join("e2e.md"), markdown).expect("writing e2e.md");
    }
}
