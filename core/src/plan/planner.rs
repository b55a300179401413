//! The planner: desired state + etcd mirror → an ordered list of
//! transactions. Pure, deterministic, and the only place that decides what
//! gets written, so its invariants are property-tested (see `plan_props`).
//!
//! Invariants:
//! - only keys this installation owns are put or deleted; a desired key we
//!   do not own is refused, never written;
//! - a key whose stored value equals the desired one (timestamps aside) is
//!   never written;
//! - no deletion is planned unless deletions are allowed (every cache synced
//!   and the mirror loaded);
//! - order: all puts come first, units sorted so that those which only hold
//!   referred-to objects (upstreams, plugin configs, ...) go before those
//!   holding routes; then, in separate transactions, deletions of referring
//!   objects (routes, ...); then, again separately, deletions of the objects
//!   they referred to. Within a unit, puts follow APISIX's directory order.
//!   A key several units share (an upstream) is put in a group of its own at
//!   its directory's level, so it too lands before any route referring to it,
//!   and deleted (with the referred-to objects) only when no unit produces it;
//! - each transaction stays within the operation and byte limits; all of a
//!   unit's puts share one transaction whenever they fit in one.

use std::collections::{BTreeMap, HashSet};

use crate::apisix::{CanonicalValue, EtcdKey, Ownership};

use super::mirror::{MirrorState, MirroredKey};
use crate::model::{DesiredState, DesiredValue, UnitKey};

/// Per-transaction limits. etcd allows 128 operations (`--max-txn-ops`, and
/// the count includes compares) and 1.5 MiB per request by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Key operations per transaction: each carries one compare, and one
    /// more compare (the fence) rides along.
    pub max_ops: usize,
    /// Estimated request bytes per transaction.
    pub max_bytes: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits {
            max_ops: 127,
            max_bytes: 1024 * 1024,
        }
    }
}

/// What the writer expects to find at a key when it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// The key must not exist (`create_revision == 0`).
    Absent,
    /// The key must be unchanged since the mirror saw it.
    ModRevision(i64),
}

/// One key operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    Put {
        key: EtcdKey,
        value: CanonicalValue,
        /// The stored `create_time`, kept on rewrite.
        create_time: Option<i64>,
        expect: Expectation,
    },
    Delete {
        key: EtcdKey,
        expect_mod_revision: i64,
    },
}

impl KeyChange {
    pub fn key(&self) -> &EtcdKey {
        match self {
            KeyChange::Put { key, .. } | KeyChange::Delete { key, .. } => key,
        }
    }

    pub fn is_put(&self) -> bool {
        matches!(self, KeyChange::Put { .. })
    }

    /// An upper estimate of the bytes this operation adds to a request: the
    /// key twice (compare and operation), the value with its timestamps,
    /// and protobuf framing.
    pub fn estimated_bytes(&self) -> usize {
        match self {
            KeyChange::Put { key, value, .. } => 2 * key.as_str().len() + value.len() + 96,
            KeyChange::Delete { key, .. } => 2 * key.as_str().len() + 32,
        }
    }
}

/// One transaction: its key changes, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedTxn {
    pub changes: Vec<KeyChange>,
    /// The lowest and highest level of the groups packed into it. A group's
    /// level is the highest directory rank among a unit's puts, or a shared
    /// key's or a deletion's own rank: what a group writes is referred to
    /// only from within the group or from groups of a higher level. The
    /// parts of a group too large for one transaction count at their keys'
    /// own ranks instead, so they commit in order.
    pub min_level: usize,
    pub max_level: usize,
}

impl PlannedTxn {
    pub fn estimated_bytes(&self) -> usize {
        self.changes.iter().map(KeyChange::estimated_bytes).sum()
    }
}

/// The ordered transactions that take etcd from the mirror's state to the
/// desired one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritePlan {
    pub txns: Vec<PlannedTxn>,
    /// Desired keys refused because this installation does not own them.
    pub refused: Vec<EtcdKey>,
    /// Orphans that were not deleted because deletions are not allowed yet.
    pub deferred_deletions: usize,
}

impl WritePlan {
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub fn changes(&self) -> impl Iterator<Item = &KeyChange> {
        self.txns.iter().flat_map(|txn| txn.changes.iter())
    }

    pub fn puts(&self) -> usize {
        self.changes().filter(|c| c.is_put()).count()
    }

    pub fn deletes(&self) -> usize {
        self.changes().filter(|c| !c.is_put()).count()
    }

    /// The transactions split into waves, in order: the transactions of one
    /// wave may commit concurrently (none of them writes an object another
    /// one's keys refer to), and a wave starts only after the one before it
    /// has committed in full. A wave holds one phase; a later put of a wave
    /// is never of a higher group level than an earlier one (a route never
    /// races the upstream or plugin config it refers to), a later delete
    /// never of a lower one (an upstream is never deleted alongside a route
    /// still referring to it). Groups of one level are independent: that is
    /// what lets the planner order them by unit key alone.
    pub fn waves(&self) -> Vec<std::ops::Range<usize>> {
        let mut waves = Vec::new();
        let mut start = 0;
        let mut wave: Option<WaveBounds> = None;
        for (i, txn) in self.txns.iter().enumerate() {
            let bounds = WaveBounds::of(txn);
            wave = match wave {
                Some(current) if current.admits(&bounds) => Some(current.merge(&bounds)),
                Some(_) => {
                    waves.push(start..i);
                    start = i;
                    Some(bounds)
                }
                None => Some(bounds),
            };
        }
        if start < self.txns.len() {
            waves.push(start..self.txns.len());
        }
        waves
    }
}

/// What a wave (or one transaction) writes: its phase (puts, deletions of
/// referring objects, deletions of referred-to ones) and the range of group
/// levels it holds.
#[derive(Debug, Clone, Copy)]
struct WaveBounds {
    phase: Phase,
    min_level: usize,
    max_level: usize,
}

impl WaveBounds {
    fn of(txn: &PlannedTxn) -> WaveBounds {
        WaveBounds {
            // The planner never mixes phases in one transaction.
            phase: txn.changes.first().map_or(Phase::Puts, Phase::of),
            min_level: txn.min_level,
            max_level: txn.max_level,
        }
    }

    /// Whether `next` may commit concurrently with everything in `self`.
    fn admits(&self, next: &WaveBounds) -> bool {
        let independent = match self.phase {
            Phase::Puts => next.max_level <= self.min_level,
            Phase::ReferringDeletes | Phase::DependencyDeletes => next.min_level >= self.max_level,
        };
        self.phase == next.phase && independent
    }

    fn merge(self, next: &WaveBounds) -> WaveBounds {
        WaveBounds {
            phase: self.phase,
            min_level: self.min_level.min(next.min_level),
            max_level: self.max_level.max(next.max_level),
        }
    }
}

/// The planner's three phases, in order; a transaction belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Puts,
    /// Deletions of objects that refer to others (routes, ...).
    ReferringDeletes,
    /// Deletions of the objects referred to.
    DependencyDeletes,
}

impl Phase {
    fn of(change: &KeyChange) -> Phase {
        match change {
            KeyChange::Put { .. } => Phase::Puts,
            KeyChange::Delete { key, .. } if key.dir().is_referring() => Phase::ReferringDeletes,
            KeyChange::Delete { .. } => Phase::DependencyDeletes,
        }
    }
}

/// Everything the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub desired: &'a DesiredState,
    pub mirror: &'a MirrorState,
    pub ownership: &'a Ownership,
    /// The APISIX prefix, e.g. `/apisix`.
    pub prefix: &'a str,
    pub limits: PlanLimits,
    /// False until every reflector has synced and the mirror is loaded: a
    /// cold cache looks like "everything was deleted".
    pub deletions_allowed: bool,
}

/// Computes the write plan over every desired and stored key.
/// Deterministic: the same input gives the same plan.
pub fn plan(input: PlanInput<'_>) -> WritePlan {
    let mut builder = PlanBuilder::new(input);
    // Stored keys that are desired: the orphan pass below skips them without
    // looking each one up in the desired state again.
    let mut desired_and_stored: HashSet<&str> = HashSet::with_capacity(input.desired.len());
    for (key, desired) in input.desired.iter() {
        let stored = input.mirror.get(key.as_str());
        if stored.is_some() {
            desired_and_stored.insert(key.as_str());
        }
        builder.desired(key, desired, stored);
    }
    for (raw, stored) in input.mirror.iter() {
        if desired_and_stored.contains(raw.as_str()) {
            continue;
        }
        if let Ok(key) = EtcdKey::parse(input.prefix, raw) {
            builder.orphan(key, stored);
        }
    }
    builder.finish()
}

/// The plan [`plan`] would give, looking only at `keys` (raw etcd keys):
/// those whose desired or stored value may have changed since etcd last
/// matched the desired state. Costs the number of keys given, not the size
/// of the desired state; the sync engine uses it between full resyncs.
pub fn plan_keys<'k>(input: PlanInput<'_>, keys: impl IntoIterator<Item = &'k str>) -> WritePlan {
    // In write order (and each once), as the full plan visits them.
    let keys: std::collections::BTreeSet<EtcdKey> = keys
        .into_iter()
        .filter_map(|raw| EtcdKey::parse(input.prefix, raw).ok())
        .collect();
    let mut builder = PlanBuilder::new(input);
    for key in keys {
        let stored = input.mirror.get(key.as_str());
        match input.desired.get(&key) {
            Some(desired) => {
                // The desired state's own key, so the plan borrows from it.
                let key = input.desired.key(&key).unwrap_or(&key).clone();
                builder.desired(&key, desired, stored);
            }
            None => {
                if let Some(stored) = stored {
                    builder.orphan(key, stored);
                }
            }
        }
    }
    builder.finish()
}

/// Collects what each key needs, then orders and packs it.
struct PlanBuilder<'a> {
    input: PlanInput<'a>,
    result: WritePlan,
    /// Puts, grouped by unit.
    puts_by_unit: BTreeMap<&'a UnitKey, Vec<KeyChange>>,
    /// Puts of keys several units produce (shared upstreams): each its own
    /// group, at its directory's level, so it lands before any unit whose
    /// routes refer to it.
    shared_puts: Vec<(&'a UnitKey, KeyChange)>,
    /// Deletions of objects that refer to others (routes, ...).
    referring_deletes: Vec<KeyChange>,
    /// Deletions of the objects referred to.
    dependency_deletes: Vec<KeyChange>,
}

impl<'a> PlanBuilder<'a> {
    fn new(input: PlanInput<'a>) -> PlanBuilder<'a> {
        PlanBuilder {
            input,
            result: WritePlan::default(),
            puts_by_unit: BTreeMap::new(),
            shared_puts: Vec::new(),
            referring_deletes: Vec::new(),
            dependency_deletes: Vec::new(),
        }
    }

    /// A desired key: put unless stored as desired; refused unless owned.
    fn desired(&mut self, key: &EtcdKey, desired: &'a DesiredValue, stored: Option<&MirroredKey>) {
        if !self.input.ownership.owns(key) {
            self.result.refused.push(key.clone());
            return;
        }
        if stored.and_then(|s| s.canonical()) == Some(&desired.value) {
            return;
        }
        let put = KeyChange::Put {
            key: key.clone(),
            value: desired.value.clone(),
            create_time: stored.and_then(|s| s.value.create_time),
            expect: match stored {
                Some(s) => Expectation::ModRevision(s.mod_revision),
                None => Expectation::Absent,
            },
        };
        if desired.is_shared() {
            self.shared_puts.push((&desired.unit, put));
        } else {
            self.puts_by_unit
                .entry(&desired.unit)
                .or_default()
                .push(put);
        }
    }

    /// A stored key nothing desires: deleted if owned (and deletions are
    /// allowed).
    fn orphan(&mut self, key: EtcdKey, stored: &MirroredKey) {
        if !self.input.ownership.owns(&key) {
            return;
        }
        if !self.input.deletions_allowed {
            self.result.deferred_deletions += 1;
            return;
        }
        let referring = key.dir().is_referring();
        let change = KeyChange::Delete {
            key,
            expect_mod_revision: stored.mod_revision,
        };
        if referring {
            self.referring_deletes.push(change);
        } else {
            self.dependency_deletes.push(change);
        }
    }

    fn finish(mut self) -> WritePlan {
        // Keys are visited in write order, so each unit's puts are already in
        // directory order; units are ordered by the highest directory they
        // write, so referred-to objects land first.
        let mut put_groups: Vec<(usize, &UnitKey, Vec<KeyChange>)> = self
            .puts_by_unit
            .into_iter()
            .map(|(unit, changes)| {
                let level = changes
                    .iter()
                    .map(|c| c.key().dir().write_rank())
                    .max()
                    .unwrap_or(0);
                (level, unit, changes)
            })
            .chain(
                self.shared_puts
                    .into_iter()
                    .map(|(unit, put)| (put.key().dir().write_rank(), unit, vec![put])),
            )
            .collect();
        put_groups.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        // Reverse write order: later directories are deleted first.
        for deletes in [&mut self.referring_deletes, &mut self.dependency_deletes] {
            deletes.sort_by(|a, b| {
                b.key()
                    .dir()
                    .cmp(&a.key().dir())
                    .then_with(|| a.key().cmp(b.key()))
            });
        }
        let mut packer = Packer::new(self.input.limits);
        for (level, _, group) in put_groups {
            packer.add_group(group, level);
        }
        packer.barrier();
        for deletes in [self.referring_deletes, self.dependency_deletes] {
            for change in deletes {
                let level = change.key().dir().write_rank();
                packer.add_group(vec![change], level);
            }
            packer.barrier();
        }
        self.result.txns = packer.finish();
        self.result
    }
}

/// Packs groups of changes into transactions: a group that fits in one
/// transaction is never split; a larger group is split in order.
struct Packer {
    limits: PlanLimits,
    done: Vec<PlannedTxn>,
    current: PlannedTxn,
    current_bytes: usize,
    /// The lowest and highest group level in `current`.
    current_levels: Option<(usize, usize)>,
}

impl Packer {
    fn new(limits: PlanLimits) -> Packer {
        assert!(
            limits.max_ops >= 1,
            "a transaction must hold at least one operation"
        );
        Packer {
            limits,
            done: Vec::new(),
            current: PlannedTxn::default(),
            current_bytes: 0,
            current_levels: None,
        }
    }

    fn fits(&self, ops: usize, bytes: usize) -> bool {
        self.current.changes.len() + ops <= self.limits.max_ops
            && self.current_bytes + bytes <= self.limits.max_bytes
    }

    /// Adds a group whose level is `level` (see [`PlannedTxn::min_level`]).
    fn add_group(&mut self, group: Vec<KeyChange>, level: usize) {
        let bytes: usize = group.iter().map(KeyChange::estimated_bytes).sum();
        if !self.fits(group.len(), bytes) {
            self.barrier();
        }
        if self.fits(group.len(), bytes) {
            self.current_bytes += bytes;
            self.current.changes.extend(group);
            self.note_level(level);
            return;
        }
        // Too big for any one transaction: split in order. A single change
        // larger than the byte budget still gets a transaction of its own.
        for change in group {
            let bytes = change.estimated_bytes();
            if !self.current.changes.is_empty() && !self.fits(1, bytes) {
                self.barrier();
            }
            // A split group's parts must commit in order: each part counts
            // at its own directories' ranks, so a part holding a route never
            // shares a wave with the part holding the upstream before it.
            self.note_level(change.key().dir().write_rank());
            self.current_bytes += bytes;
            self.current.changes.push(change);
        }
    }

    fn note_level(&mut self, level: usize) {
        self.current_levels = Some(match self.current_levels {
            Some((min, max)) => (min.min(level), max.max(level)),
            None => (level, level),
        });
    }

    /// Ends the current transaction: nothing added later shares it.
    fn barrier(&mut self) {
        if !self.current.changes.is_empty() {
            let mut txn = std::mem::take(&mut self.current);
            (txn.min_level, txn.max_level) = self.current_levels.take().unwrap_or_default();
            self.done.push(txn);
            self.current_bytes = 0;
        }
    }

    fn finish(mut self) -> Vec<PlannedTxn> {
        self.barrier();
        self.done
    }
}
