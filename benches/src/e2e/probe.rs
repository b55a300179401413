//! What the end-to-end benchmark observes: the operator processes (their
//! `/readyz`, `/metrics` and memory), and the APISIX etcd (key counts, and a
//! watch that timestamps every change as it is seen).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use apisix_operator_testenv::{ManagedProcess, TestEnv, http, ports};
use etcd_client::{EventType, GetOptions, WatchOptions};
use tokio::sync::mpsc;

/// One `apisix-operator run` process.
pub struct Operator {
    pub identity: String,
    pub port: u16,
    pub process: ManagedProcess,
}

impl Operator {
    /// Starts the operator binary as the chart's ServiceAccount.
    pub async fn start(
        env: &TestEnv,
        binary: &Path,
        identity: &str,
        common: &[String],
    ) -> Operator {
        let port = ports::free_port().expect("a free port");
        let mut args = common.to_vec();
        args.push(format!("--identity={identity}"));
        args.push(format!("--listen-address=127.0.0.1:{port}"));
        let process = env
            .spawn_operator(&format!("bench-{identity}"), binary, &args)
            .await
            .expect("the operator starts");
        Operator {
            identity: identity.to_string(),
            port,
            process,
        }
    }

    pub fn ready(&self) -> bool {
        matches!(http::get(self.port, "/readyz"), Some((200, _)))
    }

    /// The value of a metric: `name` (its first series) or one series,
    /// `name{label="value"}`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = http::get(self.port, "/metrics")?;
        let full = format!("apisix_operator_{name}");
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .find(|line| {
                line.strip_prefix(&full).is_some_and(|rest| {
                    rest.starts_with(' ') || (!full.contains('{') && rest.starts_with('{'))
                })
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    pub fn leading(&self) -> bool {
        self.metric("leader") == Some(1.0)
    }

    /// Resident and peak resident memory, in MiB.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .unwrap_or_default();
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        Memory {
            rss_mib: field("VmRSS:"),
            peak_mib: field("VmHWM:"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_mib: f64,
}

/// The number of keys under `prefix/`.
pub async fn key_count(etcd: &mut etcd_client::Client, prefix: &str) -> usize {
    etcd.get(
        format!("{prefix}/"),
        Some(GetOptions::new().with_prefix().with_count_only()),
    )
    .await
    .map(|r| usize::try_from(r.count()).unwrap_or(0))
    .unwrap_or(0)
}

/// The store's current revision.
pub async fn revision(etcd: &mut etcd_client::Client) -> i64 {
    etcd.get("/", Some(GetOptions::new().with_count_only()))
        .await
        .ok()
        .and_then(|r| r.header().map(|h| h.revision()))
        .unwrap_or(0)
}

/// Every etcd key under `prefix/` as it changes: (key, when it was seen).
pub struct Changes {
    pub events: mpsc::UnboundedReceiver<(String, Instant)>,
    _task: tokio::task::JoinHandle<()>,
}

impl Changes {
    /// Watches `prefix/` from the store's next revision.
    pub async fn watch(mut etcd: etcd_client::Client, prefix: &str) -> Changes {
        let start = revision(&mut etcd).await + 1;
        let key = format!("{prefix}/");
        let mut end = key.clone().into_bytes();
        *end.last_mut().expect("a non-empty prefix") += 1;
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(start);
        let mut stream = etcd.watch(key, Some(options)).await.expect("an etcd watch");
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let now = Instant::now();
                for event in message.events() {
                    if event.event_type() != EventType::Put
                        && event.event_type() != EventType::Delete
                    {
                        continue;
                    }
                    if let Some(kv) = event.kv() {
                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                        if tx.send((key, now)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Changes {
            events,
            _task: task,
        }
    }

    /// Waits until every key of `keys` has changed; when the last one was
    /// seen, or `None` after `limit`.
    pub async fn all_of(
        &mut self,
        keys: &std::collections::BTreeSet<String>,
        limit: Duration,
    ) -> Option<Instant> {
        let mut missing = keys.clone();
        let mut last = None;
        let deadline = tokio::time::Instant::now() + limit;
        while !missing.is_empty() {
            let (key, at) = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()??;
            if missing.remove(&key) {
                last = Some(at);
            }
        }
        last
    }

    /// Drops what was seen so far.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.events.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    /// Waits for the next change of any key; when it was seen.
    pub async fn next(&mut self, limit: Duration) -> Option<Instant> {
        tokio::time::timeout(limit, self.events.recv())
            .await
            .ok()?
            .map(|(_, at)| at)
    }
}

/// Percentiles of a sample, in milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Percentiles {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
            (ms[i] * 10.0).round() / 10.0
        };
        Percentiles {
            count: ms.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Percentiles per change kind, and over all.
pub fn by_kind(samples: &[(&'static str, Duration)]) -> BTreeMap<String, Percentiles> {
    let mut kinds: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for (kind, d) in samples {
        kinds.entry(kind.to_string()).or_default().push(*d);
        kinds.entry("all".to_string()).or_default().push(*d);
    }
    kinds
        .into_iter()
        .map(|(k, v)| (k, Percentiles::of(&v)))
        .collect()
}
