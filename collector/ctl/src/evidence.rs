//! `veuctl evidence export`: everything an offline verifier needs for a time range, written as
//! a bundle directory.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::anyhow;
use collector_bundle::{Assembly, AssemblyError, Bundle};
use collector_client::{Audit, EvidenceItem};

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
            builder.take(item).map_err(|error| Failure {
                status: 1,
                error: error.into(),
            })?;
        }
        builder.finish().map_err(|error| Failure {
            status: 1,
            error: error.into(),
        })
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

/// Streams the export's items into the bundle's assembly, reporting progress on a terminal.
struct Builder {
    assembly: Assembly,
    /// Leaves the summary announced, and leaves received.
    leaves: u64,
    received: usize,
    progress: bool,
}

impl Builder {
    fn new(from_ms: i64, to_ms: i64) -> Self {
        Self {
            assembly: Assembly::new(from_ms, to_ms),
            leaves: 0,
            received: 0,
            progress: std::io::stderr().is_terminal(),
        }
    }

    fn take(&mut self, item: EvidenceItem) -> Result<(), AssemblyError> {
        match item {
            EvidenceItem::Summary(summary) => {
                eprintln!(
                    "exporting {} (tree heads {} to {})",
                    counted(summary.leaves, "leaf", "leaves"),
                    grouped(summary.start_tree_size),
                    grouped(summary.end_tree_size)
                );
                self.leaves = summary.leaves;
                self.assembly
                    .range(summary.start_tree_size, summary.end_tree_size);
            }
            EvidenceItem::TreeHead(head) => self.assembly.head(
                head.tree_size,
                &head.root_hash,
                head.timestamp_unix_ms,
                head.signature.as_ref(),
                &head.log_public_key,
            )?,
            EvidenceItem::Consistency(proof) => self.assembly.consistency(
                proof.first_tree_size,
                proof.second_tree_size,
                &proof.proof,
            ),
            EvidenceItem::File { name, content } => self.assembly.file(&name, content)?,
            EvidenceItem::Leaf(leaf) => {
                self.received = self.assembly.leaf(
                    leaf.log_index,
                    &leaf.entry,
                    &leaf.envelope,
                    leaf.tree_size,
                    &leaf.audit_path,
                );
                if self.progress && self.received.is_multiple_of(1000) {
                    eprint!(
                        "\r  {} / {}",
                        grouped(self.received as u64),
                        counted(self.leaves, "leaf", "leaves")
                    );
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Bundle, AssemblyError> {
        if self.progress && self.received >= 1000 {
            eprintln!();
        }
        self.assembly.finish()
    }
}
