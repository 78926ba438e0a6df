//! `veuctl audit distribution|hosts|history`: the read-only audit service, as an auditor (or
//! admin) sees it.

use anyhow::anyhow;
use collector_client::StoredAttestation;
use proto_accounting::Verdict;
use serde_json::{Value, json};

use crate::admin::hex;
use crate::distribution::{Standing, Views};
use crate::number::grouped;
use crate::remote::{ReaderArgs, block_on};
use crate::table::Columns;
use crate::time::{parse_instant, rfc3339};
use crate::{Failure, Format};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// The distribution as of an instant, replayed by the collector from its stored history:
    /// verdict, each country against its limit, headroom, the last-known and verified views
    /// and the hosts that were stale then.
    ///
    /// The collector replays every host's stored state changes up to the instant and
    /// evaluates them with its policy file, which veuctl applies here as well. What it stored
    /// is committed to by its transparency log: see `veuctl log`.
    ///
    /// Exit status: 0 when shown (with --check: only when compliant), 1 with --check when a
    /// rule is broken or nothing is counted (no compute) in the last-known view, or when the
    /// collector cannot answer.
    Distribution {
        #[command(flatten)]
        reader: ReaderArgs,
        /// The instant: RFC 3339 (2026-11-03T14:00:00Z) or Unix milliseconds. Default: now.
        #[arg(long, value_name = "TIME", value_parser = parse_instant)]
        at: Option<i64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Exit with status 1 unless the last-known distribution is compliant: a broken rule,
        /// or no counted compute.
        #[arg(long)]
        check: bool,
    },
    /// Every host the collector knows: site, country, TPP, devices, last sequence and
    /// attestation, and whether it is stale, its key revoked or the host decommissioned.
    Hosts {
        #[command(flatten)]
        reader: ReaderArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One host's stored attestations, oldest first: log index, sequence, when the collector
    /// received it, when the agent issued it, TPP and devices.
    ///
    /// The payloads are decoded for display, not verified (veuctl holds no agent key): the
    /// collector verified each before storing it, and `veuctl log inclusion INDEX` proves an
    /// entry is in the log its signed heads commit to.
    History {
        #[command(flatten)]
        reader: ReaderArgs,
        /// The host id.
        #[arg(value_name = "HOST")]
        host: String,
        /// Only attestations received at or after this instant (RFC 3339 or Unix ms).
        #[arg(long, value_name = "TIME", value_parser = parse_instant)]
        from: Option<i64>,
        /// Only attestations received before this instant (RFC 3339 or Unix ms).
        #[arg(long, value_name = "TIME", value_parser = parse_instant)]
        to: Option<i64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

pub fn run(args: &AuditArgs) -> Result<u8, Failure> {
    match &args.command {
        AuditCommand::Distribution {
            reader,
            at,
            format,
            check,
        } => distribution(reader, *at, *format, *check),
        AuditCommand::Hosts { reader, format } => hosts(reader, *format),
        AuditCommand::History {
            reader,
            host,
            from,
            to,
            format,
        } => history(reader, host, *from, *to, *format),
    }
}

fn distribution(
    reader: &ReaderArgs,
    at: Option<i64>,
    format: Format,
    check: bool,
) -> Result<u8, Failure> {
    // On the wire 0 means now, so the epoch itself cannot be asked for (nothing was stored then).
    if at == Some(0) {
        return Err(Failure::bad_input(anyhow!(
            "--at must be after 1970-01-01T00:00:00Z"
        )));
    }
    let answer = block_on(async { Ok(reader.audit().await?.distribution(at).await?) })?;
    let as_of = rfc3339(answer.as_of_unix_ms);
    let standing = Standing::evaluate(&Views {
        source: format!("{} as of {as_of}", reader.collector.collector),
        policy_toml: &answer.policy_toml,
        policy_digest: &answer.policy_digest,
        catalogue_digest: "",
        last_known: answer.last_known.as_ref(),
        verified: answer.verified.as_ref(),
        hosts: answer.hosts,
        stale_hosts: &answer.stale_hosts,
        agents: None,
    })?;
    match format {
        Format::Json => {
            let mut value = standing.json();
            value.insert("as_of_unix_ms".into(), answer.as_of_unix_ms.into());
            value.insert("as_of".into(), as_of.into());
            value.insert(
                "freshness_window_ms".into(),
                answer.freshness_window_ms.into(),
            );
            print_json(&Value::Object(value));
        }
        Format::Table => {
            print!("{}", standing.table());
            println!(
                "Replayed from the collector's stored history as of {as_of}; verified means attested within the {} s before it.",
                answer.freshness_window_ms / 1000
            );
        }
    }
    Ok(u8::from(check && standing.verdict() != Verdict::Compliant))
}

fn hosts(reader: &ReaderArgs, format: Format) -> Result<u8, Failure> {
    let hosts = block_on(async { Ok(reader.audit().await?.hosts().await?) })?;
    match format {
        Format::Json => {
            let list: Vec<Value> = hosts
                .iter()
                .map(|h| {
                    json!({
                        "host_id": h.host_id,
                        "site_id": h.site_id,
                        "country": h.country,
                        "key_id": hex(&h.key_id),
                        "tpp": h.tpp,
                        "devices": h.devices,
                        "last_sequence": h.last_sequence,
                        "last_attested_unix_ms": h.last_attested_unix_ms.unwrap_or(0),
                        "last_attested": rfc3339(h.last_attested_unix_ms.unwrap_or(0)),
                        "stale": h.stale,
                        "revoked": h.revoked,
                        "decommissioned_unix_ms": h.decommissioned_unix_ms,
                        "location": h.location,
                        "location_detail": h.location_detail,
                    })
                })
                .collect();
            print_json(&Value::Array(list));
        }
        Format::Table => {
            let mut table = Columns::new(
                &[
                    "Host",
                    "Site",
                    "Country",
                    "TPP",
                    "Devices",
                    "Last seq",
                    "Last attested",
                    "Location",
                    "Flags",
                ],
                &[false, false, false, true, true, true, false, false, false],
            );
            for h in &hosts {
                let mut flags = Vec::new();
                if h.stale {
                    flags.push("stale".to_owned());
                }
                if h.last_sequence == 0 && h.decommissioned_unix_ms.is_none() {
                    flags.push("awaiting its first attestation (counts nothing yet)".to_owned());
                }
                if h.revoked {
                    flags.push("revoked".to_owned());
                }
                if let Some(at) = h.decommissioned_unix_ms {
                    flags.push(format!("decommissioned {}", rfc3339(at)));
                }
                table.row(vec![
                    h.host_id.clone(),
                    h.site_id.clone(),
                    h.country.clone(),
                    grouped(h.tpp),
                    h.devices.to_string(),
                    h.last_sequence.to_string(),
                    h.last_attested_unix_ms
                        .map_or_else(|| "-".to_owned(), rfc3339),
                    match h.location.as_deref() {
                        None => "-".to_owned(),
                        Some("inconsistent") => format!(
                            "INCONSISTENT: {}",
                            h.location_detail.as_deref().unwrap_or_default()
                        ),
                        Some(verdict) => verdict.to_owned(),
                    },
                    if flags.is_empty() {
                        "-".to_owned()
                    } else {
                        flags.join(", ")
                    },
                ]);
            }
            print!("{}", table.render());
            println!("{} host(s)", hosts.len());
        }
    }
    Ok(0)
}

/// One stored attestation, its payload decoded for display.
struct Row {
    stored: StoredAttestation,
    payload: Result<proto_evidence::AttestationPayload, String>,
}

fn history(
    reader: &ReaderArgs,
    host: &str,
    from: Option<i64>,
    to: Option<i64>,
    format: Format,
) -> Result<u8, Failure> {
    // On the wire 0 means "no bound", so the epoch cannot end a range.
    if to == Some(0) {
        return Err(Failure::bad_input(anyhow!(
            "--to must be after 1970-01-01T00:00:00Z"
        )));
    }
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(Failure::bad_input(anyhow!(
            "--from {} is not before --to {}",
            rfc3339(from),
            rfc3339(to)
        )));
    }
    let stored = block_on(async { Ok(reader.audit().await?.host_history(host, from, to).await?) })?;
    let rows: Vec<Row> = stored
        .into_iter()
        .map(|stored| {
            let payload = stored
                .envelope
                .clone()
                .ok_or_else(|| "no envelope".to_owned())
                .and_then(|e| e.map_err(|e| e.to_string()))
                .and_then(|e| proto_seal::decode_payload_unverified(&e).map_err(|e| e.to_string()));
            Row { stored, payload }
        })
        .collect();
    match format {
        Format::Json => {
            let list: Vec<Value> = rows.iter().map(row_json).collect();
            print_json(&json!({"host_id": host, "attestations": list}));
        }
        Format::Table => {
            let mut table = Columns::new(
                &[
                    "Log index",
                    "Seq",
                    "Received",
                    "Issued",
                    "Delay",
                    "TPP stated",
                    "TPP counted",
                    "Devices",
                    "Source",
                ],
                &[true, true, false, false, true, true, true, true, false],
            );
            for row in &rows {
                let index = row.stored.log_index.to_string();
                let received = rfc3339(row.stored.received_unix_ms);
                table.row(match &row.payload {
                    Ok(p) => vec![
                        index,
                        p.sequence.to_string(),
                        received,
                        rfc3339(p.issued_at_unix_ms),
                        delay(row.stored.received_unix_ms - p.issued_at_unix_ms),
                        grouped(p.totals.tpp),
                        grouped(row.stored.counted_tpp),
                        format!("{} of {}", row.stored.counted_devices, p.totals.devices),
                        source(p).to_owned(),
                    ],
                    Err(error) => vec![
                        index,
                        "?".into(),
                        received,
                        "?".into(),
                        "?".into(),
                        "?".into(),
                        grouped(row.stored.counted_tpp),
                        "?".into(),
                        format!("undecodable: {error}"),
                    ],
                });
            }
            print!("{}", table.render());
            println!(
                "{} attestation(s) of {host}; payloads decoded for display, not verified here (`veuctl log inclusion INDEX` proves an entry is in the signed log).",
                rows.len()
            );
        }
    }
    Ok(0)
}

/// How long after its issue the collector received a statement: a late one (a backlog replayed
/// after an outage) counts from its receipt on, never back in time.
fn delay(ms: i64) -> String {
    match ms {
        ..=999 => "-".to_owned(),
        1_000..=59_999 => format!("{} s", ms / 1_000),
        60_000..=3_599_999 => format!("{} min late", ms / 60_000),
        _ => format!("{} h late", ms / 3_600_000),
    }
}

fn row_json(row: &Row) -> Value {
    let stored = &row.stored;
    let mut value = json!({
        "log_index": stored.log_index,
        "received_unix_ms": stored.received_unix_ms,
        "received": rfc3339(stored.received_unix_ms),
    });
    let fields = match &row.payload {
        Ok(p) => json!({
            "key_id": p.key_id.to_string(),
            "site_id": p.site_id.to_string(),
            "sequence": p.sequence,
            "previous_digest": p.previous_digest.to_string(),
            "issued_unix_ms": p.issued_at_unix_ms,
            "issued": rfc3339(p.issued_at_unix_ms),
            "tpp": p.totals.tpp,
            "devices": p.totals.devices,
            "counted_tpp": stored.counted_tpp,
            "counted_devices": stored.counted_devices,
            "delay_ms": stored.received_unix_ms.saturating_sub(p.issued_at_unix_ms),
            "unknown_devices": p.totals.unknown_devices,
            "faulty_devices": p.totals.faulty_devices,
            "source": source(p),
            "agent_version": p.agent_version,
            "driver_version": p.driver_version,
        }),
        Err(error) => json!({"undecodable": error}),
    };
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), fields) {
        object.extend(extra);
    }
    value
}

fn source(payload: &proto_evidence::AttestationPayload) -> &'static str {
    match payload.source {
        proto_evidence::EvidenceSource::Nvml => "nvml",
        proto_evidence::EvidenceSource::Simulated => "simulated",
    }
}

pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
