//! Boundary cases, and property tests against an independent rational implementation that
//! finds headroom by search instead of by formula.

use proptest::prelude::*;

use super::*;
use crate::Percent;

pub(super) fn code(text: &str) -> CountryCode {
    CountryCode::parse(text).unwrap()
}

pub(super) fn policy() -> Policy {
    Policy::uveu_2025_us().unwrap()
}

pub(super) fn distribution(rows: &[(&str, u64)]) -> Distribution {
    let mut distribution = Distribution::new();
    for (country, tpp) in rows {
        distribution.add(code(country), *tpp).unwrap();
    }
    distribution
}

/// Violations as `rule` or `rule:COUNTRY`.
fn violations(evaluation: &Evaluation) -> Vec<String> {
    evaluation
        .violations
        .iter()
        .map(|v| match v.country {
            Some(country) => format!("{}:{country}", v.rule),
            None => v.rule.to_string(),
        })
        .collect()
}

fn headroom(evaluation: &Evaluation, country: &str) -> Option<u64> {
    evaluation
        .countries
        .iter()
        .find(|line| line.country == code(country))
        .and_then(|line| line.headroom)
}

#[test]
fn exactly_75_percent_in_tier_1_passes() {
    let e = evaluate(
        &policy(),
        &distribution(&[
            ("US", 600),
            ("DE", 150),
            ("MY", 70),
            ("SG", 70),
            ("IN", 70),
            ("AE", 40),
        ]),
    );
    assert_eq!(e.total_tpp, 1000);
    assert_eq!(e.tier1_tpp, 750);
    assert!(e.compliant(), "{:?}", e.violations);
    // Any addition in Tier 2 pushes Tier 1 below 75 %.
    assert_eq!(headroom(&e, "MY"), Some(0));
    assert_eq!(e.new_tier2_country_headroom, 0);
}

#[test]
fn one_tpp_below_75_percent_fails() {
    let e = evaluate(
        &policy(),
        &distribution(&[
            ("US", 600),
            ("DE", 149),
            ("MX", 71),
            ("SG", 70),
            ("IN", 70),
            ("AE", 40),
        ]),
    );
    assert_eq!(
        violations(&e),
        ["tier1_min_share", "tier2_country_max_share:MX"]
    );
    assert!(e.countries.iter().all(|c| c.headroom.unwrap_or(0) == 0));
}

#[test]
fn exactly_7_percent_in_a_tier_2_country_passes_and_one_more_fails() {
    let e = evaluate(&policy(), &distribution(&[("US", 930), ("MY", 70)]));
    assert!(e.compliant());
    assert_eq!(headroom(&e, "MY"), Some(0));
    // A new Tier-2 country: min(⌊7·1000/93⌋, ⌊(4·930 − 3000)/3⌋, 2·930 − 1000) = min(75, 240, 860).
    assert_eq!(e.new_tier2_country_headroom, 75);

    let e = evaluate(&policy(), &distribution(&[("US", 930), ("MY", 71)]));
    assert_eq!(violations(&e), ["tier2_country_max_share:MY"]);
    assert_eq!(e.new_tier2_country_headroom, 0);
}

#[test]
fn seven_percent_plus_one_tpp_at_scale_fails() {
    // 7 % of 126,720,000 is 8,870,400; one more TPP in the country is a breach.
    let ok = evaluate(
        &policy(),
        &distribution(&[("US", 117_849_600), ("SG", 8_870_400)]),
    );
    assert!(ok.compliant());
    let breach = evaluate(
        &policy(),
        &distribution(&[("US", 117_849_600), ("SG", 8_870_401)]),
    );
    assert_eq!(violations(&breach), ["tier2_country_max_share:SG"]);
}

#[test]
fn exactly_50_percent_at_home_passes() {
    let e = evaluate(
        &policy(),
        &distribution(&[("US", 500), ("JP", 450), ("MY", 50)]),
    );
    assert!(e.compliant());
    assert_eq!(e.home, Some((code("US"), 500)));
    assert_eq!(headroom(&e, "MY"), Some(0), "2H − T = 0");
    let e = evaluate(
        &policy(),
        &distribution(&[("US", 499), ("JP", 451), ("MY", 50)]),
    );
    assert_eq!(violations(&e), ["home_min_share:US"]);
}

#[test]
fn an_empty_fleet_is_no_compute_never_compliant() {
    let e = evaluate(&policy(), &Distribution::new());
    assert_eq!(e.verdict(), Verdict::NoCompute);
    assert!(!e.compliant());
    assert!(
        e.violations.is_empty(),
        "no share of nothing can break a rule"
    );
    assert_eq!(e.total_tpp, 0);
    assert!(e.countries.is_empty());
    assert_eq!(e.new_tier2_country_headroom, 0);
}

#[test]
fn rows_that_count_nothing_are_no_compute() {
    // Hosts listed everywhere, Tier 3 included, none with counted TPP (every device refused
    // or not counted by the policy).
    let e = evaluate(&policy(), &distribution(&[("US", 0), ("MY", 0), ("CN", 0)]));
    assert_eq!(e.verdict(), Verdict::NoCompute);
    assert!(!e.compliant());
    assert_eq!(e.countries.len(), 3);
    assert_eq!(headroom(&e, "MY"), Some(0));
    // One TPP anywhere decides: compliant in the US, not compliant in Malaysia.
    let e = evaluate(&policy(), &distribution(&[("US", 1), ("CN", 0)]));
    assert_eq!(e.verdict(), Verdict::Compliant);
    let e = evaluate(&policy(), &distribution(&[("US", 0), ("MY", 1)]));
    assert_eq!(e.verdict(), Verdict::NotCompliant);
}

#[test]
fn verdict_names_are_the_contract() {
    let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(names, ["compliant", "not_compliant", "no_compute"]);
    assert_eq!(Verdict::NoCompute.to_string(), "no_compute");
    assert_eq!(Verdict::NotCompliant.headline(), "NOT COMPLIANT");
}

#[test]
fn tier_3_only_breaks_every_rule_it_touches() {
    let e = evaluate(&policy(), &distribution(&[("CN", 100), ("RU", 1)]));
    assert_eq!(
        violations(&e),
        [
            "tier1_min_share",
            "home_min_share:US",
            "tier3_prohibited:CN",
            "tier3_prohibited:RU",
        ]
    );
}

#[test]
fn zero_count_row_is_listed_without_breaking_a_rule() {
    let e = evaluate(
        &policy(),
        &distribution(&[("US", 1000), ("CN", 0), ("MY", 0)]),
    );
    assert!(e.compliant());
    assert_eq!(e.countries.len(), 3);
    // ⌊7·1000/93⌋ = 75; (4·1000 − 3000)/3 = 333; 2·1000 − 1000 = 1000.
    assert_eq!(headroom(&e, "MY"), Some(75));
    assert_eq!(headroom(&e, "CN"), None, "Tier 3 has no headroom");
}

#[test]
fn headroom_is_the_2025_closed_form() {
    // T = 10,000, T1 = 9,000, H = 6,000, c = 300 in MY.
    let e = evaluate(
        &policy(),
        &distribution(&[("US", 6000), ("JP", 3000), ("MY", 300), ("IN", 700)]),
    );
    assert!(e.compliant());
    let terms = [
        (7 * 10_000 - 100 * 300) / 93,
        (4 * 9000 - 3 * 10_000) / 3,
        2 * 6000 - 10_000,
    ];
    assert_eq!(terms, [430, 2000, 2000]);
    assert_eq!(headroom(&e, "MY"), terms.into_iter().min());

    // The home term binds when the US holds just over half.
    let e = evaluate(
        &policy(),
        &distribution(&[("US", 5100), ("JP", 3900), ("MY", 300), ("IN", 700)]),
    );
    let terms = [
        (7 * 10_000 - 100 * 300) / 93,
        (4 * 9000 - 3 * 10_000) / 3,
        2 * 5100 - 10_000,
    ];
    assert_eq!(terms, [430, 2000, 200]);
    assert_eq!(headroom(&e, "MY"), Some(200));
}

#[test]
fn without_a_home_rule_the_home_term_is_dropped() {
    let mut policy = policy();
    policy.home_min_share = None;
    let e = evaluate(
        &policy,
        &distribution(&[
            ("DE", 7600),
            ("MY", 500),
            ("IN", 500),
            ("SG", 500),
            ("AE", 500),
            ("BR", 400),
        ]),
    );
    assert!(e.compliant());
    assert_eq!(e.home, None);
    // Without the home term the Tier-1 term binds: min(⌊(70,000 − 50,000)/93⌋, ⌊(30,400 − 30,000)/3⌋).
    let terms = [(70_000 - 50_000) / 93, (4 * 7600 - 30_000) / 3];
    assert_eq!(terms, [215, 133]);
    assert_eq!(headroom(&e, "MY"), Some(133));
}

#[test]
fn replace_moves_a_host_without_a_rescan() {
    let mut d = distribution(&[("US", 1000)]);
    d.replace(None, Some((code("MY"), 80))).unwrap();
    assert_eq!(d.total(), 1080);
    d.replace(Some((code("MY"), 80)), Some((code("SG"), 80)))
        .unwrap();
    assert_eq!(
        (d.of(code("MY")), d.of(code("SG")), d.total()),
        (0, 80, 1080)
    );
    d.replace(Some((code("SG"), 80)), None).unwrap();
    assert_eq!(d.total(), 1000);
}

#[test]
fn overflow_is_an_error_not_a_wrap() {
    let mut d = distribution(&[("US", u64::MAX)]);
    assert_eq!(d.add(code("DE"), 1), Err(TppOverflow));
    assert_eq!(d.total(), u64::MAX);
}

/// The reference: shares as reduced fractions, rules checked one by one, headroom found by
/// binary search over "does every rule still hold?".
pub(super) mod reference {
    use super::*;

    #[derive(Clone, Copy, Debug)]
    pub struct Fraction {
        numerator: u128,
        denominator: u128,
    }

    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 { a } else { gcd(b, a % b) }
    }

    impl Fraction {
        pub fn new(numerator: u128, denominator: u128) -> Self {
            let g = gcd(numerator, denominator).max(1);
            Self {
                numerator: numerator / g,
                denominator: denominator / g,
            }
        }

        /// `a/b < c/d`, for non-negative fractions with positive denominators.
        fn less_than(self, other: Self) -> bool {
            self.numerator * other.denominator < other.numerator * self.denominator
        }
    }

    /// A threshold `numerator / denominator` percent, as a fraction of one.
    #[derive(Clone, Copy, Debug)]
    pub struct Limit {
        pub numerator: u128,
        pub denominator: u128,
    }

    impl Limit {
        fn fraction(self) -> Fraction {
            Fraction::new(self.numerator, 100 * self.denominator)
        }

        pub fn percent(self) -> Percent {
            let whole = self.numerator / self.denominator;
            let rest = self.numerator % self.denominator;
            let decimals = self.denominator.ilog10() as usize;
            let text = if decimals == 0 {
                whole.to_string()
            } else {
                format!("{whole}.{rest:0decimals$}")
            };
            Percent::parse(&text).unwrap()
        }
    }

    pub struct Rules {
        pub tier1_min: Limit,
        pub home_min: Option<Limit>,
        pub tier2_max: Limit,
    }

    fn share(part: u128, total: u128) -> Option<Fraction> {
        (total > 0).then(|| Fraction::new(part, total))
    }

    pub fn violations(
        policy: &Policy,
        rules: &Rules,
        fleet: &[(CountryCode, u64)],
    ) -> Vec<Violation> {
        let mut per_country: BTreeMap<CountryCode, u128> = BTreeMap::new();
        for (country, tpp) in fleet {
            *per_country.entry(*country).or_default() += u128::from(*tpp);
        }
        let total: u128 = per_country.values().sum();
        let in_tier = |tier: Tier| -> u128 {
            per_country
                .iter()
                .filter(|(c, _)| policy.tier(**c) == tier)
                .map(|(_, t)| *t)
                .sum()
        };
        let mut found = Vec::new();
        if share(in_tier(Tier::One), total).is_some_and(|s| s.less_than(rules.tier1_min.fraction()))
        {
            found.push(Violation {
                rule: Rule::Tier1MinShare,
                country: None,
            });
        }
        if let Some(home_min) = rules.home_min {
            let home = code("US");
            let tpp = per_country.get(&home).copied().unwrap_or(0);
            if share(tpp, total).is_some_and(|s| s.less_than(home_min.fraction())) {
                found.push(Violation {
                    rule: Rule::HomeMinShare,
                    country: Some(home),
                });
            }
        }
        for (country, tpp) in &per_country {
            match policy.tier(*country) {
                Tier::Two
                    if share(*tpp, total)
                        .is_some_and(|s| rules.tier2_max.fraction().less_than(s)) =>
                {
                    found.push(Violation {
                        rule: Rule::Tier2CountryMaxShare,
                        country: Some(*country),
                    })
                }
                Tier::Three if *tpp > 0 => found.push(Violation {
                    rule: Rule::Tier3Prohibited,
                    country: Some(*country),
                }),
                _ => {}
            }
        }
        found.sort();
        found
    }

    /// Largest x in [0, bound] that can be added to `country` with no violation; 0 when the
    /// fleet already fails.
    pub fn headroom(
        policy: &Policy,
        rules: &Rules,
        fleet: &[(CountryCode, u64)],
        country: CountryCode,
    ) -> u64 {
        let passes = |x: u64| {
            let mut grown = fleet.to_vec();
            grown.push((country, x));
            violations(policy, rules, &grown).is_empty()
        };
        if !passes(0) {
            return 0;
        }
        let total: u64 = fleet.iter().map(|(_, t)| t).sum();
        let (mut low, mut high) = (0u64, 100 * total + 1_000);
        assert!(!passes(high), "bounded policies only");
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if passes(middle) {
                low = middle
            } else {
                high = middle
            }
        }
        low
    }
}

pub(super) fn countries() -> impl Strategy<Value = CountryCode> {
    // Tier 1 (with home), Tier 2 and Tier 3 countries.
    prop::sample::select(vec![
        "US", "DE", "JP", "GB", "MY", "SG", "IN", "AE", "BR", "CN", "RU",
    ])
    .prop_map(code)
}

pub(super) fn limits(max_whole: u128) -> impl Strategy<Value = reference::Limit> {
    (
        1..=max_whole,
        prop::sample::select(vec![1u128, 10, 100]),
        0u128..100,
    )
        .prop_map(move |(whole, denominator, fraction)| reference::Limit {
            numerator: (whole * denominator + fraction % denominator).min(max_whole * denominator),
            denominator,
        })
}

pub(super) fn fleets() -> impl Strategy<Value = Vec<(CountryCode, u64)>> {
    prop_oneof![
        // Small numbers hit exact boundaries often.
        prop::collection::vec((countries(), 0u64..60), 0..12),
        // A US-heavy fleet near the thresholds, at realistic magnitudes.
        prop::collection::vec((countries(), 0u64..2_000_000), 0..8).prop_map(|mut rows| {
            let total: u64 = rows.iter().map(|(_, t)| t).sum();
            rows.push((code("US"), total * 3));
            rows
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_rational_reference(
        fleet in fleets(),
        tier1_min in limits(99),
        tier2_max in limits(99),
        home_min in prop::option::of(limits(99)),
    ) {
        let mut policy = policy();
        policy.tier1_min_share = tier1_min.percent();
        policy.tier2_country_max_share = tier2_max.percent();
        policy.home_min_share = home_min.map(|limit| limit.percent());
        let rules = reference::Rules { tier1_min, home_min, tier2_max };

        let mut distribution = Distribution::new();
        for (country, tpp) in &fleet {
            distribution.add(*country, *tpp).unwrap();
        }
        let evaluation = evaluate(&policy, &distribution);

        prop_assert_eq!(&evaluation.violations, &reference::violations(&policy, &rules, &fleet));
        prop_assert_eq!(evaluation.total_tpp, fleet.iter().map(|(_, t)| t).sum::<u64>());
        // The verdict: a broken rule first, then nothing counted, and only then compliant.
        let expected = if !evaluation.violations.is_empty() {
            Verdict::NotCompliant
        } else if fleet.iter().all(|(_, tpp)| *tpp == 0) {
            Verdict::NoCompute
        } else {
            Verdict::Compliant
        };
        prop_assert_eq!(evaluation.verdict(), expected);
        prop_assert_eq!(evaluation.compliant(), expected == Verdict::Compliant);
        for line in &evaluation.countries {
            if line.tier == Tier::Two {
                prop_assert_eq!(line.headroom, Some(reference::headroom(&policy, &rules, &fleet, line.country)));
            }
        }
        prop_assert_eq!(
            evaluation.new_tier2_country_headroom,
            reference::headroom(&policy, &rules, &fleet, code("KE"))
        );
    }
}

fn requiring_location() -> Policy {
    let mut policy = policy();
    policy.location.required_for_tier1 = true;
    policy
}

#[test]
fn unlocated_tier_1_compute_dilutes_the_minimums_when_location_is_required() {
    // 800 declared in the US, of which only 500 location-verified; 200 in Germany, all verified.
    let declared = distribution(&[("US", 800), ("DE", 200)]);
    let located = distribution(&[("US", 500), ("DE", 200)]);
    let e = evaluate_located(&requiring_location(), &declared, &located);
    assert_eq!(
        e.total_tpp, 1000,
        "unverified compute still counts in the total"
    );
    assert_eq!(e.tier1_tpp, 700);
    assert_eq!(e.tier1_unlocated_tpp, 300);
    assert_eq!(e.home, Some((code("US"), 500)));
    assert_eq!(violations(&e), ["tier1_min_share"]);
    assert_eq!(e.verdict(), Verdict::NotCompliant);
    // Where the policy does not require it, the same books are compliant.
    let e = evaluate_located(&policy(), &declared, &located);
    assert_eq!((e.tier1_tpp, e.tier1_unlocated_tpp), (1000, 0));
    assert!(e.compliant());
    assert_eq!(e, evaluate(&policy(), &declared));
}

#[test]
fn a_home_country_verified_below_half_breaks_the_home_rule() {
    let declared = distribution(&[("US", 600), ("DE", 400)]);
    let located = distribution(&[("US", 499), ("DE", 400)]);
    let e = evaluate_located(&requiring_location(), &declared, &located);
    assert_eq!(violations(&e), ["home_min_share:US"]);
    // The remedy adds located compute at home: (499 + y) / (1000 + y) ≥ 1/2 ⇔ y ≥ 2.
    let unit = crate::Catalogue::builtin()
        .unwrap()
        .by_id("H100-SXM5-80GB")
        .unwrap()
        .clone();
    let remedies = remediation(&requiring_location(), &e, &unit).remedies;
    assert_eq!(remedies.len(), 1);
    assert_eq!(remedies[0].change.tpp, 2);
}

#[test]
fn tier_2_and_tier_3_rules_read_the_declared_place_whatever_is_located() {
    // Nothing is located; Malaysia holds 10 % as declared and Iran some compute.
    let declared = distribution(&[("US", 880), ("MY", 100), ("IR", 20)]);
    let e = evaluate_located(&requiring_location(), &declared, &Distribution::new());
    assert_eq!(
        violations(&e),
        [
            "tier1_min_share",
            "home_min_share:US",
            "tier2_country_max_share:MY",
            "tier3_prohibited:IR"
        ]
    );
    assert_eq!((e.tier1_tpp, e.tier1_unlocated_tpp), (0, 880));
    // A located figure above the declared one credits no more than is declared.
    let e = evaluate_located(
        &requiring_location(),
        &distribution(&[("US", 100)]),
        &distribution(&[("US", 900)]),
    );
    assert_eq!((e.tier1_tpp, e.tier1_unlocated_tpp), (100, 0));
    assert!(e.compliant());
}

proptest! {
    /// Locating more compute never breaks a rule that held: the minimums only gain.
    #[test]
    fn locating_more_never_hurts(
        us in 0u64..10_000, de in 0u64..10_000, my in 0u64..2_000,
        us_located in 0u64..10_000, de_located in 0u64..10_000, extra in 0u64..5_000,
    ) {
        let declared = distribution(&[("US", us), ("DE", de), ("MY", my)]);
        let less = distribution(&[("US", us_located.min(us)), ("DE", de_located.min(de))]);
        let more = distribution(&[
            ("US", (us_located + extra).min(us)),
            ("DE", de_located.min(de)),
        ]);
        let policy = requiring_location();
        let before = evaluate_located(&policy, &declared, &less);
        let after = evaluate_located(&policy, &declared, &more);
        prop_assert!(after.tier1_tpp >= before.tier1_tpp);
        prop_assert_eq!(after.tier1_tpp + after.tier1_unlocated_tpp, us + de);
        for violation in &after.violations {
            prop_assert!(before.violations.contains(violation));
        }
        // Fully located books evaluate as if nothing were required.
        let all = evaluate_located(&policy, &declared, &declared);
        prop_assert_eq!(all.violations, evaluate(&self::policy(), &declared).violations);
    }
}
