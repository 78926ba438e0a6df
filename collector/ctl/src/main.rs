//! veuctl: the operator's and auditor's command line.

mod admin;
mod audit;
mod catalogue;
mod confirm;
mod demo;
mod distribution;
mod evidence;
mod inputs;
mod number;
mod pipe;
mod plan;
mod policy;
mod remote;
mod report;
mod status;
mod table;
mod time;
mod transparency;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit status when an input (fleet, policy, catalogue, arguments) is bad.
const EXIT_BAD_INPUT: u8 = 2;

/// `--version`: the package version and the git commit built from (`unknown` without one).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VEU_COMMIT"), ")");

/// veuctl: plan, check and audit where an organisation's AI compute is.
///
/// Output to a pipe closed early (`veuctl … | head`) ends veuctl quietly with status 141, as a
/// shell reports for other tools SIGPIPE ends.
///
/// Compute is measured in TPP (total processing performance, per the export rules) and shown in
/// H100 equivalents. The compliance rules come from a policy file (default: the 2025 UVEU
/// policy with a US headquarters, shipped in deploy/policies/).
#[derive(Debug, Parser)]
#[command(name = "veuctl", version = VERSION, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline on this machine in about a minute: a collector, six agents in five
    /// countries on simulated GPUs, the live distribution, a Tier-2 breach caught, a signed
    /// monthly report and an evidence bundle verified offline. Needs the workspace built
    /// (`cargo build --workspace`); everything goes under --out.
    Demo(demo::DemoArgs),
    /// Evaluate a planned or actual fleet (CSV) against the policy: verdict, shares, headroom.
    ///
    /// The CSV has a header line naming its columns, in any order: `country` (ISO 3166-1
    /// alpha-2), `count`, and either `accelerator` (a catalogue id or alias, see `veuctl
    /// catalogue`) or `tpp` (TPP per unit), optionally `site`. Rows for the same country add
    /// up; lines starting with # are comments. A file with any bad line is not evaluated:
    /// every bad line is printed with its number and veuctl exits with status 2.
    ///
    /// Verdict: COMPLIANT (counted compute, every rule holds), NOT COMPLIANT (every broken
    /// rule listed) or NO COMPUTE (no counted TPP: no rule can be evaluated, never compliant).
    ///
    /// Exit status: 0 when evaluated (with --check: only when compliant), 1 with --check
    /// when a rule is broken or nothing is counted, 2 for bad input.
    ///
    /// Example: veuctl plan deploy/examples/tier2-breach.csv --unit B200
    Plan(plan::PlanArgs),
    /// List the accelerator catalogue: ids, aliases, TPP, ECCN and source.
    Catalogue(catalogue::CatalogueArgs),
    /// Validate a policy file, reporting every error with its key, and summarise it.
    Policy(policy::PolicyArgs),
    /// The collector's live distribution: verdict, each country against its limit, headroom,
    /// stale hosts, GPU conflicts and recent rejections (admin certificate).
    Status(status::StatusArgs),
    /// Issue a one-time enrollment token for a host at a site (admin certificate).
    EnrollToken(admin::EnrollTokenArgs),
    /// List, register or revoke enrolled agent keys (admin certificate).
    ///
    /// `revoke` and `add --rebind` cannot be undone: they ask for confirmation on a terminal,
    /// need --yes otherwise, and --dry-run shows the current state and changes nothing.
    Agents(admin::AgentsArgs),
    /// Remove a host from the distribution (it no longer counts anywhere; admin certificate).
    ///
    /// This cannot be undone: it asks for confirmation on a terminal, needs --yes otherwise,
    /// and --dry-run shows the host's current state and changes nothing.
    Decommission(admin::DecommissionArgs),
    /// Export evidence for offline verification (auditor certificate).
    Evidence(evidence::EvidenceArgs),
    /// Write the signed monthly compliance report: report.json, report.sig, report.csv and
    /// report.html (auditor certificate).
    ///
    /// report.json is exactly what the collector signed with its log key (byte-identical for
    /// the same log and policy once the month is over); the CSV and HTML are rendered from
    /// it. The report names the policy and catalogue digests and carries the signed tree heads
    /// at the start and end of the month with the consistency proof between them.
    ///
    /// Only time that has passed is reported: a month that has not started is refused; the
    /// current month's report is partial, as of the instant it is made, with no row for a
    /// later day. Its verdict is compliant, not compliant, no compute (evidence, nothing
    /// counted) or no evidence (nothing accepted yet); only the first is compliant.
    ///
    /// Example: veuctl report --month 2026-11 --out reports/2026-11 --log-key log.pub
    Report(report::ReportArgs),
    /// Verify an evidence bundle offline, trusting only what you pin: the collector's log key,
    /// and as you choose the period (--to), the policy and catalogue (--policy, --catalogue),
    /// heads you saw earlier (--known-head) and witnesses (--witness-key). It checks every
    /// signature, the period the signed heads prove complete, the whole log rebuilt from its
    /// leaves, the evidence rules of admission and the collector's own ledger over every leaf,
    /// and (with --report) the report's verdicts recomputed from the attestations. It prints
    /// the period covered, the rules applied (pinned or not) and who cosigned.
    ///
    /// Prints PASS, or FAIL with every reason. Exit status: 0 PASS, 1 FAIL, 2 bad input.
    ///
    /// Example: veuctl verify nov-2026 --log-key log.pub --to 2026-12-01
    ///   --policy deploy/policies/uveu-2025-us.toml --witness-key "$(cat witness.vkey)"
    ///   --report reports/2026-11/report.json
    Verify(verify::VerifyArgs),
    /// Read-only questions to the collector for auditors (auditor certificate by default):
    /// the distribution as of any instant, hosts, one host's attestations.
    ///
    /// The collector answers from what it stored; `veuctl log` proves that what it stored is
    /// what its signed transparency log commits to.
    Audit(audit::AuditArgs),
    /// Check the collector's transparency log against its pinned log key: signed tree heads,
    /// inclusion of an entry, consistency of two heads (auditor certificate by default).
    ///
    /// Pin the collector's log public key (its <state_dir>/log.pub, 64 hex digits), obtained
    /// out of band rather than from the collector you are auditing, and pass it with
    /// --log-key: every check then rests on that key and on RFC 6962 hashing, not on the
    /// collector's word.
    Log(transparency::LogArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned text for people.
    Table,
    /// One JSON object for programs.
    Json,
}

/// A failure with the exit status it should end the process with.
#[derive(Debug)]
struct Failure {
    status: u8,
    error: anyhow::Error,
}

impl Failure {
    fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            status: EXIT_BAD_INPUT,
            error: error.into(),
        }
    }
}

fn main() -> ExitCode {
    pipe::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Catalogue(args) => catalogue::run(&args),
        Command::Policy(args) => policy::run(&args),
        Command::Status(args) => status::run(&args),
        Command::EnrollToken(args) => admin::enroll_token(&args),
        Command::Agents(args) => admin::agents(&args),
        Command::Decommission(args) => admin::decommission(&args),
        Command::Evidence(args) => evidence::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Log(args) => transparency::run(&args),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            eprintln!(
                "error: {}",
                table::escape_lines(&format!("{:#}", failure.error))
            );
            ExitCode::from(failure.status)
        }
    }
}
