//! The report as one self-contained HTML page: inline CSS and SVG, no script, no external
//! resource. Every string that came from the input is escaped.

use std::fmt::Write as _;

use crate::input::SignedHead;
use crate::month::format_timestamp;
use crate::report::{Report, State, ViolationInterval};

use super::chart::StepChart;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:960px;\
color:#1b1b1b;line-height:1.4;padding:0 1rem}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}\
h3{font-size:1rem;margin:1rem 0 .2rem}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}\
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all}\
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}\
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.verdict{font-weight:600;padding:.5rem .8rem;border-radius:4px}\
.ok{background:#e6f4ea;color:#1e5631}.bad{background:#fdecea;color:#8a1c12}\
.partial{background:#fff4d6;color:#6b4e00;font-weight:600;padding:.5rem .8rem;border-radius:4px}\
.chart{width:100%;height:auto;display:block}\
.chart .grid{stroke:#ddd;stroke-width:1}.chart .day{stroke:#f2f2f2;stroke-width:1}\
.chart .tick{font-size:11px;fill:#555}.chart .limit{font-size:11px;fill:#c0392b}\
.chart .threshold{stroke:#c0392b;stroke-width:1.5;stroke-dasharray:6 4}\
.chart .series{fill:none;stroke:#1f5fa8;stroke-width:2}\
.none{color:#666;font-style:italic}";

impl Report {
    /// The whole report as one HTML page.
    pub fn to_html(&self) -> String {
        let mut page = String::new();
        let title = if self.partial {
            format!(
                "Compliance report {} (partial, as of {})",
                self.month,
                format_timestamp(self.as_of_ms)
            )
        } else {
            format!("Compliance report {}", self.month)
        };
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            escape(&title)
        );
        self.header(&mut page, &title);
        self.charts(&mut page);
        self.tables(&mut page);
        page.push_str("</body>\n</html>\n");
        page
    }

    fn header(&self, page: &mut String, title: &str) {
        let _ = write!(page, "<h1>{}</h1>\n<dl>\n", escape(title));
        let period = format!(
            "{} to {} (UTC, end excluded)",
            format_timestamp(self.period_start_ms),
            format_timestamp(self.period_end_ms)
        );
        let mut item = |term: &str, value: &str, class: &str| {
            let _ = writeln!(
                page,
                "<dt>{term}</dt><dd{class}>{}</dd>",
                escape(value),
                class = if class.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"{class}\"")
                }
            );
        };
        item("Period", &period, "");
        item(
            "As of",
            &if self.partial {
                format!(
                    "{} (partial: the month is not over; nothing after this instant is claimed)",
                    format_timestamp(self.as_of_ms)
                )
            } else {
                format!("{} (the month is over)", format_timestamp(self.as_of_ms))
            },
            "",
        );
        item("Policy", &self.policy_id, "");
        item("Policy digest", &self.policy_digest, "mono");
        item("Catalogue digest", &self.catalogue_digest, "mono");
        item("Collector key", &self.collector, "mono");
        item("Format", &self.format, "");
        page.push_str("</dl>\n");
        if self.partial {
            let _ = writeln!(
                page,
                "<p class=\"partial\">PARTIAL: {} is not over. This report speaks only of the time up to {}; a report made later says more.</p>",
                self.month,
                escape(&format_timestamp(self.as_of_ms))
            );
        }
        let class = if self.verdict.state == State::Compliant {
            "ok"
        } else {
            "bad"
        };
        let _ = writeln!(
            page,
            "<p class=\"verdict {class}\">{}</p>",
            escape(&self.verdict_words())
        );
    }

    /// The verdict as a sentence: its state, what it covers, and nothing beyond.
    pub fn verdict_words(&self) -> String {
        let verdict = &self.verdict;
        let count = verdict.violations_count;
        let intervals = if count == 1 {
            "1 violation interval".to_owned()
        } else {
            format!("{count} violation intervals")
        };
        let as_of = format_timestamp(self.as_of_ms);
        // What the period is, in words: the whole month, or its part before the as-of instant.
        let (period, end) = if self.partial {
            (
                format!(
                    "{} up to {as_of} (partial: the month is not over)",
                    self.month
                ),
                format!("at {as_of}"),
            )
        } else {
            (self.month.to_string(), "at the month's end".to_owned())
        };
        let since = verdict
            .evidence_from_ms
            .filter(|from| *from > self.period_start_ms);
        let before = since
            .map(|from| {
                format!(
                    " No evidence before {}: nothing is claimed for the month before it.",
                    format_timestamp(from)
                )
            })
            .unwrap_or_default();
        let at_end = match verdict.at_end {
            State::Compliant => "compliant",
            State::NotCompliant => "still not compliant",
            State::NoCompute => "no compute",
            State::NoEvidence => "no evidence",
        };
        match verdict.state {
            State::Compliant => match since {
                None => format!(
                    "Compliant at every instant of {period} under policy {}.",
                    self.policy_id
                ),
                Some(from) => format!(
                    "Compliant from {} (the first evidence) at every instant of {period} under policy {}.{before}",
                    format_timestamp(from),
                    self.policy_id
                ),
            },
            State::NotCompliant => {
                format!("Not compliant in {period}: {intervals}; {at_end} {end}.{before}")
            }
            State::NoCompute => format!(
                "No compute in {period}: at some instant with evidence nothing was counted, so no rule could be evaluated then; never compliant. No rule was broken; {at_end} {end}.{before}"
            ),
            State::NoEvidence => format!(
                "No evidence for {period}: the collector holds no accepted evidence before {as_of}, so nothing is claimed and nothing is compliant."
            ),
        }
    }

    fn charts(&self, page: &mut String) {
        page.push_str("<h2>Shares over the month</h2>\n");
        if self.series.tier1.is_empty() {
            page.push_str("<p class=\"none\">No evidence in the period: nothing to draw.</p>\n");
            return;
        }
        let chart = |title: &str, points, threshold: &str, full_scale| {
            StepChart {
                title,
                points,
                threshold,
                start_ms: self.period_start_ms,
                end_ms: self.as_of_ms,
                full_scale,
            }
            .to_svg()
        };
        let title = format!("Tier-1 share (minimum {} %)", self.limits.tier1_min_share);
        let _ = writeln!(
            page,
            "<h3>{}</h3>\n{}",
            escape(&title),
            chart(
                &title,
                &self.series.tier1,
                &self.limits.tier1_min_share,
                true
            )
        );
        if let Some(home) = &self.limits.home {
            let title = format!(
                "Share in {} {} (home minimum {} %)",
                home.country,
                home.country.name(),
                home.min_share
            );
            let _ = writeln!(
                page,
                "<h3>{}</h3>\n{}",
                escape(&title),
                chart(&title, &self.series.home, &home.min_share, true)
            );
        }
        for (country, points) in &self.series.tier2 {
            let name = proto_accounting::CountryCode::parse(country)
                .map(|code| code.name())
                .unwrap_or("");
            let title = format!(
                "Share in {country} {name} (Tier 2, maximum {} %)",
                self.limits.tier2_country_max_share
            );
            let _ = writeln!(
                page,
                "<h3>{}</h3>\n{}",
                escape(&title),
                chart(&title, points, &self.limits.tier2_country_max_share, false)
            );
        }
    }

    fn tables(&self, page: &mut String) {
        section(
            page,
            "Violations",
            &[
                "Rule",
                "Country",
                "Start (UTC)",
                "End (UTC)",
                "Worst share %",
            ],
            self.violations
                .iter()
                .map(|violation| self.violation_row(violation))
                .collect(),
        );
        let end = &self.end_of_month;
        let _ = writeln!(
            page,
            "<h2>Distribution at the {}</h2>\n<p>Total TPP {}; Tier-1 share {} %{}.</p>",
            if self.partial {
                format!("as-of instant, {}", format_timestamp(self.as_of_ms))
            } else {
                "month's end".to_owned()
            },
            end.total_tpp,
            escape(&end.tier1_share),
            end.home_share
                .as_deref()
                .map(|share| format!("; home share {} %", escape(share)))
                .unwrap_or_default()
        );
        table(
            page,
            &["Country", "Tier", "TPP", "Share %", "Limit %", "Limit kind"],
            end.countries
                .iter()
                .map(|line| {
                    vec![
                        country_cell(line.country),
                        line.tier.number().to_string(),
                        line.tpp.to_string(),
                        line.share.clone(),
                        line.limit.clone().unwrap_or_default(),
                        line.limit_kind.as_str().to_owned(),
                    ]
                })
                .collect(),
        );
        section(
            page,
            "Days",
            &[
                "Date",
                "Total TPP",
                "Tier-1 share %",
                "Lowest Tier-1 share %",
                "Highest Tier-2 share %",
                "Home share %",
                "State at day's end",
                "State over the day",
            ],
            self.daily
                .iter()
                .map(|day| {
                    vec![
                        if day.partial {
                            format!(
                                "{} (to {}, partial)",
                                day.date,
                                format_timestamp(self.as_of_ms)
                            )
                        } else {
                            day.date.clone()
                        },
                        day.total_tpp.to_string(),
                        day.tier1_share.clone(),
                        day.min_tier1_share.clone().unwrap_or_default(),
                        day.max_tier2_share
                            .as_ref()
                            .map(|peak| format!("{} ({})", peak.share, peak.country))
                            .unwrap_or_default(),
                        day.home_share.clone().unwrap_or_default(),
                        state_words(day.state),
                        state_words(day.state_all_day),
                    ]
                })
                .collect(),
        );
        section(
            page,
            "Inventory changes by country",
            &[
                "Country",
                "TPP at start",
                "TPP at end",
                "Hosts at start",
                "Hosts at end",
                "Hosts added",
                "Hosts removed",
                "Devices at start",
                "Devices at end",
            ],
            self.inventory_changes
                .iter()
                .map(|line| {
                    vec![
                        country_cell(line.country),
                        line.tpp_start.to_string(),
                        line.tpp_end.to_string(),
                        line.hosts_start.to_string(),
                        line.hosts_end.to_string(),
                        line.hosts_added.to_string(),
                        line.hosts_removed.to_string(),
                        line.devices_start.to_string(),
                        line.devices_end.to_string(),
                    ]
                })
                .collect(),
        );
        section(
            page,
            "Stale hosts (counted at their last known place)",
            &["Host", "Country", "TPP", "Silent from (UTC)", "Until (UTC)"],
            self.stale
                .iter()
                .map(|span| {
                    vec![
                        span.host_id.clone(),
                        country_cell(span.country),
                        span.tpp.to_string(),
                        format_timestamp(span.from_ms),
                        span.to_ms
                            .map(format_timestamp)
                            .unwrap_or_else(|| self.open_at_end("still silent")),
                    ]
                })
                .collect(),
        );
        section(
            page,
            "Chain gaps",
            &["At (UTC)", "Host", "Missing attestations"],
            self.gaps
                .iter()
                .map(|gap| {
                    vec![
                        format_timestamp(gap.at_ms),
                        gap.host_id.clone(),
                        gap.missing.to_string(),
                    ]
                })
                .collect(),
        );
        section(
            page,
            "Rejections by reason",
            &["Reason", "Count"],
            self.rejections
                .iter()
                .map(|line| vec![line.reason.clone(), line.count.to_string()])
                .collect(),
        );
        section(
            page,
            "GPU conflicts",
            &["At (UTC)", "Host", "Detail"],
            self.conflicts
                .iter()
                .map(|conflict| {
                    vec![
                        format_timestamp(conflict.at_ms),
                        conflict.host_id.clone(),
                        conflict.detail.clone(),
                    ]
                })
                .collect(),
        );
        self.log_evidence(page);
    }

    /// "`what` at the month's end", or at the as-of instant of a partial report.
    fn open_at_end(&self, what: &str) -> String {
        if self.partial {
            format!("{what} at {} (as of)", format_timestamp(self.as_of_ms))
        } else {
            format!("{what} at the month's end")
        }
    }

    fn violation_row(&self, violation: &ViolationInterval) -> Vec<String> {
        vec![
            violation.rule.as_str().to_owned(),
            violation.country.map(country_cell).unwrap_or_default(),
            format_timestamp(violation.start_ms),
            violation
                .end_ms
                .map(format_timestamp)
                .unwrap_or_else(|| self.open_at_end("open")),
            violation.worst_share.clone(),
        ]
    }

    fn log_evidence(&self, page: &mut String) {
        page.push_str("<h2>Log evidence</h2>\n");
        for (title, head) in [
            ("Signed tree head at the month's start", &self.log.start),
            (
                "Signed tree head at the end of the period (signed at or after it)",
                &self.log.end,
            ),
        ] {
            let _ = writeln!(page, "<h3>{title}</h3>");
            match head {
                Some(head) => head_table(page, head),
                None => page.push_str("<p class=\"none\">None recorded.</p>\n"),
            }
        }
        page.push_str("<h3>Consistency proof</h3>\n");
        if self.log.consistency_proof.is_empty() {
            page.push_str("<p class=\"none\">Empty.</p>\n");
        } else {
            page.push_str("<ol class=\"mono\">\n");
            for hash in &self.log.consistency_proof {
                let _ = writeln!(page, "<li>{}</li>", escape(hash));
            }
            page.push_str("</ol>\n");
        }
        if let Some(checkpoint) = &self.log.checkpoint {
            page.push_str("<h3>The end head as a checkpoint (C2SP tlog-checkpoint)</h3>\n");
            let _ = writeln!(page, "<pre class=\"mono\">{}</pre>", escape(checkpoint));
        }
    }
}

/// Escapes text for HTML content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn head_table(page: &mut String, head: &SignedHead) {
    table(
        page,
        &["Field", "Value"],
        vec![
            vec!["Tree size".into(), head.tree_size.to_string()],
            vec!["Root".into(), head.root.clone()],
            vec![
                "Signed at (UTC)".into(),
                format_timestamp(head.timestamp_ms),
            ],
            vec!["Key id".into(), head.key_id.clone()],
            vec!["Signature".into(), head.signature.clone()],
        ],
    );
}

fn country_cell(country: proto_accounting::CountryCode) -> String {
    format!("{country} {}", country.name())
}

fn state_words(state: State) -> String {
    match state {
        State::Compliant => "compliant",
        State::NotCompliant => "NOT COMPLIANT",
        State::NoCompute => "no compute",
        State::NoEvidence => "no evidence",
    }
    .to_owned()
}

/// A titled table, or a line saying there is nothing.
fn section(page: &mut String, title: &str, headers: &[&str], rows: Vec<Vec<String>>) {
    let _ = writeln!(page, "<h2>{}</h2>", escape(title));
    if rows.is_empty() {
        page.push_str("<p class=\"none\">None.</p>\n");
    } else {
        table(page, headers, rows);
    }
}

/// A table of plain-text cells; every cell is escaped, numbers are right-aligned.
fn table(page: &mut String, headers: &[&str], rows: Vec<Vec<String>>) {
    page.push_str("<table>\n<thead><tr>");
    for header in headers {
        let _ = write!(page, "<th>{}</th>", escape(header));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let numeric = !cell.is_empty() && cell.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            let class = if numeric { " class=\"num\"" } else { "" };
            let _ = write!(page, "<td{class}>{}</td>", escape(&cell));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
