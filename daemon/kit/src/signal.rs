//! The one place signals are awaited.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// What SIGHUP does to a process waiting with [`Signals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hangup {
    /// Logged, and the process goes on: it reloads nothing (every setting is read at start),
    /// rather than dying by the default action.
    Ignored,
    /// Not handled: the default action ends the process.
    Default,
    /// Stops the process like SIGTERM and SIGINT.
    Stops,
}

/// A signal that stops the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Interrupt,
    Hangup,
}

impl Signal {
    /// `SIGTERM`, `SIGINT` or `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// The signal's number (Linux), for the shell's exit status 128 + number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Terminate => 15,
            Signal::Interrupt => 2,
            Signal::Hangup => 1,
        }
    }
}

/// The handlers of SIGTERM, SIGINT and (as [`Hangup`] says) SIGHUP, installed at once so that
/// no signal falls between installing and waiting.
#[derive(Debug)]
pub struct Signals {
    /// Who goes on after SIGHUP, in the log line that says so (`agent`, `collector`).
    process: &'static str,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: Option<(Hangup, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Installs the handlers; must be called within a tokio runtime.
    pub fn install(process: &'static str, hangup: Hangup) -> std::io::Result<Self> {
        let terminate = signal(SignalKind::terminate())?;
        let interrupt = signal(SignalKind::interrupt())?;
        let hangup = match hangup {
            Hangup::Default => None,
            Hangup::Ignored | Hangup::Stops => Some((hangup, signal(SignalKind::hangup())?)),
        };
        Ok(Self {
            process,
            terminate,
            interrupt,
            hangup,
        })
    }

    /// Resolves on the next signal that stops the process.
    pub async fn stop(&mut self) -> Signal {
        let Self {
            process,
            terminate,
            interrupt,
            hangup,
        } = self;
        loop {
            let hung_up = async {
                match hangup {
                    Some((action, hangup)) => {
                        hangup.recv().await;
                        *action
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = terminate.recv() => return Signal::Terminate,
                _ = interrupt.recv() => return Signal::Interrupt,
                action = hung_up => match action {
                    Hangup::Stops => return Signal::Hangup,
                    Hangup::Ignored | Hangup::Default => tracing::info!(
                        "SIGHUP is not handled: restart the {process} to apply configuration changes"
                    ),
                },
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT (and SIGHUP where [`Hangup::Stops`]), naming which. Where the
/// handlers cannot be installed it says so and never resolves: the process then stops only by
/// SIGKILL.
pub async fn shutdown_signal(process: &'static str, hangup: Hangup) -> &'static str {
    match Signals::install(process, hangup) {
        Ok(mut signals) => signals.stop().await.name(),
        Err(_) => {
            tracing::error!("cannot install signal handlers; stop the {process} with SIGKILL");
            std::future::pending().await
        }
    }
}

/// Cancels `shutdown` on the first [`shutdown_signal`], logging which: the task a daemon spawns
/// to stop on a signal.
pub async fn cancel_on_signal(process: &'static str, hangup: Hangup, shutdown: CancellationToken) {
    let signal = shutdown_signal(process, hangup).await;
    tracing::info!(signal, "shutting down");
    shutdown.cancel();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn raise(name: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    #[test]
    fn names_and_numbers_are_the_shells() {
        assert_eq!(
            [Signal::Terminate, Signal::Interrupt, Signal::Hangup].map(|s| (s.name(), s.number())),
            [("SIGTERM", 15), ("SIGINT", 2), ("SIGHUP", 1)]
        );
    }

    // One test sends every signal: the handlers belong to the whole test process.
    #[tokio::test]
    async fn an_ignored_hangup_is_survived_and_a_stopping_one_stops() {
        let mut ignoring = Signals::install("test", Hangup::Ignored).unwrap();
        raise("HUP");
        let waited = tokio::time::timeout(Duration::from_millis(200), ignoring.stop()).await;
        assert!(waited.is_err(), "SIGHUP stopped: {waited:?}");
        raise("TERM");
        assert_eq!(ignoring.stop().await, Signal::Terminate);

        let mut stopping = Signals::install("test", Hangup::Stops).unwrap();
        raise("HUP");
        assert_eq!(stopping.stop().await, Signal::Hangup);
        raise("INT");
        assert_eq!(stopping.stop().await, Signal::Interrupt);
    }
}
