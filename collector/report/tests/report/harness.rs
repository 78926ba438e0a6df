//! Builders for inputs in November 2026.

use collector_report::{
    ChangeKind, HostChange, LogEvidence, Month, Report, ReportInput, SignedHead, build,
};
use proto_accounting::policy::UVEU_2025_US_TOML;
use proto_accounting::{CountryCode, Policy};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

pub fn month() -> Month {
    "2026-11".parse().unwrap()
}

/// 2026-11-01T00:00:00Z.
pub fn start() -> i64 {
    month().start_ms()
}

/// Day `day` of November 2026 (1-based) at `hour:minute` UTC.
pub fn at(day: i64, hour: i64, minute: i64) -> i64 {
    start() + (day - 1) * DAY_MS + hour * HOUR_MS + minute * 60_000
}

pub fn code(text: &str) -> CountryCode {
    CountryCode::parse(text).unwrap()
}

/// The shipped 2025 policy: US headquarters, home rule 50 %.
pub fn us_policy() -> Policy {
    Policy::uveu_2025_us().unwrap()
}

/// The same rule for a German headquarters: no home rule.
pub fn de_policy() -> Policy {
    Policy::from_toml(&UVEU_2025_US_TOML.replace("headquarters = \"US\"", "headquarters = \"DE\""))
        .unwrap()
}

pub fn attest(at_ms: i64, host: &str, country: &str, tpp: u64) -> HostChange {
    HostChange {
        at_ms,
        host_id: host.to_owned(),
        site_id: format!("site-{}", country.to_lowercase()),
        country: code(country),
        tpp,
        hardware_tpp: 0,
        devices: u32::try_from(tpp.div_ceil(100)).unwrap_or(u32::MAX),
        kind: ChangeKind::Attested,
    }
}

pub fn decommission(at_ms: i64, host: &str, country: &str) -> HostChange {
    HostChange {
        kind: ChangeKind::Decommissioned,
        tpp: 0,
        devices: 0,
        ..attest(at_ms, host, country, 0)
    }
}

/// One host per country, attested on 2026-10-31 at noon.
pub fn baseline(rows: &[(&str, &str, u64)]) -> Vec<HostChange> {
    rows.iter()
        .map(|(host, country, tpp)| attest(start() - 12 * HOUR_MS, host, country, *tpp))
        .collect()
}

pub fn input(policy: Policy, changes: Vec<HostChange>) -> ReportInput {
    ReportInput {
        month: month(),
        as_of_ms: month().end_ms(),
        policy_id: policy.id.clone(),
        policy_digest: policy.digest().to_string(),
        policy,
        catalogue_digest: format!("sha256:{}", "ab".repeat(32)),
        collector: "c0ffee".repeat(4),
        organisation: None,
        changes,
        stale: Vec::new(),
        gaps: Vec::new(),
        conflicts: Vec::new(),
        rejections: Vec::new(),
        log: LogEvidence {
            start: Some(head(1200, start() - 60_000)),
            end: Some(head(5400, month().end_ms() - 60_000)),
            consistency_proof: vec!["11".repeat(32), "22".repeat(32)],
            checkpoint: None,
        },
        location: None,
    }
}

pub fn head(tree_size: u64, timestamp_ms: i64) -> SignedHead {
    SignedHead {
        tree_size,
        root: format!("{tree_size:064x}"),
        timestamp_ms,
        key_id: "c0ffee".repeat(4),
        signature: "5a".repeat(64),
    }
}

pub fn report(input: &ReportInput) -> Report {
    build(input).unwrap()
}

/// Violation intervals as `(rule[:country], start, end, worst)`.
pub fn intervals(report: &Report) -> Vec<(String, i64, Option<i64>, String)> {
    report
        .violations
        .iter()
        .map(|v| {
            let name = match v.country {
                Some(country) => format!("{}:{country}", v.rule),
                None => v.rule.to_string(),
            };
            (name, v.start_ms, v.end_ms, v.worst_share.clone())
        })
        .collect()
}

/// A series as `(at_ms, share)`.
pub fn points(series: &[collector_report::SeriesPoint]) -> Vec<(i64, &str)> {
    series.iter().map(|p| (p.at_ms, p.share.as_str())).collect()
}

/// Eight-GPU H100 nodes, in TPP.
pub fn nodes(count: u64) -> u64 {
    count * 8 * 15_840
}

/// A month as an operator's report shows it: a named organisation, evidence from the 3rd, a
/// Malaysian expansion over 7 % for three days, a silence, a chain gap, a conflict,
/// rejections, and the log's heads with a checkpoint. The screenshots in docs/ are of it.
pub fn signing_sample() -> ReportInput {
    let first = at(3, 9, 0);
    let mut changes: Vec<HostChange> = [
        ("us-va-ashburn-1", "US", 240),
        ("us-tx-dallas-1", "US", 160),
        ("de-fra-1", "DE", 60),
        ("jp-tokyo-1", "JP", 50),
        ("gb-lon-1", "GB", 40),
        ("my-johor-1", "MY", 40),
        ("in-mum-1", "IN", 30),
        ("sg-1", "SG", 25),
    ]
    .iter()
    .enumerate()
    .map(|(i, (host, country, count))| {
        let i = i64::try_from(i).unwrap();
        let mut change = attest(first + i * 60_000, host, country, nodes(*count));
        change.devices = u32::try_from(*count * 8).unwrap();
        change
    })
    .collect();
    let mut grow = attest(at(14, 10, 0), "my-johor-2", "MY", nodes(12));
    grow.devices = 96;
    changes.push(grow);
    changes.push(decommission(at(17, 16, 30), "my-johor-2", "MY"));
    let mut india = attest(at(20, 8, 0), "in-mum-2", "IN", nodes(10));
    india.devices = 80;
    changes.push(india);
    let mut input = input(us_policy(), changes);
    input.organisation = Some("Example Cloud Inc.".to_owned());
    input.collector = "9f3c2a7be41d0c58".repeat(4);
    input.stale = vec![collector_report::StaleSpan {
        host_id: "sg-1".into(),
        country: code("SG"),
        tpp: nodes(25),
        from_ms: at(24, 3, 12),
        to_ms: Some(at(25, 11, 40)),
    }];
    input.gaps = vec![collector_report::GapEvent {
        at_ms: at(25, 11, 40),
        host_id: "sg-1".into(),
        missing: 2,
    }];
    input.conflicts = vec![collector_report::ConflictEvent {
        at_ms: at(21, 13, 5),
        host_id: "in-mum-2".into(),
        detail: "GPU-4f1a9c2e-6b0d-4a5f-9d8e-2c7b1e0f3a44 also claimed by in-mum-1".into(),
    }];
    input.rejections = vec![("clock_skew".into(), 3), ("bad_signature".into(), 1)];
    let signature = "8c4e0f6a1d2b3c59".repeat(8);
    input.log = LogEvidence {
        start: Some(SignedHead {
            signature: signature.clone(),
            key_id: input.collector.clone(),
            ..head(12_345, start() - 60_000)
        }),
        end: Some(SignedHead {
            signature,
            key_id: input.collector.clone(),
            ..head(98_765, month().end_ms() + 5_000)
        }),
        consistency_proof: (1..=6).map(|i| format!("{i:x}{}", "0a".repeat(31)) + "e").collect(),
        checkpoint: Some(
            "cloud.example/veu-log\n98765\nq1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c=\n\n\
             \u{2014} cloud.example/veu-log 9f3c2a7bSGVsbG8gd29ybGQgY2hlY2twb2ludCBzaWduYXR1cmUgYnl0ZXM=\n"
                .to_owned(),
        ),
    };
    input
}
