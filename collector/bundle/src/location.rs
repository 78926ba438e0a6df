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

/// Of `entries` (in log order), the administrative ones and, of the measurement leaves, only
/// the newest of each landmark and host (read without checking signatures, only to choose):
/// the location book keeps no other, so opening the rest would cost signature checks for
/// nothing. Those kept are opened and admitted as ever.
pub fn newest_of_each_pair<'a>(
    entries: impl DoubleEndedIterator<Item = (u64, &'a LogEntry)>,
) -> Vec<(u64, &'a LogEntry)> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<(u64, &LogEntry)> = entries
        .rev()
        .filter(|(_, entry)| match entry {
            LogEntry::Measurement { measurement, .. } => {
                let pair = proto_evidence::SignedMeasurement::decode(measurement)
                    .ok()
                    .and_then(|s| proto_evidence::Measurement::decode(&s.statement).ok())
                    .map(|m| (m.host, m.landmark));
                // An undecodable leaf is kept, so that opening it reports it.
                pair.is_none_or(|pair| seen.insert(pair))
            }
            _ => true,
        })
        .collect();
    kept.reverse();
    kept
}

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

#[cfg(test)]
mod tests {
    use proto_evidence::{Coordinates, Measurement, SignedMeasurement};

    use super::*;

    fn leaf(host: &str, landmark: &str, at: i64) -> LogEntry {
        let statement = Measurement {
            landmark: landmark.into(),
            at: Coordinates::from_degrees(50.0, 8.0).unwrap(),
            host: host.into(),
            agent_key: [1; 32],
            min_rtt_us: 100,
            rounds: 1,
            measured_at_ms: at,
            nonce: [0; 32],
            answer: [0; 64],
        };
        LogEntry::Measurement {
            received_at_ms: at,
            measurement: SignedMeasurement {
                statement: statement.encode().unwrap(),
                signature: [0; 64],
            }
            .encode()
            .unwrap(),
        }
    }

    #[test]
    fn only_the_newest_of_each_landmark_and_host_is_kept_in_log_order() {
        let entries = [
            leaf("h1", "kas", 1),
            LogEntry::HostDecommissioned {
                at_ms: 2,
                host_id: "h9".into(),
            },
            leaf("h1", "sin", 3),
            leaf("h1", "kas", 4),
            LogEntry::Measurement {
                received_at_ms: 5,
                measurement: vec![9, 9],
            },
            leaf("h2", "kas", 6),
        ];
        let kept: Vec<u64> =
            newest_of_each_pair(entries.iter().enumerate().map(|(i, e)| (i as u64, e)))
                .into_iter()
                .map(|(i, _)| i)
                .collect();
        assert_eq!(kept, [1, 2, 3, 4, 5]);
    }
}
