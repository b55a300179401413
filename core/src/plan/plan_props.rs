//! Property tests of the planner's invariants (see `plan.rs`).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::json;

use super::mirror::MirrorEvent;
use super::mirror::{MirrorState, MirroredKey};
use super::planner::{Expectation, KeyChange, PlanInput, PlanLimits, WritePlan, plan, plan_keys};
use crate::apisix::{ApisixDir, CanonicalValue, EtcdKey, Ownership, StoredValue};
use crate::model::{DesiredState, DesiredValue, UnitKey};

const PREFIX: &str = "/apisix";

fn ownership() -> Ownership {
    Ownership::new("c1").unwrap()
}

fn value(n: u8) -> CanonicalValue {
    CanonicalValue::from_json(json!({"v": n})).unwrap()
}

/// An id: owned by c1, owned by another cluster, or the Admin API's.
fn id_strategy() -> impl Strategy<Value = String> {
    (0..3u8, 0..6u8).prop_map(|(owner, n)| match owner {
        0 => format!("ao_c1_{n}"),
        1 => format!("ao_c2_{n}"),
        _ => format!("{n}"),
    })
}

fn key_strategy() -> impl Strategy<Value = EtcdKey> {
    (prop::sample::select(ApisixDir::ALL.to_vec()), id_strategy())
        .prop_map(|(dir, id)| EtcdKey::new(PREFIX, dir, &id).unwrap())
}

#[derive(Debug, Clone)]
struct Scenario {
    mirror: MirrorState,
    desired: DesiredState,
    limits: PlanLimits,
    deletions_allowed: bool,
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    let stored = prop::collection::btree_map(key_strategy(), (0..4u8, 1..50i64), 0..40);
    let extra_raw = prop::collection::btree_map(
        prop::sample::select(vec![
            "/apisix/routes/".to_string(),
            "/apisix/gen_id".to_string(),
            "/apisix/routes/ao_c1_9/nested".to_string(),
        ]),
        1..50i64,
        0..3,
    );
    let desired = prop::collection::btree_map(key_strategy(), (0..4u8, 0..5u8), 0..40);
    (
        stored,
        extra_raw,
        desired,
        1..12usize,
        150..3000usize,
        any::<bool>(),
    )
        .prop_map(
            |(stored, extra_raw, desired, max_ops, max_bytes, deletions_allowed)| {
                let mut keys = BTreeMap::new();
                for (key, (v, rev)) in stored {
                    keys.insert(
                        key.as_str().to_string(),
                        MirroredKey {
                            value: StoredValue::parse(&value(v).stamped(1, rev)),
                            mod_revision: rev,
                            create_revision: rev,
                        },
                    );
                }
                for (raw, rev) in extra_raw {
                    keys.insert(
                        raw,
                        MirroredKey {
                            value: StoredValue::parse(b"init_dir"),
                            mod_revision: rev,
                            create_revision: rev,
                        },
                    );
                }
                let desired = desired
                    .into_iter()
                    .map(|(key, (v, unit))| {
                        (
                            key,
                            DesiredValue {
                                value: value(v),
                                unit: UnitKey::new("Unit", Some("ns"), &unit.to_string()),
                                co_owners: None,
                            },
                        )
                    })
                    .collect();
                Scenario {
                    mirror: MirrorState::from_list(keys, 100),
                    desired,
                    limits: PlanLimits { max_ops, max_bytes },
                    deletions_allowed,
                }
            },
        )
}

fn run_plan(s: &Scenario) -> WritePlan {
    plan(PlanInput {
        desired: &s.desired,
        mirror: &s.mirror,
        ownership: &ownership(),
        prefix: PREFIX,
        limits: s.limits,
        deletions_allowed: s.deletions_allowed,
    })
}

fn run_plan_keys<'k>(s: &Scenario, keys: impl IntoIterator<Item = &'k str>) -> WritePlan {
    plan_keys(
        PlanInput {
            desired: &s.desired,
            mirror: &s.mirror,
            ownership: &ownership(),
            prefix: PREFIX,
            limits: s.limits,
            deletions_allowed: s.deletions_allowed,
        },
        keys,
    )
}

/// The mirror etcd would hold after `plan` ran on `s`.
fn mirror_after(s: &Scenario, plan: &WritePlan) -> Result<MirrorState, String> {
    let keys = simulate(s, plan)?
        .into_iter()
        .map(|(k, (v, rev))| {
            let value = StoredValue {
                canonical: v,
                create_time: Some(1),
            };
            (
                k,
                MirroredKey {
                    value,
                    mod_revision: rev,
                    create_revision: rev,
                },
            )
        })
        .collect();
    Ok(MirrorState::from_list(keys, 2000))
}

/// New objects for some units: (unit, its keys and values; none removes it).
fn unit_changes_strategy() -> impl Strategy<Value = Vec<(u8, Vec<(EtcdKey, u8)>)>> {
    prop::collection::vec(
        (
            0..6u8,
            prop::collection::vec((key_strategy(), 0..4u8), 0..4),
        ),
        0..6,
    )
}

/// Writes by someone else: a key put (to a value) or deleted.
fn foreign_writes_strategy() -> impl Strategy<Value = Vec<(EtcdKey, Option<u8>)>> {
    prop::collection::vec((key_strategy(), prop::option::of(0..4u8)), 0..5)
}

type SimState = BTreeMap<String, (Option<CanonicalValue>, i64)>;

/// Executes the plan against a copy of the mirror exactly as etcd would,
/// failing if any expectation (compare) would not hold.
fn simulate(s: &Scenario, plan: &WritePlan) -> Result<SimState, String> {
    let mut state: SimState = s
        .mirror
        .iter()
        .map(|(k, m)| (k.clone(), (m.canonical().cloned(), m.mod_revision)))
        .collect();
    let mut revision = 1000;
    for txn in &plan.txns {
        revision += 1;
        let mut seen = BTreeSet::new();
        for change in &txn.changes {
            let key = change.key().as_str().to_string();
            if !seen.insert(key.clone()) {
                return Err(format!("{key} twice in one transaction"));
            }
            let current = state.get(&key).map(|(_, rev)| *rev);
            let ok = match change {
                KeyChange::Put {
                    expect: Expectation::Absent,
                    ..
                } => current.is_none(),
                KeyChange::Put {
                    expect: Expectation::ModRevision(r),
                    ..
                } => current == Some(*r),
                KeyChange::Delete {
                    expect_mod_revision,
                    ..
                } => current == Some(*expect_mod_revision),
            };
            if !ok {
                return Err(format!(
                    "compare on {key} fails (stored revision {current:?})"
                ));
            }
        }
        for change in &txn.changes {
            match change {
                KeyChange::Put { key, value, .. } => {
                    state.insert(key.as_str().to_string(), (Some(value.clone()), revision));
                }
                KeyChange::Delete { key, .. } => {
                    state.remove(key.as_str());
                }
            }
        }
    }
    Ok(state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_the_plan_yields_the_desired_owned_keys(s in scenario_strategy()) {
        let plan = run_plan(&s);
        let after = simulate(&s, &plan).map_err(TestCaseError::fail)?;
        let own = ownership();
        for (key, desired) in s.desired.iter() {
            if own.owns(key) {
                prop_assert_eq!(after.get(key.as_str()).and_then(|v| v.0.as_ref()), Some(&desired.value));
            } else {
                prop_assert!(plan.refused.contains(key));
            }
        }
        for (raw, before) in s.mirror.iter() {
            let owned_object = EtcdKey::parse(PREFIX, raw).is_ok_and(|k| own.owns(&k));
            if !owned_object {
                // Foreign keys and non-object keys are untouched.
                prop_assert_eq!(after.get(raw).map(|v| v.1), Some(before.mod_revision));
            }
        }
        for raw in after.keys() {
            let Ok(key) = EtcdKey::parse(PREFIX, raw) else { continue };
            if own.owns(&key) && s.desired.get(&key).is_none() {
                // An owned orphan survives only while deletions are deferred.
                prop_assert!(!s.deletions_allowed);
                prop_assert_eq!(after[raw].1, s.mirror.get(raw).unwrap().mod_revision);
            }
        }
    }

    #[test]
    fn unchanged_keys_are_never_written_and_replanning_is_empty(s in scenario_strategy()) {
        let plan = run_plan(&s);
        for change in plan.changes() {
            if let KeyChange::Put { key, value, .. } = change {
                let stored = s.mirror.get(key.as_str()).and_then(|m| m.canonical());
                prop_assert_ne!(stored, Some(value));
            }
        }
        // Idempotence: planning again from the resulting state writes nothing.
        let after = simulate(&s, &plan).map_err(TestCaseError::fail)?;
        let keys = after
            .into_iter()
            .map(|(k, (v, rev))| {
                let value = StoredValue { canonical: v, create_time: Some(1) };
                (k, MirroredKey { value, mod_revision: rev, create_revision: rev })
            })
            .collect();
        let again = Scenario { mirror: MirrorState::from_list(keys, 2000), ..s.clone() };
        prop_assert!(run_plan(&again).is_empty());
    }

    #[test]
    fn planning_a_superset_of_the_disagreeing_keys_gives_the_full_plan(
        s in scenario_strategy(),
        extra in prop::collection::vec(any::<bool>(), 0..100),
    ) {
        let full = run_plan(&s);
        let mut keys: BTreeSet<String> = full.changes().map(|c| c.key().as_str().to_string()).collect();
        let every: Vec<String> = s
            .desired
            .iter()
            .map(|(k, _)| k.as_str().to_string())
            .chain(s.mirror.iter().map(|(k, _)| k.clone()))
            .collect();
        keys.extend(every.iter().zip(&extra).filter(|(_, take)| **take).map(|(k, _)| k.clone()));
        let partial = run_plan_keys(&s, keys.iter().map(String::as_str));
        prop_assert_eq!(&partial.txns, &full.txns);
        let all = run_plan_keys(&s, every.iter().map(String::as_str));
        prop_assert_eq!(&all.txns, &full.txns);
        prop_assert_eq!(all.deferred_deletions, full.deferred_deletions);
        let refused: BTreeSet<_> = all.refused.iter().collect();
        prop_assert_eq!(refused, full.refused.iter().collect::<BTreeSet<_>>());
    }

    #[test]
    fn after_a_sync_the_changed_keys_and_the_journal_are_all_that_needs_planning(
        s in scenario_strategy(),
        unit_changes in unit_changes_strategy(),
        foreign in foreign_writes_strategy(),
    ) {
        // etcd matches the old desired state (the last sync's).
        let synced = run_plan(&s);
        let mut mirror = mirror_after(&s, &synced).map_err(TestCaseError::fail)?;
        let old = s.desired.clone();
        let cursor = mirror.cursor();
        // Then units change, and someone else writes.
        let mut desired = old.clone();
        for (unit, objects) in unit_changes {
            let unit = UnitKey::new("Unit", Some("ns"), &unit.to_string());
            desired.replace_unit(&unit, objects.into_iter().map(|(k, v)| (k, value(v))));
        }
        let mut revision = 3000;
        for (key, write) in foreign {
            revision += 1;
            let event = match write {
                Some(v) => MirrorEvent::Put {
                    key: key.as_str().to_string(),
                    value: StoredValue::parse(&value(v).stamped(1, revision)),
                    mod_revision: revision,
                    create_revision: revision,
                },
                None => MirrorEvent::Delete { key: key.as_str().to_string(), revision },
            };
            mirror.apply_watch([event], revision);
        }
        let next = Scenario { mirror, desired, ..s.clone() };
        let journal = next.mirror.changed_since(cursor).expect("the journal covers it");
        let keys: Vec<&str> = next
            .desired
            .changed_keys(&old)
            .map(|k| k.as_str())
            .chain(journal)
            .collect();
        let incremental = run_plan_keys(&next, keys);
        prop_assert_eq!(incremental.txns, run_plan(&next).txns);
    }

    #[test]
    fn transactions_stay_within_limits(s in scenario_strategy()) {
        let plan = run_plan(&s);
        for txn in &plan.txns {
            prop_assert!(!txn.changes.is_empty());
            prop_assert!(txn.changes.len() <= s.limits.max_ops);
            prop_assert!(txn.changes.len() == 1 || txn.estimated_bytes() <= s.limits.max_bytes);
        }
    }

    #[test]
    fn order_respects_apisix_references(s in scenario_strategy()) {
        let plan = run_plan(&s);
        // Phase of each change: 0 put, 1 delete of a referring object,
        // 2 delete of a referred-to object. Phases never decrease and never
        // share a transaction.
        let phase = |c: &KeyChange| match c {
            KeyChange::Put { .. } => 0,
            KeyChange::Delete { key, .. } if key.dir().is_referring() => 1,
            KeyChange::Delete { .. } => 2,
        };
        let mut last_phase = 0;
        for txn in &plan.txns {
            let phases: BTreeSet<_> = txn.changes.iter().map(phase).collect();
            prop_assert_eq!(phases.len(), 1, "one phase per transaction");
            let p = *phases.iter().next().unwrap();
            prop_assert!(p >= last_phase);
            last_phase = p;
        }
        // Puts: units by non-decreasing level; within a unit, directory order.
        let unit_of = |k: &EtcdKey| s.desired.get(k).unwrap().unit.clone();
        let puts: Vec<&EtcdKey> = plan.changes().filter(|c| c.is_put()).map(|c| c.key()).collect();
        let mut level: BTreeMap<UnitKey, usize> = BTreeMap::new();
        for key in &puts {
            let l = level.entry(unit_of(key)).or_default();
            *l = (*l).max(key.dir().write_rank());
        }
        for pair in puts.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let (ua, ub) = (unit_of(a), unit_of(b));
            prop_assert!(level[&ua] <= level[&ub]);
            if ua == ub {
                prop_assert!(a.dir() <= b.dir());
            }
        }
        // Deletes: reverse directory order within each phase.
        let deletes: Vec<&KeyChange> = plan.changes().filter(|c| !c.is_put()).collect();
        for pair in deletes.windows(2) {
            if phase(pair[0]) == phase(pair[1]) {
                prop_assert!(pair[0].key().dir() >= pair[1].key().dir());
            }
        }
    }

    #[test]
    fn waves_cover_the_plan_and_never_race_a_reference(s in scenario_strategy()) {
        let plan = run_plan(&s);
        let waves = plan.waves();
        // The waves are the transactions, in order, each once.
        let covered: Vec<usize> = waves.iter().flat_map(|w| w.clone()).collect();
        prop_assert_eq!(covered, (0..plan.txns.len()).collect::<Vec<_>>());
        prop_assert!(waves.iter().all(|w| !w.is_empty()));
        // Within a wave, any change of a later transaction may commit before
        // any change of an earlier one: same phase, and never a put of a
        // higher group level than an earlier put's, or a delete of a lower
        // one than an earlier delete's. A group's level: a unit's highest
        // directory among its (unshared) puts; a shared key's or a
        // deletion's own directory.
        let phase = |c: &KeyChange| match c {
            KeyChange::Put { .. } => 0,
            KeyChange::Delete { key, .. } if key.dir().is_referring() => 1,
            KeyChange::Delete { .. } => 2,
        };
        // (A unit split over several transactions counts part by part, at
        // each key's own directory.)
        let mut unit_level: BTreeMap<UnitKey, (ApisixDir, BTreeSet<usize>)> = BTreeMap::new();
        for (i, txn) in plan.txns.iter().enumerate() {
            for change in txn.changes.iter().filter(|c| c.is_put()) {
                let desired = s.desired.get(change.key()).unwrap();
                if !desired.is_shared() {
                    let (level, txns) = unit_level
                        .entry(desired.unit.clone())
                        .or_insert((change.key().dir(), BTreeSet::new()));
                    *level = (*level).max(change.key().dir());
                    txns.insert(i);
                }
            }
        }
        let level = |c: &KeyChange| match s.desired.get(c.key()) {
            Some(desired) if c.is_put() && !desired.is_shared() => {
                match &unit_level[&desired.unit] {
                    (level, txns) if txns.len() == 1 => *level,
                    _ => c.key().dir(),
                }
            }
            _ => c.key().dir(),
        };
        for wave in &waves {
            let txns = &plan.txns[wave.clone()];
            for (i, earlier) in txns.iter().enumerate() {
                for later in &txns[i + 1..] {
                    for a in &earlier.changes {
                        for b in &later.changes {
                            prop_assert_eq!(phase(a), phase(b));
                            let same_unit = a.is_put()
                                && s.desired.get(a.key()).map(|d| (&d.unit, d.is_shared()))
                                    == s.desired.get(b.key()).map(|d| (&d.unit, false));
                            if same_unit {
                                // One unit's parts: in directory order.
                                prop_assert!(b.key().dir() <= a.key().dir(), "{} races {}", b.key(), a.key());
                            }
                            if a.is_put() {
                                prop_assert!(level(b) <= level(a), "{} races {}", b.key(), a.key());
                            } else {
                                prop_assert!(level(b) >= level(a), "{} races {}", b.key(), a.key());
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_unit_that_fits_is_written_in_one_transaction(s in scenario_strategy()) {
        let plan = run_plan(&s);
        let mut txns_of: BTreeMap<UnitKey, (BTreeSet<usize>, usize, usize)> = BTreeMap::new();
        for (i, txn) in plan.txns.iter().enumerate() {
            for change in txn.changes.iter().filter(|c| c.is_put()) {
                let unit = s.desired.get(change.key()).unwrap().unit.clone();
                let entry = txns_of.entry(unit).or_default();
                entry.0.insert(i);
                entry.1 += 1;
                entry.2 += change.estimated_bytes();
            }
        }
        for (unit, (txns, ops, bytes)) in txns_of {
            if ops <= s.limits.max_ops && bytes <= s.limits.max_bytes {
                prop_assert_eq!(txns.len(), 1, "{} split over {:?}", unit, txns);
            }
        }
    }
}

/// Units with a route each, referring to one of a few shared upstreams.
/// `assignment[u]`: unit u's upstream (`None`: the unit does not exist);
/// `versions`: each upstream's value.
fn routed_state(assignment: &[Option<u8>], versions: &[u8], route_version: u8) -> DesiredState {
    let mut state = DesiredState::new();
    for (u, upstream) in assignment.iter().enumerate() {
        let Some(k) = upstream else { continue };
        let unit = UnitKey::new("Route", Some("ns"), &u.to_string());
        let up_id = format!("ao_c1_up{k}");
        let route =
            CanonicalValue::from_json(json!({"upstream_id": up_id, "v": route_version})).unwrap();
        let upstream = CanonicalValue::from_json(json!({"v": versions[*k as usize]})).unwrap();
        state.replace_unit(
            &unit,
            [
                (
                    EtcdKey::new(PREFIX, ApisixDir::Upstreams, &up_id).unwrap(),
                    upstream,
                ),
                (
                    EtcdKey::new(PREFIX, ApisixDir::Routes, &format!("ao_c1_r{u}")).unwrap(),
                    route,
                ),
            ],
        );
    }
    state
}

/// Whether every stored route's upstream is stored too.
fn references_hold(state: &SimState) -> Result<(), String> {
    for (key, (value, _)) in state {
        let Some(upstream) = value.as_ref().and_then(|v| {
            v.to_json()
                .get("upstream_id")
                .and_then(|u| u.as_str())
                .map(str::to_string)
        }) else {
            continue;
        };
        let upstream_key = format!("{PREFIX}/upstreams/{upstream}");
        if !state.contains_key(&upstream_key) {
            return Err(format!("{key} refers to the missing {upstream_key}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn shared_upstreams_exist_before_their_routes_and_outlive_them(
        before in prop::collection::vec(prop::option::of(0..3u8), 6),
        after in prop::collection::vec(prop::option::of(0..3u8), 6),
        versions_before in prop::collection::vec(0..3u8, 3),
        versions_after in prop::collection::vec(0..3u8, 3),
        max_ops in 1..6usize,
    ) {
        let limits = PlanLimits { max_ops, max_bytes: 100_000 };
        let start = Scenario {
            mirror: MirrorState::from_list(BTreeMap::new(), 1),
            desired: routed_state(&before, &versions_before, 1),
            limits,
            deletions_allowed: true,
        };
        let mirror = mirror_after(&start, &run_plan(&start)).map_err(TestCaseError::fail)?;
        let mut desired = start.desired.clone();
        for (u, upstream) in after.iter().enumerate() {
            let unit = UnitKey::new("Route", Some("ns"), &u.to_string());
            let one: Vec<Option<u8>> = (0..after.len()).map(|i| if i == u { *upstream } else { None }).collect();
            let objects: Vec<(EtcdKey, CanonicalValue)> = routed_state(&one, &versions_after, 2)
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect();
            desired.replace_unit(&unit, objects);
        }
        prop_assert_eq!(&desired, &routed_state(&after, &versions_after, 2));
        let next = Scenario { mirror, desired, limits, deletions_allowed: true };
        let plan = run_plan(&next);
        // Whatever part of a wave has committed (its transactions commit
        // concurrently, in any order) after the waves before it, no stored
        // route refers to a missing upstream.
        for wave in plan.waves() {
            let len = wave.len().min(10);
            for subset in 0..(1u32 << len) {
                let mut txns = plan.txns[..wave.start].to_vec();
                txns.extend(
                    (0..len)
                        .filter(|i| subset & (1 << i) != 0)
                        .map(|i| plan.txns[wave.start + i].clone()),
                );
                let partial = WritePlan { txns, ..WritePlan::default() };
                let state = simulate(&next, &partial).map_err(TestCaseError::fail)?;
                references_hold(&state).map_err(TestCaseError::fail)?;
            }
        }
        // And the end is exactly the new state.
        let end = simulate(&next, &plan).map_err(TestCaseError::fail)?;
        let stored: BTreeMap<String, CanonicalValue> = end
            .into_iter()
            .filter_map(|(k, (v, _))| Some((k, v?)))
            .collect();
        let wanted: BTreeMap<String, CanonicalValue> = next
            .desired
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.value.clone()))
            .collect();
        prop_assert_eq!(stored, wanted);
    }
}

#[test]
fn five_thousand_keys_are_chunked_within_limits_in_order() {
    let own = ownership();
    let mut desired = DesiredState::new();
    for i in 0..2500 {
        let unit = UnitKey::new("Ingress", Some("ns"), &format!("ing-{i}"));
        let up = EtcdKey::new(PREFIX, ApisixDir::Upstreams, &format!("ao_c1_u{i}")).unwrap();
        let route = EtcdKey::new(PREFIX, ApisixDir::Routes, &format!("ao_c1_r{i}")).unwrap();
        desired.insert(up, value(1), unit.clone());
        desired.insert(route, value(2), unit);
    }
    let mirror = MirrorState::from_list(BTreeMap::new(), 1);
    let plan = plan(PlanInput {
        desired: &desired,
        mirror: &mirror,
        ownership: &own,
        prefix: PREFIX,
        limits: PlanLimits::default(),
        deletions_allowed: true,
    });
    assert_eq!(plan.puts(), 5000);
    assert!(plan.txns.iter().all(|t| t.changes.len() <= 127));
    // Each Ingress's upstream and route share a transaction, upstream first.
    for txn in &plan.txns {
        assert_eq!(txn.changes.len() % 2, 0);
        for pair in txn.changes.chunks(2) {
            assert_eq!(pair[0].key().dir(), ApisixDir::Upstreams);
            assert_eq!(pair[1].key().dir(), ApisixDir::Routes);
        }
    }
    assert_eq!(plan.txns.len(), 5000usize.div_ceil(126));
}

#[test]
fn no_deletion_before_deletions_are_allowed() {
    let own = ownership();
    let key = EtcdKey::new(PREFIX, ApisixDir::Routes, "ao_c1_gone").unwrap();
    let mut keys = BTreeMap::new();
    keys.insert(
        key.as_str().to_string(),
        MirroredKey {
            value: StoredValue::parse(b"{}"),
            mod_revision: 3,
            create_revision: 3,
        },
    );
    let mirror = MirrorState::from_list(keys, 3);
    let desired = DesiredState::new();
    let mut input = PlanInput {
        desired: &desired,
        mirror: &mirror,
        ownership: &own,
        prefix: PREFIX,
        limits: PlanLimits::default(),
        deletions_allowed: false,
    };
    let deferred = plan(input);
    assert!(deferred.is_empty());
    assert_eq!(deferred.deferred_deletions, 1);
    input.deletions_allowed = true;
    let now = plan(input);
    assert_eq!(
        now.changes().collect::<Vec<_>>(),
        vec![&KeyChange::Delete {
            key,
            expect_mod_revision: 3
        }]
    );
}

#[test]
fn a_cold_sync_of_routes_on_shared_upstreams_is_three_waves() {
    // 50 shared upstreams, then 1,000 route-only units: the upstreams'
    // transactions commit concurrently, then the routes' do.
    let assignment: Vec<Option<u8>> = (0..1000).map(|u| Some((u % 50) as u8)).collect();
    let mut desired = DesiredState::new();
    for (u, k) in assignment.iter().enumerate() {
        let unit = UnitKey::new("Route", Some("ns"), &u.to_string());
        let up = EtcdKey::new(
            PREFIX,
            ApisixDir::Upstreams,
            &format!("ao_c1_up{}", k.unwrap()),
        )
        .unwrap();
        let route = EtcdKey::new(PREFIX, ApisixDir::Routes, &format!("ao_c1_r{u}")).unwrap();
        desired.replace_unit(&unit, [(up, value(1)), (route, value(2))]);
    }
    let mirror = MirrorState::from_list(BTreeMap::new(), 1);
    let plan = plan(PlanInput {
        desired: &desired,
        mirror: &mirror,
        ownership: &ownership(),
        prefix: PREFIX,
        limits: PlanLimits {
            max_ops: 20,
            max_bytes: 1 << 20,
        },
        deletions_allowed: true,
    });
    assert_eq!(plan.puts(), 1050);
    // The transaction that packs the last upstreams with the first routes
    // is a wave of its own.
    let waves = plan.waves();
    assert_eq!(waves, vec![0..2, 2..3, 3..53]);
}
