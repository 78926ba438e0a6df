//! `veuctl verify`: an evidence bundle (and a monthly report) checked offline with nothing but
//! the collector's log public key.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use collector_bundle::{Bundle, Outcome, ReportCheck, Requirements, signature_from_text};
use proto_accounting::Verdict;
use serde_json::json;

use crate::number::{counted, grouped};
use crate::table::escape;
use crate::time::{parse_instant, rfc3339};
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
    /// attestations; the bundle must cover its month up to the report's as-of instant.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The report's detached signature (default: report.sig beside the report, when present).
    #[arg(long, value_name = "FILE")]
    report_sig: Option<PathBuf>,
    /// The bundle must prove the log complete from this instant (RFC 3339, a date, or Unix
    /// ms). Bundles carry the log from its first leaf, so this fails only with --to before it.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// The bundle must prove the log complete up to this instant: its end head must have
    /// been signed at or after it. FAIL (not_covered) when it was signed earlier.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// A head of this log you saw earlier: a checkpoint (saved from the collector's
    /// `/checkpoint`, or an earlier bundle's checkpoint.txt) or the JSON of `veuctl log head
    /// --format json`. The bundle's log must extend it. Repeatable.
    #[arg(long = "known-head", value_name = "FILE")]
    known_heads: Vec<PathBuf>,
    /// The policy file you accept: the bundle must have been evaluated under exactly this
    /// file (its SHA-256 is compared). Without --policy or --policy-digest the bundle's own
    /// policy is used and reported as NOT pinned.
    #[arg(long, value_name = "FILE", conflicts_with = "policy_digest")]
    policy: Option<PathBuf>,
    /// The policy digest you accept, `sha256:<hex>` (as `veuctl policy check` prints it).
    #[arg(long, value_name = "DIGEST")]
    policy_digest: Option<String>,
    /// The accelerator catalogue file you accept (its SHA-256 is compared).
    #[arg(long, value_name = "FILE", conflicts_with = "catalogue_digest")]
    catalogue: Option<PathBuf>,
    /// The catalogue digest you accept, `sha256:<hex>`.
    #[arg(long, value_name = "DIGEST")]
    catalogue_digest: Option<String>,
    /// A witness you trust: its cosignature key as `veu-witness keygen` printed it
    /// (`name+id+key`), or a file holding it. Repeatable.
    #[arg(long = "witness-key", value_name = "KEY_OR_FILE")]
    witness_keys: Vec<String>,
    /// How many of the --witness-key witnesses must have cosigned the bundle's end head
    /// (default: 1 when any is given). A witness cosigns only a tree that extends the one it
    /// saw before, so a collector showing you a different history than the one it showed
    /// the witnesses fails here.
    #[arg(long, value_name = "N")]
    min_cosignatures: Option<usize>,
    /// The root GPU hardware reports must chain to (a PEM file; repeatable). Default: NVIDIA's
    /// Device Identity CA, built in, so a report counts as hardware evidence here only when
    /// NVIDIA's silicon signed it. Give a test device CA's root only to check test evidence.
    #[arg(long = "gpu-root", value_name = "PEM_FILE")]
    gpu_roots: Vec<PathBuf>,
    /// The round-trip-time landmarks whose measurements count here (a registry TOML file of
    /// `[[landmark]]` entries: id, latitude, longitude, public_key). Default: the bundle's
    /// landmarks.toml, the collector's own; give the landmarks you run or trust to judge
    /// location by them alone.
    #[arg(long, value_name = "FILE")]
    landmarks: Option<PathBuf>,
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
    let requires = requirements(args)?;
    let outcome = collector_bundle::verify(
        &bundle,
        &log_key,
        &requires,
        report.as_deref().map(|json| ReportCheck {
            json,
            signature: signature.as_ref(),
        }),
    );
    let verdict = outcome.evaluation.as_ref().map(|e| e.verdict());
    match args.format {
        Format::Json => {
            let rules = outcome.rules.as_ref();
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
                "hardware_tpp": outcome.hardware.total(),
                "gpu_roots": if requires.gpu_roots.is_some() { "given" } else { "nvidia" },
                "location": location_json(&outcome),
                "compliant_at_end": verdict.map(|v| v == Verdict::Compliant),
                "verdict_at_end": verdict.map(Verdict::as_str),
                "covered": outcome.coverage.map(|c| json!({
                    "tree_size": c.tree_size,
                    "first_leaf_unix_ms": c.first_leaf_ms,
                    "to_unix_ms": c.to_ms,
                    "to": rfc3339(c.to_ms),
                })),
                "policy": rules.map(|r| json!({
                    "id": r.policy_id,
                    "version": r.policy_version,
                    "digest": r.policy_digest,
                    "pinned": r.policy_pinned,
                    "shipped": r.policy_shipped,
                })),
                "catalogue": rules.map(|r| json!({
                    "digest": r.catalogue_digest,
                    "pinned": r.catalogue_pinned,
                    "builtin": r.catalogue_builtin,
                })),
                "known_heads_checked": requires.known_heads.len(),
                "checkpoint_origin": outcome.checkpoint_origin,
                "cosigned_by": outcome.cosigners.iter().map(|c| json!({"witness": c.witness, "timestamp": c.timestamp})).collect::<Vec<_>>(),
                "min_cosignatures": requires.min_cosignatures,
                "report_checked": report.is_some(),
                "report_signature_checked": signature.is_some(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Table => table(
            args,
            &outcome,
            &requires,
            report.is_some(),
            signature.is_some(),
        ),
    }
    Ok(if outcome.passed() { 0 } else { 1 })
}

/// What the auditor asked for on the command line, with pinned files read and hashed.
fn requirements(args: &VerifyArgs) -> Result<Requirements, Failure> {
    let instant = |flag: &str, text: &Option<String>| -> Result<Option<i64>, Failure> {
        text.as_deref()
            .map(|t| parse_instant(t).map_err(|e| Failure::bad_input(anyhow!("--{flag} {t}: {e}"))))
            .transpose()
    };
    let digest_of = |path: &PathBuf| -> Result<String, Failure> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(Failure::bad_input)?;
        Ok(proto_accounting::Digest::of(&bytes).to_string())
    };
    let log_key = crate::transparency::pinned_key(&args.log_key)?;
    let mut known_heads = Vec::new();
    for path in &args.known_heads {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(Failure::bad_input)?;
        known_heads.extend(
            collector_bundle::read_known_heads(&text, &log_key, &path.display().to_string())
                .map_err(|e| Failure::bad_input(anyhow!("--known-head {e}")))?,
        );
    }
    let mut witnesses = Vec::new();
    for given in &args.witness_keys {
        let text = match std::fs::read_to_string(given) {
            Ok(text) => text,
            Err(_) => given.clone(),
        };
        let key = proto_note::VerifierKey::parse(text.trim())
            .map_err(|e| Failure::bad_input(anyhow!("--witness-key {given}: {e}")))?;
        if key.signature_type() != proto_note::SignatureType::CosignatureV1 {
            return Err(Failure::bad_input(anyhow!(
                "--witness-key {given}: not a witness's cosignature key (type 0x04)"
            )));
        }
        witnesses.push(key);
    }
    let min_cosignatures = args
        .min_cosignatures
        .unwrap_or(usize::from(!witnesses.is_empty()));
    if min_cosignatures > witnesses.len() {
        return Err(Failure::bad_input(anyhow!(
            "--min-cosignatures {min_cosignatures} needs at least as many --witness-key (given {})",
            witnesses.len()
        )));
    }
    let gpu_roots = if args.gpu_roots.is_empty() {
        None
    } else {
        let mut pem = Vec::new();
        for path in &args.gpu_roots {
            pem.extend(
                std::fs::read(path)
                    .with_context(|| format!("--gpu-root: cannot read {}", path.display()))
                    .map_err(Failure::bad_input)?,
            );
            pem.push(b'\n');
        }
        Some(
            proto_gpu_evidence::Trust::from_pem_roots(&pem)
                .map_err(|e| Failure::bad_input(anyhow!("--gpu-root: {e}")))?,
        )
    };
    let landmarks =
        match &args.landmarks {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--landmarks: cannot read {}", path.display()))
                    .map_err(Failure::bad_input)?;
                Some(proto_location::Landmarks::from_toml(&text).map_err(|e| {
                    Failure::bad_input(anyhow!("--landmarks {}: {e}", path.display()))
                })?)
            }
        };
    Ok(Requirements {
        landmarks,
        gpu_roots,
        witnesses,
        min_cosignatures,
        from_ms: instant("from", &args.from)?,
        to_ms: instant("to", &args.to)?,
        policy_digest: match &args.policy {
            Some(path) => Some(digest_of(path)?),
            None => args.policy_digest.clone(),
        },
        catalogue_digest: match &args.catalogue {
            Some(path) => Some(digest_of(path)?),
            None => args.catalogue_digest.clone(),
        },
        known_heads,
    })
}

fn table(
    args: &VerifyArgs,
    outcome: &Outcome,
    requires: &Requirements,
    report: bool,
    signature: bool,
) {
    println!(
        "{}: {}, {} from {} on {}",
        args.bundle.display(),
        counted(outcome.leaves as u64, "leaf", "leaves"),
        counted(outcome.attestations as u64, "attestation", "attestations"),
        counted(outcome.keys as u64, "key", "keys"),
        counted(outcome.hosts as u64, "host", "hosts")
    );
    if let Some(coverage) = &outcome.coverage {
        println!(
            "Covers    the log from its first leaf{} to its head of {}, signed {}",
            coverage
                .first_leaf_ms
                .map(|ms| format!(" ({})", rfc3339(ms)))
                .unwrap_or_default(),
            counted(coverage.tree_size, "leaf", "leaves"),
            rfc3339(coverage.to_ms)
        );
    }
    if let Some(rules) = &outcome.rules {
        println!(
            "Policy    {} v{} {} ({})",
            escape(&rules.policy_id),
            rules.policy_version,
            escape(&rules.policy_digest),
            match (rules.policy_pinned, rules.policy_shipped) {
                (true, _) => "pinned".to_owned(),
                (false, Some(file)) => format!("NOT pinned; the shipped {file}"),
                (false, None) => "NOT pinned: the operator's own; pass --policy".to_owned(),
            }
        );
        println!(
            "Catalogue {} ({})",
            escape(&rules.catalogue_digest),
            match (rules.catalogue_pinned, rules.catalogue_builtin) {
                (true, _) => "pinned",
                (false, true) => "NOT pinned; this veuctl's built-in one",
                (false, false) => "NOT pinned: the operator's own; pass --catalogue",
            }
        );
    }
    if let Some(origin) = &outcome.checkpoint_origin {
        println!(
            "Witnessed {}: {}",
            escape(origin),
            if outcome.cosigners.is_empty() {
                "no pinned witness cosigned the end head".to_owned()
            } else {
                outcome
                    .cosigners
                    .iter()
                    .map(|c| {
                        format!(
                            "{} at {}",
                            escape(&c.witness),
                            rfc3339(
                                i64::try_from(c.timestamp.saturating_mul(1000)).unwrap_or(i64::MAX)
                            )
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    if !requires.known_heads.is_empty() {
        println!(
            "Known     {} head(s) you hold checked against the bundle's log",
            requires.known_heads.len()
        );
    }
    if let Some(evaluation) = &outcome.evaluation {
        println!(
            "Recomputed distribution at the bundle's end: {} TPP, {}",
            grouped(outcome.distribution.total()),
            evaluation.verdict().headline()
        );
        println!(
            "Hardware  {} TPP of it held GPU reports re-verified here to {}",
            grouped(outcome.hardware.total()),
            if requires.gpu_roots.is_some() {
                "the --gpu-root roots"
            } else {
                "NVIDIA's Device Identity CA"
            }
        );
        if outcome.landmarks_from == "none" {
            println!(
                "Location  not judged: the bundle names no landmark (give --landmarks to judge its {} measurement(s) by yours)",
                outcome.measurements
            );
        } else if let Some(location) = &outcome.location {
            let verified = location.verified.total();
            let total = outcome.distribution.total();
            println!(
                "Location  {} TPP of it ({:.1} %) on location-verified hosts, recomputed from {} logged measurement(s) with {}",
                grouped(verified),
                if total == 0 {
                    0.0
                } else {
                    100.0 * verified as f64 / total as f64
                },
                outcome.measurements,
                if outcome.landmarks_from == "pinned" {
                    "the --landmarks registry"
                } else {
                    "the bundle's landmarks.toml"
                }
            );
            for host in &outcome.located_hosts {
                if host.location.verdict == proto_location::Verdict::Inconsistent {
                    println!(
                        "  LOCATION INCONSISTENT: host {}: {}",
                        escape(&host.host),
                        escape(&host.location.explain())
                    );
                }
            }
        }
    }
    if report {
        println!(
            "Report checked against the evidence{}",
            if signature {
                ", signature checked"
            } else {
                " (no report.sig)"
            }
        );
    }
    for note in &outcome.notes {
        println!("note: {}", escape(note));
    }
    if outcome.passed() {
        println!("PASS");
    } else {
        println!("FAIL");
        for failure in &outcome.failures {
            println!("  {}: {}", failure.code, escape(&failure.detail));
        }
        for (code, more) in &outcome.suppressed {
            println!("  {code}: {more} more");
        }
    }
}

/// The location part of the JSON answer: shares and each counting host's verdict.
fn location_json(outcome: &Outcome) -> serde_json::Value {
    let Some(location) = &outcome.location else {
        return serde_json::Value::Null;
    };
    json!({
        "landmarks": outcome.landmarks_from,
        "measurements": outcome.measurements,
        "verified_tpp": location.verified.total(),
        "countries": location.verified.countries().map(|(country, tpp)| json!({
            "country": country.to_string(),
            "verified_tpp": tpp,
        })).collect::<Vec<_>>(),
        "hosts": outcome.located_hosts.iter().map(|h| json!({
            "host": h.host,
            "tpp": h.tpp,
            "verdict": h.location.verdict.as_str(),
            "landmarks": h.location.disks.iter().map(|d| json!({
                "landmark": d.landmark,
                "rtt_us": d.rtt_us,
                "radius_km": d.radius_km,
            })).collect::<Vec<_>>(),
            "within": h.location.within.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "excluding_site": h.location.excluding_site,
        })).collect::<Vec<_>>(),
    })
}
