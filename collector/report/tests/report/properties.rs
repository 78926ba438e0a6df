//! The replay against a naive one: for every instant, rebuild the distribution from scratch
//! and evaluate it with `proto_accounting::evaluate`.

use std::collections::{BTreeMap, BTreeSet};

use collector_report::{ChangeKind, HostChange, Report, build};
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
    fn the_replay_agrees_with_a_naive_evaluation(mut changes in prop::collection::vec(change(), 0..40)) {
        changes.sort_by_key(|c| c.at_ms);
        let policy = us_policy();
        let report = build(&input(policy.clone(), changes.clone())).unwrap();

        let end = naive(&policy, &changes, i64::MAX);
        prop_assert_eq!(report.verdict.compliant_at_end, end.compliant());
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
        let mut all_month = true;
        for at_ms in instants {
            let evaluation = naive(&policy, &changes, at_ms);
            all_month &= evaluation.compliant();
            prop_assert_eq!(open_at(&report, at_ms), broken(&evaluation), "at {}", at_ms);
        }
        prop_assert_eq!(report.verdict.compliant_all_month, all_month);

        for (i, day) in report.daily.iter().enumerate() {
            let day_end = start() + (i as i64 + 1) * DAY_MS;
            let evaluation = naive(&policy, &changes, day_end - 1);
            prop_assert_eq!(day.total_tpp, evaluation.total_tpp);
            prop_assert_eq!(day.compliant, evaluation.compliant());
        }
    }
}
