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

/// The verdict of every host in service at `as_of_ms` (exclusive), judged by `locating`, from
/// `entries` (log index and entry, in log order; attestations among them are skipped: they do
/// not change who holds which key).
pub fn located_at<'a>(
    entries: impl IntoIterator<Item = (u64, &'a LogEntry)>,
    locating: Locating<'_>,
    as_of_ms: i64,
) -> LocationInput {
    let relevant = entries.into_iter().filter(|(_, entry)| {
        entry.at_ms() < as_of_ms && !matches!(entry, LogEntry::Attestation { .. })
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
