//! The full etcd history of a chaos run: every put and delete of every key,
//! recorded by a watch from revision 1 (so nothing that happened before the
//! recorder started is missed), with the time each event reached it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use etcd_client::{EventType, WatchOptions, WatchStream};

/// One change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub revision: i64,
    pub key: String,
    /// The new value; `None` for a delete.
    pub value: Option<String>,
    /// When the recorder saw it (for failover gaps; the revision orders).
    pub seen: Option<Instant>,
}

/// Every event, in revision order.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub events: Vec<Event>,
}

impl History {
    /// The state after every event: key → value.
    pub fn final_state(&self) -> std::collections::BTreeMap<String, String> {
        self.state_at(i64::MAX)
    }

    /// The state at `revision` (after every event up to it): key → value.
    pub fn state_at(&self, revision: i64) -> std::collections::BTreeMap<String, String> {
        let mut state = std::collections::BTreeMap::new();
        for event in self.events.iter().take_while(|e| e.revision <= revision) {
            match &event.value {
                Some(value) => state.insert(event.key.clone(), value.clone()),
                None => state.remove(&event.key),
            };
        }
        state
    }
}

/// A running recorder; [`Recorder::history`] copies what it has seen.
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Watches every key of `client`'s etcd from revision 1. A watch that
    /// breaks (its member killed, a partition) is resumed after the last
    /// revision seen, through whichever member the client reaches next.
    pub async fn start(mut client: etcd_client::Client) -> Result<Recorder, etcd_client::Error> {
        // The first watch is made here, so a store that cannot be watched
        // at all is an error rather than an empty history.
        let first = watch_from(&mut client, 1).await?;
        Ok(Self::follow(client, Vec::new(), first, 0))
    }

    /// Records from now on a store with a past (a cluster's, where earlier
    /// runs wrote): the history opens with every key's current value, as a
    /// put at its own revision, then every change after that.
    pub async fn start_now(
        mut client: etcd_client::Client,
    ) -> Result<Recorder, etcd_client::Error> {
        let options = etcd_client::GetOptions::new().with_all_keys();
        let snapshot = client.get("", Some(options)).await?;
        let revision = snapshot.header().map_or(0, |h| h.revision());
        let mut opening: Vec<Event> = snapshot
            .kvs()
            .iter()
            .map(|kv| Event {
                revision: kv.mod_revision(),
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: Some(String::from_utf8_lossy(kv.value()).into_owned()),
                seen: None,
            })
            .collect();
        opening.sort_by_key(|e| e.revision);
        let first = watch_from(&mut client, revision + 1).await?;
        Ok(Self::follow(client, opening, first, revision))
    }

    /// Records `first` after `opening`; a broken watch is resumed after the
    /// last revision seen (at least `since`).
    fn follow(
        mut client: etcd_client::Client,
        opening: Vec<Event>,
        first: WatchStream,
        since: i64,
    ) -> Recorder {
        let events = Arc::new(Mutex::new(opening));
        let sink = events.clone();
        let task = tokio::spawn(async move {
            let mut stream = Some(first);
            let mut last_seen = since;
            loop {
                if let Some(stream) = stream.take() {
                    record(stream, &sink).await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                if let Some(event) = sink.lock().expect("never poisoned").last() {
                    last_seen = last_seen.max(event.revision);
                }
                stream = watch_from(&mut client, last_seen + 1).await.ok();
            }
        });
        Recorder { events, task }
    }

    pub fn history(&self) -> History {
        History {
            events: self.events.lock().expect("never poisoned").clone(),
        }
    }

    /// The latest revision seen.
    pub fn revision(&self) -> i64 {
        let events = self.events.lock().expect("never poisoned");
        events.last().map_or(0, |e| e.revision)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_from(
    client: &mut etcd_client::Client,
    revision: i64,
) -> Result<WatchStream, etcd_client::Error> {
    let options = WatchOptions::new()
        .with_all_keys()
        .with_start_revision(revision);
    client.watch("", Some(options)).await
}

/// Appends the stream's events until it ends or fails.
async fn record(mut stream: WatchStream, sink: &Mutex<Vec<Event>>) {
    while let Ok(Some(response)) = stream.message().await {
        let seen = Instant::now();
        let mut sink = sink.lock().expect("never poisoned");
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            sink.push(Event {
                revision: kv.mod_revision(),
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: match event.event_type() {
                    EventType::Put => Some(String::from_utf8_lossy(kv.value()).into_owned()),
                    EventType::Delete => None,
                },
                seen: Some(seen),
            });
        }
    }
}
