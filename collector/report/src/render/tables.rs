//! The report's tables on the HTML page: violations, the distribution at the end (with the
//! location of the counted hosts), the days, inventory, silences, gaps, rejections, conflicts
//! and the log evidence. Numbers with grouped thousands, shares with their sign, timestamps
//! that do not wrap, long hex that breaks, a status column in words, and a dash where a share
//! is undefined (no evidence, nothing counted).

use std::fmt::Write as _;

use proto_accounting::Tier;

use crate::input::SignedHead;
use crate::month::format_timestamp;
use crate::report::{Day, LocationSection, Report, State, ViolationInterval};

use super::html::hex;
use super::text::{country, escape, grouped, limit_words, percent, rule_name, state_words};

/// Where a share is undefined.
const UNDEFINED: &str = "—";

/// A table cell, and how it is set.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    /// Plain text.
    Text(String),
    /// A number or share: right-aligned, never wrapped.
    Num(String),
    /// A timestamp or date: never wrapped.
    Time(String),
    /// Markup built here from escaped parts, inserted as it is.
    Markup(String),
    /// A status in words; upper case (`VIOLATION`, `NOT COMPLIANT`) is set in bold.
    Status(String),
}

impl Report {
    pub(super) fn tables(&self, page: &mut String) {
        section(
            page,
            "Violations",
            &[
                "Rule",
                "Country",
                "From (UTC)",
                "Until (UTC)",
                "Worst share",
                "Status",
            ],
            self.violations
                .iter()
                .map(|violation| self.violation_row(violation))
                .collect(),
        );
        let end = &self.end_of_month;
        let _ = writeln!(
            page,
            "<h2>Distribution at the {}</h2>\n<p>Total counted compute {} TPP; Tier-1 share {}{}. \
             Hardware-attested (NVIDIA-signed GPU reports, fresh and bound to the collector's \
             challenge): {} TPP, {} of the total; the rest rests on what NVML reported.</p>",
            if self.partial {
                format!(
                    "as-of instant, <span class=\"time\">{}</span>",
                    format_timestamp(self.as_of_ms)
                )
            } else {
                "month's end".to_owned()
            },
            grouped(end.total_tpp),
            escape(&self.defined(end.total_tpp, &end.tier1_share)),
            end.home_share
                .as_deref()
                .map(|share| format!(
                    "; home share {}",
                    escape(&self.defined(end.total_tpp, share))
                ))
                .unwrap_or_default(),
            grouped(end.hardware_tpp),
            escape(&self.defined(end.total_tpp, &end.hardware_share)),
        );
        let (tier1_tpp, tier1_located) = end
            .countries
            .iter()
            .filter(|line| line.tier == Tier::One)
            .fold((0u64, 0u64), |(tpp, located), line| {
                (
                    tpp.saturating_add(line.tpp),
                    located.saturating_add(line.location_verified_tpp),
                )
            });
        let tier1_words = format!(
            " In Tier-1 countries: {} TPP of {} TPP.",
            grouped(tier1_located),
            grouped(tier1_tpp)
        );
        let _ = writeln!(
            page,
            "<p>{}{}</p>",
            match (&self.location, self.limits.tier1_requires_location) {
                (Some(_), false) => format!(
                    "Location-verified (round trips from trusted landmarks place the host within \
                     its site's country): {} TPP, {} of the total. Shown beside the declared \
                     distribution; it does not change the verdict.",
                    grouped(end.location_verified_tpp),
                    escape(&self.defined(end.total_tpp, &end.location_verified_share)),
                ),
                (Some(_), true) => format!(
                    "Location-verified (round trips from trusted landmarks place the host within \
                     its site's country): {} TPP, {} of the total. The policy counts Tier-1 \
                     compute toward the Tier-1 and home minimums only while it is \
                     location-verified: {} TPP declared in Tier-1 countries counted toward no \
                     minimum at the end of the period.",
                    grouped(end.location_verified_tpp),
                    escape(&self.defined(end.total_tpp, &end.location_verified_share)),
                    grouped(end.tier1_unlocated_tpp),
                ),
                (None, false) =>
                    "Location-verified: not measured (the collector trusts no landmark).".to_owned(),
                (None, true) => format!(
                    "Location-verified: not measured (the collector trusts no landmark). The \
                     policy counts Tier-1 compute toward the minimums only while it is \
                     location-verified, so none of the {} TPP declared in Tier-1 countries did.",
                    grouped(end.tier1_unlocated_tpp),
                ),
            },
            if self.location.is_some() {
                tier1_words.as_str()
            } else {
                ""
            }
        );
        let evaluated = end.total_tpp > 0;
        let mut headers = vec![
            "Country",
            "Tier",
            "TPP",
            "Share",
            "Limit",
            "Hardware-attested TPP",
        ];
        if self.location.is_some() {
            headers.push("Location-verified TPP");
        }
        headers.push("Status");
        table(
            page,
            &headers,
            end.countries
                .iter()
                .map(|line| {
                    let broken = end
                        .violations
                        .iter()
                        .any(|breach| breach.country == Some(line.country));
                    let status = match (evaluated, broken, line.tier) {
                        (false, _, _) => "not evaluated",
                        (true, true, _) => "VIOLATION",
                        (true, false, Tier::One) => "ok (counts toward Tier 1)",
                        (true, false, _) => "ok",
                    };
                    let mut row = vec![
                        Cell::Text(country(line.country)),
                        Cell::Num(line.tier.number().to_string()),
                        Cell::Num(grouped(line.tpp)),
                        Cell::Num(self.defined(end.total_tpp, &line.share)),
                        Cell::Text(limit_words(line.limit_kind, line.limit.as_deref())),
                        Cell::Num(format!(
                            "{} ({})",
                            grouped(line.hardware_tpp),
                            self.defined(line.tpp, &line.hardware_share)
                        )),
                    ];
                    if self.location.is_some() {
                        row.push(Cell::Num(format!(
                            "{} ({})",
                            grouped(line.location_verified_tpp),
                            self.defined(line.tpp, &line.location_verified_share)
                        )));
                    }
                    row.push(Cell::Status(status.to_owned()));
                    row
                })
                .collect(),
        );
        if let Some(location) = &self.location {
            location_section(page, location);
        }
        section(
            page,
            "Days",
            &[
                "Date (UTC)",
                "Total TPP",
                "Tier-1 share",
                "Lowest Tier-1 share",
                "Highest Tier-2 share",
                "Home share",
                "At the day's end",
                "Over the day",
            ],
            self.daily.iter().map(|day| self.day_row(day)).collect(),
        );
        page.push_str(
            "<p class=\"note\">Shares at the day's end; lowest and highest over the day's instants \
             with counted compute. A dash: no share is defined (no evidence yet, or nothing counted).</p>\n",
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
                    let mut row = vec![Cell::Text(country(line.country))];
                    row.extend(
                        [
                            line.tpp_start,
                            line.tpp_end,
                            line.hosts_start,
                            line.hosts_end,
                            line.hosts_added,
                            line.hosts_removed,
                            line.devices_start,
                            line.devices_end,
                        ]
                        .map(|n| Cell::Num(grouped(n))),
                    );
                    row
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
                        Cell::Text(span.host_id.clone()),
                        Cell::Text(country(span.country)),
                        Cell::Num(grouped(span.tpp)),
                        Cell::Time(format_timestamp(span.from_ms)),
                        match span.to_ms {
                            Some(to) => Cell::Time(format_timestamp(to)),
                            None => Cell::Text(self.open_at_end("still silent")),
                        },
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
                        Cell::Time(format_timestamp(gap.at_ms)),
                        Cell::Text(gap.host_id.clone()),
                        Cell::Num(grouped(gap.missing)),
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
                .map(|line| {
                    vec![
                        Cell::Text(line.reason.clone()),
                        Cell::Num(grouped(line.count)),
                    ]
                })
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
                        Cell::Time(format_timestamp(conflict.at_ms)),
                        Cell::Text(conflict.host_id.clone()),
                        Cell::Text(conflict.detail.clone()),
                    ]
                })
                .collect(),
        );
    }

    pub(super) fn log_evidence(&self, page: &mut String) {
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
            page.push_str("<ol>\n");
            for hash in &self.log.consistency_proof {
                let _ = writeln!(page, "<li>{}</li>", hex(hash));
            }
            page.push_str("</ol>\n");
        }
        if let Some(checkpoint) = &self.log.checkpoint {
            page.push_str("<h3>The end head as a checkpoint (C2SP tlog-checkpoint)</h3>\n");
            let _ = writeln!(page, "<pre class=\"hex\">{}</pre>", escape(checkpoint));
        }
    }

    /// A share, or a dash when nothing is counted (no share is defined).
    fn defined(&self, total_tpp: u64, share: &str) -> String {
        if total_tpp == 0 {
            UNDEFINED.to_owned()
        } else {
            percent(share)
        }
    }

    fn day_row(&self, day: &Day) -> Vec<Cell> {
        let share = |value: Option<&str>| match value {
            Some(share) if day.total_tpp > 0 => Cell::Num(percent(share)),
            _ => Cell::Num(UNDEFINED.to_owned()),
        };
        let peak = |value: Option<String>| value.unwrap_or_else(|| UNDEFINED.to_owned());
        vec![
            if day.partial {
                Cell::Markup(format!(
                    "<span class=\"time\">{}</span> <span class=\"note\">(to {}, partial)</span>",
                    escape(&day.date),
                    escape(&format_timestamp(self.as_of_ms))
                ))
            } else {
                Cell::Time(day.date.clone())
            },
            Cell::Num(if day.state == State::NoEvidence {
                UNDEFINED.to_owned()
            } else {
                grouped(day.total_tpp)
            }),
            share(Some(&day.tier1_share)),
            Cell::Num(peak(day.min_tier1_share.as_deref().map(percent))),
            Cell::Num(peak(
                day.max_tier2_share
                    .as_ref()
                    .map(|top| format!("{} ({})", percent(&top.share), top.country)),
            )),
            share(day.home_share.as_deref()),
            Cell::Status(state_words(day.state).to_owned()),
            Cell::Status(state_words(day.state_all_day).to_owned()),
        ]
    }

    /// "`what` at the month's end", or at the as-of instant of a partial report.
    fn open_at_end(&self, what: &str) -> String {
        if self.partial {
            format!("{what} at {} (as of)", format_timestamp(self.as_of_ms))
        } else {
            format!("{what} at the month's end")
        }
    }

    fn violation_row(&self, violation: &ViolationInterval) -> Vec<Cell> {
        vec![
            Cell::Text(rule_name(violation.rule, &self.limits)),
            Cell::Text(violation.country.map(country).unwrap_or_default()),
            Cell::Time(format_timestamp(violation.start_ms)),
            match violation.end_ms {
                Some(end) => Cell::Time(format_timestamp(end)),
                None => Cell::Text(self.open_at_end("open")),
            },
            Cell::Num(percent(&violation.worst_share)),
            Cell::Status(
                if violation.end_ms.is_some() {
                    "ended"
                } else {
                    "OPEN"
                }
                .to_owned(),
            ),
        ]
    }
}

/// The hosts counted at the end per location verdict, and each inconsistent host's reason.
fn location_section(page: &mut String, location: &LocationSection) {
    let hosts = &location.hosts;
    let _ = writeln!(
        page,
        "<h2>Location of the counted hosts</h2>\n<p>From {} landmark measurements: {} verified, \
         {} unverified (consistent, but the landmarks cannot place them within one country), {} \
         inconsistent, {} unmeasured.</p>",
        grouped(location.measurements),
        grouped(hosts.verified),
        grouped(hosts.unverified),
        grouped(hosts.inconsistent),
        grouped(hosts.unmeasured),
    );
    section(
        page,
        "Hosts whose location contradicts their declared site",
        &["Host", "Why"],
        location
            .inconsistent
            .iter()
            .map(|host| {
                vec![
                    Cell::Text(host.host_id.clone()),
                    Cell::Text(host.reason.clone()),
                ]
            })
            .collect(),
    );
}

fn head_table(page: &mut String, head: &SignedHead) {
    page.push_str("<table class=\"facts\">\n<tbody>\n");
    for (term, value) in [
        ("Tree size", grouped(head.tree_size)),
        ("Root", hex(&head.root)),
        (
            "Signed at (UTC)",
            format!(
                "<span class=\"time\">{}</span>",
                format_timestamp(head.timestamp_ms)
            ),
        ),
        ("Key id", hex(&head.key_id)),
        ("Signature", hex(&head.signature)),
    ] {
        let _ = writeln!(
            page,
            "<tr><th scope=\"row\">{term}</th><td>{value}</td></tr>"
        );
    }
    page.push_str("</tbody>\n</table>\n");
}

/// A titled table, or a line saying there is nothing.
fn section(page: &mut String, title: &str, headers: &[&str], rows: Vec<Vec<Cell>>) {
    let _ = writeln!(page, "<h2>{}</h2>", escape(title));
    if rows.is_empty() {
        page.push_str("<p class=\"none\">None.</p>\n");
    } else {
        table(page, headers, rows);
    }
}

/// A table; every cell is escaped but [`Cell::Markup`], which is built from escaped parts.
pub(super) fn table(page: &mut String, headers: &[&str], rows: Vec<Vec<Cell>>) {
    page.push_str("<table>\n<thead><tr>");
    for header in headers {
        let _ = write!(page, "<th>{}</th>", escape(header));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let (class, text) = match cell {
                Cell::Text(text) => ("", escape(&text)),
                Cell::Markup(markup) => ("", markup),
                Cell::Num(text) => (" class=\"num\"", escape(&text)),
                Cell::Time(text) => (" class=\"time\"", escape(&text)),
                Cell::Status(text) => {
                    let class = if text.chars().any(char::is_lowercase) {
                        if text.starts_with("not evaluated") || text.starts_with("no ") {
                            " class=\"na\""
                        } else {
                            ""
                        }
                    } else {
                        " class=\"bad\""
                    };
                    (class, escape(&text))
                }
            };
            let _ = write!(page, "<td{class}>{text}</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}
