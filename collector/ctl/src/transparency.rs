//! `veuctl log head|inclusion|consistency`: checks of the collector's transparency log, done
//! here against a pinned log key, so that an auditor trusts the key and the mathematics, not
//! the collector's answers.

use std::io::Read as _;

use anyhow::anyhow;
use collector_bundle::live::{self, LiveProblem};
use collector_client::LogHead;
use proto_evidence::{LogEntry, TreeHead};
use proto_seal::PublicKey;
use serde_json::{Value, json};
use veu_daemon_kit::hex;

use crate::audit::print_json;
use crate::number::counted;
use crate::remote::{ReaderArgs, block_on};
use crate::table::escape;
use crate::time::rfc3339;
use crate::{Failure, Format};

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

/// The collector's log key, pinned by the auditor.
#[derive(Debug, Clone, clap::Args)]
struct PinArgs {
    /// The collector's log public key, obtained out of band (the collector writes it to
    /// <state_dir>/log.pub): 64 hex digits, a file holding them, or - for standard input.
    #[arg(long, value_name = "HEX_OR_FILE")]
    log_key: String,
}

#[derive(Debug, clap::Subcommand)]
enum LogCommand {
    /// Show the collector's signed tree head: how many leaves its log holds and their Merkle
    /// root, signed by its log key.
    ///
    /// Every attestation, enrolment, revocation and decommissioning the collector accepts is
    /// a leaf of an append-only RFC 6962 Merkle tree. A head signed by the log key commits
    /// the collector to the exact content of its first SIZE leaves: later inclusion and
    /// consistency proofs are checked against it. With --log-key the signature is verified
    /// (exit 1 when it does not verify); without it the head is shown with a warning, as
    /// anyone on the path could have made it. Keep the heads you check: an older head and a
    /// newer one are what `veuctl log consistency` compares.
    Head {
        #[command(flatten)]
        reader: ReaderArgs,
        /// The head signed over exactly N leaves (default: the latest head).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        size: Option<u64>,
        /// Ask the collector to sign a head over its whole log now (when it grew since the
        /// last head) and show that one.
        #[arg(long, conflicts_with = "size")]
        sign_now: bool,
        /// Verify the signature with this pinned log key (given as for `log inclusion`: hex,
        /// the collector's log.pub, or -).
        #[arg(long, value_name = "HEX_OR_FILE")]
        log_key: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Prove that leaf INDEX is in the log: its bytes, hashed as an RFC 6962 leaf, lead along
    /// the collector's audit path to the root of a head that the pinned log key signed.
    ///
    /// A pass means the collector cannot later deny or change that entry without the change
    /// showing in every later head (see `veuctl log consistency`). For an attestation, the
    /// SHA-256 of the stored envelope the collector returns must equal the one the leaf
    /// commits to, so the attestation shown is the one logged. Leaf indexes are in `veuctl
    /// audit history`. Exit status 1 on FAIL, with every reason printed.
    Inclusion {
        #[command(flatten)]
        reader: ReaderArgs,
        /// The leaf's index (0 is the first).
        #[arg(value_name = "INDEX")]
        index: u64,
        /// Prove it in the head of N leaves (default: the latest head).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        size: Option<u64>,
        #[command(flatten)]
        pin: PinArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Prove that the log only grew between two signed heads: the tree of OLD leaves is the
    /// first OLD leaves of the tree of NEW leaves, unchanged (RFC 6962 consistency).
    ///
    /// Both heads must verify with the pinned log key. A pass means nothing the collector had
    /// logged by the older head was removed or rewritten since; a collector that showed two
    /// auditors different histories cannot pass this for both. NEW defaults to the latest
    /// head. Exit status 1 on FAIL, with every reason printed.
    Consistency {
        #[command(flatten)]
        reader: ReaderArgs,
        /// Size of the older signed head.
        #[arg(value_name = "OLD", value_parser = clap::value_parser!(u64).range(1..))]
        old: u64,
        /// Size of the newer signed head (default: the latest head).
        #[arg(value_name = "NEW", value_parser = clap::value_parser!(u64).range(1..))]
        new: Option<u64>,
        #[command(flatten)]
        pin: PinArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

pub fn run(args: &LogArgs) -> Result<u8, Failure> {
    match &args.command {
        LogCommand::Head {
            reader,
            size,
            sign_now,
            log_key,
            format,
        } => {
            let pinned = log_key.as_deref().map(pinned_key).transpose()?;
            head(reader, *size, *sign_now, pinned.as_ref(), *format)
        }
        LogCommand::Inclusion {
            reader,
            index,
            size,
            pin,
            format,
        } => inclusion(reader, *index, *size, &pinned_key(&pin.log_key)?, *format),
        LogCommand::Consistency {
            reader,
            old,
            new,
            pin,
            format,
        } => consistency(reader, *old, *new, &pinned_key(&pin.log_key)?, *format),
    }
}

/// Reads `--log-key`: 64 hex digits, a file holding them, or `-` for standard input.
pub(crate) fn pinned_key(arg: &str) -> Result<PublicKey, Failure> {
    let text = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::bad_input(anyhow!("--log-key -: cannot read stdin: {e}")))?;
        text
    } else if collector_bundle::log_key_from_text(arg).is_ok() {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg).map_err(|e| {
            Failure::bad_input(anyhow!(
                "--log-key {arg:?} is neither 64 hex digits nor a readable file: {e}"
            ))
        })?
    };
    collector_bundle::log_key_from_text(&text)
        .map_err(|e| Failure::bad_input(anyhow!("--log-key {arg}: {e} (the collector's log.pub)")))
}

/// A head as checked, shown as veuctl shows heads.
#[derive(Debug)]
struct CheckedHead(live::CheckedHead);

impl CheckedHead {
    /// Checks `wire` with the bundle's live checks; every problem goes to `reasons`.
    fn check(
        wire: &LogHead,
        pinned: Option<&PublicKey>,
        what: &'static str,
        reasons: &mut Vec<LiveProblem>,
    ) -> Self {
        let presented = live::PresentedHead {
            tree_size: wire.tree_size,
            root: &wire.root_hash,
            timestamp_ms: wire.timestamp_unix_ms,
            signature: wire.signature.as_ref(),
            log_public_key: &wire.log_public_key,
        };
        Self(live::check_head(&presented, pinned, what, reasons))
    }

    fn signed(&self) -> &TreeHead {
        &self.0.signed
    }

    fn json(&self) -> Value {
        json!({
            "tree_size": self.0.signed.tree_size,
            "root": hex(&self.0.signed.root),
            "timestamp_unix_ms": self.0.signed.timestamp_ms,
            "time": rfc3339(self.0.signed.timestamp_ms),
            "key_id": self.0.key_id,
            "verified": self.0.verified,
            "envelope": self.0.envelope.as_deref().map(hex),
        })
    }

    fn lines(&self, label: &str) -> String {
        format!(
            "{label:<10}size {}, root {}\n{:<10}signed {} by log key {}\n",
            self.0.signed.tree_size,
            hex(&self.0.signed.root),
            "",
            rfc3339(self.0.signed.timestamp_ms),
            if self.0.key_id.is_empty() {
                "(none)"
            } else {
                &self.0.key_id
            }
        )
    }
}

fn head(
    reader: &ReaderArgs,
    size: Option<u64>,
    sign_now: bool,
    pinned: Option<&PublicKey>,
    format: Format,
) -> Result<u8, Failure> {
    let wire = block_on(async {
        Ok(reader
            .audit()
            .await?
            .log_head(size.unwrap_or(0), sign_now)
            .await?)
    })?;
    let mut reasons = Vec::new();
    let head = CheckedHead::check(&wire, pinned, "the head", &mut reasons);
    live::check_size(size, head.signed().tree_size, &mut reasons);
    let reasons = words(&reasons);
    if pinned.is_none() {
        eprintln!(
            "warning: this head was not verified against a pinned key; pass --log-key with the collector's log.pub, obtained out of band"
        );
    }
    let pass = reasons.is_empty();
    match format {
        Format::Json => {
            let mut value = head.json();
            if let Some(object) = value.as_object_mut() {
                object.insert("log_public_key".into(), hex(&wire.log_public_key).into());
                object.insert("result".into(), verdict(pass, pinned.is_some()).into());
                object.insert("reasons".into(), json!(reasons));
            }
            print_json(&value);
        }
        Format::Table => {
            print!(
                "Tree size {}\nRoot      {}\nSigned    {}\nLog key   {} (key id {})\n",
                head.signed().tree_size,
                hex(&head.signed().root),
                rfc3339(head.signed().timestamp_ms),
                hex(&wire.log_public_key),
                head.0.key_id
            );
            let summary = if pinned.is_some() {
                "the pinned log key signed this head"
            } else {
                "signature not checked (no --log-key)"
            };
            print_result(pass, pinned.is_some(), summary, &reasons);
        }
    }
    Ok(u8::from(!pass))
}

fn inclusion(
    reader: &ReaderArgs,
    index: u64,
    size: Option<u64>,
    pinned: &PublicKey,
    format: Format,
) -> Result<u8, Failure> {
    let (wire, proof) = block_on(async {
        let mut audit = reader.audit().await?;
        let wire = audit.log_head(size.unwrap_or(0), false).await?;
        // The proof is asked for in the head just fetched, so the two cannot drift apart.
        if index >= wire.tree_size {
            return Ok((wire, None));
        }
        let proof = audit.inclusion_proof(index, wire.tree_size).await?;
        Ok((wire, Some(proof)))
    })?;
    let mut reasons = Vec::new();
    let head = CheckedHead::check(&wire, Some(pinned), "the head", &mut reasons);
    live::check_size(size, head.signed().tree_size, &mut reasons);
    let leaf = match &proof {
        None => {
            reasons.push(LiveProblem::LeafPastHead {
                index,
                tree_size: head.signed().tree_size,
            });
            None
        }
        Some(proof) => {
            let sent = live::PresentedInclusion {
                log_index: proof.log_index,
                tree_size: proof.tree_size,
                audit_path: &proof.audit_path,
                entry: &proof.entry,
                envelope: &proof.envelope,
            };
            live::check_inclusion(index, head.signed(), &sent, &mut reasons)
                .map(|entry| describe_leaf(&entry, &proof.envelope))
        }
    };
    let reasons = words(&reasons);
    let pass = reasons.is_empty();
    match format {
        Format::Json => print_json(&json!({
            "result": verdict(pass, true),
            "reasons": reasons,
            "log_index": index,
            "head": head.json(),
            "leaf": leaf.as_ref().map(|l| &l.json),
        })),
        Format::Table => {
            print!("{}", head.lines("Head"));
            if let Some(leaf) = &leaf {
                println!("{:<10}{index}: {}", "Leaf", escape(&leaf.text));
            }
            print_result(
                pass,
                true,
                &format!(
                    "leaf {index} is in the log of {} whose head the pinned log key signed",
                    counted(head.signed().tree_size, "leaf", "leaves")
                ),
                &reasons,
            );
        }
    }
    Ok(u8::from(!pass))
}

/// What a leaf is, for people and for JSON.
struct LeafView {
    text: String,
    json: Value,
}

/// The leaf, described; for an attestation, from the `envelope` bytes the collector returned.
fn describe_leaf(entry: &LogEntry, envelope_bytes: &[u8]) -> LeafView {
    let at = rfc3339(entry.at_ms());
    let mut json = json!({"kind": entry.kind(), "at_unix_ms": entry.at_ms(), "at": at});
    let text = match entry {
        LogEntry::Attestation { envelope, .. } => {
            json["envelope_sha256"] = envelope.to_string().into();
            // Decoded for display: the leaf commits to these bytes, the agent's signature is
            // the collector's to check.
            let statement = proto_seal::decode_envelope(envelope_bytes)
                .ok()
                .and_then(|e| proto_seal::decode_payload_unverified(&e).ok());
            if let Some(p) = &statement {
                json["host_id"] = p.host_id.to_string().into();
                json["sequence"] = p.sequence.into();
            }
            match statement {
                Some(p) => format!(
                    "attestation of {} sequence {}, received {at}; envelope SHA-256 {envelope}",
                    p.host_id, p.sequence
                ),
                None => format!("attestation received {at}; envelope SHA-256 {envelope}"),
            }
        }
        LogEntry::KeyEnrolled {
            public_key,
            host_id,
            site_id,
            country,
            ..
        }
        | LogEntry::HostRebound {
            public_key,
            host_id,
            site_id,
            country,
            ..
        } => {
            let key_id = proto_evidence::KeyId::of_public_key(public_key);
            let verb = if matches!(entry, LogEntry::HostRebound { .. }) {
                "re-bound the host (earlier keys revoked)"
            } else {
                "enrolled"
            };
            json["key_id"] = key_id.to_string().into();
            json["host_id"] = host_id.as_str().into();
            json["site_id"] = site_id.as_str().into();
            json["country"] = country.as_str().into();
            format!("key {key_id} {verb} {at} for {host_id} at {site_id} ({country})")
        }
        LogEntry::KeyRevoked { key_id, .. } => {
            json["key_id"] = key_id.to_string().into();
            format!("key {key_id} revoked {at}")
        }
        LogEntry::HostDecommissioned { host_id, .. } => {
            json["host_id"] = host_id.as_str().into();
            format!("host {host_id} decommissioned {at}")
        }
        LogEntry::Measurement { measurement, .. } => {
            // Decoded for display: the landmark's signature is the verifier's to check.
            let statement = proto_evidence::SignedMeasurement::decode(measurement)
                .ok()
                .and_then(|s| proto_evidence::Measurement::decode(&s.statement).ok());
            match statement {
                Some(m) => {
                    json["host_id"] = m.host.as_str().into();
                    json["landmark"] = m.landmark.as_str().into();
                    json["min_rtt_us"] = m.min_rtt_us.into();
                    format!(
                        "landmark {} measured host {} at {} µs round trip, received {at}",
                        escape(&m.landmark),
                        escape(&m.host),
                        m.min_rtt_us
                    )
                }
                None => format!("measurement received {at} (its statement does not decode)"),
            }
        }
    };
    LeafView { text, json }
}

fn consistency(
    reader: &ReaderArgs,
    old: u64,
    new: Option<u64>,
    pinned: &PublicKey,
    format: Format,
) -> Result<u8, Failure> {
    let (old_wire, new_wire, proof) = block_on(async {
        let mut audit = reader.audit().await?;
        let mut head = async |size: u64| audit.log_head(size, false).await.map_err(Failure::from);
        let old_wire = head(old).await?;
        let new_wire = head(new.unwrap_or(0)).await?;
        if old_wire.tree_size > new_wire.tree_size {
            return Ok((old_wire, new_wire, None));
        }
        let proof = audit
            .consistency_proof(old_wire.tree_size, new_wire.tree_size)
            .await?;
        Ok((old_wire, new_wire, Some(proof)))
    })?;
    let mut reasons = Vec::new();
    let old_head = CheckedHead::check(&old_wire, Some(pinned), "the old head", &mut reasons);
    let new_head = CheckedHead::check(&new_wire, Some(pinned), "the new head", &mut reasons);
    let (o, n) = (old_head.signed(), new_head.signed());
    live::check_size(Some(old), o.tree_size, &mut reasons);
    live::check_size(new, n.tree_size, &mut reasons);
    let sent = proof.as_ref().map(|proof| live::PresentedConsistency {
        first_tree_size: proof.first_tree_size,
        second_tree_size: proof.second_tree_size,
        proof: &proof.proof,
    });
    live::check_consistency(o, n, sent.as_ref(), &mut reasons);
    let reasons = words(&reasons);
    let pass = reasons.is_empty();
    match format {
        Format::Json => print_json(&json!({
            "result": verdict(pass, true),
            "reasons": reasons,
            "old": old_head.json(),
            "new": new_head.json(),
        })),
        Format::Table => {
            print!("{}", old_head.lines("Old head"));
            print!("{}", new_head.lines("New head"));
            print_result(
                pass,
                true,
                &format!(
                    "the log of {} extends the log of {}, which it holds unchanged",
                    counted(n.tree_size, "leaf", "leaves"),
                    counted(o.tree_size, "leaf", "leaves")
                ),
                &reasons,
            );
        }
    }
    Ok(u8::from(!pass))
}

fn verdict(pass: bool, checked: bool) -> &'static str {
    match (pass, checked) {
        (false, _) => "FAIL",
        (true, true) => "PASS",
        (true, false) => "UNVERIFIED",
    }
}

fn print_result(pass: bool, checked: bool, summary: &str, reasons: &[String]) {
    if pass {
        println!("{:<10}{}: {summary}", "Result", verdict(pass, checked));
    } else {
        println!("{:<10}FAIL", "Result");
        for reason in reasons {
            println!("  - {}", escape(reason));
        }
    }
}

/// The problems found, in words.
fn words(problems: &[LiveProblem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}
