//! Keeps a replica's mirror of the APISIX prefix current: list at a pinned
//! revision, then watch from the next one. Reconnects resume from the last
//! revision seen; a compacted revision means list again.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use etcd_client::{EventType, WatchOptions};
use tokio::sync::watch;

use super::etcd_read::{self, objects_prefix, prefix_end};
use super::{MirrorEvent, MirrorState};
use crate::apisix::StoredValue;
use crate::telemetry::SyncMetrics;

/// The mirror shared by the watch task (writer of watch events) and the
/// engine (planner and writer). Never held across an `.await`.
pub type SharedMirror = Arc<RwLock<MirrorState>>;

pub fn read_mirror(mirror: &SharedMirror) -> std::sync::RwLockReadGuard<'_, MirrorState> {
    mirror
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn write_mirror(mirror: &SharedMirror) -> std::sync::RwLockWriteGuard<'_, MirrorState> {
    mirror
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The watch loop of one replica.
pub struct MirrorTask {
    pub client: etcd_client::Client,
    pub prefix: String,
    pub mirror: SharedMirror,
    /// The mirror's revision, published after every change.
    pub revision: watch::Sender<i64>,
    /// True while the mirror is loaded and its watch is established.
    pub watching: watch::Sender<bool>,
    pub metrics: SyncMetrics,
    pub call_timeout: Duration,
    /// A new leader asks for a progress report (the watch's revision).
    pub progress: Arc<tokio::sync::Notify>,
}

enum WatchEnd {
    /// The start revision was compacted: list again.
    Compacted,
    /// The stream broke: resume from the last revision.
    Broken(String),
}

impl MirrorTask {
    pub async fn run(mut self) {
        let mut backoff = new_backoff();
        // A mirror that is already loaded (a restarted task) resumes its
        // watch; only a compacted revision forces a new list.
        let mut need_list = !read_mirror(&self.mirror).is_loaded();
        loop {
            if need_list {
                match etcd_read::list_prefix(&mut self.client, &self.prefix, self.call_timeout)
                    .await
                {
                    Ok(fresh) => {
                        let revision = fresh.revision();
                        let keys = fresh.len();
                        write_mirror(&self.mirror).reset(fresh);
                        self.metrics.mirror_lists.inc();
                        self.publish();
                        tracing::info!(prefix = %self.prefix, revision, keys, "mirror listed");
                        need_list = false;
                    }
                    Err(err) => {
                        let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                        tracing::warn!(error = %err, ?delay, "listing the APISIX prefix failed; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
            let ended = self.watch_from_mirror().await;
            self.watching.send_replace(false);
            match ended {
                WatchEnd::Compacted => {
                    tracing::warn!(prefix = %self.prefix, "watch revision compacted; listing again");
                    need_list = true;
                }
                WatchEnd::Broken(reason) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(%reason, ?delay, "etcd watch ended; resuming");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            backoff = new_backoff();
        }
    }

    fn publish(&self) {
        let revision = read_mirror(&self.mirror).revision();
        self.metrics.mirror_revision.set(revision);
        self.revision.send_replace(revision);
    }

    async fn watch_from_mirror(&mut self) -> WatchEnd {
        let start = read_mirror(&self.mirror).revision() + 1;
        let key = objects_prefix(&self.prefix);
        let options = WatchOptions::new()
            .with_range(prefix_end(&key))
            .with_start_revision(start)
            .with_progress_notify();
        let mut stream =
            match tokio::time::timeout(self.call_timeout, self.client.watch(key, Some(options)))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return WatchEnd::Broken(err.to_string()),
                Err(_) => return WatchEnd::Broken("watch creation timed out".into()),
            };
        self.watching.send_replace(true);
        // Progress notifications (and our own request) keep a quiet mirror's
        // revision fresh; a stream silent for much longer is presumed dead.
        let silence_limit = Duration::from_secs(60);
        loop {
            let received = tokio::select! {
                received = tokio::time::timeout(silence_limit, stream.message()) => received,
                _ = self.progress.notified() => {
                    if let Err(err) = stream.request_progress().await {
                        return WatchEnd::Broken(err.to_string());
                    }
                    continue;
                }
            };
            let message = match received {
                Ok(Ok(Some(message))) => message,
                Ok(Ok(None)) => return WatchEnd::Broken("watch stream closed".into()),
                Ok(Err(err)) => return WatchEnd::Broken(err.to_string()),
                Err(_) => {
                    if let Err(err) = stream.request_progress().await {
                        return WatchEnd::Broken(err.to_string());
                    }
                    continue;
                }
            };
            if message.compact_revision() > 0 {
                return WatchEnd::Compacted;
            }
            if message.canceled() {
                return WatchEnd::Broken(format!("watch canceled: {}", message.cancel_reason()));
            }
            if message.created() && message.events().is_empty() {
                // The creation ack's header is the store's latest revision,
                // not how far this watch has delivered: not a resume point.
                continue;
            }
            let header_revision = message.header().map(|h| h.revision()).unwrap_or(0);
            // A catching-up watch reports the store's latest revision in the
            // header while later messages still carry older events, so an
            // event message advances the mirror only to its last event; only
            // an event-less progress notification vouches for the header.
            let current = message
                .events()
                .iter()
                .filter_map(|event| event.kv().map(|kv| kv.mod_revision()))
                .max()
                .unwrap_or(header_revision);
            let mut mirror = write_mirror(&self.mirror);
            let events: Vec<MirrorEvent> = message
                .events()
                .iter()
                .filter_map(|event| mirror_event(&mut mirror, event))
                .collect();
            mirror.apply_watch(events, current);
            drop(mirror);
            self.metrics
                .mirror_revision_lag
                .set((header_revision - read_mirror(&self.mirror).revision()).max(0));
            self.publish();
        }
    }
}

/// One watch event as the mirror applies it; `None` for our own commits,
/// which the mirror already holds (their values are not parsed again).
fn mirror_event(mirror: &mut MirrorState, event: &etcd_client::Event) -> Option<MirrorEvent> {
    let kv = event.kv()?;
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    Some(match event.event_type() {
        EventType::Put => {
            if mirror.confirms(&key, kv.mod_revision(), kv.create_revision()) {
                return None;
            }
            MirrorEvent::Put {
                key,
                value: StoredValue::parse(kv.value()),
                mod_revision: kv.mod_revision(),
                create_revision: kv.create_revision(),
            }
        }
        EventType::Delete => MirrorEvent::Delete {
            key,
            revision: kv.mod_revision(),
        },
    })
}

fn new_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .without_max_times()
        .build()
}
