//! Waiting, with a deadline, for a daemon to listen or for a condition to hold.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many lines of a log a failure shows.
const TAIL_LINES: usize = 40;

/// A condition that did not hold in time.
#[derive(Debug, thiserror::Error)]
#[error("gave up waiting for {what} after {} s", limit.as_secs())]
pub struct TimedOut {
    /// What was awaited.
    pub what: String,
    /// How long.
    pub limit: Duration,
}

/// Polls `probe` every `every` until it returns a value; fails with [`TimedOut`] after `limit`,
/// or with the probe's own error as soon as it returns one.
pub fn wait_for<T, E: From<TimedOut>>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe()? {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(TimedOut {
                what: what.to_owned(),
                limit,
            }
            .into());
        }
        std::thread::sleep(every);
    }
}

/// A daemon that did not listen in time, with the end of its log.
#[derive(Debug, thiserror::Error)]
#[error(
    "{name} did not listen on 127.0.0.1:{port} within {} s; the end of its log ({}):\n{tail}",
    limit.as_secs(),
    log.display()
)]
pub struct NotListening {
    /// The daemon.
    pub name: String,
    /// The port it was to listen on.
    pub port: u16,
    /// How long it was given.
    pub limit: Duration,
    /// Its log.
    pub log: PathBuf,
    /// The log's last lines.
    pub tail: String,
}

/// Waits until 127.0.0.1:`port` accepts a connection; fails after `limit` with the end of the
/// daemon's `log`.
pub fn wait_listening(
    name: &str,
    port: u16,
    limit: Duration,
    log: &Path,
) -> Result<(), NotListening> {
    wait_for(name, limit, Duration::from_millis(50), || {
        Ok::<_, TimedOut>(
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()
                .then_some(()),
        )
    })
    .map_err(|_| NotListening {
        name: name.to_owned(),
        port,
        limit,
        log: log.to_path_buf(),
        tail: tail(log, TAIL_LINES),
    })
}

/// The last `lines` lines of the file at `path` (nothing when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_probe_is_polled_until_it_holds_and_its_error_ends_the_wait() {
        let mut calls = 0;
        let found = wait_for(
            "the third call",
            Duration::from_secs(5),
            Duration::ZERO,
            || {
                calls += 1;
                Ok::<_, TimedOut>((calls == 3).then_some(calls))
            },
        );
        assert_eq!(found.unwrap(), 3);

        #[derive(Debug)]
        enum Failed {
            Probe,
            Waited,
        }
        impl From<TimedOut> for Failed {
            fn from(_: TimedOut) -> Self {
                Self::Waited
            }
        }
        let mut calls = 0;
        let failed = wait_for::<(), _>("nothing", Duration::from_secs(5), Duration::ZERO, || {
            calls += 1;
            if calls == 2 {
                Err(Failed::Probe)
            } else {
                Ok(None)
            }
        });
        assert!(matches!(failed, Err(Failed::Probe)), "{failed:?}");
    }

    #[test]
    fn a_wait_gives_up_at_its_limit_and_says_what_for() {
        let started = Instant::now();
        let error = wait_for::<(), TimedOut>(
            "a miracle",
            Duration::from_millis(200),
            Duration::from_millis(20),
            || Ok(None),
        )
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(error.to_string(), "gave up waiting for a miracle after 0 s");
    }

    #[test]
    fn a_listening_port_is_found_and_a_silent_one_shows_the_log_tail() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("daemon.log");
        wait_listening("daemon", port, Duration::from_secs(5), &log).unwrap();
        drop(listener);
        let text: String = (1..=100).map(|n| format!("line {n}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let error = wait_listening("daemon", port, Duration::from_millis(100), &log).unwrap_err();
        assert_eq!(error.tail.lines().count(), TAIL_LINES);
        assert!(error.tail.starts_with("line 61\n") && error.tail.ends_with("line 100"));
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "daemon did not listen on 127.0.0.1:{port} within 0 s"
            )),
            "{text}"
        );
    }

    #[test]
    fn the_tail_of_a_short_or_missing_file_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        assert_eq!(tail(&path, 5), "one\ntwo");
        assert_eq!(tail(&dir.path().join("none"), 5), "");
    }
}
