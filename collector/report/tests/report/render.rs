//! JSON, CSV and HTML renderings.

use collector_report::render::CSV_HEADER;
use collector_report::{
    ConflictEvent, GapEvent, HtmlOptions, Report, Span, StaleSpan, State, build,
};

use crate::harness::*;

fn crossing_month() -> Report {
    let mut changes = baseline(&[
        ("us1", "US", 600),
        ("de1", "DE", 200),
        ("my1", "MY", 60),
        ("sg1", "SG", 70),
        ("in1", "IN", 70),
        ("cn1", "CN", 0),
    ]);
    changes.push(attest(at(10, 14, 0), "my2", "MY", 20));
    changes.push(decommission(at(12, 9, 30), "my2", "MY"));
    changes.push(attest(at(25, 0, 0), "ae1", "AE", 340));
    let mut input = input(us_policy(), changes);
    let hostile = "<script>alert('x')</script>";
    input.stale = vec![StaleSpan {
        host_id: hostile.into(),
        country: code("US"),
        tpp: 600,
        from_ms: at(3, 0, 0),
        to_ms: None,
    }];
    input.gaps = vec![GapEvent {
        at_ms: at(4, 0, 0),
        host_id: hostile.into(),
        missing: 3,
    }];
    input.conflicts = vec![ConflictEvent {
        at_ms: at(5, 0, 0),
        host_id: "us1".into(),
        detail: "GPU-<b>1</b> & \"friends\"".into(),
    }];
    input.rejections = vec![("bad,reason \"quoted\"".into(), 2)];
    build(&input).unwrap()
}

#[test]
fn json_round_trips_and_keeps_the_field_order() {
    let report = crossing_month();
    let json = report.to_json();
    assert!(json.ends_with("}\n"));
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let order = [
        "format",
        "month",
        "period_start_ms",
        "period_end_ms",
        "as_of_ms",
        "partial",
        "policy_id",
        "policy_digest",
        "catalogue_digest",
        "collector",
        "limits",
        "verdict",
        "end_of_month",
        "daily",
        "series",
        "violations",
        "inventory_changes",
        "stale",
        "gaps",
        "conflicts",
        "rejections",
        "log",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| json.find(&format!("\n  \"{key}\": ")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(json.starts_with("{\n  \"format\": \"veu-report/2\",\n  \"month\": \"2026-11\","));
    assert_eq!(
        value_of(&json)["verdict"],
        serde_json::json!({
            "state": "not_compliant",
            "evidence_from_ms": start(),
            "at_end": "not_compliant",
            "violations_count": 4,
        })
    );
    assert_eq!(value_of(&json)["partial"], false);
    assert_eq!(value_of(&json)["as_of_ms"], month().end_ms());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["violations"][0],
        serde_json::json!({
            "rule": "tier2_country_max_share",
            "country": "MY",
            "start_ms": at(10, 14, 0),
            "end_ms": at(12, 9, 30),
            "worst_share": "7.843",
        })
    );
    // From 25 November, AE takes Tier 1 to 800 of 1340 = 59.701 %, below 75 %.
    assert_eq!(
        value["violations"][1],
        serde_json::json!({
            "rule": "tier1_min_share",
            "start_ms": at(25, 0, 0),
            "end_ms": null,
            "worst_share": "59.701",
        })
    );
    assert_eq!(
        value["end_of_month"]["countries"][1],
        serde_json::json!({
            "country": "CN",
            "tier": 3,
            "tpp": 0,
            "share": "0.000",
            "hardware_tpp": 0,
            "hardware_share": "0.000",
            "location_verified_tpp": 0,
            "location_verified_share": "0.000",
            "limit": "0.000",
            "limit_kind": "prohibited",
        })
    );
}

fn value_of(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap()
}

#[test]
fn csv_has_a_row_per_day_and_country_and_a_tier1_row() {
    let report = crossing_month();
    let text = report.to_csv();
    assert!(
        text.starts_with(
            "date,country,tier,tpp,share_percent,limit_percent,limit_kind,day_state\r\n"
        )
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        CSV_HEADER
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.iter().all(|row| row.len() == CSV_HEADER.len()));
    let expected: usize = report.daily.iter().map(|day| day.countries.len() + 1).sum();
    assert_eq!(rows.len(), expected);

    let row = |date: &str, country: &str| {
        rows.iter()
            .find(|r| &r[0] == date && &r[1] == country)
            .map(|r| r.iter().collect::<Vec<_>>())
            .unwrap()
    };
    assert_eq!(
        row("2026-11-10", "MY"),
        [
            "2026-11-10",
            "MY",
            "2",
            "80",
            "7.843",
            "7.000",
            "tier2_max",
            "not_compliant"
        ]
    );
    assert_eq!(
        row("2026-11-10", "TIER1"),
        [
            "2026-11-10",
            "TIER1",
            "1",
            "800",
            "78.431",
            "75.000",
            "tier1_min_total",
            "not_compliant"
        ]
    );
    assert_eq!(
        row("2026-11-10", "US"),
        [
            "2026-11-10",
            "US",
            "1",
            "600",
            "58.823",
            "50.000",
            "home_min",
            "not_compliant"
        ]
    );
    assert_eq!(
        row("2026-11-10", "DE"),
        [
            "2026-11-10",
            "DE",
            "1",
            "200",
            "19.607",
            "75.000",
            "tier1_min_total",
            "not_compliant"
        ]
    );
    assert_eq!(
        row("2026-11-01", "CN"),
        [
            "2026-11-01",
            "CN",
            "3",
            "0",
            "0.000",
            "0.000",
            "prohibited",
            "compliant"
        ]
    );
}

#[test]
fn html_is_self_contained_and_escapes_the_input() {
    let report = crossing_month();
    let html = report.to_html();
    for forbidden in [
        "http://", "https://", "src=", "<script", "url(", "<link", "@import",
    ] {
        assert!(!html.contains(forbidden), "the page contains {forbidden:?}");
    }
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("GPU-&lt;b&gt;1&lt;/b&gt; &amp; &quot;friends&quot;"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    for section in [
        "Compliance report 2026-11",
        "Tier-1 share (minimum 75 %)",
        "Share in US United States (home minimum 50 %)",
        "Share in MY Malaysia (Tier 2, maximum 7 %)",
        "<h2>Violations</h2>",
        "<h2>Distribution at the month's end</h2>",
        "<h2>Inventory changes by country</h2>",
        "<h2>Stale hosts (counted at their last known place)</h2>",
        "<h2>Chain gaps</h2>",
        "<h2>Rejections by reason</h2>",
        "<h2>GPU conflicts</h2>",
        "<h2>Log evidence</h2>",
        "2026-11-10T14:00:00Z",
        "2026-11-12T09:30:00Z",
        "open at the month&#39;s end",
        "Not compliant in 2026-11: 4 violation intervals; still not compliant at the month&#39;s end.",
        &"11".repeat(32),
        &report.policy_digest,
    ] {
        assert!(html.contains(section), "missing {section:?}");
    }
    // Tier 1, home, and one chart per Tier-2 country (AE, IN, MY, SG).
    assert_eq!(html.matches("<svg").count(), 6);
    assert_eq!(html.matches("class=\"threshold\"").count(), 6);
}

#[test]
fn verdicts_in_words() {
    let mut report = crossing_month();
    report.verdict.state = State::Compliant;
    assert_eq!(
        report.verdict_words(),
        "Compliant at every instant of 2026-11 under policy uveu-2025-us."
    );
    report.verdict.state = State::NotCompliant;
    report.verdict.at_end = State::Compliant;
    report.verdict.violations_count = 1;
    assert_eq!(
        report.verdict_words(),
        "Not compliant in 2026-11: 1 violation interval; compliant at the month's end."
    );
    // Evidence from the 14th: the verdict says so and claims nothing before.
    report.verdict.state = State::Compliant;
    report.verdict.evidence_from_ms = Some(at(14, 9, 0));
    assert_eq!(
        report.verdict_words(),
        "Compliant from 2026-11-14T09:00:00Z (the first evidence) at every instant of 2026-11 \
         under policy uveu-2025-us. No evidence before 2026-11-14T09:00:00Z: nothing is claimed \
         for the month before it."
    );
    report.verdict.state = State::NoCompute;
    report.verdict.at_end = State::NoCompute;
    report.verdict.evidence_from_ms = Some(start());
    assert_eq!(
        report.verdict_words(),
        "No compute in 2026-11: at some instant with evidence nothing was counted, so no rule \
         could be evaluated then; never compliant. No rule was broken; no compute at the \
         month's end."
    );
    report.verdict.state = State::NoEvidence;
    report.verdict.evidence_from_ms = None;
    report.partial = true;
    report.as_of_ms = at(3, 12, 0);
    assert_eq!(
        report.verdict_words(),
        "No evidence for 2026-11 up to 2026-11-03T12:00:00Z (partial: the month is not over): \
         the collector holds no accepted evidence before 2026-11-03T12:00:00Z, so nothing is \
         claimed and nothing is compliant."
    );
}

#[test]
fn html_reads_as_a_document_to_sign() {
    let report = report(&signing_sample());
    let html = report.to_html();
    // The verdict in words comes first, before what the report is about, the charts and the
    // tables; the state is named, not only coloured.
    let verdict = html.find("<p class=\"state\">NOT COMPLIANT</p>").unwrap();
    assert!(verdict < html.find("<h2>About this report</h2>").unwrap());
    assert!(verdict < html.find("<svg").unwrap());
    assert!(html.contains("class=\"verdict not-compliant\""));
    assert!(html.contains("At the end of the period (<span class=\"time\">2026-12-01T00:00:00Z</span>): <strong>COMPLIANT</strong>."));
    for expected in [
        // Who, which period, which log.
        "<title>Example Cloud Inc.: Compliance report 2026-11</title>",
        "<tr><th scope=\"row\">Organisation</th><td>Example Cloud Inc.</td></tr>",
        "November 2026: <span class=\"time\">2026-11-01T00:00:00Z</span>",
        "(the whole month)",
        "from <span class=\"time\">2026-11-03T09:00:00Z</span>; none before",
        &format!(
            "<span class=\"hex\">{}</span>",
            "9f3c2a7be41d0c58".repeat(4)
        ),
        "<code>cloud.example/veu-log</code>",
        "by the log's tree head of 98,765 entries signed at",
        // Numbers as people read them, rules in words, a status column.
        "Total counted compute 83,001,600 TPP",
        "<td class=\"num\">50,688,000</td>",
        "<td>Tier-2 country share at most 7 %</td><td>MY Malaysia</td>",
        "<td class=\"time\">2026-11-14T10:00:00Z</td>",
        "<td>at most 7 %</td><td class=\"num\">0 (0.000 %)</td><td>ok</td>",
        "<td>Tier-1 total at least 75 %</td><td class=\"num\">0 (0.000 %)</td><td>ok (counts toward Tier 1)</td>",
        "<th>Status</th>",
        "<td class=\"bad\">NOT COMPLIANT</td>",
        "<td class=\"num\">7.914 % (MY)</td>",
        // Days before the first evidence: no share, not zero.
        "<tr><td class=\"time\">2026-11-01</td><td class=\"num\">—</td><td class=\"num\">—</td>",
        // Long hex breaks instead of overflowing; print styles for A4.
        &format!(
            "<span class=\"hex\">{}</span>",
            "8c4e0f6a1d2b3c59".repeat(8)
        ),
        ".hex{word-break:break-all",
        "@media print{",
        "@page{size:A4",
        "<h2>Review</h2>",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
    // Internal ids stay in the JSON.
    for id in [
        "tier1_min_share",
        "tier2_country_max_share",
        "tier1_min_total",
        "tier2_max",
        "home_min<",
        "not_compliant",
        "83001600",
    ] {
        assert!(!html.contains(id), "the page shows {id:?}");
    }
    for forbidden in [
        "http://", "https://", "src=", "<script", "url(", "<link", "@import",
    ] {
        assert!(!html.contains(forbidden), "the page contains {forbidden:?}");
    }
    // The bar above the Malaysian chart marks the three days the table lists.
    assert_eq!(html.matches("<rect class=\"broken\"").count(), 1);
    assert_eq!(html.matches("<th>Status</th>").count(), 3);
    // Generated-at is the renderer's, never in the signed JSON.
    assert!(!html.contains(">Generated<"));
    let rendered = report.to_html_with(&HtmlOptions {
        generated_at_ms: Some(at(30, 12, 0) + DAY_MS),
    });
    assert!(rendered.contains(
        "<tr><th scope=\"row\">Generated</th><td><span class=\"time\">2026-12-01T12:00:00Z</span></td></tr>"
    ));
    let json = report.to_json();
    assert!(json.contains("\n  \"collector\": \"9f3c2a7b"));
    assert!(json.contains("\",\n  \"organisation\": \"Example Cloud Inc.\",\n  \"limits\": {"));
    assert!(!crossing_month().to_json().contains("\"organisation\""));
}

#[test]
fn charts_leave_spans_without_a_share_blank() {
    // Compliant, then nothing counted from the 10th at noon (every host decommissioned) until
    // the 20th: the shares are undefined there, so no chart draws 0 % below a limit.
    let mut changes = baseline(&[("us1", "US", 900), ("my1", "MY", 60)]);
    changes.push(decommission(at(10, 12, 0), "us1", "US"));
    changes.push(decommission(at(10, 12, 0), "my1", "MY"));
    changes.push(attest(at(20, 0, 0), "us2", "US", 900));
    changes.push(attest(at(20, 0, 0), "my2", "MY", 60));
    let report = build(&input(us_policy(), changes)).unwrap();
    assert_eq!(
        report.series.no_compute,
        [Span {
            from_ms: at(10, 12, 0),
            to_ms: at(20, 0, 0)
        }]
    );
    // The series still hold 0.000 there (unchanged JSON); the page does not draw it.
    assert!(report.series.tier1.iter().any(|p| p.share == "0.000"));
    let html = report.to_html();
    assert_eq!(html.matches("<rect class=\"blank-compute\"").count(), 3);
    assert!(html.contains(">no compute</text>"));
    for path in html.split("class=\"series\" d=\"").skip(1) {
        let path = path.split('"').next().unwrap();
        // 0 % sits at y = 206 on every scale.
        assert!(
            !path.contains(",206.0") && !path.contains("V206.0"),
            "{path}"
        );
        assert_eq!(
            path.matches('M').count(),
            2,
            "two pieces around the gap: {path}"
        );
    }
    // The days say the same: no share on the days with nothing counted at their end.
    assert!(html.contains(
        "<tr><td class=\"time\">2026-11-15</td><td class=\"num\">0</td><td class=\"num\">—</td>"
    ));
    // A month without such spans has no such field in its JSON.
    assert!(!crossing_month().to_json().contains("\"no_compute\": ["));
    assert!(report.to_json().contains("\"no_compute\": ["));
}
