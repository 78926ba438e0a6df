//! `veuctl evidence export`: everything an offline verifier needs for a time range, written as
//! a bundle directory.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::anyhow;
use collector_bundle::{
    Bundle, CHECKPOINT, Consistency, FORMAT, Head, LANDMARKS, Leaf, Manifest, SITES, to_hex,
};
use collector_client::{Audit, EvidenceItem, ExportSummary};

use crate::Failure;
use crate::number::{counted, grouped};
use crate::remote::{CollectorArgs, block_on};
use crate::table::escape;
use crate::time::{parse_instant, rfc3339};

#[derive(Debug, clap::Args)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    command: EvidenceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EvidenceCommand {
    /// Export the evidence of a time range into a bundle directory (auditor certificate).
    ///
    /// The bundle holds every log leaf between the newest signed tree head before --from and
    /// the first one at or after --to (the collector signs one if there is none yet), each
    /// with its inclusion proof; each host's newest attestation before the range and every
    /// enrolment, revocation and decommissioning before it, with theirs; both heads and the
    /// consistency proof between them; and the policy and catalogue the collector applies.
    /// `veuctl verify BUNDLE --log-key KEY` checks it offline.
    ///
    /// Example: veuctl evidence export --from 2026-11-01 --to 2026-12-01 --out nov-2026
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// Start of the range of receipt times: RFC 3339 UTC (2026-11-01 or
    /// 2026-11-01T00:00:00Z) or Unix milliseconds.
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the range (exclusive), in the same forms.
    #[arg(long, value_name = "TIME")]
    to: String,
    /// The bundle directory to write (created; existing bundle files in it are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: &EvidenceArgs) -> Result<u8, Failure> {
    match &args.command {
        EvidenceCommand::Export(args) => export(args),
    }
}

fn export(args: &ExportArgs) -> Result<u8, Failure> {
    let from_ms = parse_instant(&args.from)
        .map_err(|e| Failure::bad_input(anyhow!("--from {}: {e}", args.from)))?;
    let to_ms = parse_instant(&args.to)
        .map_err(|e| Failure::bad_input(anyhow!("--to {}: {e}", args.to)))?;
    if from_ms >= to_ms {
        return Err(Failure::bad_input(anyhow!(
            "--from must be before --to (the range is [from, to))"
        )));
    }
    let bundle = block_on(async {
        let mut stream = Audit::new(args.collector.connect("auditor").await?)
            .export_evidence(from_ms, to_ms)
            .await?;
        let mut builder = Builder::new(from_ms, to_ms);
        while let Some(item) = stream.next().await? {
            builder
                .take(item)
                .map_err(|error| Failure { status: 1, error })?;
        }
        builder
            .finish()
            .map_err(|error| Failure { status: 1, error })
    })?;
    bundle.write(&args.out).map_err(|e| Failure {
        status: 1,
        error: e.into(),
    })?;
    println!(
        "wrote {}: {} between tree heads {} and {}, log key {}",
        args.out.display(),
        counted(bundle.leaves.len() as u64, "leaf", "leaves"),
        grouped(bundle.manifest.start_tree_size),
        grouped(bundle.manifest.end_tree_size),
        escape(&bundle.manifest.log_key_id)
    );
    if bundle.manifest.to_ms < to_ms {
        println!(
            "covers receipt times up to {} only: the collector's newest tree head was signed then, and nothing proves the log complete after it",
            rfc3339(bundle.manifest.to_ms)
        );
    }
    println!(
        "verify it offline: veuctl verify {} --log-key <the collector's log.pub>",
        args.out.display()
    );
    Ok(0)
}

/// Assembles the streamed items, reporting progress on a terminal.
struct Builder {
    from_ms: i64,
    to_ms: i64,
    summary: Option<ExportSummary>,
    log_key_id: Option<String>,
    heads: Vec<Head>,
    consistency: Vec<Consistency>,
    leaves: Vec<Leaf>,
    policy: Option<String>,
    landmarks: Option<String>,
    sites: Option<String>,
    catalogue: Option<String>,
    checkpoint: Option<String>,
    progress: bool,
}

impl Builder {
    fn new(from_ms: i64, to_ms: i64) -> Self {
        Self {
            from_ms,
            to_ms,
            summary: None,
            log_key_id: None,
            heads: Vec::new(),
            consistency: Vec::new(),
            leaves: Vec::new(),
            policy: None,
            landmarks: None,
            sites: None,
            catalogue: None,
            checkpoint: None,
            progress: std::io::stderr().is_terminal(),
        }
    }

    fn take(&mut self, item: EvidenceItem) -> anyhow::Result<()> {
        match item {
            EvidenceItem::Summary(summary) => {
                eprintln!(
                    "exporting {} (tree heads {} to {})",
                    counted(summary.leaves, "leaf", "leaves"),
                    grouped(summary.start_tree_size),
                    grouped(summary.end_tree_size)
                );
                self.summary = Some(summary);
            }
            EvidenceItem::TreeHead(head) => {
                let envelope = head
                    .signature
                    .ok_or_else(|| anyhow!("tree head {} has no signature", head.tree_size))?
                    .map_err(|e| anyhow!("tree head {}: {e}", head.tree_size))?;
                let key = proto_seal::PublicKey::from_slice(&head.log_public_key)
                    .map_err(|e| anyhow!("tree head {}: {e}", head.tree_size))?;
                self.log_key_id = Some(to_hex(key.key_id().0.as_bytes()));
                self.heads.push(Head {
                    tree_size: head.tree_size,
                    root: to_hex(&head.root_hash),
                    timestamp_ms: head.timestamp_unix_ms,
                    envelope: to_hex(&proto_seal::encode_envelope(&envelope)),
                });
            }
            EvidenceItem::Consistency(proof) => self.consistency.push(Consistency {
                first_tree_size: proof.first_tree_size,
                second_tree_size: proof.second_tree_size,
                proof: proof.proof.iter().map(|h| to_hex(h)).collect(),
            }),
            EvidenceItem::File { name, content } => {
                let text =
                    String::from_utf8(content).map_err(|_| anyhow!("{name} is not UTF-8"))?;
                match name.as_str() {
                    "policy.toml" => self.policy = Some(text),
                    "catalogue.toml" => self.catalogue = Some(text),
                    CHECKPOINT => self.checkpoint = Some(text),
                    LANDMARKS => self.landmarks = Some(text),
                    SITES => self.sites = Some(text),
                    other => return Err(anyhow!("unexpected file {other:?} in the export")),
                }
            }
            EvidenceItem::Leaf(leaf) => {
                self.leaves.push(Leaf {
                    log_index: leaf.log_index,
                    entry: to_hex(&leaf.entry),
                    envelope: (!leaf.envelope.is_empty()).then(|| to_hex(&leaf.envelope)),
                    tree_size: leaf.tree_size,
                    path: leaf.audit_path.iter().map(|h| to_hex(h)).collect(),
                });
                let total = self.summary.as_ref().map_or(0, |s| s.leaves);
                if self.progress && self.leaves.len().is_multiple_of(1000) {
                    eprint!(
                        "\r  {} / {}",
                        grouped(self.leaves.len() as u64),
                        counted(total, "leaf", "leaves")
                    );
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<Bundle> {
        if self.progress && self.leaves.len() >= 1000 {
            eprintln!();
        }
        let summary = self
            .summary
            .ok_or_else(|| anyhow!("the collector sent no export summary"))?;
        // The bundle claims no more time than its end head proves complete: when the range
        // ends after the collector's newest head, it ends at that head.
        let end_head = self
            .heads
            .iter()
            .find(|h| h.tree_size == summary.end_tree_size)
            .ok_or_else(|| anyhow!("the collector sent no head of the range's end"))?;
        Ok(Bundle {
            manifest: Manifest {
                format: FORMAT.into(),
                from_ms: self.from_ms.min(end_head.timestamp_ms),
                to_ms: self.to_ms.min(end_head.timestamp_ms),
                start_tree_size: summary.start_tree_size,
                end_tree_size: summary.end_tree_size,
                leaves: self.leaves.len() as u64,
                log_key_id: self
                    .log_key_id
                    .ok_or_else(|| anyhow!("the collector sent no tree head"))?,
            },
            heads: self.heads,
            consistency: self.consistency,
            leaves: self.leaves,
            policy_toml: self
                .policy
                .ok_or_else(|| anyhow!("the collector sent no policy"))?,
            catalogue_toml: self
                .catalogue
                .ok_or_else(|| anyhow!("the collector sent no catalogue"))?,
            checkpoint: self.checkpoint,
            landmarks_toml: self.landmarks,
            sites_toml: self.sites,
        })
    }
}
