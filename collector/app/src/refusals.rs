//! Repeated refusals, stored as counts: the first refusal of a peer, reason and key in a
//! window is stored in full at once; the same refusal again within the window is only counted,
//! and when the window closes one row carries the count of those repeats. A peer repeating a
//! refused input thousands of times a second so costs the store two rows a window, while
//! every refusal is still counted (rows, per-reason totals and the report sum `count`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use collector_store::{KeyId, Rejection};

/// How long a window of repeats lasts, in milliseconds.
pub const WINDOW_MS: i64 = 60_000;

/// The most windows open at once; past it a refusal is stored in full, as without windows,
/// so memory stays bounded whatever the number of peers.
const MAX_OPEN: usize = 8_192;

/// What identifies "the same refusal".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Same {
    peer: String,
    reason: String,
    key_id: Option<KeyId>,
}

#[derive(Debug)]
struct Window {
    /// The refusal stored in full when the window opened.
    first: Rejection,
    /// Repeats since, not stored yet.
    repeats: u64,
    /// The latest repeat's time.
    last_ms: i64,
}

impl Window {
    fn ends_ms(&self) -> i64 {
        self.first.at_ms.saturating_add(WINDOW_MS)
    }

    /// The row standing for the repeats, if any, dated `closed_ms`, when the window closed: a
    /// row is never dated before it is written, so what a report covered never changes.
    fn summary(self, closed_ms: i64) -> Option<Rejection> {
        (self.repeats > 0).then(|| Rejection {
            at_ms: closed_ms.max(self.last_ms),
            sequence: None,
            detail: format!(
                "{} more refusal{} like this from this peer within {} s of the first, the last at {} ms ({})",
                self.repeats,
                if self.repeats == 1 { "" } else { "s" },
                WINDOW_MS / 1000,
                self.last_ms,
                self.first.detail
            ),
            count: self.repeats,
            ..self.first
        })
    }
}

/// The open windows.
#[derive(Debug, Default)]
pub struct RefusalWindows {
    open: Mutex<HashMap<Same, Window>>,
}

impl RefusalWindows {
    /// The rows to store now for `rejection`: itself when it opens a window (after the
    /// summary of the window it replaces), nothing when it repeats one.
    pub fn record(&self, rejection: Rejection) -> Vec<Rejection> {
        let same = Same {
            peer: rejection.peer.clone(),
            reason: rejection.reason.clone(),
            key_id: rejection.key_id,
        };
        let now = rejection.at_ms;
        // Every update leaves the windows consistent; keep serving.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = open.get_mut(&same)
            && now < window.ends_ms()
        {
            window.repeats += 1;
            window.last_ms = window.last_ms.max(now);
            return Vec::new();
        }
        let mut rows: Vec<Rejection> = open
            .remove(&same)
            .and_then(|window| window.summary(now))
            .into_iter()
            .collect();
        if open.len() < MAX_OPEN {
            open.insert(
                same,
                Window {
                    first: rejection.clone(),
                    repeats: 0,
                    last_ms: now,
                },
            );
        }
        rows.push(rejection);
        rows
    }

    /// The summaries of the windows that ended by `now_ms`, which close.
    pub fn due(&self, now_ms: i64) -> Vec<Rejection> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let ended: Vec<Same> = open
            .iter()
            .filter(|(_, window)| window.ends_ms() <= now_ms)
            .map(|(same, _)| same.clone())
            .collect();
        ended
            .into_iter()
            .filter_map(|same| open.remove(&same)?.summary(now_ms))
            .collect()
    }

    /// The repeats not stored yet, by reason (sorted): what the stored counts still lack.
    pub fn pending(&self) -> Vec<(String, u64)> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut by_reason: std::collections::BTreeMap<String, u64> = Default::default();
        for (same, window) in open.iter().filter(|(_, w)| w.repeats > 0) {
            *by_reason.entry(same.reason.clone()).or_default() += window.repeats;
        }
        by_reason.into_iter().collect()
    }

    /// The summaries of every open window, which close at `now_ms` (at shutdown).
    pub fn drain(&self, now_ms: i64) -> Vec<Rejection> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.drain()
            .filter_map(|(_, window)| window.summary(now_ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(at_ms: i64, peer: &str, reason: &str) -> Rejection {
        Rejection {
            at_ms,
            reason: reason.to_owned(),
            key_id: Some(KeyId(proto_evidence::Sha256::from_bytes([1; 32]))),
            host_id: None,
            sequence: Some(3),
            peer: peer.to_owned(),
            detail: "d".to_owned(),
            count: 1,
        }
    }

    fn total(rows: &[Rejection]) -> u64 {
        rows.iter().map(|r| r.count).sum()
    }

    #[test]
    fn repeats_in_a_window_become_one_counted_row_and_nothing_is_lost() {
        let windows = RefusalWindows::default();
        let mut stored = Vec::new();
        for n in 0..3_000 {
            stored.extend(windows.record(refusal(1_000 + n, "urn:veu:agent:a", "replay")));
        }
        assert_eq!(stored.len(), 1, "only the first is stored at once");
        stored.extend(windows.due(1_000 + WINDOW_MS - 1));
        assert_eq!(stored.len(), 1, "the window is still open");
        stored.extend(windows.due(1_000 + WINDOW_MS));
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[1].count, 2_999);
        assert_eq!(
            stored[1].at_ms,
            1_000 + WINDOW_MS,
            "dated when its window closed"
        );
        assert_eq!(total(&stored), 3_000);
        assert!(windows.drain(1_000 + WINDOW_MS).is_empty());
    }

    #[test]
    fn other_peers_reasons_and_later_windows_are_stored_apart() {
        let windows = RefusalWindows::default();
        let mut stored = Vec::new();
        stored.extend(windows.record(refusal(0, "a", "replay")));
        stored.extend(windows.record(refusal(1, "a", "replay")));
        stored.extend(windows.record(refusal(2, "b", "replay")));
        stored.extend(windows.record(refusal(3, "a", "bad_signature")));
        assert_eq!(stored.len(), 3);
        // The next window of "a"/replay: the summary of the last, then the new first.
        let next = windows.record(refusal(WINDOW_MS + 5, "a", "replay"));
        assert_eq!(next.len(), 2);
        assert_eq!((next[0].count, next[1].count), (1, 1));
        stored.extend(next);
        stored.extend(windows.drain(WINDOW_MS + 6));
        assert_eq!(total(&stored), 5);
    }

    #[test]
    fn the_open_windows_stay_bounded_and_past_the_bound_each_refusal_is_stored() {
        let windows = RefusalWindows::default();
        let mut stored = 0u64;
        for n in 0..(MAX_OPEN as i64 + 100) {
            stored += total(&windows.record(refusal(n, &format!("peer-{n}"), "replay")));
        }
        assert_eq!(windows.open.lock().unwrap().len(), MAX_OPEN);
        assert_eq!(stored, MAX_OPEN as u64 + 100);
    }
}
