//! `veuctl plan`: evaluate a fleet CSV against the policy.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;

use anyhow::anyhow;
use proto_accounting::evaluation::CountryShare;
use proto_accounting::percent::format_share;
use proto_accounting::{
    Accelerator, Action, Change, CountryCode, Distribution, Evaluation, Fleet, Percent, Place,
    Policy, Rule, Tier, Verdict, evaluate, remediation,
};
use serde::Serialize;

use crate::inputs::{RulesArgs, read_bytes};
use crate::number::{counted, grouped, grouped_f64};
use crate::table::Columns;
use crate::{Failure, Format};

/// Bad lines of a fleet file printed at most; the others are only counted.
const MAX_LINE_ERRORS: usize = 20;

/// Default accelerator for headroom in whole units.
const DEFAULT_UNIT: &str = "H100-SXM5-80GB";

/// GPUs in one node, for "eight-GPU nodes" in the table.
const GPUS_PER_NODE: u64 = 8;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The fleet: CSV with columns country, count, accelerator or tpp, and optionally site;
    /// `-` reads it from standard input. On a large file, progress goes to standard error
    /// when that is a terminal.
    #[arg(value_name = "FLEET.csv")]
    fleet: PathBuf,
    #[command(flatten)]
    rules: RulesArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Accelerator (catalogue id or alias) in which headroom and remediation are also given in
    /// whole units.
    #[arg(long, value_name = "ACCELERATOR", default_value = DEFAULT_UNIT)]
    unit: String,
    /// Exit with status 1 unless the fleet is compliant: a broken rule, or no counted compute
    /// (for scripts and CI).
    #[arg(long)]
    check: bool,
}

pub fn run(args: &PlanArgs) -> Result<u8, Failure> {
    let (catalogue, policy) = args.rules.load()?;
    let unit = catalogue.by_id(&args.unit).cloned().ok_or_else(|| {
        let hint = catalogue.suggestions(&args.unit).join(", ");
        Failure::bad_input(anyhow!(
            "--unit {:?} is not in the catalogue{}",
            args.unit,
            if hint.is_empty() {
                String::new()
            } else {
                format!("; did you mean {hint}?")
            }
        ))
    })?;
    let stdin = args.fleet.as_os_str() == "-";
    let bytes = if stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|error| Failure::bad_input(anyhow!("cannot read standard input: {error}")))?;
        bytes
    } else {
        read_bytes(&args.fleet)?
    };
    let path = if stdin {
        "<stdin>".to_owned()
    } else {
        args.fleet.display().to_string()
    };
    let mut progress = Progress::new(bytes.len());
    let parsed = Fleet::parse_with(&bytes, &catalogue, &policy, MAX_LINE_ERRORS, &mut |done| {
        progress.show(done)
    });
    progress.finish();
    let fleet = parsed.map_err(|error| {
        for line in &error.errors {
            eprintln!("{path}:{}: {}", line.line, line.message);
        }
        if error.more > 0 {
            eprintln!("{path}: … and {} more", grouped(error.more));
        }
        let total = error.total();
        Failure::bad_input(anyhow!(
            "{path} has {} bad {}; nothing was evaluated",
            grouped(total),
            if total == 1 { "line" } else { "lines" }
        ))
    })?;
    let evaluation = evaluate(&policy, fleet.distribution());
    let source = FleetLine {
        file: path,
        rows: fleet.rows.len(),
    };
    let report = PlanReport::new(
        source,
        fleet.distribution(),
        &catalogue.digest().to_string(),
        &policy,
        &evaluation,
        &unit,
    );
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&report)
                .map_err(|error| Failure::bad_input(anyhow!(error)))?;
            println!("{text}");
        }
        Format::Table => print!("{}", report.table()),
    }
    Ok(if args.check && !report.compliant() {
        1
    } else {
        0
    })
}

/// Parsing progress on standard error, shown only when that is a terminal.
struct Progress {
    total: usize,
    shown: bool,
    enabled: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            shown: false,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, done: u64) {
        if self.enabled {
            let percent = done.saturating_mul(100) / (self.total.max(1) as u64);
            eprint!("\r  reading the fleet: {percent} %");
            self.shown = true;
        }
    }

    fn finish(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

/// The JSON contract of SPEC section 5, plus context a reader needs.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    /// True only for the `compliant` verdict.
    compliant: bool,
    /// `compliant`, `not_compliant` or `no_compute`.
    #[serde(serialize_with = "verdict_name")]
    verdict: Verdict,
    total_tpp: u64,
    total_h100e: f64,
    tier1_tpp: u64,
    /// Percent (0 to 100) of total TPP in Tier-1 countries.
    tier1_share: f64,
    /// TPP in Tier-1 countries that counts toward no minimum because its hosts are not
    /// location-verified there (only under a policy that requires it; absent when 0).
    #[serde(skip_serializing_if = "is_zero")]
    tier1_unlocated_tpp: u64,
    home_country: String,
    home_tpp: u64,
    /// Percent of total TPP in the headquarters country.
    home_share: f64,
    /// Whether the policy's home rule applies to this headquarters.
    home_rule: bool,
    countries: Vec<CountryLine>,
    violations: Vec<ViolationLine>,
    headroom: Vec<HeadroomLine>,
    /// When a rule is broken: for each violation, each least change that restores it alone.
    remediation: Vec<RemedyLine>,
    /// When a rule is broken: the least changes that restore every rule together (`null` when
    /// none is broken, or no single place to add exists).
    remediation_all_at_once: Option<Vec<ChangeLine>>,
    new_tier2_country_headroom_tpp: u64,
    new_tier2_country_headroom_h100e: f64,
    new_tier2_country_headroom_units: u64,
    unit: UnitLine,
    policy: PolicyLine,
    catalogue_digest: String,
    fleet: FleetLine,
    #[serde(skip)]
    rules: Vec<RuleLine>,
}

#[derive(Debug, Serialize)]
struct CountryLine {
    country: String,
    name: &'static str,
    tier: u8,
    tpp: u64,
    share: f64,
    h100e: f64,
    /// The percentage this country is held to, if any (Tier-2 maximum; Tier-3 none allowed).
    limit: Option<String>,
    status: &'static str,
}

#[derive(Debug, Serialize)]
struct ViolationLine {
    rule: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    share: f64,
    limit: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct HeadroomLine {
    country: String,
    tpp: u64,
    h100e: f64,
    /// Whole units of the chosen accelerator.
    units: u64,
}

#[derive(Debug, Serialize)]
struct RemedyLine {
    /// The broken rule this change restores.
    rule: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    #[serde(flatten)]
    change: ChangeLine,
    /// The broken rule in words, for the table.
    #[serde(skip)]
    broken: String,
}

#[derive(Debug, Serialize)]
struct ChangeLine {
    /// `remove` or `add`.
    action: &'static str,
    /// A country code, or `tier1`: any Tier-1 country.
    place: String,
    /// Exact TPP.
    tpp: u64,
    h100e: f64,
    /// Whole units of the chosen accelerator covering `tpp` (rounded up).
    units: u64,
    /// The change in words, without its amount: "remove from MY (Malaysia)".
    #[serde(skip)]
    words: String,
}

impl ChangeLine {
    fn new(change: &Change, policy: &Policy, evaluation: &Evaluation) -> Self {
        let place = match change.place {
            Place::Country(country) => format!("{country} ({})", country.name()),
            Place::AnyTier1 => "any Tier-1 country".to_owned(),
        };
        let all = match change.place {
            Place::Country(country) => evaluation
                .countries
                .iter()
                .any(|line| line.country == country && line.tpp == change.tpp),
            Place::AnyTier1 => false,
        };
        let words = match (change.action, all) {
            (Action::Remove, true) => format!("remove all from {place}"),
            (Action::Remove, false) => format!("remove from {place}"),
            (Action::Add, _) => format!("add in {place}"),
        };
        ChangeLine {
            action: change.action.as_str(),
            place: match change.place {
                Place::Country(country) => country.to_string(),
                Place::AnyTier1 => "tier1".to_owned(),
            },
            tpp: change.tpp,
            h100e: policy.h100e(change.tpp),
            units: change.units,
            words,
        }
    }
}

#[derive(Debug, Serialize)]
struct UnitLine {
    accelerator: String,
    tpp: u64,
}

#[derive(Debug, Serialize)]
struct PolicyLine {
    id: String,
    version: u32,
    effective: String,
    headquarters: String,
    digest: String,
}

/// Where the evaluated distribution came from.
#[derive(Debug, Serialize)]
pub struct FleetLine {
    /// A file, or a collector.
    pub file: String,
    /// Rows (or hosts).
    pub rows: usize,
}

#[derive(Debug)]
struct RuleLine {
    name: String,
    share: String,
    limit: String,
    ok: bool,
}

fn verdict_name<S: serde::Serializer>(verdict: &Verdict, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(verdict.as_str())
}

/// Percent of `part` in `total`, for display and JSON; 0 for an empty total.
fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        // Display only: the verdict was decided on integers.
        100.0 * part as f64 / total as f64
    }
}

impl PlanReport {
    /// The report on `distribution`, evaluated as `evaluation` under `policy`.
    pub fn new(
        source: FleetLine,
        distribution: &Distribution,
        catalogue_digest: &str,
        policy: &Policy,
        evaluation: &Evaluation,
        unit: &Accelerator,
    ) -> Self {
        let total = evaluation.total_tpp;
        let h100e = |tpp: u64| policy.h100e(tpp);
        let units = |tpp: u64| unit.units_within(tpp);
        let violated = |rule: Rule, country: Option<CountryCode>| {
            evaluation
                .violations
                .iter()
                .any(|v| v.rule == rule && v.country == country)
        };
        let countries = evaluation
            .countries
            .iter()
            .map(|line| {
                let (limit, broken) = match line.tier {
                    Tier::One => (None, false),
                    Tier::Two => (
                        Some(format!("<= {} %", policy.tier2_country_max_share)),
                        violated(Rule::Tier2CountryMaxShare, Some(line.country)),
                    ),
                    Tier::Three => (
                        policy.tier3_prohibited.then(|| "none allowed".to_owned()),
                        violated(Rule::Tier3Prohibited, Some(line.country)),
                    ),
                };
                CountryLine {
                    country: line.country.to_string(),
                    name: line.country.name(),
                    tier: line.tier.number(),
                    tpp: line.tpp,
                    share: share(line.tpp, total),
                    h100e: h100e(line.tpp),
                    limit,
                    status: if broken { "violation" } else { "ok" },
                }
            })
            .collect();
        let violations = evaluation
            .violations
            .iter()
            .map(|violation| violation_line(violation.rule, violation.country, evaluation, policy))
            .collect();
        let headroom = evaluation
            .countries
            .iter()
            .filter_map(|line: &CountryShare| {
                line.headroom.map(|tpp| HeadroomLine {
                    country: line.country.to_string(),
                    tpp,
                    h100e: h100e(tpp),
                    units: units(tpp),
                })
            })
            .collect();
        let remedies = remediation(policy, evaluation, unit);
        let hq = policy.headquarters;
        // What counts toward the home minimum (the location-verified part, when the policy
        // requires it).
        let home_tpp = evaluation
            .home
            .map_or_else(|| distribution.of(hq), |(_, tpp)| tpp);
        let new_headroom = evaluation.new_tier2_country_headroom;
        let verdict = evaluation.verdict();
        PlanReport {
            compliant: verdict == Verdict::Compliant,
            verdict,
            total_tpp: total,
            total_h100e: h100e(total),
            tier1_tpp: evaluation.tier1_tpp,
            tier1_share: share(evaluation.tier1_tpp, total),
            tier1_unlocated_tpp: evaluation.tier1_unlocated_tpp,
            home_country: hq.to_string(),
            home_tpp,
            home_share: share(home_tpp, total),
            home_rule: policy.home_rule().is_some(),
            countries,
            violations,
            headroom,
            remediation: remedies
                .remedies
                .iter()
                .map(|remedy| RemedyLine {
                    rule: remedy.violation.rule.as_str(),
                    country: remedy.violation.country.map(|c| c.to_string()),
                    change: ChangeLine::new(&remedy.change, policy, evaluation),
                    broken: broken_words(remedy.violation.rule, remedy.violation.country, policy),
                })
                .collect(),
            remediation_all_at_once: remedies.all_at_once.map(|plan| {
                plan.iter()
                    .map(|change| ChangeLine::new(change, policy, evaluation))
                    .collect()
            }),
            new_tier2_country_headroom_tpp: new_headroom,
            new_tier2_country_headroom_h100e: h100e(new_headroom),
            new_tier2_country_headroom_units: units(new_headroom),
            unit: UnitLine {
                accelerator: unit.id.clone(),
                tpp: unit.tpp,
            },
            policy: PolicyLine {
                id: policy.id.clone(),
                version: policy.version,
                effective: policy.effective.clone(),
                headquarters: hq.to_string(),
                digest: policy.digest().to_string(),
            },
            catalogue_digest: catalogue_digest.to_owned(),
            fleet: source,
            rules: rule_lines(policy, evaluation, home_tpp),
        }
    }

    /// Whether the fleet is compliant: counted compute and every rule holding.
    pub fn compliant(&self) -> bool {
        self.verdict == Verdict::Compliant
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!(
            "Fleet     {} ({}, {})",
            self.fleet.file,
            counted(self.fleet.rows as u64, "row", "rows"),
            counted(self.countries.len() as u64, "country", "countries")
        ));
        line(format!(
            "Policy    {} v{}, effective {}, headquarters {}, {}",
            self.policy.id,
            self.policy.version,
            self.policy.effective,
            self.policy.headquarters,
            short_digest(&self.policy.digest)
        ));
        line(format!(
            "Total     {} TPP = {} H100e",
            grouped(self.total_tpp),
            grouped_f64(self.total_h100e, 2)
        ));
        if self.tier1_unlocated_tpp > 0 {
            line(format!(
                "Location  the policy counts Tier-1 compute only where landmarks verify it: {} TPP \
                 declared in Tier-1 countries is not location-verified and counts toward no minimum",
                grouped(self.tier1_unlocated_tpp)
            ));
        }
        line(String::new());
        match self.verdict {
            Verdict::Compliant => line(format!(
                "Verdict   COMPLIANT: all {} rules hold",
                self.rules.len()
            )),
            Verdict::NoCompute => line(
                "Verdict   NO COMPUTE: no counted TPP, so no rule can be evaluated (never compliant)"
                    .to_owned(),
            ),
            Verdict::NotCompliant => {
                line(format!(
                    "Verdict   NOT COMPLIANT: {} violation(s)",
                    self.violations.len()
                ));
                for violation in &self.violations {
                    line(format!("  - {}", violation.message));
                }
            }
        }
        line(String::new());

        let mut rules = Columns::new(
            &["Rule", "Share", "Limit", "Status"],
            &[false, true, true, false],
        );
        for rule in &self.rules {
            let status = match (self.verdict, rule.ok) {
                (Verdict::NoCompute, _) => "not evaluated",
                (_, true) => "ok",
                (_, false) => "VIOLATION",
            };
            rules.row(vec![
                rule.name.clone(),
                rule.share.clone(),
                rule.limit.clone(),
                status.into(),
            ]);
        }
        out.push_str(&rules.render());
        out.push('\n');

        let mut countries = Columns::new(
            &[
                "Country", "", "Tier", "TPP", "H100e", "Share", "Limit", "Status",
            ],
            &[false, false, true, true, true, true, true, false],
        );
        for country in &self.countries {
            countries.row(vec![
                country.country.clone(),
                truncate(country.name, 24),
                country.tier.to_string(),
                grouped(country.tpp),
                grouped_f64(country.h100e, 2),
                format!("{} %", format_share(country.tpp, self.total_tpp, 3)),
                country.limit.clone().unwrap_or_default(),
                if country.status == "ok" {
                    "ok".into()
                } else {
                    "VIOLATION".into()
                },
            ]);
        }
        if self.countries.is_empty() {
            out.push_str("(the fleet is empty)\n");
        } else {
            out.push_str(&countries.render());
        }
        out.push('\n');

        if self.verdict == Verdict::NotCompliant {
            out.push_str(&self.remediation_table());
            out.push_str("\nHeadroom: none until every rule holds again.\n");
            return out;
        }
        out.push_str(&format!(
            "Headroom: the most TPP that can still be added in one Tier-2 country with every rule true;\nwhole units of {} ({} TPP each).\n",
            self.unit.accelerator,
            grouped(self.unit.tpp)
        ));
        if self.verdict == Verdict::NoCompute {
            out.push_str(
                "  none: nothing is counted, so compute added in Tier 2 alone would hold all of it.\n",
            );
            return out;
        }
        let mut describe = |label: &str, tpp: u64, h100e: f64, units: u64| {
            if tpp == u64::MAX {
                out.push_str(&format!("  {label}: unlimited under this policy\n"));
                return;
            }
            out.push_str(&format!(
                "  {label}: {} H100e more ({} TPP), {} x {}, {} eight-GPU nodes\n",
                grouped_f64(h100e, 2),
                grouped(tpp),
                grouped(units),
                self.unit.accelerator,
                grouped(units / GPUS_PER_NODE)
            ));
        };
        for headroom in &self.headroom {
            describe(
                &headroom.country,
                headroom.tpp,
                headroom.h100e,
                headroom.units,
            );
        }
        describe(
            "a new Tier-2 country",
            self.new_tier2_country_headroom_tpp,
            self.new_tier2_country_headroom_h100e,
            self.new_tier2_country_headroom_units,
        );
        out
    }
}

impl PlanReport {
    /// The least changes that restore each broken rule, then every rule at once.
    fn remediation_table(&self) -> String {
        let mut out = format!(
            "Remediation: the least change that restores each broken rule, everything else\n\
             unchanged (exact TPP; whole units of {}, {} TPP each, rounded up).\n\n",
            self.unit.accelerator,
            grouped(self.unit.tpp)
        );
        let mut table = Columns::new(
            &[
                "Broken rule",
                "Change",
                "TPP",
                "H100e",
                &format!("x {}", self.unit.accelerator),
            ],
            &[false, false, true, true, true],
        );
        let mut row = |rule: String, prefix: &str, change: &ChangeLine| {
            table.row(vec![
                rule,
                format!("{prefix}{}", change.words),
                grouped(change.tpp),
                grouped_f64(change.h100e, 2),
                grouped(change.units),
            ]);
        };
        let mut previous = None;
        for remedy in &self.remediation {
            let key = (remedy.rule, remedy.country.as_deref());
            if previous == Some(key) {
                row(String::new(), "or ", &remedy.change);
            } else {
                row(remedy.broken.clone(), "", &remedy.change);
            }
            previous = Some(key);
        }
        for (i, change) in self.remediation_all_at_once.iter().flatten().enumerate() {
            if i == 0 {
                row("Every rule at once".to_owned(), "", change);
            } else {
                row(String::new(), "then ", change);
            }
        }
        out.push_str(&table.render());
        if self.remediation_all_at_once.is_none() {
            out.push_str(
                "No single place restores every rule at once under this policy: combine the rows above.\n",
            );
        }
        out
    }
}

/// A broken rule in a few words: "MY above 7 %".
fn broken_words(rule: Rule, country: Option<CountryCode>, policy: &Policy) -> String {
    let country = country.map_or_else(String::new, |c| c.to_string());
    match rule {
        Rule::Tier1MinShare => format!("Tier-1 share below {} %", policy.tier1_min_share),
        Rule::HomeMinShare => format!(
            "Home share ({country}) below {} %",
            policy
                .home_min_share
                .map_or_else(String::new, |p| p.to_string())
        ),
        Rule::Tier2CountryMaxShare => {
            format!("{country} above {} %", policy.tier2_country_max_share)
        }
        Rule::Tier3Prohibited => format!("{country} in Tier 3 (none allowed)"),
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn rule_lines(policy: &Policy, evaluation: &Evaluation, home_tpp: u64) -> Vec<RuleLine> {
    let total = evaluation.total_tpp;
    let broken = |rule: Rule| evaluation.violations.iter().any(|v| v.rule == rule);
    let mut lines = vec![RuleLine {
        name: if policy.location.required_for_tier1 {
            "Tier-1 share (location-verified)".into()
        } else {
            "Tier-1 share".into()
        },
        share: format!("{} %", format_share(evaluation.tier1_tpp, total, 3)),
        limit: format!(">= {} %", policy.tier1_min_share),
        ok: !broken(Rule::Tier1MinShare),
    }];
    if let Some((country, min)) = policy.home_rule() {
        lines.push(RuleLine {
            name: if policy.location.required_for_tier1 {
                format!("Home share ({country}, location-verified)")
            } else {
                format!("Home share ({country})")
            },
            share: format!("{} %", format_share(home_tpp, total, 3)),
            limit: format!(">= {min} %"),
            ok: !broken(Rule::HomeMinShare),
        });
    }
    let largest_tier2 = evaluation
        .countries
        .iter()
        .filter(|line| line.tier == Tier::Two)
        .max_by_key(|line| line.tpp);
    lines.push(RuleLine {
        name: match largest_tier2 {
            Some(line) => format!("Largest Tier-2 country ({})", line.country),
            None => "Largest Tier-2 country".into(),
        },
        share: format!(
            "{} %",
            format_share(largest_tier2.map_or(0, |l| l.tpp), total, 3)
        ),
        limit: format!("<= {} %", policy.tier2_country_max_share),
        ok: !broken(Rule::Tier2CountryMaxShare),
    });
    if policy.tier3_prohibited {
        let tier3: u64 = evaluation
            .countries
            .iter()
            .filter(|line| line.tier == Tier::Three)
            .map(|line| line.tpp)
            .sum();
        lines.push(RuleLine {
            name: "Tier-3 compute".into(),
            share: format!("{} TPP", grouped(tier3)),
            limit: "none".into(),
            ok: !broken(Rule::Tier3Prohibited),
        });
    }
    lines
}

fn violation_line(
    rule: Rule,
    country: Option<CountryCode>,
    evaluation: &Evaluation,
    policy: &Policy,
) -> ViolationLine {
    let total = evaluation.total_tpp;
    let tpp_of = |code| {
        evaluation
            .countries
            .iter()
            .find(|line| Some(line.country) == code)
            .map_or(0, |line| line.tpp)
    };
    let (part, limit): (u64, Option<Percent>) = match rule {
        Rule::Tier1MinShare => (evaluation.tier1_tpp, Some(policy.tier1_min_share)),
        Rule::HomeMinShare => (
            evaluation
                .home
                .map_or_else(|| tpp_of(country), |(_, tpp)| tpp),
            policy.home_min_share,
        ),
        Rule::Tier2CountryMaxShare => (tpp_of(country), Some(policy.tier2_country_max_share)),
        Rule::Tier3Prohibited => (tpp_of(country), None),
    };
    let shown = format_share(part, total, 3);
    let limit_text = limit.map_or_else(|| "0 TPP".to_owned(), |p| format!("{p} %"));
    let name = |code: Option<CountryCode>| {
        code.map_or_else(String::new, |c| format!("{c} ({})", c.name()))
    };
    let message = match rule {
        Rule::Tier1MinShare => format!("Tier-1 share is {shown} %, below the {limit_text} minimum"),
        Rule::HomeMinShare => format!(
            "home share in {} is {shown} %, below the {limit_text} minimum",
            name(country)
        ),
        Rule::Tier2CountryMaxShare => format!(
            "{} holds {shown} %, above the {limit_text} maximum for one Tier-2 country",
            name(country)
        ),
        Rule::Tier3Prohibited => format!(
            "{} is Tier 3 and holds {} TPP; no compute is allowed there",
            name(country),
            grouped(part)
        ),
    };
    ViolationLine {
        rule: rule.as_str(),
        country: country.map(|c| c.to_string()),
        share: share(part, total),
        limit: limit_text,
        message,
    }
}

fn short_digest(digest: &str) -> String {
    digest.chars().take(7 + 16).collect::<String>() + "…"
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        text.chars().take(width - 1).collect::<String>() + "…"
    }
}
