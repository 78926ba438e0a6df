//! Each host's location verdict at an instant, from the log alone: the administrative entries
//! (who holds which key, at which site) and the measurement leaves before the instant, replayed
//! in log order through the ledger and the location book (`crate::replay`). The collector
//! computes a monthly report's location section with it from its store, and the offline
//! verifier recomputes that section with it from the bundle: one computation, two callers.

use collector_report::{LocatedHost, LocationInput, LocationVerdict};
use proto_evidence::LogEntry;
use proto_gpu_evidence::Trust;
use proto_location::Verdict;

use crate::replay::{Locating, replay};

/// Measurement leaves received this long before an instant can still count at it: the
/// policy's maximum age, plus the clock window a landmark's time may lie in.
pub fn window_ms(locating: &Locating<'_>) -> i64 {
    locating.rule.max_age_ms + collector_core::location::MAX_SKEW_MS
}

/// The verdict of every host in service at `as_of_ms` (exclusive), judged by `locating`, from
/// `entries` (log index and entry, in log order): the administrative entries before the
/// instant, and the measurement leaves received within [`window_ms`] before it (attestations
/// are skipped: they do not change who holds which key).
pub fn located_at<'a>(
    entries: impl IntoIterator<Item = (u64, &'a LogEntry)>,
    locating: Locating<'_>,
    as_of_ms: i64,
) -> LocationInput {
    let since = as_of_ms.saturating_sub(window_ms(&locating));
    let relevant = entries.into_iter().filter(|(_, entry)| match entry {
        LogEntry::Attestation { .. } => false,
        LogEntry::Measurement { received_at_ms, .. } => (since..as_of_ms).contains(received_at_ms),
        other => other.at_ms() < as_of_ms,
    });
    let replayed = replay(
        relevant.map(|(index, entry)| (index, entry, None)),
        None,
        &Trust::nvidia(),
        Some(locating),
    );
    let mut hosts: Vec<LocatedHost> = replayed
        .ledger
        .hosts()
        .filter(|(_, record)| record.decommissioned_at_ms.is_none())
        .map(|(host, record)| {
            let location = replayed
                .locations
                .locate(host, record, locating.sites, as_of_ms);
            LocatedHost {
                host_id: host.clone(),
                verdict: match location.verdict {
                    Verdict::Unmeasured => LocationVerdict::Unmeasured,
                    Verdict::Unverified => LocationVerdict::Unverified,
                    Verdict::Verified => LocationVerdict::Verified,
                    Verdict::Inconsistent => LocationVerdict::Inconsistent,
                },
                reason: location.explain(),
            }
        })
        .collect();
    hosts.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    LocationInput {
        hosts,
        measurements: replayed.measurements as u64,
    }
}
