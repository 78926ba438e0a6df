//! What every veu-attest configuration file shares, so that agent and collector read `30s`,
//! `64MiB` and host ids the same way and report problems the same way: the syntax of values, a
//! TOML reader that finds every problem in one pass (`document`), and the checks of the files
//! and directories a configuration names, made without writing anything (`files`, `tls`); and
//! `parent`, the setting that makes a daemon end with the process that started it; and
//! `daemon`, the exit status of a failure and the binding of a configured address.
//!
//! Invariant: no daemon-specific knowledge; nothing here creates or changes a file; errors are
//! sentences that name the value or file and what was expected.

pub mod daemon;
pub mod document;
pub mod files;
pub mod parent;
pub mod tls;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use daemon::{EXIT_CONFIG, bind, exit_status};
pub use document::{Problems, Section};

/// Every problem found in one configuration file, each with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file.
    pub path: PathBuf,
    /// `(key, message)` pairs, in file order.
    pub errors: Vec<(String, String)>,
}

impl ConfigErrors {
    /// The problems of `path`, or `None` when there are none.
    pub fn of(path: &std::path::Path, problems: &Problems) -> Option<Self> {
        (!problems.is_empty()).then(|| Self {
            path: path.to_path_buf(),
            errors: problems.list(),
        })
    }

    /// The one problem `message` at `key` of `path`.
    pub fn one(path: &std::path::Path, key: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            errors: vec![(key.to_owned(), message.into())],
        }
    }

    /// What a start-up check says when it found no problem yet lacks a value it should have
    /// read: a bug in the checks, reported as such rather than a panic.
    pub fn incomplete(path: &std::path::Path) -> Self {
        Self::one(
            path,
            "file",
            "could not be checked completely (a bug: please report it)",
        )
    }
}

/// One line per error, `  key: message`; a message of several lines (a TOML syntax error with
/// its caret) keeps them, indented under its key.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        let noun = if count == 1 { "error" } else { "errors" };
        write!(f, "{} has {count} {noun}:", self.path.display())?;
        for (key, message) in &self.errors {
            let mut lines = message.lines();
            write!(f, "\n  {key}: {}", lines.next().unwrap_or_default())?;
            for line in lines {
                write!(f, "\n      {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `500ms`, `30s`, `5m`, `1h` or `30d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid = || format!("{text:?} is not a duration like 500ms, 30s, 5m, 1h or 30d");
    let value: u64 = number.parse().map_err(|_| invalid())?;
    let millis = match unit.trim() {
        "ms" => value,
        "s" => value.saturating_mul(1000),
        "m" => value.saturating_mul(60_000),
        "h" => value.saturating_mul(3_600_000),
        "d" => value.saturating_mul(86_400_000),
        _ => return Err(invalid()),
    };
    Ok(Duration::from_millis(millis))
}

/// `64MiB`, `512KiB`, `1GiB`, or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 64MiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?} is not a size like 64MiB (units: B, KiB, MiB, GiB)"
            ));
        }
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Host and site ids: 1 to 256 characters of `A-Z a-z 0-9 - _ . :`.
pub fn check_id(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be 1 to 256 characters of A-Z a-z 0-9 - _ . :"
        ))
    }
}

/// The host of `https://host:port/…` (without brackets for IPv6): the name a server's
/// certificate is expected to carry when the configuration names none. `None` without a host.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    (!host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_ids() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("64MB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
        assert!(check_id("gpu-node-0001.dc1:a").is_ok());
        assert!(check_id("gpu 1").is_err());
        assert!(check_id("").is_err());
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://collector.example.com:7443").as_deref(),
            Some("collector.example.com")
        );
        assert_eq!(url_host("https://[::1]:7443/x").as_deref(), Some("::1"));
        assert_eq!(url_host("https://10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(url_host("https://:7443"), None);
    }
}
