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
