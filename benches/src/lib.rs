//! Shared helpers of the benchmarks in `benches/`.
//!
//! `cargo bench -p apisix-operator-benches` runs them all. The end-to-end
//! benchmarks (etcd_write, failover) print their figures; under `cargo test`
//! they run a reduced smoke version so the code stays exercised in CI.

use std::time::Duration;

pub mod e2e;

/// True when run by `cargo bench` (which passes `--bench`), false under
/// `cargo test --all-targets`.
pub fn full_run() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Formats a sorted list of durations as min / median / max.
pub fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    if samples.is_empty() {
        return "no samples".into();
    }
    format!(
        "min {:?}, median {:?}, max {:?} over {} runs",
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
        samples.len()
    )
}
