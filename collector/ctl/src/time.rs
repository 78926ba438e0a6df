//! Instants on the command line and in tables: RFC 3339 in UTC, or Unix milliseconds.

use collector_report::month::{format_timestamp, parse_timestamp};

/// Reads `--at`, `--from` and `--to`: RFC 3339 (`2026-11-03T14:00:00Z`, an offset such as
/// `+01:00` also works), a date alone for its midnight UTC (`2026-11-03`), or milliseconds
/// since the Unix epoch (`1793714400000`).
pub fn parse_instant(text: &str) -> Result<i64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("{text} ms is past the year 292 million"));
    }
    let is_date = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    let full = if is_date {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    parse_timestamp(&full).map_err(|e| format!("{e}; or give Unix milliseconds"))
}

/// This machine's clock, in Unix milliseconds (0 before the epoch).
pub use veu_daemon_kit::now_unix_ms as now_ms;

/// `2026-11-03T14:05:00Z` (with `.123` when the milliseconds are not zero).
pub fn rfc3339(ms: i64) -> String {
    format_timestamp(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc_3339_or_unix_milliseconds() {
        assert_eq!(parse_instant("1793714400000"), Ok(1_793_714_400_000));
        assert_eq!(parse_instant("2026-11-03T14:00:00Z"), Ok(1_793_714_400_000));
        assert_eq!(rfc3339(1_793_714_400_001), "2026-11-03T14:00:00.001Z");
        assert_eq!(parse_instant("2026-11-03"), Ok(1_793_664_000_000));
        for bad in [
            "",
            "-5",
            "yesterday",
            "2026-11-3",
            "2026-13-03",
            "99999999999999999999",
        ] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }
}
