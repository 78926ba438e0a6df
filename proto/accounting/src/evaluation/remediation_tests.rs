//! The remediation against the exact rules of the rational reference (`tests::reference`):
//! each remedy restores its rule and one TPP less does not; the all-at-once plan makes the
//! fleet compliant and one TPP less added does not; whole units always cover the change.

use proptest::prelude::*;

use super::tests::{code, countries, distribution, fleets, limits, policy, reference};
use super::*;
use crate::{Catalogue, Percent};

/// An accelerator of `tpp` per unit.
fn unit(tpp: u64) -> Accelerator {
    let mut unit = Catalogue::builtin()
        .unwrap()
        .by_id("H100-SXM5-80GB")
        .cloned()
        .unwrap();
    unit.tpp = tpp;
    unit
}

fn h100() -> Accelerator {
    unit(15_840)
}

/// `(action, place, tpp)` of each change, places as country codes or `tier1`.
fn changes<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<(&'static str, String, u64)> {
    changes
        .into_iter()
        .map(|change| {
            let place = match change.place {
                Place::Country(country) => country.to_string(),
                Place::AnyTier1 => "tier1".to_owned(),
            };
            (change.action.as_str(), place, change.tpp)
        })
        .collect()
}

/// The fleet with `tpp` of `change` applied; "any Tier-1 country" is Japan (Tier 1, not home).
fn apply(fleet: &[(CountryCode, u64)], change: &Change, tpp: u64) -> Vec<(CountryCode, u64)> {
    let mut fleet = fleet.to_vec();
    match (change.action, change.place) {
        (Action::Add, Place::Country(country)) => fleet.push((country, tpp)),
        (Action::Add, Place::AnyTier1) => fleet.push((code("JP"), tpp)),
        (Action::Remove, Place::Country(country)) => {
            let mut left = tpp;
            for (row, row_tpp) in fleet.iter_mut() {
                if *row == country {
                    let taken = left.min(*row_tpp);
                    *row_tpp -= taken;
                    left -= taken;
                }
            }
            assert_eq!(left, 0, "removes more than {country} holds");
        }
        (Action::Remove, Place::AnyTier1) => panic!("nothing is removed from Tier 1"),
    }
    fleet
}

fn evaluated(fleet: &[(CountryCode, u64)], policy: &Policy) -> Evaluation {
    let mut d = Distribution::new();
    for (country, tpp) in fleet {
        d.add(*country, *tpp).unwrap();
    }
    evaluate(policy, &d)
}

#[test]
fn a_compliant_fleet_or_one_without_compute_needs_nothing() {
    for rows in [&[("US", 930), ("MY", 70)][..], &[], &[("US", 0), ("MY", 0)]] {
        let e = evaluate(&policy(), &distribution(rows));
        assert_eq!(remediation(&policy(), &e, &h100()), Remediation::default());
    }
}

#[test]
fn a_tier_2_breach_is_restored_by_removing_there_or_adding_in_tier_1() {
    // MY holds 100 of 1000 (10 %): remove ⌈(100·100 − 7·1000)/93⌉ = ⌈3000/93⌉ = 33 from MY,
    // or add ⌈3000/7⌉ = 429 in Tier 1.
    let e = evaluate(&policy(), &distribution(&[("US", 900), ("MY", 100)]));
    let r = remediation(&policy(), &e, &unit(10));
    let my = Violation {
        rule: Rule::Tier2CountryMaxShare,
        country: Some(code("MY")),
    };
    assert!(r.remedies.iter().all(|remedy| remedy.violation == my));
    assert_eq!(
        changes(r.remedies.iter().map(|remedy| &remedy.change)),
        [
            ("remove", "MY".to_owned(), 33),
            ("add", "tier1".to_owned(), 429)
        ]
    );
    // Whole units of 10 TPP, rounded up: 4 and 43.
    let units: Vec<u64> = r
        .remedies
        .iter()
        .map(|remedy| remedy.change.units)
        .collect();
    assert_eq!(units, [4, 43]);
    // At once: the home country is the place, and 429 there also keeps every other rule.
    assert_eq!(
        changes(r.all_at_once.as_ref().unwrap()),
        [("add", "US".to_owned(), 429)]
    );
}

#[test]
fn the_2025_closed_forms_for_the_minimum_shares() {
    // T = 1000, T1 = 700 (US 400, JP 300), MY 60, SG 60, IN 60, AE 60, BR 60.
    let e = evaluate(
        &policy(),
        &distribution(&[
            ("US", 400),
            ("JP", 300),
            ("MY", 60),
            ("SG", 60),
            ("IN", 60),
            ("AE", 60),
            ("BR", 60),
        ]),
    );
    let r = remediation(&policy(), &e, &h100());
    assert_eq!(
        changes(r.remedies.iter().map(|remedy| &remedy.change)),
        [
            // 3T − 4·T1 = 3000 − 2800.
            ("add", "tier1".to_owned(), 200),
            // T − 2H = 1000 − 800.
            ("add", "US".to_owned(), 200),
        ]
    );
    assert_eq!(
        changes(r.all_at_once.as_ref().unwrap()),
        [("add", "US".to_owned(), 200)]
    );
}

#[test]
fn tier_3_is_emptied_and_the_rest_restored_in_one_place() {
    // US 600, MY 100, CN 300: after CN is emptied, T = 700 and MY holds 100 (14.3 %).
    let e = evaluate(
        &policy(),
        &distribution(&[("US", 600), ("MY", 100), ("CN", 300)]),
    );
    let r = remediation(&policy(), &e, &h100());
    let all = r.all_at_once.unwrap();
    // MY needs ⌈(100·100 − 7·700)/7⌉ = ⌈5100/7⌉ = 729 more at home; Tier 1 and home hold.
    assert_eq!(
        changes(&all),
        [
            ("remove", "CN".to_owned(), 300),
            ("add", "US".to_owned(), 729)
        ]
    );
    // Removing the Tier-3 compute, as a remedy, is all of it.
    assert!(
        r.remedies
            .iter()
            .any(|remedy| remedy.violation.rule == Rule::Tier3Prohibited
                && remedy.change.tpp == 300
                && remedy.change.units == 1)
    );

    // Only Tier 3: emptying it is the whole plan, and nothing need be added.
    let e = evaluate(&policy(), &distribution(&[("US", 600), ("CN", 1)]));
    let r = remediation(&policy(), &e, &h100());
    assert_eq!(
        changes(r.all_at_once.as_ref().unwrap()),
        [("remove", "CN".to_owned(), 1)]
    );

    // Nothing but Tier 3: once it is emptied nothing is counted, so one TPP at home at least.
    let e = evaluate(&policy(), &distribution(&[("CN", 50)]));
    let r = remediation(&policy(), &e, &h100());
    assert_eq!(
        changes(r.all_at_once.as_ref().unwrap()),
        [("remove", "CN".to_owned(), 50), ("add", "US".to_owned(), 1)]
    );
}

#[test]
fn what_no_amount_of_a_change_can_do_is_not_offered() {
    // A 100 % Tier-1 minimum cannot be reached by adding while MY holds compute, and a 0 %
    // Tier-2 maximum cannot be kept by adding elsewhere: only removing MY's compute helps.
    let mut strict = policy();
    strict.tier1_min_share = Percent::whole(100).unwrap();
    strict.tier2_country_max_share = Percent::whole(0).unwrap();
    let e = evaluate(&strict, &distribution(&[("US", 900), ("MY", 100)]));
    let r = remediation(&strict, &e, &h100());
    assert_eq!(
        changes(r.remedies.iter().map(|remedy| &remedy.change)),
        [("remove", "MY".to_owned(), 100)]
    );
    assert_eq!(r.all_at_once, None);

    // A policy without Tier-1 countries has nowhere to add: only removing MY's compute is left.
    let text = crate::policy::UVEU_2025_US_TOML.replace(
        "\"US\", \"AU\", \"BE\", \"CA\", \"DK\", \"FI\", \"FR\", \"DE\", \"IE\", \"IT\",\n    \"JP\", \"NL\", \"NZ\", \"NO\", \"KR\", \"ES\", \"SE\", \"TW\", \"GB\",",
        "",
    );
    let mut empty = Policy::from_toml(&text).unwrap();
    assert_eq!(empty.tier1().count(), 0);
    empty.home_min_share = None;
    let e = evaluate(&empty, &distribution(&[("US", 900), ("MY", 100)]));
    let r = remediation(&empty, &e, &h100());
    assert!(
        r.remedies
            .iter()
            .all(|remedy| remedy.change.action == Action::Remove)
    );
    assert_eq!(r.all_at_once, None);

    // A home country outside Tier 1 has no single place that raises every minimum.
    let mut abroad = policy();
    abroad.headquarters = code("MY");
    let e = evaluate(&abroad, &distribution(&[("MY", 400), ("US", 600)]));
    assert!(!e.violations.is_empty());
    assert_eq!(remediation(&abroad, &e, &h100()).all_at_once, None);
}

#[test]
fn without_a_home_rule_any_tier_1_country_restores_every_rule() {
    let mut policy = policy();
    policy.home_min_share = None;
    let e = evaluate(&policy, &distribution(&[("DE", 700), ("MY", 300)]));
    let r = remediation(&policy, &e, &h100());
    // MY: ⌈(30,000 − 7,000)/7⌉ = 3286 dilutes it; Tier 1 needs only 3·1000 − 4·700 = 200.
    assert_eq!(
        changes(r.all_at_once.as_ref().unwrap()),
        [("add", "tier1".to_owned(), 3286)]
    );
}

/// Fleets that break rules often, at small and realistic magnitudes.
fn breaking_fleets() -> impl Strategy<Value = Vec<(CountryCode, u64)>> {
    prop_oneof![
        fleets(),
        prop::collection::vec((countries(), 0u64..5_000_000), 1..10),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn each_remedy_is_the_least_change_that_restores_its_rule(
        fleet in breaking_fleets(),
        tier1_min in limits(99),
        tier2_max in limits(99),
        home_min in prop::option::of(limits(99)),
        unit_tpp in 1u64..40_000,
    ) {
        let mut policy = policy();
        policy.tier1_min_share = tier1_min.percent();
        policy.tier2_country_max_share = tier2_max.percent();
        policy.home_min_share = home_min.map(|limit| limit.percent());
        let rules = reference::Rules { tier1_min, home_min, tier2_max };
        let evaluation = evaluated(&fleet, &policy);
        let remediation = remediation(&policy, &evaluation, &unit(unit_tpp));
        let broken = |fleet: &[(CountryCode, u64)], violation: &Violation| {
            reference::violations(&policy, &rules, fleet).contains(violation)
        };

        prop_assert_eq!(remediation.remedies.is_empty(), evaluation.violations.is_empty());
        // Limits strictly between 0 and 100 %: every violation has a remedy.
        for violation in &evaluation.violations {
            prop_assert!(remediation.remedies.iter().any(|r| r.violation == *violation));
        }
        for remedy in &remediation.remedies {
            let change = &remedy.change;
            prop_assert!(change.tpp > 0);
            prop_assert!(
                !broken(&apply(&fleet, change, change.tpp), &remedy.violation),
                "{:?} does not restore {:?}", change, remedy.violation
            );
            prop_assert!(
                broken(&apply(&fleet, change, change.tpp - 1), &remedy.violation),
                "{:?} is not the least", change
            );
            prop_assert!(u128::from(change.units) * u128::from(unit_tpp) >= u128::from(change.tpp));
            prop_assert!(u128::from(change.units - 1) * u128::from(unit_tpp) < u128::from(change.tpp));
        }

        match &remediation.all_at_once {
            None => prop_assert!(evaluation.violations.is_empty()),
            Some(plan) => {
                let mut fixed = fleet.clone();
                for change in plan {
                    fixed = apply(&fixed, change, change.tpp);
                }
                prop_assert!(reference::violations(&policy, &rules, &fixed).is_empty());
                prop_assert!(fixed.iter().any(|(_, tpp)| *tpp > 0), "nothing counted");
                // Tier 3 must be emptied whole; the addition is the least that restores all.
                if let Some(add) = plan.iter().find(|change| change.action == Action::Add) {
                    let mut short = fleet.clone();
                    for change in plan {
                        let tpp = if change.action == Action::Add { change.tpp - 1 } else { change.tpp };
                        short = apply(&short, change, tpp);
                    }
                    prop_assert!(
                        !reference::violations(&policy, &rules, &short).is_empty()
                            || short.iter().all(|(_, tpp)| *tpp == 0),
                        "adding {} less than {:?} restores compliance too", 1, add
                    );
                }
            }
        }
    }
}
