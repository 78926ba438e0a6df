//! Months computed by hand.

use collector_report::{
    ConflictEvent, CountryStanding, GapEvent, LimitKind, RejectionCount, StaleSpan, State, build,
};
use proto_accounting::{Rule, Tier};

use crate::harness::*;

/// US 600, DE 200, MY 60, SG 70, IN 70: total 1000, Tier 1 80 %, US 60 %, SG and IN at
/// exactly 7 %.
const FLEET: [(&str, &str, u64); 5] = [
    ("us1", "US", 600),
    ("de1", "DE", 200),
    ("my1", "MY", 60),
    ("sg1", "SG", 70),
    ("in1", "IN", 70),
];

#[test]
fn a_fleet_compliant_all_month() {
    let mut changes = baseline(&FLEET);
    changes.push(attest(at(5, 10, 0), "us2", "US", 100));
    changes.push(attest(at(20, 8, 0), "my1", "MY", 60));
    let report = report(&input(us_policy(), changes));

    assert_eq!(report.format, "veu-report/2");
    assert_eq!(report.month.to_string(), "2026-11");
    assert_eq!(report.period_start_ms, 1_793_491_200_000);
    assert_eq!(report.period_end_ms, 1_796_083_200_000);
    assert_eq!(report.as_of_ms, report.period_end_ms);
    assert!(!report.partial);
    assert_eq!(report.verdict.state, State::Compliant);
    assert_eq!(report.verdict.evidence_from_ms, Some(start()));
    assert_eq!(report.verdict.at_end, State::Compliant);
    assert_eq!(report.verdict.violations_count, 0);
    assert!(report.violations.is_empty());

    // 1100 in all: Tier 1 900 (81.818 %), US 700 (63.636 %).
    let end = &report.end_of_month;
    assert_eq!(end.total_tpp, 1100);
    assert_eq!(end.tier1_share, "81.818");
    assert_eq!(end.home_share.as_deref(), Some("63.636"));
    let standing = |country: &str, tier, tpp, share: &str, limit: &str, kind| CountryStanding {
        country: code(country),
        tier,
        tpp,
        share: share.into(),
        hardware_tpp: 0,
        hardware_share: "0.000".into(),
        location_verified_tpp: 0,
        location_verified_share: "0.000".into(),
        limit: Some(limit.into()),
        limit_kind: kind,
    };
    assert_eq!(
        end.countries,
        [
            standing(
                "DE",
                Tier::One,
                200,
                "18.181",
                "75.000",
                LimitKind::Tier1MinTotal
            ),
            standing("IN", Tier::Two, 70, "6.363", "7.000", LimitKind::Tier2Max),
            standing("MY", Tier::Two, 60, "5.454", "7.000", LimitKind::Tier2Max),
            standing("SG", Tier::Two, 70, "6.363", "7.000", LimitKind::Tier2Max),
            standing("US", Tier::One, 700, "63.636", "50.000", LimitKind::HomeMin),
        ]
    );
    assert!(end.violations.is_empty());

    assert_eq!(report.daily.len(), 30);
    assert_eq!(report.daily[0].date, "2026-11-01");
    assert_eq!(report.daily[29].date, "2026-11-30");
    let (day4, day5, day6) = (&report.daily[3], &report.daily[4], &report.daily[5]);
    assert_eq!(
        (day4.total_tpp, day4.tier1_share.as_str()),
        (1000, "80.000")
    );
    assert_eq!(
        (day5.total_tpp, day5.tier1_share.as_str()),
        (1100, "81.818")
    );
    // The day's lowest Tier-1 share is the one it started with; its highest Tier-2 share is
    // IN's and SG's 7 % before the change (the lower code wins a tie).
    assert_eq!(day5.min_tier1_share.as_deref(), Some("80.000"));
    let peak = day5.max_tier2_share.as_ref().unwrap();
    assert_eq!((peak.country, peak.share.as_str()), (code("IN"), "7.000"));
    assert_eq!(day6.min_tier1_share.as_deref(), Some("81.818"));
    assert_eq!(day6.max_tier2_share.as_ref().unwrap().share, "6.363");
    assert!(
        report.daily.iter().all(|d| d.state == State::Compliant
            && d.state_all_day == State::Compliant
            && !d.partial)
    );
    assert_eq!(day5.countries.len(), 5);
    assert_eq!(day5.countries[4].share, "63.636");

    let changed = at(5, 10, 0);
    assert_eq!(
        points(&report.series.tier1),
        [(start(), "80.000"), (changed, "81.818")]
    );
    assert_eq!(
        points(&report.series.home),
        [(start(), "60.000"), (changed, "63.636")]
    );
    assert_eq!(
        report.series.tier2.keys().collect::<Vec<_>>(),
        ["IN", "MY", "SG"]
    );
    assert_eq!(
        points(&report.series.tier2["MY"]),
        [(start(), "6.000"), (changed, "5.454")]
    );

    let us = report
        .inventory_changes
        .iter()
        .find(|c| c.country == code("US"))
        .unwrap();
    assert_eq!(
        (
            us.tpp_start,
            us.tpp_end,
            us.hosts_start,
            us.hosts_end,
            us.hosts_added,
            us.hosts_removed
        ),
        (600, 700, 1, 2, 1, 0)
    );
    let my = report
        .inventory_changes
        .iter()
        .find(|c| c.country == code("MY"))
        .unwrap();
    assert_eq!((my.hosts_start, my.hosts_end, my.hosts_added), (1, 1, 0));
}

#[test]
fn a_tier2_country_over_its_maximum_from_day_10_to_day_12() {
    let crossed = at(10, 14, 0);
    let back = at(12, 9, 30);
    let mut changes = baseline(&FLEET);
    // MY goes to 80 of 1020 = 7.843 %, then back to 60 of 1000.
    changes.push(attest(crossed, "my2", "MY", 20));
    changes.push(decommission(back, "my2", "MY"));
    let report = report(&input(us_policy(), changes));

    assert_eq!(
        intervals(&report),
        [(
            "tier2_country_max_share:MY".into(),
            crossed,
            Some(back),
            "7.843".into()
        )]
    );
    assert_eq!(crossed - start(), (9 * 24 + 14) * HOUR_MS);
    assert_eq!(report.verdict.state, State::NotCompliant);
    assert_eq!(report.verdict.at_end, State::Compliant);
    assert_eq!(report.verdict.violations_count, 1);

    let summary = |i: usize| {
        let day = &report.daily[i];
        let peak = day.max_tier2_share.as_ref().unwrap();
        (
            day.date.as_str(),
            day.total_tpp,
            day.state == State::Compliant,
            day.state_all_day == State::Compliant,
            peak.country.as_str(),
            peak.share.as_str(),
        )
    };
    assert_eq!(summary(8), ("2026-11-09", 1000, true, true, "IN", "7.000"));
    assert_eq!(
        summary(9),
        ("2026-11-10", 1020, false, false, "MY", "7.843")
    );
    assert_eq!(
        summary(10),
        ("2026-11-11", 1020, false, false, "MY", "7.843")
    );
    assert_eq!(
        summary(11),
        ("2026-11-12", 1000, true, false, "MY", "7.843")
    );
    assert_eq!(summary(12), ("2026-11-13", 1000, true, true, "IN", "7.000"));
    let my_on_day_10 = report.daily[9]
        .countries
        .iter()
        .find(|line| line.country == code("MY"))
        .unwrap();
    assert_eq!(
        (my_on_day_10.tpp, my_on_day_10.share.as_str()),
        (80, "7.843")
    );

    assert_eq!(
        points(&report.series.tier2["MY"]),
        [(start(), "6.000"), (crossed, "7.843"), (back, "6.000")]
    );
    assert_eq!(
        points(&report.series.tier2["SG"]),
        [(start(), "7.000"), (crossed, "6.862"), (back, "7.000")]
    );
    assert!(report.end_of_month.violations.is_empty());
}

#[test]
fn exactly_75_percent_in_tier_1_passes() {
    let changes = baseline(&[
        ("us1", "US", 600),
        ("de1", "DE", 150),
        ("my1", "MY", 70),
        ("sg1", "SG", 70),
        ("in1", "IN", 70),
        ("ae1", "AE", 40),
    ]);
    let report = report(&input(us_policy(), changes));
    assert_eq!(report.end_of_month.tier1_share, "75.000");
    assert_eq!(report.verdict.state, State::Compliant);
    assert_eq!(report.series.tier1.len(), 1);
}

#[test]
fn one_tpp_short_of_75_percent_fails_and_shows_as_74_999() {
    let changes = baseline(&[
        ("us1", "US", 599_999),
        ("de1", "DE", 150_000),
        ("my1", "MY", 70_000),
        ("sg1", "SG", 70_000),
        ("in1", "IN", 70_000),
        ("ae1", "AE", 40_001),
    ]);
    let report = report(&input(us_policy(), changes));
    assert_eq!(report.end_of_month.tier1_share, "74.999");
    assert_eq!(
        intervals(&report),
        [("tier1_min_share".into(), start(), None, "74.999".into())]
    );
    assert_eq!(report.end_of_month.violations.len(), 1);
    assert_eq!(report.end_of_month.violations[0].rule, Rule::Tier1MinShare);
    assert_eq!(report.end_of_month.violations[0].country, None);
    assert_eq!(report.verdict.state, State::NotCompliant);
    assert_eq!(report.verdict.at_end, State::NotCompliant);
    assert!(
        report
            .daily
            .iter()
            .all(|d| d.state == State::NotCompliant && d.state_all_day == State::NotCompliant)
    );
}

#[test]
fn decommissioning_removes_compute() {
    let mut changes = baseline(&[("us1", "US", 600), ("us2", "US", 300), ("de1", "DE", 100)]);
    changes.push(decommission(at(3, 6, 0), "us2", "US"));
    // Decommissioning again, or a host never seen, changes nothing.
    changes.push(decommission(at(4, 6, 0), "us2", "US"));
    changes.push(decommission(at(4, 7, 0), "ghost", "US"));
    let report = report(&input(us_policy(), changes));

    assert_eq!(report.daily[1].total_tpp, 1000);
    assert_eq!(report.daily[2].total_tpp, 700);
    let end = &report.end_of_month;
    assert_eq!(end.total_tpp, 700);
    assert_eq!(
        (end.countries[1].tpp, end.countries[1].share.as_str()),
        (600, "85.714")
    );
    let us = &report.inventory_changes[1];
    assert_eq!(us.country, code("US"));
    assert_eq!(
        (
            us.tpp_start,
            us.tpp_end,
            us.hosts_start,
            us.hosts_end,
            us.hosts_added,
            us.hosts_removed
        ),
        (900, 600, 2, 1, 0, 1)
    );
    assert_eq!((us.devices_start, us.devices_end), (9, 6));
    assert_eq!(report.verdict.state, State::Compliant);
}

#[test]
fn changes_before_the_month_set_the_baseline() {
    let october = |day: i64| start() - (32 - day) * DAY_MS;
    let changes = vec![
        attest(october(3), "us1", "US", 500),
        attest(october(10), "de1", "DE", 200),
        attest(october(20), "us1", "US", 800),
        decommission(october(30), "de1", "DE"),
        // At the month's first instant: part of the month, so an addition.
        attest(start(), "us2", "US", 200),
    ];
    let report = report(&input(us_policy(), changes));

    assert_eq!(report.inventory_changes.len(), 1);
    let us = &report.inventory_changes[0];
    assert_eq!(
        (
            us.tpp_start,
            us.tpp_end,
            us.hosts_start,
            us.hosts_end,
            us.hosts_added
        ),
        (800, 1000, 1, 2, 1)
    );
    assert_eq!(report.daily[0].total_tpp, 1000);
    assert_eq!(report.daily[0].countries.len(), 1);
    assert_eq!(points(&report.series.tier1), [(start(), "100.000")]);
    assert!(report.series.tier2.is_empty());
    assert!(report.daily[0].max_tier2_share.is_none());
}

#[test]
fn a_home_rule_violation_open_at_the_start_ends_at_a_day_boundary() {
    let mut changes = baseline(&[
        ("us1", "US", 400),
        ("de1", "DE", 400),
        ("my1", "MY", 60),
        ("sg1", "SG", 60),
        ("in1", "IN", 60),
        ("ae1", "AE", 20),
    ]);
    // 600 of 1200: exactly 50 % from the first instant of 20 November.
    let fixed = at(20, 0, 0);
    changes.push(attest(fixed, "us2", "US", 200));
    let report = report(&input(us_policy(), changes.clone()));

    assert_eq!(
        intervals(&report),
        [(
            "home_min_share:US".into(),
            report.period_start_ms,
            Some(fixed),
            "40.000".into()
        )]
    );
    assert_eq!(
        points(&report.series.home),
        [(start(), "40.000"), (fixed, "50.000")]
    );
    let (day19, day20) = (&report.daily[18], &report.daily[19]);
    assert_eq!(
        (day19.state, day19.state_all_day),
        (State::NotCompliant, State::NotCompliant)
    );
    assert_eq!(day19.home_share.as_deref(), Some("40.000"));
    // The change at 00:00 is the day's first instant: the day never saw the old state.
    assert_eq!(
        (day20.state, day20.state_all_day),
        (State::Compliant, State::Compliant)
    );
    assert_eq!(day20.home_share.as_deref(), Some("50.000"));
    assert_eq!(report.verdict.state, State::NotCompliant);
    assert_eq!(report.verdict.at_end, State::Compliant);
    let home = report.limits.home.as_ref().unwrap();
    assert_eq!(
        (home.country, home.min_share.as_str()),
        (code("US"), "50.000")
    );

    // Without a home rule the same fleet complies all month.
    let report = crate::harness::report(&input(de_policy(), changes));
    assert_eq!(report.verdict.state, State::Compliant);
    assert_eq!(report.end_of_month.home_share, None);
    assert!(report.series.home.is_empty());
    assert!(report.limits.home.is_none());
    let us = report
        .end_of_month
        .countries
        .iter()
        .find(|c| c.country == code("US"))
        .unwrap();
    assert_eq!(us.limit_kind, LimitKind::Tier1MinTotal);
}

#[test]
fn compute_in_a_tier3_country_is_a_violation_while_it_counts() {
    let mut changes = baseline(&[("us1", "US", 900), ("de1", "DE", 100)]);
    changes.push(attest(at(7, 6, 0), "cn1", "CN", 10));
    // Still attesting from CN, with nothing counted: no longer a violation.
    changes.push(attest(at(8, 6, 0), "cn1", "CN", 0));
    let report = report(&input(us_policy(), changes));

    assert_eq!(
        intervals(&report),
        [(
            "tier3_prohibited:CN".into(),
            at(7, 6, 0),
            Some(at(8, 6, 0)),
            "0.990".into()
        )]
    );
    let cn = &report.end_of_month.countries[0];
    assert_eq!(
        (
            cn.country,
            cn.tier,
            cn.tpp,
            cn.share.as_str(),
            cn.limit.as_deref(),
            cn.limit_kind
        ),
        (
            code("CN"),
            Tier::Three,
            0,
            "0.000",
            Some("0.000"),
            LimitKind::Prohibited
        )
    );
    assert_eq!(report.verdict.at_end, State::Compliant);
    assert_eq!(report.verdict.state, State::NotCompliant);
    let states = |i: usize| (report.daily[i].state, report.daily[i].state_all_day);
    assert_eq!(states(6), (State::NotCompliant, State::NotCompliant));
    assert_eq!(states(7), (State::Compliant, State::NotCompliant));
    assert!(report.series.tier2.is_empty());
}

#[test]
fn the_worst_share_of_an_interval_is_its_extreme() {
    // Tier 1 at 70 %, then 46.666 %, back to 70 %, then 90.909 % (complying).
    let mut changes = baseline(&[("us1", "US", 700), ("br1", "BR", 300)]);
    changes.push(attest(at(2, 0, 0), "br2", "BR", 500));
    changes.push(attest(at(3, 0, 0), "br2", "BR", 0));
    changes.push(attest(at(4, 0, 0), "us2", "US", 2300));
    let report = report(&input(de_policy(), changes));
    assert_eq!(
        intervals(&report),
        [
            (
                "tier1_min_share".into(),
                start(),
                Some(at(4, 0, 0)),
                "46.666".into()
            ),
            (
                "tier2_country_max_share:BR".into(),
                start(),
                None,
                "53.333".into()
            ),
        ]
    );
}

#[test]
fn silences_gaps_conflicts_and_rejections_are_kept_in_order() {
    let mut input = input(us_policy(), baseline(&FLEET));
    let span = |host: &str, from_ms, to_ms| StaleSpan {
        host_id: host.into(),
        country: code("US"),
        tpp: 600,
        from_ms,
        to_ms,
    };
    input.stale = vec![
        span("late", at(28, 0, 0), Some(month().end_ms() + DAY_MS)),
        span("october", start() - 5 * DAY_MS, Some(start() - DAY_MS)),
        span("open", at(28, 0, 0), None),
        span("across", start() - 5 * DAY_MS, Some(at(3, 0, 0))),
        span("edge", start() - DAY_MS, Some(start())),
    ];
    input.gaps = vec![
        GapEvent {
            at_ms: at(9, 0, 0),
            host_id: "b".into(),
            missing: 2,
        },
        GapEvent {
            at_ms: at(2, 0, 0),
            host_id: "a".into(),
            missing: 5,
        },
    ];
    input.conflicts = vec![ConflictEvent {
        at_ms: at(4, 0, 0),
        host_id: "a".into(),
        detail: "GPU-1 also on b".into(),
    }];
    input.rejections = vec![
        ("nonce".into(), 3),
        ("chain_gap".into(), 1),
        ("nonce".into(), 2),
    ];
    let report = build(&input).unwrap();

    assert_eq!(
        report.stale,
        [
            span("across", start(), Some(at(3, 0, 0))),
            span("late", at(28, 0, 0), None),
            span("open", at(28, 0, 0), None),
        ]
    );
    assert_eq!(
        report
            .gaps
            .iter()
            .map(|g| g.host_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(
        report.rejections,
        [
            RejectionCount {
                reason: "chain_gap".into(),
                count: 1
            },
            RejectionCount {
                reason: "nonce".into(),
                count: 5
            },
        ]
    );
    assert_eq!(report.log, input.log);
}

#[test]
fn a_leap_february_has_29_days() {
    let mut input = input(us_policy(), Vec::new());
    input.month = "2028-02".parse().unwrap();
    input.as_of_ms = input.month.end_ms();
    let report = build(&input).unwrap();
    assert_eq!(report.daily.len(), 29);
    assert_eq!(report.daily[28].date, "2028-02-29");
    // Nothing was ever attested: no evidence, never compliant; its shares are 0.
    assert_eq!(report.verdict.state, State::NoEvidence);
    assert_eq!(report.end_of_month.tier1_share, "0.000");
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let mut changes = baseline(&FLEET);
    changes.push(attest(at(10, 14, 0), "my2", "MY", 20));
    let input = input(us_policy(), changes);
    let (a, b) = (build(&input).unwrap(), build(&input).unwrap());
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.to_csv(), b.to_csv());
    assert_eq!(a.to_html(), b.to_html());
}

#[test]
fn the_order_of_different_hosts_within_an_instant_does_not_matter() {
    let instant = at(15, 12, 0);
    let group = vec![
        attest(instant, "my2", "MY", 20),
        decommission(instant, "sg1", "SG"),
        attest(instant, "us1", "US", 650),
        attest(instant, "jp1", "JP", 40),
        attest(instant, "in1", "BR", 70),
    ];
    let build_with = |group: Vec<_>| {
        let mut changes = baseline(&FLEET);
        changes.extend(group);
        changes.push(attest(at(16, 0, 0), "my2", "MY", 10));
        build(&input(us_policy(), changes)).unwrap().to_json()
    };
    let expected = build_with(group.clone());
    let mut rotated = group.clone();
    for _ in 0..group.len() {
        rotated.rotate_left(1);
        assert_eq!(build_with(rotated.clone()), expected);
    }
    let mut reversed = group;
    reversed.reverse();
    assert_eq!(build_with(reversed), expected);
}
