//! The wall clock as every veu-attest program reads it: milliseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch, UTC: 0 for a clock set before 1970, `i64::MAX`
/// past the year 292 million. Code that must be tested at chosen instants takes a clock
/// function instead and is given this one in production.
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_this_code_was_written_and_moves_forward() {
        // 2026-01-01T00:00:00Z.
        let first = now_unix_ms();
        assert!(first > 1_767_225_600_000, "{first}");
        assert!(now_unix_ms() >= first);
    }
}
