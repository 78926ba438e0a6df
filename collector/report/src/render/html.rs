//! The report as one self-contained HTML page, laid out as a document to sign: the verdict in
//! words at the top, who and what it is about, the rules with a status column, the charts, the
//! tables, the log evidence and a sign-off block; print styles for A4. Inline CSS and SVG, no
//! script, no external resource. Every string that came from the input is escaped.

use std::fmt::Write as _;

use proto_accounting::{Rule, Tier};

use crate::month::format_timestamp;
use crate::report::{Report, State};

use super::chart::{Blank, BlankKind, StepChart};
use super::tables::{Cell, table};
use super::text::{
    country, escape, grouped, limit_number, month_name, percent, rule_name, state_headline,
};

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1000px;\
color:#1b1b1b;background:#fff;line-height:1.4;padding:0 1rem}\
.kind{margin:0;font-size:.85rem;text-transform:uppercase;letter-spacing:.08em;color:#444}\
h1{font-size:1.7rem;margin:.2rem 0 .6rem}\
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #999;break-after:avoid}\
h3{font-size:1rem;margin:1.2rem 0 .2rem;break-after:avoid}\
.verdict{border:3px solid #1b1b1b;padding:.7rem 1rem;margin:1rem 0;break-inside:avoid}\
.verdict .label{margin:0;font-size:.8rem;text-transform:uppercase;letter-spacing:.08em}\
.verdict .state{margin:.1rem 0 .3rem;font-size:2rem;font-weight:800;letter-spacing:.03em}\
.verdict p{margin:.2rem 0}\
.verdict.compliant{background:#e9f5ec}\
.verdict.not-compliant{border-style:double;border-width:7px;background:#fbeceb}\
.verdict.no-compute,.verdict.no-evidence{border-style:dashed;background:#f3f3f3}\
.partial{border:2px dashed #1b1b1b;background:#fff6dc;font-weight:600;padding:.5rem .8rem}\
code,.mono,.hex{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem}\
.hex{word-break:break-all;overflow-wrap:anywhere}\
pre.hex{white-space:pre-wrap;margin:.3rem 0}\
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0}\
th,td{border:1px solid #bbb;padding:.25rem .45rem;text-align:left;vertical-align:top}\
thead th{background:#eee}th[scope=row]{background:#f7f7f7;width:13rem;font-weight:600}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.time,.nowrap{white-space:nowrap}\
td.bad{font-weight:700;white-space:nowrap}td.na{font-style:italic}\
.note{font-size:.85rem;color:#444;margin:.2rem 0}\
.legend{font-size:.85rem;margin:.4rem 0}\
.legend span{display:inline-block;margin-right:1.2rem;white-space:nowrap}\
.swatch{display:inline-block;width:1.6em;height:.9em;vertical-align:middle;margin-right:.3em;\
border:1px solid #555}\
.chart{width:100%;height:auto;display:block;break-inside:avoid}\
figure{margin:0 0 1rem;break-inside:avoid}\
figcaption{font-weight:600;margin:.8rem 0 .2rem}\
.chart .grid{stroke:#ddd;stroke-width:1}.chart .day{stroke:#f0f0f0;stroke-width:1}\
.chart .tick{font-size:11px;fill:#444}.chart .limit{font-size:11px;fill:#1b1b1b;font-weight:600}\
.chart .threshold{stroke:#b3261e;stroke-width:1.5;stroke-dasharray:6 4}\
.chart .series{fill:none;stroke:#1f5fa8;stroke-width:2.2}\
.chart .blank-evidence,.swatch.blank-evidence{fill:#e4e4e4;background:#e4e4e4}\
.chart .blank-compute,.swatch.blank-compute{fill:#fff;stroke:#777;stroke-dasharray:2 2;background:#fff;\
border-style:dotted}\
.chart .blank-label{font-size:11px;fill:#333;font-style:italic}\
.chart .broken,.swatch.broken{fill:#1b1b1b;background:#1b1b1b}\
.swatch.threshold{border:0;border-top:2px dashed #b3261e;height:0}\
.swatch.series{border:0;border-top:3px solid #1f5fa8;height:0}\
.none{color:#555;font-style:italic}\
.sign-off{margin-top:2.5rem;break-inside:avoid}\
.sign-off table td{height:2.6rem;width:75%}\
footer{margin-top:2rem;font-size:.8rem;color:#444;border-top:1px solid #999;padding-top:.4rem}\
@media print{\
@page{size:A4;margin:14mm 12mm}\
body{max-width:none;margin:0;padding:0;font-size:9.5pt}\
.verdict,.partial,thead th,th[scope=row]{background:#fff !important}\
.charts,.details{break-before:page}\
thead{display:table-header-group}tr{break-inside:avoid}\
}";

/// What a rendering adds that the signed report cannot hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HtmlOptions {
    /// When the page was made, Unix milliseconds (the caller's clock): shown as "Generated".
    /// `None` leaves it out, so that the same report always gives the same page.
    pub generated_at_ms: Option<i64>,
}

impl Report {
    /// The whole report as one HTML page; the same report always gives the same bytes.
    pub fn to_html(&self) -> String {
        self.to_html_with(&HtmlOptions::default())
    }

    /// The whole report as one HTML page, with what `options` add.
    pub fn to_html_with(&self, options: &HtmlOptions) -> String {
        let mut page = String::new();
        let title = self.title();
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            escape(&title)
        );
        self.header(&mut page, &title);
        self.verdict_box(&mut page);
        self.facts(&mut page, options);
        self.rules_at_end(&mut page);
        self.charts(&mut page);
        page.push_str("<section class=\"details\" id=\"details\">\n");
        self.tables(&mut page);
        self.log_evidence(&mut page);
        page.push_str("</section>\n");
        self.sign_off(&mut page);
        page.push_str("</body>\n</html>\n");
        page
    }

    /// "Compliance report 2026-11", with the organisation and the partial mark.
    fn title(&self) -> String {
        let who = self
            .organisation
            .as_deref()
            .map(|name| format!("{name}: "))
            .unwrap_or_default();
        if self.partial {
            format!(
                "{who}Compliance report {} (partial, as of {})",
                self.month,
                format_timestamp(self.as_of_ms)
            )
        } else {
            format!("{who}Compliance report {}", self.month)
        }
    }

    fn header(&self, page: &mut String, title: &str) {
        let _ = writeln!(
            page,
            "<header>\n<p class=\"kind\">Compute distribution under the UVEU conditions \
             &middot; {}</p>\n<h1>{}</h1>\n</header>",
            escape(&month_name(self.month)),
            escape(title)
        );
        if self.partial {
            let _ = writeln!(
                page,
                "<p class=\"partial\">PARTIAL: {} is not over. This report speaks only of the time up to <span class=\"time\">{}</span>; a report made later says more.</p>",
                self.month,
                escape(&format_timestamp(self.as_of_ms))
            );
        }
    }

    /// The verdict: its state in large words (and a border style per state), the sentence,
    /// and the state at the end of the period.
    fn verdict_box(&self, page: &mut String) {
        let state = self.verdict.state;
        let class = state.as_str().replace('_', "-");
        let _ = write!(
            page,
            "<section class=\"verdict {class}\" aria-label=\"Verdict\">\n\
             <p class=\"label\">Verdict for {}{}</p>\n<p class=\"state\">{}</p>\n<p>{}</p>\n",
            escape(&month_name(self.month)),
            if self.partial {
                " so far (partial)"
            } else {
                ""
            },
            state_headline(state),
            escape(&self.verdict_words())
        );
        let at_end = self.verdict.at_end;
        let broken: Vec<String> = self
            .end_of_month
            .violations
            .iter()
            .map(|breach| match breach.country {
                Some(code) if breach.rule != Rule::HomeMinShare => {
                    format!(
                        "{} ({})",
                        rule_name(breach.rule, &self.limits),
                        country(code)
                    )
                }
                _ => rule_name(breach.rule, &self.limits),
            })
            .collect();
        let end = if broken.is_empty() {
            String::new()
        } else {
            format!(": {} broken", broken.join("; "))
        };
        let _ = writeln!(
            page,
            "<p>At the end of the period (<span class=\"time\">{}</span>): <strong>{}</strong>{}.</p>\n</section>",
            escape(&format_timestamp(self.as_of_ms)),
            state_headline(at_end),
            escape(&end)
        );
    }

    /// Who and what the report is about, and how to check it.
    fn facts(&self, page: &mut String, options: &HtmlOptions) {
        page.push_str("<h2>About this report</h2>\n<table class=\"facts\">\n<tbody>\n");
        let mut row = |term: &str, value: String| {
            let _ = writeln!(
                page,
                "<tr><th scope=\"row\">{term}</th><td>{value}</td></tr>"
            );
        };
        row(
            "Organisation",
            match &self.organisation {
                Some(name) => escape(name),
                None => "<span class=\"none\">not named (the collector's <code>[report] organisation</code> is not set)</span>".to_owned(),
            },
        );
        row(
            "Period",
            format!(
                "{}: <span class=\"time\">{}</span> to <span class=\"time\">{}</span> (UTC, end excluded)",
                escape(&month_name(self.month)),
                format_timestamp(self.period_start_ms),
                format_timestamp(self.period_end_ms)
            ),
        );
        row(
            "Covered up to",
            if self.partial {
                format!(
                    "<span class=\"time\">{}</span> <strong>(partial: the month is not over; nothing after this instant is claimed)</strong>",
                    format_timestamp(self.as_of_ms)
                )
            } else {
                format!(
                    "<span class=\"time\">{}</span> (the whole month)",
                    format_timestamp(self.as_of_ms)
                )
            },
        );
        row(
            "Evidence",
            match self.verdict.evidence_from_ms {
                Some(from) if from > self.period_start_ms => format!(
                    "from <span class=\"time\">{}</span>; none before, so nothing is claimed for the time before it",
                    format_timestamp(from)
                ),
                Some(_) => "from before the period's start".to_owned(),
                None => "none in the period".to_owned(),
            },
        );
        if let Some(at) = options.generated_at_ms {
            row(
                "Generated",
                format!("<span class=\"time\">{}</span>", format_timestamp(at)),
            );
        }
        if let Some(end) = &self.log.end {
            row(
                "Evidence sealed",
                format!(
                    "by the log's tree head of {} entries signed at <span class=\"time\">{}</span>",
                    grouped(end.tree_size),
                    format_timestamp(end.timestamp_ms)
                ),
            );
        }
        row(
            "Policy",
            format!("{} ({})", escape(&self.policy_id), self.limits_words()),
        );
        row("Policy digest", hex(&self.policy_digest));
        row("Catalogue digest", hex(&self.catalogue_digest));
        row(
            "Collector log key",
            format!(
                "{} <span class=\"note\">(key id; it signed report.json and the log's heads)</span>",
                hex(&self.collector)
            ),
        );
        if let Some(origin) = self.checkpoint_origin() {
            row("Log origin", format!("<code>{}</code>", escape(origin)));
        }
        row("Report format", escape(&self.format));
        page.push_str("</tbody>\n</table>\n");
        page.push_str(
            "<p class=\"note\">The signed document is report.json; this page is rendered from it. \
             Check it offline with <code>veuctl verify EVIDENCE --log-key log.pub --report report.json</code>.</p>\n",
        );
    }

    /// The policy's limits in one line.
    fn limits_words(&self) -> String {
        let limits = &self.limits;
        let mut words = vec![format!(
            "Tier 1 at least {} %",
            limit_number(&limits.tier1_min_share)
        )];
        if let Some(home) = &limits.home {
            words.push(format!(
                "{} at least {} %",
                home.country,
                limit_number(&home.min_share)
            ));
        }
        words.push(format!(
            "any Tier-2 country at most {} %",
            limit_number(&limits.tier2_country_max_share)
        ));
        if limits.tier3_prohibited {
            words.push("none in Tier 3".to_owned());
        }
        escape(&words.join(", "))
    }

    /// The first line of the end head's checkpoint: the log's name.
    fn checkpoint_origin(&self) -> Option<&str> {
        self.log
            .checkpoint
            .as_deref()
            .and_then(|text| text.lines().next())
            .filter(|line| !line.is_empty())
    }

    /// Each rule at the end of the period, with its status.
    fn rules_at_end(&self, page: &mut String) {
        let end = &self.end_of_month;
        let evaluated = matches!(self.verdict.at_end, State::Compliant | State::NotCompliant);
        let status = |rule: Rule| {
            if !evaluated {
                Cell::Status("not evaluated".to_owned())
            } else if end.violations.iter().any(|breach| breach.rule == rule) {
                Cell::Status("VIOLATION".to_owned())
            } else {
                Cell::Status("ok".to_owned())
            }
        };
        let mut rows = vec![vec![
            Cell::Text(if self.limits.tier1_requires_location {
                "Tier-1 share (location-verified compute in Tier-1 countries)".to_owned()
            } else {
                "Tier-1 share (all Tier-1 countries)".to_owned()
            }),
            Cell::Num(percent(&end.tier1_share)),
            Cell::Text(format!(
                "at least {} %",
                limit_number(&self.limits.tier1_min_share)
            )),
            status(Rule::Tier1MinShare),
        ]];
        if let (Some(home), Some(share)) = (&self.limits.home, &end.home_share) {
            rows.push(vec![
                Cell::Text(format!("Home share ({})", country(home.country))),
                Cell::Num(percent(share)),
                Cell::Text(format!("at least {} %", limit_number(&home.min_share))),
                status(Rule::HomeMinShare),
            ]);
        }
        let largest = end
            .countries
            .iter()
            .filter(|line| line.tier == Tier::Two)
            .max_by(|a, b| a.tpp.cmp(&b.tpp).then(b.country.cmp(&a.country)));
        rows.push(vec![
            Cell::Text(match largest {
                Some(line) => format!("Largest Tier-2 country ({})", country(line.country)),
                None => "Largest Tier-2 country (none)".to_owned(),
            }),
            Cell::Num(percent(largest.map_or("0.000", |line| line.share.as_str()))),
            Cell::Text(format!(
                "at most {} % each",
                limit_number(&self.limits.tier2_country_max_share)
            )),
            status(Rule::Tier2CountryMaxShare),
        ]);
        if self.limits.tier3_prohibited {
            let tier3: u64 = end
                .countries
                .iter()
                .filter(|line| line.tier == Tier::Three)
                .map(|line| line.tpp)
                .sum();
            rows.push(vec![
                Cell::Text("Compute in Tier 3".to_owned()),
                Cell::Num(format!("{} TPP", grouped(tier3))),
                Cell::Text("none allowed".to_owned()),
                status(Rule::Tier3Prohibited),
            ]);
        }
        let _ = writeln!(
            page,
            "<h2>Rules at the end of the period</h2>\n<p>Total counted compute {} TPP{}.</p>",
            grouped(end.total_tpp),
            if evaluated {
                ""
            } else {
                ": no rule can be evaluated"
            }
        );
        table(page, &["Rule", "Share", "Limit", "Status"], rows);
    }

    fn charts(&self, page: &mut String) {
        page.push_str(
            "<section class=\"charts\" id=\"charts\">\n<h2>Shares over the period</h2>\n",
        );
        if self.series.tier1.is_empty() {
            page.push_str(
                "<p class=\"none\">No evidence in the period: nothing to draw.</p>\n</section>\n",
            );
            return;
        }
        page.push_str(
            "<p class=\"legend\"><span><i class=\"swatch series\"></i>share</span>\
             <span><i class=\"swatch threshold\"></i>limit</span>\
             <span><i class=\"swatch broken\"></i>bar above: the rule broken</span>\
             <span><i class=\"swatch blank-evidence\"></i>no evidence yet</span>\
             <span><i class=\"swatch blank-compute\"></i>nothing counted (no share)</span></p>\n",
        );
        let blanks = self.blanks();
        let spans = |rule: Rule, country: Option<&str>| -> Vec<(i64, i64)> {
            self.violations
                .iter()
                .filter(|v| {
                    v.rule == rule
                        && country.is_none_or(|code| v.country.is_some_and(|c| c.as_str() == code))
                })
                .map(|v| (v.start_ms, v.end_ms.unwrap_or(self.as_of_ms)))
                .collect()
        };
        let mut figure =
            |title: String, points, threshold: &str, full_scale, broken: Vec<(i64, i64)>| {
                let svg = StepChart {
                    title: &title,
                    points,
                    threshold,
                    start_ms: self.period_start_ms,
                    end_ms: self.as_of_ms,
                    full_scale,
                    blanks: &blanks,
                    broken: &broken,
                }
                .to_svg();
                let _ = writeln!(
                    page,
                    "<figure>\n<figcaption>{}</figcaption>\n{svg}\n</figure>",
                    escape(&title)
                );
            };
        figure(
            format!(
                "Tier-1 share (minimum {} %)",
                limit_number(&self.limits.tier1_min_share)
            ),
            &self.series.tier1,
            &self.limits.tier1_min_share,
            true,
            spans(Rule::Tier1MinShare, None),
        );
        if let Some(home) = &self.limits.home {
            figure(
                format!(
                    "Share in {} (home minimum {} %)",
                    country(home.country),
                    limit_number(&home.min_share)
                ),
                &self.series.home,
                &home.min_share,
                true,
                spans(Rule::HomeMinShare, None),
            );
        }
        for (code, points) in &self.series.tier2 {
            let name = proto_accounting::CountryCode::parse(code)
                .map(country)
                .unwrap_or_else(|_| code.clone());
            figure(
                format!(
                    "Share in {name} (Tier 2, maximum {} %)",
                    limit_number(&self.limits.tier2_country_max_share)
                ),
                points,
                &self.limits.tier2_country_max_share,
                false,
                spans(Rule::Tier2CountryMaxShare, Some(code)),
            );
        }
        page.push_str("</section>\n");
    }

    /// Where no share is defined: before the first evidence, and while nothing is counted.
    fn blanks(&self) -> Vec<Blank> {
        let mut blanks = Vec::new();
        let first = self.verdict.evidence_from_ms.unwrap_or(self.as_of_ms);
        if first > self.period_start_ms {
            blanks.push(Blank {
                from_ms: self.period_start_ms,
                to_ms: first,
                kind: BlankKind::NoEvidence,
            });
        }
        blanks.extend(self.series.no_compute.iter().map(|span| Blank {
            from_ms: span.from_ms,
            to_ms: span.to_ms,
            kind: BlankKind::NoCompute,
        }));
        blanks
    }

    fn sign_off(&self, page: &mut String) {
        let _ = writeln!(
            page,
            "<section class=\"sign-off\">\n<h2>Review</h2>\n<p>I have reviewed this report for {} ({}).</p>\n\
             <table><tbody>\n<tr><th scope=\"row\">Name</th><td></td></tr>\n\
             <tr><th scope=\"row\">Role</th><td></td></tr>\n\
             <tr><th scope=\"row\">Date</th><td></td></tr>\n\
             <tr><th scope=\"row\">Signature</th><td></td></tr>\n</tbody></table>\n</section>\n\
             <footer>{} &middot; report.json ({}) signed by the collector log key <span class=\"hex\">{}</span> &middot; every decision exact on integer TPP</footer>",
            escape(self.organisation.as_deref().unwrap_or("the organisation")),
            escape(&month_name(self.month)),
            escape(&self.title()),
            escape(&self.format),
            escape(&self.collector)
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
}

/// Long hex (digests, key ids, roots, signatures) that breaks anywhere instead of overflowing.
pub(super) fn hex(text: &str) -> String {
    format!("<span class=\"hex\">{}</span>", escape(text))
}
