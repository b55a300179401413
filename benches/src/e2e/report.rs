//! The end-to-end benchmark's results: JSON for machines, a Markdown table
//! for the README, and the machine they were measured on.

use std::fmt::Write as _;

use serde::Serialize;

use super::{ScaleReport, Settings};

/// The machine and its state when the run started.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub load_average: String,
    pub started: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            load_average: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            started: jiff::Timestamp::now().to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub command: String,
    pub scales: Vec<ScaleReport>,
}

fn latency(p: Option<&super::Percentiles>) -> String {
    p.map_or("–".into(), |p| {
        format!("{} / {} / {}", p.p50_ms, p.p99_ms, p.max_ms)
    })
}

impl Report {
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Measured with `{}` on {} ({} cores, {} GiB), load average {} at the start, {}.\n",
            self.command, m.cpu, m.cores, m.memory_gib, m.load_average, m.started
        );
        out.push_str("| routes + Ingresses | keys | cold sync: keys / ready | RSS after sync (peak) | one change after sync p50 / p99 / max | settled p50 / p99 / max |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- |\n");
        for s in &self.scales {
            let _ = writeln!(
                out,
                "| {} + {} | {} | {:.2} s / {:.2} s | {:.0} MiB ({:.0}) | {} ms | {} ms |",
                s.routes,
                s.ingresses,
                s.keys,
                s.cold_keys_seconds,
                s.cold_ready_seconds,
                s.leader_after_sync.rss_mib,
                s.leader_after_sync.peak_mib,
                latency(s.changes_after_sync.get("all")),
                latency(s.changes_settled.get("all")),
            );
        }
        out.push_str("\n| routes | change kind | after sync p50 / p99 / max | settled p50 / p99 / max |\n| --- | --- | --- | --- |\n");
        for s in &self.scales {
            for (kind, p) in &s.changes_settled {
                if kind == "all" {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {} | {kind} | {} ms | {} ms |",
                    s.routes,
                    latency(s.changes_after_sync.get(kind)),
                    latency(Some(p))
                );
            }
        }
        let drifts: Vec<_> = self
            .scales
            .iter()
            .filter_map(|s| Some((s, s.drift.as_ref()?)))
            .collect();
        if !drifts.is_empty() {
            out.push_str("\n| routes | drift repaired: owned key overwritten p50 / p99 / max | owned key deleted p50 / p99 / max |\n| --- | --- | --- |\n");
            for (s, d) in drifts {
                let _ = writeln!(
                    out,
                    "| {} | {} ms | {} ms |",
                    s.routes,
                    latency(Some(&d.overwritten)),
                    latency(Some(&d.deleted))
                );
            }
        }
        let bursts: Vec<_> = self
            .scales
            .iter()
            .filter_map(|s| Some((s, s.burst.as_ref()?)))
            .collect();
        if !bursts.is_empty() {
            out.push_str("\n| routes | burst of EndpointSlice changes | keys written | transactions | converged after |\n| --- | --- | --- | --- | --- |\n");
            for (s, b) in bursts {
                let _ = writeln!(
                    out,
                    "| {} | {} at once | {} | {} | {:.2} s |",
                    s.routes, b.changes, b.keys_written, b.transactions, b.converged_after_seconds
                );
            }
        }
        let churns: Vec<_> = self
            .scales
            .iter()
            .filter_map(|s| Some((s, s.churn.as_ref()?)))
            .collect();
        if !churns.is_empty() {
            out.push_str("\n| routes | EndpointSlice churn | max index queue | keys written / update | transactions / update | converged after |\n| --- | --- | --- | --- | --- | --- |\n");
            for (s, c) in churns {
                let _ = writeln!(
                    out,
                    "| {} | {} updates, {:.0}/s | {} | {:.2} | {:.2} | {:.2} s |",
                    s.routes,
                    c.updates,
                    c.per_second,
                    c.max_queue_depth,
                    c.keys_written_per_update,
                    c.transactions_per_update,
                    c.converged_after_seconds
                );
            }
        }
        let failovers: Vec<_> = self
            .scales
            .iter()
            .filter_map(|s| Some((s, s.failover.as_ref()?)))
            .collect();
        if !failovers.is_empty() {
            out.push_str("\n| routes | failover: SIGKILL / SIGTERM → next commit | leader / follower RSS | idle full resync: duration, keys written |\n| --- | --- | --- | --- |\n");
            for (s, f) in failovers {
                let resync = s.idle_resync.as_ref().map_or("–".into(), |r| {
                    format!("{:.3} s, {}", r.duration_seconds, r.keys_written)
                });
                let _ = writeln!(
                    out,
                    "| {} | {:.0} ms / {:.0} ms | {:.0} / {:.0} MiB | {} |",
                    s.routes,
                    f.sigkill_gap_ms,
                    f.sigterm_gap_ms,
                    f.leader.rss_mib,
                    f.follower.rss_mib,
                    resync
                );
            }
        }
        out
    }
}
