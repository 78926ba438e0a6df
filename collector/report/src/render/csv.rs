//! The daily distribution as CSV (RFC 4180: CRLF line ends, fields quoted where needed): one
//! row per day and country, and per day one `TIER1` row with the Tier-1 total against its
//! minimum; each row carries the day's state at its end (`no_evidence` days have only their
//! `TIER1` row, with 0 TPP, which is not a claim of zero compute). Only the days of the
//! report's period are listed: none after a partial report's as-of instant.

use proto_accounting::Tier;

use crate::report::{LimitKind, Report};

/// The header row's fields.
pub const CSV_HEADER: [&str; 8] = [
    "date",
    "country",
    "tier",
    "tpp",
    "share_percent",
    "limit_percent",
    "limit_kind",
    "day_state",
];

impl Report {
    /// One row per day and country with a counted host, then the day's `TIER1` row.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        push_row(&mut out, CSV_HEADER);
        for day in &self.daily {
            let mut tier1_tpp: u64 = 0;
            for line in &day.countries {
                if line.tier == Tier::One {
                    tier1_tpp = tier1_tpp.saturating_add(line.tpp);
                }
                let (limit, kind) = self.limits.for_country(line.country, line.tier);
                push_row(
                    &mut out,
                    [
                        &day.date,
                        line.country.as_str(),
                        &line.tier.number().to_string(),
                        &line.tpp.to_string(),
                        &line.share,
                        limit.as_deref().unwrap_or(""),
                        kind.as_str(),
                        day.state.as_str(),
                    ],
                );
            }
            push_row(
                &mut out,
                [
                    &day.date,
                    "TIER1",
                    "1",
                    &tier1_tpp.to_string(),
                    &day.tier1_share,
                    &self.limits.tier1_min_share,
                    LimitKind::Tier1MinTotal.as_str(),
                    day.state.as_str(),
                ],
            );
        }
        out
    }
}

fn push_row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, field);
    }
    out.push_str("\r\n");
}

/// Quotes a field holding a comma, quote or line break, doubling its quotes.
fn push_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_where_needed() {
        let mut out = String::new();
        push_row(&mut out, ["plain", "a,b", "say \"hi\"", "two\nlines"]);
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
    }
}
