//! The etcd mirror's state: every key under the APISIX prefix with its value
//! and revisions, as of a known etcd revision. Pure; `mirror_task` keeps it
//! current from a watch.

use std::collections::{BTreeMap, VecDeque};

use crate::apisix::{CanonicalValue, StoredValue};

/// What the mirror knows of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredKey {
    pub value: StoredValue,
    pub mod_revision: i64,
    pub create_revision: i64,
}

/// One change seen on the watch (or in a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorEvent {
    Put {
        key: String,
        value: StoredValue,
        mod_revision: i64,
        create_revision: i64,
    },
    Delete {
        key: String,
        revision: i64,
    },
}

/// Every key under the APISIX prefix (raw key strings: the mirror also holds
/// keys that are not objects, which the planner leaves alone).
#[derive(Debug, Clone, Default)]
pub struct MirrorState {
    keys: BTreeMap<String, MirroredKey>,
    /// The etcd revision the mirror is current to (0 until loaded).
    revision: i64,
    loaded: bool,
    /// Keys the writer deleted at a revision the watch has not reached yet:
    /// the watch's older puts of them must not bring them back.
    tombstones: BTreeMap<String, i64>,
    /// Which keys changed, in order, so a reader (the engine, the status
    /// writer) can look at what changed since its last look instead of
    /// walking every key.
    journal: ChangeJournal,
}

/// Equal contents; the journal is bookkeeping.
impl PartialEq for MirrorState {
    fn eq(&self, other: &MirrorState) -> bool {
        self.keys == other.keys
            && self.revision == other.revision
            && self.loaded == other.loaded
            && self.tombstones == other.tombstones
    }
}

impl Eq for MirrorState {}

/// A position in the mirror's change journal (see [`MirrorState::cursor`]).
pub type JournalCursor = u64;

/// Changed keys by sequence number, the oldest dropped past a bound. A
/// reader whose cursor is older than what is kept (or older than a full
/// re-list) is told to look at everything.
#[derive(Debug, Clone, Default)]
struct ChangeJournal {
    entries: VecDeque<(JournalCursor, String)>,
    next: JournalCursor,
    /// Cursors below this cannot be answered from the entries.
    floor: JournalCursor,
}

impl ChangeJournal {
    /// Entries kept: a reader further behind does one full pass.
    const CAPACITY: usize = 16_384;

    fn record(&mut self, key: &str) {
        self.entries.push_back((self.next, key.to_string()));
        self.next += 1;
        if self.entries.len() > Self::CAPACITY
            && let Some((seq, _)) = self.entries.pop_front()
        {
            self.floor = seq + 1;
        }
    }

    /// Everything may have changed (a re-list): every earlier cursor is void.
    fn restart(&mut self) {
        self.entries.clear();
        self.next += 1;
        self.floor = self.next;
    }

    fn since(&self, cursor: JournalCursor) -> Option<Vec<&str>> {
        if cursor < self.floor {
            return None;
        }
        let start = self.entries.partition_point(|(seq, _)| *seq < cursor);
        Some(
            self.entries
                .range(start..)
                .map(|(_, key)| key.as_str())
                .collect(),
        )
    }
}

impl MirrorState {
    /// A mirror loaded from a consistent list at `revision`.
    pub fn from_list(keys: BTreeMap<String, MirroredKey>, revision: i64) -> MirrorState {
        MirrorState {
            keys,
            revision,
            loaded: true,
            tombstones: BTreeMap::new(),
            journal: ChangeJournal::default(),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn get(&self, key: &str) -> Option<&MirroredKey> {
        self.keys.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &MirroredKey)> {
        self.keys.iter()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Replaces the content with a fresher list. A list older than what the
    /// mirror already knows is ignored (returns false): the watch got ahead.
    pub fn reset(&mut self, fresh: MirrorState) -> bool {
        if fresh.revision < self.revision {
            return false;
        }
        let mut journal = std::mem::take(&mut self.journal);
        journal.restart();
        *self = fresh;
        self.journal = journal;
        true
    }

    /// The journal position now: [`MirrorState::changed_since`] of it later
    /// gives the keys changed in between.
    pub fn cursor(&self) -> JournalCursor {
        self.journal.next
    }

    /// The keys changed since `cursor` (each at least once); `None` when the
    /// journal cannot tell (too far behind, or the mirror was re-listed):
    /// look at every key then.
    pub fn changed_since(&self, cursor: JournalCursor) -> Option<Vec<&str>> {
        self.journal.since(cursor)
    }

    /// Applies the events of one watch response, which etcd delivers in
    /// revision order, then records `header_revision`. Events at or below
    /// the current revision are already included (from a list) and skipped.
    pub fn apply_watch(
        &mut self,
        events: impl IntoIterator<Item = MirrorEvent>,
        header_revision: i64,
    ) {
        for event in events {
            let revision = match &event {
                MirrorEvent::Put { mod_revision, .. } => *mod_revision,
                MirrorEvent::Delete { revision, .. } => *revision,
            };
            if revision > self.revision {
                self.apply(event);
            }
        }
        self.revision = self.revision.max(header_revision);
        let revision = self.revision;
        self.tombstones
            .retain(|_, deleted_at| *deleted_at > revision);
    }

    /// Whether the mirror already holds `key` at `mod_revision`: the watch's
    /// copy of our own commit (recorded by [`MirrorState::apply_commit`]),
    /// which then needs neither parsing nor applying. Learns the key's true
    /// create revision on the way.
    pub fn confirms(&mut self, key: &str, mod_revision: i64, create_revision: i64) -> bool {
        match self.keys.get_mut(key) {
            Some(known) if known.mod_revision == mod_revision => {
                known.create_revision = create_revision;
                true
            }
            _ => false,
        }
    }

    /// Records the effects of a transaction the writer committed at
    /// `revision`, so the next plan sees them before the watch delivers
    /// them. The watch's copy of the same events is then a no-op.
    pub fn apply_commit(&mut self, events: impl IntoIterator<Item = MirrorEvent>) {
        for event in events {
            self.apply(event);
        }
    }

    fn apply(&mut self, event: MirrorEvent) {
        match event {
            MirrorEvent::Put {
                key,
                value,
                mod_revision,
                create_revision,
            } => {
                let stale = self
                    .keys
                    .get(&key)
                    .is_some_and(|known| known.mod_revision > mod_revision)
                    || self
                        .tombstones
                        .get(&key)
                        .is_some_and(|deleted_at| *deleted_at > mod_revision);
                if !stale {
                    self.journal.record(&key);
                    self.keys.insert(
                        key,
                        MirroredKey {
                            value,
                            mod_revision,
                            create_revision,
                        },
                    );
                }
            }
            MirrorEvent::Delete { key, revision } => {
                if self
                    .keys
                    .get(&key)
                    .is_some_and(|known| known.mod_revision < revision)
                {
                    self.keys.remove(&key);
                    self.journal.record(&key);
                }
                if revision > self.revision {
                    self.tombstones.insert(key, revision);
                }
            }
        }
    }
}

impl MirroredKey {
    pub fn canonical(&self) -> Option<&CanonicalValue> {
        self.value.canonical.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, raw: &str, rev: i64) -> MirrorEvent {
        MirrorEvent::Put {
            key: key.into(),
            value: StoredValue::parse(raw.as_bytes()),
            mod_revision: rev,
            create_revision: rev,
        }
    }

    #[test]
    fn watch_events_already_listed_are_skipped() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 10);
        mirror.apply_watch([put("/a/routes/x", "{}", 9)], 10);
        assert!(mirror.get("/a/routes/x").is_none());
        mirror.apply_watch([put("/a/routes/x", "{}", 11)], 11);
        assert_eq!(mirror.get("/a/routes/x").unwrap().mod_revision, 11);
        assert_eq!(mirror.revision(), 11);
        mirror.apply_watch(
            [MirrorEvent::Delete {
                key: "/a/routes/x".into(),
                revision: 12,
            }],
            12,
        );
        assert!(mirror.is_empty());
    }

    #[test]
    fn local_commits_are_not_undone_by_their_own_watch_events() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 10);
        mirror.apply_commit([put("/a/routes/x", r#"{"v":2}"#, 15)]);
        // The watch lags: it delivers an older state of the key, then ours.
        mirror.apply_watch([put("/a/routes/x", r#"{"v":1}"#, 12)], 12);
        assert_eq!(mirror.get("/a/routes/x").unwrap().mod_revision, 15);
        mirror.apply_watch([put("/a/routes/x", r#"{"v":2}"#, 15)], 15);
        assert_eq!(mirror.get("/a/routes/x").unwrap().mod_revision, 15);
    }

    #[test]
    fn the_watch_copy_of_a_local_commit_is_confirmed_without_a_change() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 10);
        mirror.apply_commit([put("/a/routes/x", r#"{"v":2}"#, 15)]);
        let cursor = mirror.cursor();
        // Our commit, as the watch reports it (an update: created earlier).
        assert!(mirror.confirms("/a/routes/x", 15, 4));
        assert_eq!(mirror.get("/a/routes/x").unwrap().create_revision, 4);
        assert_eq!(mirror.changed_since(cursor), Some(vec![]));
        // A later write (someone else's) is not ours; an unknown key neither.
        assert!(!mirror.confirms("/a/routes/x", 16, 4));
        assert!(!mirror.confirms("/a/routes/y", 15, 15));
    }

    #[test]
    fn a_lagging_watch_does_not_resurrect_a_local_delete() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 10);
        mirror.apply_commit([put("/a/routes/x", "{}", 15)]);
        mirror.apply_commit([MirrorEvent::Delete {
            key: "/a/routes/x".into(),
            revision: 20,
        }]);
        mirror.apply_watch([put("/a/routes/x", "{}", 15)], 15);
        assert!(mirror.get("/a/routes/x").is_none());
        mirror.apply_watch(
            [MirrorEvent::Delete {
                key: "/a/routes/x".into(),
                revision: 20,
            }],
            20,
        );
        assert!(mirror.get("/a/routes/x").is_none());
        assert!(mirror.tombstones.is_empty());
    }

    #[test]
    fn the_journal_names_what_changed_since_a_cursor() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 10);
        let start = mirror.cursor();
        mirror.apply_watch([put("/a/routes/x", "{}", 11)], 11);
        let middle = mirror.cursor();
        mirror.apply_commit([put("/a/routes/y", "{}", 12)]);
        mirror.apply_watch(
            [MirrorEvent::Delete {
                key: "/a/routes/x".into(),
                revision: 13,
            }],
            13,
        );
        assert_eq!(
            mirror.changed_since(start).unwrap(),
            ["/a/routes/x", "/a/routes/y", "/a/routes/x"]
        );
        assert_eq!(
            mirror.changed_since(middle).unwrap(),
            ["/a/routes/y", "/a/routes/x"]
        );
        assert!(mirror.changed_since(mirror.cursor()).unwrap().is_empty());
        // Events already seen change nothing, and record nothing.
        let now = mirror.cursor();
        mirror.apply_watch([put("/a/routes/y", "{}", 12)], 13);
        assert!(mirror.changed_since(now).unwrap().is_empty());
        // A re-list voids every earlier cursor.
        let before = mirror.cursor();
        assert!(mirror.reset(MirrorState::from_list(BTreeMap::new(), 20)));
        assert!(mirror.changed_since(before).is_none());
        assert!(mirror.changed_since(mirror.cursor()).unwrap().is_empty());
    }

    #[test]
    fn a_reader_too_far_behind_is_told_to_look_at_everything() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 1);
        let start = mirror.cursor();
        for rev in 2..(ChangeJournal::CAPACITY as i64 + 10) {
            mirror.apply_watch([put(&format!("/a/routes/k{rev}"), "{}", rev)], rev);
        }
        assert!(mirror.changed_since(start).is_none());
        let recent = mirror.cursor() - 5;
        assert_eq!(mirror.changed_since(recent).unwrap().len(), 5);
    }

    #[test]
    fn an_older_list_does_not_replace_a_fresher_mirror() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 20);
        assert!(!mirror.reset(MirrorState::from_list(BTreeMap::new(), 19)));
        assert!(mirror.reset(MirrorState::from_list(BTreeMap::new(), 21)));
        assert_eq!(mirror.revision(), 21);
    }
}
