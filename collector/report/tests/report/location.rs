//! Location-verified compute at the end of the period: the figures, the section, and how the
//! renderings show them.

use collector_report::render::CSV_HEADER;
use collector_report::{
    InconsistentHost, LocatedHost, LocationChange, LocationCounts, LocationInput, LocationSection,
    LocationVerdict, Report, ReportError, ReportInput, build,
};
use proto_accounting::Policy;
use proto_accounting::policy::UVEU_2025_US_TOML;

use crate::harness::*;

const HOSTILE: &str = "<script>alert('x')</script> outside the disk of fra-1";

fn located(host: &str, verdict: LocationVerdict, reason: &str) -> LocatedHost {
    LocatedHost {
        host_id: host.to_owned(),
        verdict,
        reason: reason.to_owned(),
    }
}

/// DE 300 (de1 verified, de2 unverified), US 650 (us1 and us2 inconsistent), IN 70 (in1
/// listed unmeasured), MY 30 (my1 not listed at all): total 1050. `gone` is listed verified
/// but decommissioned before the end, so it does not count.
fn fleet(location: Option<LocationInput>) -> ReportInput {
    let mut changes = baseline(&[
        ("de1", "DE", 200),
        ("de2", "DE", 100),
        ("us1", "US", 600),
        ("us2", "US", 50),
        ("in1", "IN", 70),
        ("my1", "MY", 30),
        ("gone", "DE", 500),
    ]);
    changes.push(decommission(at(20, 12, 0), "gone", "DE"));
    let mut input = input(us_policy(), changes);
    input.location = location;
    input
}

fn verdicts() -> LocationInput {
    LocationInput {
        hosts: vec![
            located("us2", LocationVerdict::Inconsistent, HOSTILE),
            located(
                "de1",
                LocationVerdict::Verified,
                "the region lies within DE",
            ),
            located(
                "gone",
                LocationVerdict::Verified,
                "the region lies within DE",
            ),
            located(
                "de2",
                LocationVerdict::Unverified,
                "the region may touch DE, FR",
            ),
            located(
                "us1",
                LocationVerdict::Inconsistent,
                "the disks of fra-1 and sin-1 share no point",
            ),
            located("in1", LocationVerdict::Unmeasured, "no current measurement"),
        ],
        measurements: 7,
        changes: Vec::new(),
    }
}

fn with_location() -> Report {
    report(&fleet(Some(verdicts())))
}

#[test]
fn verified_compute_per_country_and_in_total() {
    let report = with_location();
    let end = &report.end_of_month;
    assert_eq!(end.total_tpp, 1050);
    assert_eq!(end.location_verified_tpp, 200);
    // 200 / 1050 = 19.0476… %
    assert_eq!(end.location_verified_share, "19.047");
    let by_country: Vec<(&str, u64, u64, &str)> = end
        .countries
        .iter()
        .map(|line| {
            (
                line.country.as_str(),
                line.tpp,
                line.location_verified_tpp,
                line.location_verified_share.as_str(),
            )
        })
        .collect();
    assert_eq!(
        by_country,
        [
            ("DE", 300, 200, "66.666"),
            ("IN", 70, 0, "0.000"),
            ("MY", 30, 0, "0.000"),
            ("US", 650, 0, "0.000"),
        ]
    );
    // The verdict does not depend on location.
    assert_eq!(
        report.verdict,
        report_without_location().verdict,
        "location changes no verdict"
    );
}

#[test]
fn the_section_counts_every_counted_host_and_lists_the_inconsistent_ones() {
    let report = with_location();
    assert_eq!(
        report.location,
        Some(LocationSection {
            // in1 listed unmeasured, my1 not listed; gone is not counted.
            hosts: LocationCounts {
                unmeasured: 2,
                unverified: 1,
                verified: 1,
                inconsistent: 2,
            },
            measurements: 7,
            inconsistent: vec![
                InconsistentHost {
                    host_id: "us1".into(),
                    reason: "the disks of fra-1 and sin-1 share no point".into(),
                },
                InconsistentHost {
                    host_id: "us2".into(),
                    reason: HOSTILE.into(),
                },
            ],
        })
    );
}

#[test]
fn a_counted_host_the_input_does_not_list_is_unmeasured() {
    let report = report(&fleet(Some(LocationInput {
        hosts: vec![located(
            "de1",
            LocationVerdict::Verified,
            "the region lies within DE",
        )],
        measurements: 1,
        changes: Vec::new(),
    })));
    let location = report.location.unwrap();
    assert_eq!(
        location.hosts,
        LocationCounts {
            unmeasured: 5,
            unverified: 0,
            verified: 1,
            inconsistent: 0,
        }
    );
    assert!(location.inconsistent.is_empty());
    assert_eq!(report.end_of_month.location_verified_tpp, 200);

    let empty = report_of(Some(LocationInput::default()));
    assert_eq!(empty.location.unwrap().hosts.unmeasured, 6);
    assert_eq!(empty.end_of_month.location_verified_tpp, 0);
    assert_eq!(empty.end_of_month.location_verified_share, "0.000");
}

fn report_of(location: Option<LocationInput>) -> Report {
    report(&fleet(location))
}

fn report_without_location() -> Report {
    report_of(None)
}

#[test]
fn without_location_the_figures_are_zero_and_there_is_no_section() {
    let report = report_without_location();
    assert_eq!(report.location, None);
    let end = &report.end_of_month;
    assert_eq!(
        (
            end.location_verified_tpp,
            end.location_verified_share.as_str()
        ),
        (0, "0.000")
    );
    assert!(
        end.countries
            .iter()
            .all(|line| line.location_verified_tpp == 0 && line.location_verified_share == "0.000")
    );
    let json = report.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(value.get("location").is_none(), "no location key: {json}");
    assert_eq!(value["end_of_month"]["location_verified_tpp"], 0);
    assert_eq!(value["end_of_month"]["location_verified_share"], "0.000");
    let html = report.to_html();
    assert!(html.contains("Location-verified: not measured (the collector trusts no landmark)."));
    assert!(!html.contains("Location-verified TPP"));
    assert!(!html.contains("Location of the counted hosts"));
}

#[test]
fn a_host_with_two_verdicts_is_an_input_error() {
    let mut location = verdicts();
    location.hosts.push(located(
        "de1",
        LocationVerdict::Inconsistent,
        "the region may touch FR",
    ));
    let error = build(&fleet(Some(location))).unwrap_err();
    assert_eq!(
        error,
        ReportError::LocatedHostRepeated {
            index: 6,
            host_id: "de1".into(),
        }
    );
    assert!(
        error
            .to_string()
            .starts_with("location.hosts[6] (host \"de1\")")
    );
}

#[test]
fn json_holds_the_section_and_reads_back() {
    let report = with_location();
    let json = report.to_json();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["location"],
        serde_json::json!({
            "hosts": {"unmeasured": 2, "unverified": 1, "verified": 1, "inconsistent": 2},
            "measurements": 7,
            "inconsistent": [
                {"host_id": "us1", "reason": "the disks of fra-1 and sin-1 share no point"},
                {"host_id": "us2", "reason": HOSTILE},
            ],
        })
    );
    // The section is the report's last field.
    assert!(json.find("\n  \"log\": ").unwrap() < json.find("\n  \"location\": ").unwrap());
    assert_eq!(value["end_of_month"]["countries"][0]["country"], "DE");
    assert_eq!(
        value["end_of_month"]["countries"][0]["location_verified_share"],
        "66.666"
    );
}

#[test]
fn reports_made_before_location_existed_still_read() {
    let report = report_without_location();
    let mut value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let end = value["end_of_month"].as_object_mut().unwrap();
    end.remove("location_verified_tpp").unwrap();
    end.remove("location_verified_share").unwrap();
    for line in end["countries"].as_array_mut().unwrap() {
        let line = line.as_object_mut().unwrap();
        line.remove("location_verified_tpp").unwrap();
        line.remove("location_verified_share").unwrap();
    }
    let old: Report = serde_json::from_value(value).unwrap();
    // Read back, it equals the report the same input makes now without location evidence.
    assert_eq!(old, report);
}

#[test]
fn html_shows_the_column_the_line_and_the_escaped_inconsistent_hosts() {
    let html = with_location().to_html();
    assert!(
        !html.contains("<script"),
        "an input string reached the page unescaped"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; outside the disk of fra-1")
    );
    for text in [
        "<th>Hardware-attested TPP</th><th>Location-verified TPP</th><th>Status</th>",
        "<td class=\"num\">200 (66.666 %)</td>",
        "Location-verified (round trips from trusted landmarks place the host within its \
         site's country): 200 TPP, 19.047 % of the total.",
        "In Tier-1 countries: 200 TPP of 950 TPP.",
        "<h2>Location of the counted hosts</h2>",
        "From 7 landmark measurements: 1 verified, 1 unverified",
        "2 inconsistent, 2 unmeasured.",
        "<h2>Hosts whose location contradicts their declared site</h2>",
        "<td>us1</td><td>the disks of fra-1 and sin-1 share no point</td>",
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    // The column comes right after the hardware one in every row of the countries table.
    assert_eq!(html.matches("<th>Location-verified TPP</th>").count(), 1);
}

#[test]
fn csv_is_daily_and_keeps_its_columns() {
    // Location verdicts are judged once, at the end of the period: the daily CSV, like the
    // hardware-attested figures, does not carry them.
    let with = with_location().to_csv();
    let without = report_without_location().to_csv();
    assert_eq!(with, without);
    let header = with.lines().next().unwrap();
    assert_eq!(header, CSV_HEADER.join(","));
}

/// The shipped policy with `[location] require_for_tier1 = true`.
fn requiring_location() -> Policy {
    Policy::from_toml(&format!(
        "{UVEU_2025_US_TOML}\n[location]\nrequire_for_tier1 = true\n"
    ))
    .unwrap()
}

fn change(at_ms: i64, host: &str, verified: bool) -> LocationChange {
    LocationChange {
        at_ms,
        host_id: host.to_owned(),
        verified,
    }
}

/// US 800 (us1), DE 200 (de1), attested before the month; both location-verified from before
/// it, us1's verification lapsing on the 10th at 06:00 and coming back on the 12th at noon.
fn lapsing(policy: Policy) -> ReportInput {
    let changes = baseline(&[("us1", "US", 800), ("de1", "DE", 200)]);
    let mut input = input(policy, changes);
    input.location = Some(LocationInput {
        hosts: vec![
            located(
                "us1",
                LocationVerdict::Verified,
                "the region lies within US",
            ),
            located(
                "de1",
                LocationVerdict::Verified,
                "the region lies within DE",
            ),
        ],
        measurements: 4,
        changes: vec![
            change(start() - 20 * HOUR_MS, "us1", true),
            change(start() - 20 * HOUR_MS, "de1", true),
            change(at(10, 6, 0), "us1", false),
            change(at(12, 12, 0), "us1", true),
        ],
    });
    input
}

#[test]
fn a_required_verification_that_lapses_breaks_the_minimums_for_exactly_that_time() {
    let report = report(&lapsing(requiring_location()));
    // From the 10th 06:00 to the 12th noon only DE's 200 of 1000 counts toward the minimums.
    assert_eq!(
        intervals(&report),
        [
            (
                "tier1_min_share".to_owned(),
                at(10, 6, 0),
                Some(at(12, 12, 0)),
                "20.000".to_owned()
            ),
            (
                "home_min_share:US".to_owned(),
                at(10, 6, 0),
                Some(at(12, 12, 0)),
                "0.000".to_owned()
            ),
        ]
    );
    assert!(report.limits.tier1_requires_location);
    // Verified again at the end: nothing left out.
    assert_eq!(report.end_of_month.tier1_unlocated_tpp, 0);
    assert_eq!(report.end_of_month.tier1_share, "100.000");
    let day10 = &report.daily[9];
    assert_eq!(day10.min_tier1_share.as_deref(), Some("20.000"));
    // The same evidence under a policy that does not require it: compliant all month, and
    // the report does not mention the requirement.
    let relaxed = report_of_input(&lapsing(us_policy()));
    assert!(relaxed.violations.is_empty());
    assert!(!relaxed.limits.tier1_requires_location);
    assert!(!relaxed.to_json().contains("tier1_requires_location"));
}

fn report_of_input(input: &ReportInput) -> Report {
    report(input)
}

#[test]
fn without_landmarks_a_required_verification_leaves_tier_1_out_of_the_minimums() {
    let report = report(&lapsing_without_location());
    assert_eq!(report.end_of_month.tier1_unlocated_tpp, 1000);
    assert_eq!(report.end_of_month.tier1_share, "0.000");
    assert_eq!(report.verdict.state.as_str(), "not_compliant");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["end_of_month"]["tier1_unlocated_tpp"], 1000);
    assert_eq!(json["limits"]["tier1_requires_location"], true);
}

fn lapsing_without_location() -> ReportInput {
    let mut input = lapsing(requiring_location());
    input.location = None;
    input
}

#[test]
fn a_host_verified_before_it_attests_counts_once_it_does() {
    let mut input = input(
        requiring_location(),
        vec![
            attest(start() - HOUR_MS, "de1", "DE", 1000),
            attest(at(3, 0, 0), "us1", "US", 1000),
        ],
    );
    input.location = Some(LocationInput {
        hosts: Vec::new(),
        measurements: 2,
        changes: vec![
            change(start() - 2 * HOUR_MS, "de1", true),
            change(at(2, 0, 0), "us1", true),
        ],
    });
    let report = report(&input);
    // Alone, de1 is all of Tier 1 but none at home; once us1 attests, half is at home.
    assert_eq!(
        intervals(&report),
        [(
            "home_min_share:US".to_owned(),
            start(),
            Some(at(3, 0, 0)),
            "0.000".to_owned()
        )]
    );
}

#[test]
fn location_changes_out_of_order_or_after_the_period_are_input_errors() {
    let mut input = lapsing(requiring_location());
    input.location.as_mut().unwrap().changes.swap(2, 3);
    let error = build(&input).unwrap_err();
    assert!(
        matches!(error, ReportError::LocationChangeMisplaced { index: 3, .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("location.changes[3] (host \"us1\")"),
        "{error}"
    );
    let mut input = lapsing(requiring_location());
    input
        .location
        .as_mut()
        .unwrap()
        .changes
        .push(change(month().end_ms(), "de1", false));
    let error = build(&input).unwrap_err();
    assert!(error.to_string().contains("not before the end"), "{error}");
}

#[test]
fn html_says_the_requirement_applied_and_what_it_left_out() {
    let html = report(&lapsing_without_location()).to_html();
    assert!(
        html.contains("Tier-1 share (location-verified compute in Tier-1 countries)"),
        "{html}"
    );
    assert!(
        html.contains("none of the 1,000 TPP declared in Tier-1 countries did"),
        "{html}"
    );
}
