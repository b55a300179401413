//! The etcd mirror's state: every key under the APISIX prefix with its value
//! and revisions, as of a known etcd revision. Pure; `mirror_task` keeps it
//! current from a watch.

use std::collections::BTreeMap;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorState {
    keys: BTreeMap<String, MirroredKey>,
    /// The etcd revision the mirror is current to (0 until loaded).
    revision: i64,
    loaded: bool,
    /// Keys the writer deleted at a revision the watch has not reached yet:
    /// the watch's older puts of them must not bring them back.
    tombstones: BTreeMap<String, i64>,
}

impl MirrorState {
    /// A mirror loaded from a consistent list at `revision`.
    pub fn from_list(keys: BTreeMap<String, MirroredKey>, revision: i64) -> MirrorState {
        MirrorState {
            keys,
            revision,
            loaded: true,
            tombstones: BTreeMap::new(),
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
        *self = fresh;
        true
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
    fn an_older_list_does_not_replace_a_fresher_mirror() {
        let mut mirror = MirrorState::from_list(BTreeMap::new(), 20);
        assert!(!mirror.reset(MirrorState::from_list(BTreeMap::new(), 19)));
        assert!(mirror.reset(MirrorState::from_list(BTreeMap::new(), 21)));
        assert_eq!(mirror.revision(), 21);
    }
}
