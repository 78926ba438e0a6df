//! One-shot commands that must succeed.

use std::process::{Command, ExitStatus, Output};

/// A command that could not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("cannot run {what}")]
    Start {
        /// What it was.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ended unsuccessfully; its output, as it printed it.
    #[error("{what} failed ({status}): {stdout}{stderr}")]
    Failed {
        /// What it was.
        what: String,
        /// How it ended.
        status: ExitStatus,
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
    },
}

/// Runs `command` to its end; its output, when it succeeded.
pub fn run_ok(command: &mut Command, what: &str) -> Result<Output, CommandError> {
    let output = command.output().map_err(|source| CommandError::Start {
        what: what.to_owned(),
        source,
    })?;
    if !output.status.success() {
        return Err(CommandError::Failed {
            what: what.to_owned(),
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn success_gives_the_output_and_failure_what_it_printed() {
        let output = run_ok(Command::new("sh").args(["-c", "echo hello"]), "echo").unwrap();
        assert_eq!(output.stdout, b"hello\n");
        let error = run_ok(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            "a failing step",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("a failing step failed (exit status: 3): out\nerr"),
            "{text}"
        );
        let error = run_ok(&mut Command::new("/nonexistent/veu"), "nothing").unwrap_err();
        assert!(matches!(error, CommandError::Start { .. }), "{error:?}");
        assert_eq!(error.to_string(), "cannot run nothing");
    }
}
