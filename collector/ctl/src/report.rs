//! `veuctl report`: the signed monthly compliance report, written as report.json (exactly as
//! the collector signed it), report.sig, report.csv and report.html.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use collector_bundle::signature_to_text;
use collector_client::Audit;
use collector_report::{HtmlOptions, Report};
use proto_evidence::{KeyId, Sha256};
use proto_seal::DetachedSignature;

use crate::Failure;
use crate::number::counted;
use crate::remote::{CollectorArgs, block_on};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// The month, UTC: YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    month: String,
    /// Directory to write report.json, report.sig, report.csv and report.html into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The collector's log public key (hex or a file): check the report's signature with it
    /// before writing anything.
    #[arg(long, value_name = "HEX_OR_FILE", env = "VEU_LOG_KEY")]
    log_key: Option<String>,
}

pub fn run(args: &ReportArgs) -> Result<u8, Failure> {
    let month: collector_report::Month = args
        .month
        .parse()
        .map_err(|e| Failure::bad_input(anyhow!("--month {:?}: {e}", args.month)))?;
    let log_key = args
        .log_key
        .as_deref()
        .map(crate::transparency::pinned_key)
        .transpose()?;
    eprintln!(
        "requesting the report of {month} from {}",
        args.collector.collector
    );
    let started = std::time::Instant::now();
    let response = block_on(async {
        Ok(Audit::new(args.collector.connect("auditor").await?)
            .report(&month.to_string())
            .await?)
    })?;
    eprintln!(
        "received {} in {:.1} s; rendering",
        counted(response.report_json.len() as u64, "byte", "bytes"),
        started.elapsed().as_secs_f64()
    );
    let failed = |error: anyhow::Error| Failure { status: 1, error };
    let signature = DetachedSignature {
        key_id: KeyId(
            Sha256::from_slice(&response.key_id)
                .ok_or_else(|| failed(anyhow!("the collector sent a malformed key id")))?,
        ),
        signature: response.signature,
    };
    if let Some(key) = &log_key {
        proto_seal::check_report(&response.report_json, &signature, key)
            .map_err(|e| failed(anyhow!("the report's signature does not verify: {e}")))?;
    }
    let report: Report = serde_json::from_slice(&response.report_json).map_err(|e| {
        failed(anyhow!(
            "the collector sent a report this veuctl cannot read: {e}"
        ))
    })?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))
        .map_err(failed)?;
    let files: [(&str, Vec<u8>); 4] = [
        ("report.json", response.report_json.clone()),
        ("report.sig", signature_to_text(&signature).into_bytes()),
        ("report.csv", report.to_csv().into_bytes()),
        (
            "report.html",
            // The page says when it was made; report.json, which is signed, cannot.
            report
                .to_html_with(&HtmlOptions {
                    generated_at_ms: Some(crate::time::now_ms()),
                })
                .into_bytes(),
        ),
    ];
    for (name, bytes) in files {
        let path = args.out.join(name);
        std::fs::write(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(failed)?;
    }
    println!("{}", report.verdict_words());
    println!(
        "wrote report.json, report.sig, report.csv and report.html to {}{}",
        args.out.display(),
        if log_key.is_some() {
            " (signature verified)"
        } else {
            ""
        }
    );
    Ok(0)
}
