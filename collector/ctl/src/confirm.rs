//! `--dry-run` and `--yes` for the admin commands that cannot be undone.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::anyhow;

use crate::Failure;

/// How an irreversible command proceeds.
#[derive(Debug, clap::Args)]
pub struct ConfirmArgs {
    /// Show what would change, with its current state at the collector, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do it without asking. Without --yes, veuctl asks on a terminal and refuses when standard
    /// input is not one (a script must say --yes).
    #[arg(long, conflicts_with = "dry_run")]
    pub yes: bool,
}

/// Whether to go on with `action` (e.g. "revoke key …"), described to the user beforehand:
/// `--yes` goes on, a terminal is asked, anything else is refused with exit status 2.
pub fn confirm(args: &ConfirmArgs, action: &str) -> Result<(), Failure> {
    if args.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::bad_input(anyhow!(
            "not confirmed: {action} cannot be undone and standard input is not a terminal to ask; pass --yes to confirm (or --dry-run to see what would change)"
        )));
    }
    eprint!("{action}? This cannot be undone. Type yes to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|error| Failure::bad_input(anyhow!("cannot read the answer: {error}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Failure {
            status: 1,
            error: anyhow!("not confirmed: nothing was changed"),
        })
    }
}
