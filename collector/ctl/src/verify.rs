//! `veuctl verify`: an evidence bundle (and a monthly report) checked offline with nothing but
//! the collector's log public key.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use collector_bundle::{Bundle, ReportCheck, signature_from_text};
use proto_accounting::Verdict;
use serde_json::json;

use crate::number::grouped;
use crate::{Failure, Format};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle directory (`veuctl evidence export --out`).
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// The collector's log public key, pinned out of band: 64 hex digits, or a file holding
    /// them (the collector writes it to <state_dir>/log.pub).
    #[arg(long, value_name = "HEX_OR_FILE", env = "VEU_LOG_KEY")]
    log_key: String,
    /// A monthly report (report.json) whose verdicts are recomputed from the bundle's
    /// attestations; the bundle must cover its month.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The report's detached signature (default: report.sig beside the report, when present).
    #[arg(long, value_name = "FILE")]
    report_sig: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: &VerifyArgs) -> Result<u8, Failure> {
    let log_key = crate::transparency::pinned_key(&args.log_key)?;
    let bundle = Bundle::read(&args.bundle).map_err(Failure::bad_input)?;
    let report = match &args.report {
        None => None,
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read {}", path.display()))
                .map_err(Failure::bad_input)?,
        ),
    };
    let signature_path = args.report_sig.clone().or_else(|| {
        args.report
            .as_ref()
            .map(|r| r.with_file_name("report.sig"))
            .filter(|p| p.exists())
    });
    let signature = match &signature_path {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))
                .map_err(Failure::bad_input)?;
            Some(
                signature_from_text(&text)
                    .map_err(|e| Failure::bad_input(anyhow!("{}: {e}", path.display())))?,
            )
        }
    };
    let outcome = collector_bundle::verify(
        &bundle,
        &log_key,
        report.as_deref().map(|json| ReportCheck {
            json,
            signature: signature.as_ref(),
        }),
    );
    let verdict = outcome.evaluation.as_ref().map(|e| e.verdict());
    match args.format {
        Format::Json => {
            let value = json!({
                "result": if outcome.passed() { "PASS" } else { "FAIL" },
                "failures": outcome.failures.iter().map(|f| json!({"code": f.code, "detail": f.detail})).collect::<Vec<_>>(),
                "more_failures": outcome.suppressed,
                "notes": outcome.notes,
                "leaves": outcome.leaves,
                "attestations": outcome.attestations,
                "keys": outcome.keys,
                "hosts": outcome.hosts,
                "total_tpp": outcome.distribution.total(),
                "compliant_at_end": verdict.map(|v| v == Verdict::Compliant),
                "verdict_at_end": verdict.map(Verdict::as_str),
                "report_checked": report.is_some(),
                "report_signature_checked": signature.is_some(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Table => {
            println!(
                "{}: {} leaves, {} attestations from {} keys on {} hosts",
                args.bundle.display(),
                outcome.leaves,
                outcome.attestations,
                outcome.keys,
                outcome.hosts
            );
            if let Some(verdict) = verdict {
                println!(
                    "Recomputed distribution at the bundle's end: {} TPP, {}",
                    grouped(outcome.distribution.total()),
                    verdict.headline()
                );
            }
            if report.is_some() {
                println!(
                    "Report checked against the evidence{}",
                    if signature.is_some() {
                        ", signature checked"
                    } else {
                        " (no report.sig)"
                    }
                );
            }
            for note in &outcome.notes {
                println!("note: {note}");
            }
            if outcome.passed() {
                println!("PASS");
            } else {
                println!("FAIL");
                for failure in &outcome.failures {
                    println!("  {}: {}", failure.code, failure.detail);
                }
                for (code, more) in &outcome.suppressed {
                    println!("  {code}: {more} more");
                }
            }
        }
    }
    Ok(if outcome.passed() { 0 } else { 1 })
}
