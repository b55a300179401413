//! Planner speed on 10k and 100k keys: a cold start (every key new), an idle
//! resync (nothing changed) and a 1% change.

use std::collections::BTreeMap;

use apisix_operator::apisix::Ownership;
use apisix_operator::apisix::StoredValue;
use apisix_operator::sync::synthetic::synthetic_state;
use apisix_operator::sync::{DesiredState, MirrorState, MirroredKey, PlanInput, PlanLimits, plan};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const PREFIX: &str = "/apisix";
const CLUSTER: &str = "bench";

fn mirror_of(state: &DesiredState) -> MirrorState {
    let keys: BTreeMap<String, MirroredKey> = state
        .iter()
        .enumerate()
        .map(|(i, (key, desired))| {
            let rev = i as i64 + 2;
            (
                key.as_str().to_string(),
                MirroredKey {
                    value: StoredValue::parse(&desired.value.stamped(1, 1)),
                    mod_revision: rev,
                    create_revision: rev,
                },
            )
        })
        .collect();
    MirrorState::from_list(keys, 1_000_000)
}

fn bench_planner(c: &mut Criterion) {
    let ownership = Ownership::new(CLUSTER).unwrap();
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for keys in [10_000usize, 100_000] {
        let units = keys / 2;
        let desired = synthetic_state(PREFIX, CLUSTER, units, 1);
        let empty = MirrorState::from_list(BTreeMap::new(), 1);
        let converged = mirror_of(&desired);
        // 1% of the units moved to a new generation: their routes change.
        let mut changed = desired.clone();
        let bumped = synthetic_state(PREFIX, CLUSTER, units / 100, 2);
        for (key, value) in bumped.iter() {
            changed.insert(key.clone(), value.value.clone(), value.unit.clone());
        }
        let input = |desired: &'_ DesiredState, mirror: &'_ MirrorState| -> usize {
            plan(PlanInput {
                desired,
                mirror,
                ownership: &ownership,
                prefix: PREFIX,
                limits: PlanLimits::default(),
                deletions_allowed: true,
            })
            .txns
            .len()
        };
        group.bench_with_input(BenchmarkId::new("cold", keys), &keys, |b, _| {
            b.iter(|| input(&desired, &empty))
        });
        group.bench_with_input(BenchmarkId::new("idle", keys), &keys, |b, _| {
            b.iter(|| {
                let txns = input(&desired, &converged);
                assert_eq!(txns, 0);
                txns
            })
        });
        group.bench_with_input(
            BenchmarkId::new("one_percent_changed", keys),
            &keys,
            |b, _| b.iter(|| input(&changed, &converged)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_planner);
criterion_main!(benches);
