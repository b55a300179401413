//! Chaos tests: replicas run as separate processes against the real test
//! environment, and the tests kill, freeze (SIGSTOP), resume and restart
//! them, partition them (`netns`), slow them (`proxy`), and restart the API
//! server and etcd members under them. See `tests/`. `workload` is the
//! seeded stream of Kubernetes changes, `history` records the full etcd
//! history of a run, `invariants` checks it, and `report` tabulates runs.
//!
//! `sync-replica` runs the operator's real leader election, fence, mirror and
//! writer; only the desired state is synthetic (read from a JSON file,
//! `{"units": N, "generation": G}`), so faults can be injected into the sync
//! engine independently of translation.

pub mod apply;
pub mod history;
pub mod invariants;
pub mod netns;
pub mod pod;
pub mod proxy;
pub mod report;
pub mod verdict;
pub mod workload;

/// The desired-state file a `sync-replica` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSpec {
    pub units: usize,
    pub generation: u64,
}

impl SyntheticSpec {
    pub fn to_json(self) -> String {
        serde_json::json!({"units": self.units, "generation": self.generation}).to_string()
    }

    pub fn parse(text: &str) -> Option<SyntheticSpec> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(SyntheticSpec {
            units: usize::try_from(value.get("units")?.as_u64()?).ok()?,
            generation: value.get("generation")?.as_u64()?,
        })
    }
}

/// The line prefix of the status lines `sync-replica` prints.
pub const STATUS_PREFIX: &str = "STATUS ";
