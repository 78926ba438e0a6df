//! The replay against a naive one: for every instant, rebuild the distribution from scratch
//! and evaluate it with `proto_accounting::evaluate`; the verdict states decided here again,
//! from the violations and the total, at a random as-of instant.

use std::collections::{BTreeMap, BTreeSet};

use collector_report::{ChangeKind, HostChange, Report, State, build};
use proptest::prelude::*;
use proto_accounting::{Distribution, Evaluation, Policy, Rule, evaluate};

use crate::harness::*;

const COUNTRIES: [&str; 9] = ["US", "DE", "JP", "MY", "SG", "IN", "AE", "CN", "RU"];
const HOSTS: [&str; 6] = ["h0", "h1", "h2", "h3", "h4", "h5"];

/// The state after every change at or before `at_ms`, evaluated from scratch.
fn naive(policy: &Policy, changes: &[HostChange], at_ms: i64) -> Evaluation {
    let mut hosts = BTreeMap::new();
    for change in changes.iter().filter(|c| c.at_ms <= at_ms) {
        match change.kind {
            ChangeKind::Attested => hosts.insert(&change.host_id, (change.country, change.tpp)),
            ChangeKind::Decommissioned => hosts.remove(&change.host_id),
        };
    }
    let mut distribution = Distribution::new();
    for (country, tpp) in hosts.values() {
        distribution.add(*country, *tpp).unwrap();
    }
    evaluate(policy, &distribution)
}

/// The state of the instant `at_ms`, decided without `Evaluation::verdict`: nothing before
/// the first change; then a broken rule, else an empty total, else compliant.
fn naive_state(policy: &Policy, changes: &[HostChange], at_ms: i64) -> State {
    if !changes.iter().any(|c| c.at_ms <= at_ms) {
        return State::NoEvidence;
    }
    let evaluation = naive(policy, changes, at_ms);
    if !evaluation.violations.is_empty() {
        State::NotCompliant
    } else if evaluation.total_tpp == 0 {
        State::NoCompute
    } else {
        State::Compliant
    }
}

/// The worst of `states` in the order no evidence < compliant < no compute < not compliant.
fn worst(states: impl IntoIterator<Item = State>) -> State {
    let rank = |state: State| match state {
        State::NoEvidence => 0,
        State::Compliant => 1,
        State::NoCompute => 2,
        State::NotCompliant => 3,
    };
    states
        .into_iter()
        .max_by_key(|state| rank(*state))
        .unwrap_or(State::NoEvidence)
}

fn broken(evaluation: &Evaluation) -> BTreeSet<(Rule, Option<String>)> {
    evaluation
        .violations
        .iter()
        .map(|v| (v.rule, v.country.map(|c| c.to_string())))
        .collect()
}

/// The violations the report says were open at `at_ms`.
fn open_at(report: &Report, at_ms: i64) -> BTreeSet<(Rule, Option<String>)> {
    report
        .violations
        .iter()
        .filter(|v| v.start_ms <= at_ms && v.end_ms.is_none_or(|end| at_ms < end))
        .map(|v| (v.rule, v.country.map(|c| c.to_string())))
        .collect()
}

fn change() -> impl Strategy<Value = HostChange> {
    // Hours from five days before the month to its end, so instants collide often.
    (
        -120i64..720,
        0..HOSTS.len(),
        0..COUNTRIES.len(),
        0u64..1000,
        0u8..10,
    )
        .prop_map(|(hour, host, country, tpp, kind)| {
            let at_ms = start() + hour * HOUR_MS;
            if kind == 0 {
                decommission(at_ms, HOSTS[host], COUNTRIES[country])
            } else {
                attest(at_ms, HOSTS[host], COUNTRIES[country], tpp)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_replay_agrees_with_a_naive_evaluation(
        mut changes in prop::collection::vec(change(), 0..40),
        // The month's end half the time; otherwise any millisecond of it.
        as_of in prop_oneof![Just(None), (1i64..30 * DAY_MS).prop_map(Some)],
    ) {
        changes.sort_by_key(|c| c.at_ms);
        let policy = us_policy();
        let as_of_ms = as_of.map_or(month().end_ms(), |offset| start() + offset);
        changes.retain(|c| c.at_ms < as_of_ms);
        let mut input = input(policy.clone(), changes.clone());
        input.as_of_ms = as_of_ms;
        let report = build(&input).unwrap();
        prop_assert_eq!(report.as_of_ms, as_of_ms);
        prop_assert_eq!(report.partial, as_of_ms < month().end_ms());

        let end = naive(&policy, &changes, i64::MAX);
        prop_assert_eq!(report.verdict.at_end, naive_state(&policy, &changes, as_of_ms - 1));
        prop_assert_eq!(report.end_of_month.total_tpp, end.total_tpp);
        let reported: BTreeSet<_> = report
            .end_of_month
            .violations
            .iter()
            .map(|v| (v.rule, v.country.map(|c| c.to_string())))
            .collect();
        prop_assert_eq!(&reported, &broken(&end));

        let mut instants: Vec<i64> = changes.iter().map(|c| c.at_ms).filter(|t| *t >= start()).collect();
        instants.push(start());
        instants.sort();
        instants.dedup();
        for at_ms in &instants {
            let evaluation = naive(&policy, &changes, *at_ms);
            prop_assert_eq!(open_at(&report, *at_ms), broken(&evaluation), "at {}", at_ms);
        }
        let states: Vec<State> = instants.iter().map(|t| naive_state(&policy, &changes, *t)).collect();
        prop_assert_eq!(report.verdict.state, worst(states.iter().copied()));
        prop_assert_eq!(
            report.verdict.evidence_from_ms,
            instants.iter().zip(&states).find(|(_, s)| **s != State::NoEvidence).map(|(t, _)| *t)
        );
        prop_assert!(report.violations.iter().all(|v| v.start_ms < as_of_ms && v.end_ms.is_none_or(|e| e < as_of_ms)));

        // One row per day with time before the as-of instant, none after it.
        let covered = (as_of_ms - start() + DAY_MS - 1) / DAY_MS;
        prop_assert_eq!(report.daily.len() as i64, covered);
        for (i, day) in report.daily.iter().enumerate() {
            let day_start = start() + i as i64 * DAY_MS;
            let day_end = (day_start + DAY_MS).min(as_of_ms);
            prop_assert_eq!(day.partial, day_end < day_start + DAY_MS);
            let evaluation = naive(&policy, &changes, day_end - 1);
            prop_assert_eq!(day.total_tpp, evaluation.total_tpp);
            prop_assert_eq!(day.state, naive_state(&policy, &changes, day_end - 1));
            // The day's instants: its first (the state carried in) and each change in it.
            let in_day = std::iter::once(day_start)
                .chain(instants.iter().copied().filter(|t| (day_start..day_end).contains(t)))
                .map(|t| naive_state(&policy, &changes, t));
            prop_assert_eq!(day.state_all_day, worst(in_day), "{}", day.date);
        }
    }
}
