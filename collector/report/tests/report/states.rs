//! Verdict states: no evidence before the first evidence, no compute when nothing is counted,
//! the fold of a month's instants, and a partial month that says nothing after its as-of
//! instant.

use collector_report::{GapEvent, ReportError, StaleSpan, State, build};

use crate::harness::*;

/// US 800, DE 200: compliant.
const COMPLIANT: [(&str, &str, u64); 2] = [("us1", "US", 800), ("de1", "DE", 200)];

fn states(report: &collector_report::Report) -> Vec<(State, State)> {
    report
        .daily
        .iter()
        .map(|day| (day.state, day.state_all_day))
        .collect()
}

#[test]
fn a_month_before_any_evidence_is_no_evidence_never_compliant() {
    // The fleet's first evidence comes after November: nothing in the input.
    let report = report(&input(us_policy(), Vec::new()));
    assert_eq!(report.verdict.state, State::NoEvidence);
    assert_eq!(report.verdict.at_end, State::NoEvidence);
    assert_eq!(report.verdict.evidence_from_ms, None);
    assert_eq!(report.daily.len(), 30);
    assert!(
        states(&report)
            .iter()
            .all(|s| *s == (State::NoEvidence, State::NoEvidence))
    );
    assert!(report.daily.iter().all(|d| d.min_tier1_share.is_none()));
    assert!(report.series.tier1.is_empty() && report.series.home.is_empty());
    assert!(report.violations.is_empty());
    let words = report.verdict_words();
    assert!(words.starts_with("No evidence for 2026-11"), "{words}");
    assert!(!words.contains("Compliant"), "{words}");
    let html = report.to_html();
    assert!(html.contains("class=\"verdict no-evidence\""), "{html}");
    assert!(
        html.contains("<p class=\"state\">NO EVIDENCE</p>"),
        "{html}"
    );
    assert!(html.contains("no evidence</td>"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["verdict"]["state"], "no_evidence");
    assert_eq!(json["verdict"]["evidence_from_ms"], serde_json::Value::Null);
    assert_eq!(json["daily"][0]["state"], "no_evidence");
}

#[test]
fn evidence_from_mid_month_reads_compliant_from_then_and_no_evidence_before() {
    let first = at(14, 9, 0);
    let changes = vec![
        attest(first, "us1", "US", 800),
        attest(first, "de1", "DE", 200),
    ];
    let report = report(&input(us_policy(), changes));
    assert_eq!(report.verdict.state, State::Compliant);
    assert_eq!(report.verdict.evidence_from_ms, Some(first));
    let days = states(&report);
    assert!(
        days[..13]
            .iter()
            .all(|s| *s == (State::NoEvidence, State::NoEvidence)),
        "{days:?}"
    );
    // The 14th: no evidence until 09:00, compliant from then; its instants with evidence hold.
    assert_eq!(days[13], (State::Compliant, State::Compliant));
    assert_eq!(report.daily[13].min_tier1_share.as_deref(), Some("100.000"));
    assert!(
        days[14..]
            .iter()
            .all(|s| *s == (State::Compliant, State::Compliant))
    );
    // The charts start with the evidence.
    assert_eq!(points(&report.series.tier1), [(first, "100.000")]);
    let words = report.verdict_words();
    assert!(
        words.starts_with("Compliant from 2026-11-14T09:00:00Z (the first evidence)"),
        "{words}"
    );
    assert!(
        words.contains("No evidence before 2026-11-14T09:00:00Z: nothing is claimed"),
        "{words}"
    );
    // Never "at every instant of 2026-11" alone.
    assert!(!words.starts_with("Compliant at every instant"), "{words}");
}

#[test]
fn evidence_with_zero_counted_tpp_is_no_compute() {
    // Hosts attest in three tiers, none with counted compute.
    let changes = baseline(&[("us1", "US", 0), ("my1", "MY", 0), ("cn1", "CN", 0)]);
    let report = report(&input(us_policy(), changes));
    assert_eq!(report.verdict.state, State::NoCompute);
    assert_eq!(report.verdict.at_end, State::NoCompute);
    assert_eq!(report.verdict.evidence_from_ms, Some(start()));
    assert!(report.violations.is_empty());
    assert!(
        states(&report)
            .iter()
            .all(|s| *s == (State::NoCompute, State::NoCompute))
    );
    assert!(report.daily.iter().all(|d| d.min_tier1_share.is_none()));
    assert!(report.daily.iter().all(|d| d.max_tier2_share.is_none()));
    assert_eq!(report.end_of_month.total_tpp, 0);
    let words = report.verdict_words();
    assert!(words.starts_with("No compute in 2026-11"), "{words}");
    assert!(report.to_html().contains("class=\"verdict no-compute\""));
}

#[test]
fn a_month_is_in_its_worst_state() {
    // Compliant, then every host decommissioned on the 10th: no compute from then on.
    let mut changes = baseline(&COMPLIANT);
    changes.push(decommission(at(10, 12, 0), "us1", "US"));
    changes.push(decommission(at(10, 12, 0), "de1", "DE"));
    let report = report(&input(us_policy(), changes.clone()));
    assert_eq!(report.verdict.state, State::NoCompute);
    assert_eq!(report.verdict.at_end, State::NoCompute);
    let days = states(&report);
    assert_eq!(days[8], (State::Compliant, State::Compliant));
    assert_eq!(days[9], (State::NoCompute, State::NoCompute));
    assert_eq!(days[10], (State::NoCompute, State::NoCompute));
    // The 10th had compute until noon: its lowest Tier-1 share is from then, not the empty 0.
    assert_eq!(report.daily[9].min_tier1_share.as_deref(), Some("100.000"));
    assert_eq!(report.daily[10].min_tier1_share, None);

    // A broken rule outranks it: a Tier-3 host on the 3rd for an hour.
    changes.insert(2, attest(at(3, 0, 0), "cn1", "CN", 10));
    changes.insert(3, decommission(at(3, 1, 0), "cn1", "CN"));
    let report = crate::harness::report(&input(us_policy(), changes));
    assert_eq!(report.verdict.state, State::NotCompliant);
    assert_eq!(report.verdict.at_end, State::NoCompute);
    assert_eq!(states(&report)[2], (State::Compliant, State::NotCompliant));
    let words = report.verdict_words();
    assert!(
        words.starts_with("Not compliant in 2026-11: 1 violation interval; no compute at the"),
        "{words}"
    );
}

#[test]
fn a_partial_month_says_nothing_after_its_as_of_instant() {
    let as_of = at(14, 10, 30);
    let mut changes = baseline(&COMPLIANT);
    changes.push(attest(at(3, 6, 0), "my1", "MY", 100));
    changes.push(decommission(at(14, 9, 0), "my1", "MY"));
    let mut input = input(us_policy(), changes);
    input.as_of_ms = as_of;
    input.stale = vec![StaleSpan {
        host_id: "de1".into(),
        country: code("DE"),
        tpp: 200,
        from_ms: at(12, 0, 0),
        to_ms: Some(at(20, 0, 0)),
    }];
    let report = build(&input).unwrap();
    assert!(report.partial);
    assert_eq!(report.as_of_ms, as_of);
    assert_eq!(report.period_end_ms, month().end_ms());

    // Fourteen rows: the last one stops at 10:30 and says so; nothing for the 15th on.
    assert_eq!(report.daily.len(), 14);
    let last = report.daily.last().unwrap();
    assert_eq!((last.date.as_str(), last.partial), ("2026-11-14", true));
    assert!(report.daily[..13].iter().all(|d| !d.partial));
    assert_eq!(last.total_tpp, 1000);
    // MY over 7 % from the 3rd until 09:00 on the 14th: closed before the as-of instant.
    assert_eq!(
        intervals(&report),
        [(
            "tier2_country_max_share:MY".into(),
            at(3, 6, 0),
            Some(at(14, 9, 0)),
            "9.090".into()
        )]
    );
    assert_eq!(report.verdict.state, State::NotCompliant);
    assert_eq!(report.verdict.at_end, State::Compliant);
    // A silence that outlasts the as-of instant is open there.
    assert_eq!(report.stale[0].to_ms, None);

    let csv = report.to_csv();
    assert!(csv.contains("2026-11-14,"), "{csv}");
    assert!(!csv.contains("2026-11-15"), "{csv}");
    let html = report.to_html();
    for expected in [
        "Compliance report 2026-11 (partial, as of 2026-11-14T10:30:00Z)",
        "PARTIAL: 2026-11 is not over",
        "<span class=\"time\">2026-11-14</span> <span class=\"note\">(to 2026-11-14T10:30:00Z, partial)</span>",
        "(partial: the month is not over; nothing after this instant is claimed)",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
    assert!(!html.contains("2026-11-15"));
    let words = report.verdict_words();
    assert!(
        words.contains("2026-11 up to 2026-11-14T10:30:00Z (partial: the month is not over)"),
        "{words}"
    );
    assert!(
        words.ends_with("compliant at 2026-11-14T10:30:00Z."),
        "{words}"
    );

    // A partial month complying so far says compliant up to as-of, never of the whole month.
    let mut input = crate::harness::input(us_policy(), baseline(&COMPLIANT));
    input.as_of_ms = at(1, 0, 0) + 1;
    let report = build(&input).unwrap();
    assert_eq!(report.daily.len(), 1);
    assert!(report.daily[0].partial);
    assert_eq!(report.verdict.state, State::Compliant);
    assert_eq!(
        report.verdict_words(),
        "Compliant at every instant of 2026-11 up to 2026-11-01T00:00:00.001Z (partial: the \
         month is not over) under policy uveu-2025-us."
    );
    // The same input, the same bytes.
    assert_eq!(build(&input).unwrap().to_json(), report.to_json());
}

#[test]
fn an_as_of_instant_outside_the_month_or_before_a_change_is_refused() {
    for as_of in [start(), start() - 1, month().end_ms() + 1] {
        let mut input = input(us_policy(), Vec::new());
        input.as_of_ms = as_of;
        assert_eq!(
            build(&input).unwrap_err(),
            ReportError::AsOfOutsideMonth {
                as_of_ms: as_of,
                start_ms: start(),
                end_ms: month().end_ms(),
            }
        );
    }
    let as_of = at(10, 0, 0);
    let mut input = input(us_policy(), vec![attest(as_of, "us1", "US", 1)]);
    input.as_of_ms = as_of;
    assert_eq!(
        build(&input).unwrap_err(),
        ReportError::ChangeAfterMonth {
            index: 0,
            host_id: "us1".into(),
            at_ms: as_of,
            end_ms: as_of,
        }
    );
    let mut input = crate::harness::input(us_policy(), Vec::new());
    input.as_of_ms = as_of;
    input.gaps = vec![GapEvent {
        at_ms: as_of,
        host_id: "us1".into(),
        missing: 1,
    }];
    assert!(matches!(
        build(&input).unwrap_err(),
        ReportError::EventOutsideMonth { list: "gaps", .. }
    ));
}
