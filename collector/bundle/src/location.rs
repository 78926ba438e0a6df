//! Each host's location verdict at an instant, from the log alone: the administrative entries
//! (who holds which key, at which site) and the measurement leaves before the instant, replayed
//! in log order through the ledger and the location book (`crate::replay`). The collector
//! computes a monthly report's location section with it from its store, and the offline
//! verifier recomputes that section with it from the bundle: one computation, two callers.

use std::collections::{BTreeSet, HashSet};

use collector_report::{LocatedHost, LocationChange, LocationInput, LocationVerdict};
use proto_evidence::LogEntry;
use proto_gpu_evidence::Trust;
use proto_location::Verdict;

use crate::replay::{Locating, OPEN_AHEAD, Replayer};

/// Of `entries` (in log order), the administrative ones and, of the measurement leaves, only
/// the newest of each landmark and host (read without checking signatures, only to choose):
/// the location book keeps no other, so opening the rest would cost signature checks for
/// nothing. Those kept are opened and admitted as ever.
pub fn newest_of_each_pair<'a>(
    entries: impl DoubleEndedIterator<Item = (u64, &'a LogEntry)>,
) -> Vec<(u64, &'a LogEntry)> {
    let mut seen = HashSet::new();
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
///
/// With `changes_from` (a report's period start, when the policy requires location
/// verification for Tier 1), also every instant from [`window_ms`] before it up to the as-of
/// instant at which a host became location-verified or ceased to be (`LocationInput::changes`):
/// each entry is judged where it enters the log, and each measurement again where it starts
/// and stops counting. Every measurement leaf of that longer window is then opened.
pub fn located_at<'a>(
    entries: impl IntoIterator<Item = (u64, &'a LogEntry)>,
    locating: Locating<'_>,
    as_of_ms: i64,
    changes_from: Option<i64>,
) -> LocationInput {
    let since = changes_from
        .unwrap_or(as_of_ms)
        .min(as_of_ms)
        .saturating_sub(window_ms(&locating));
    let relevant = entries.into_iter().filter(|(_, entry)| match entry {
        LogEntry::Attestation { .. } => false,
        LogEntry::Measurement { received_at_ms, .. } => (since..as_of_ms).contains(received_at_ms),
        other => other.at_ms() < as_of_ms,
    });
    let nvidia = Trust::nvidia();
    let mut replayer = Replayer::new(None, &nvidia, Some(locating));
    let mut timeline = changes_from.map(|_| Timeline::default());
    let relevant: Vec<(u64, &LogEntry)> = relevant.collect();
    for chunk in relevant.chunks(OPEN_AHEAD) {
        replayer.open_ahead(chunk.iter().copied());
        for &(index, entry) in chunk {
            match &mut timeline {
                Some(timeline) => {
                    let at_ms = entry.at_ms();
                    timeline.until(at_ms, &replayer, &locating);
                    replayer.step(index, entry, None);
                    timeline.entered(entry, at_ms, &replayer, &locating);
                }
                None => replayer.step(index, entry, None),
            }
        }
    }
    if let Some(timeline) = &mut timeline {
        timeline.until(as_of_ms, &replayer, &locating);
    }
    let replayed = replayer.finish();
    let mut hosts: Vec<LocatedHost> = replayed
        .ledger
        .hosts()
        .filter(|(_, record)| record.decommissioned_at_ms.is_none())
        .map(|(host, record)| {
            let location =
                replayed
                    .locations
                    .locate(host, record, &replayed.ledger, locating.sites, as_of_ms);
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
        changes: timeline.map(|t| t.changes).unwrap_or_default(),
    }
}

/// Each host's location-verified state as the log is replayed, and the instants it changed.
#[derive(Debug, Default)]
struct Timeline {
    verified: HashSet<String>,
    /// Instants a measurement starts or stops counting, with its host: judged again then.
    pending: BTreeSet<(i64, String)>,
    /// The newest instant judged: log order is receipt order, but replicas' clocks may
    /// disagree by a little, and the changes must be ordered.
    last_ms: i64,
    changes: Vec<LocationChange>,
}

impl Timeline {
    /// Judges `host` at `at_ms` (or the newest instant already judged, if later) and records a
    /// change of its state.
    fn judge(&mut self, host: &str, at_ms: i64, replayer: &Replayer<'_>, locating: &Locating<'_>) {
        let at_ms = at_ms.max(self.last_ms);
        self.last_ms = at_ms;
        let verified = replayer
            .ledger()
            .host(host)
            .filter(|record| record.decommissioned_at_ms.is_none())
            .is_some_and(|record| {
                replayer
                    .locations()
                    .locate(host, record, replayer.ledger(), locating.sites, at_ms)
                    .verdict
                    == Verdict::Verified
            });
        let was = self.verified.contains(host);
        if verified == was {
            return;
        }
        if verified {
            self.verified.insert(host.to_owned());
        } else {
            self.verified.remove(host);
        }
        self.changes.push(LocationChange {
            at_ms,
            host_id: host.to_owned(),
            verified,
        });
    }

    /// Judges every host whose measurement starts or stops counting before `at_ms`, at
    /// that instant.
    fn until(&mut self, at_ms: i64, replayer: &Replayer<'_>, locating: &Locating<'_>) {
        while let Some((instant, host)) = self.pending.first().cloned()
            && instant < at_ms
        {
            self.pending.pop_first();
            self.judge(&host, instant, replayer, locating);
        }
    }

    /// Judges the host an entry just replayed at `at_ms` concerns, and schedules a
    /// measurement's own instants.
    fn entered(
        &mut self,
        entry: &LogEntry,
        at_ms: i64,
        replayer: &Replayer<'_>,
        locating: &Locating<'_>,
    ) {
        let host = match entry {
            LogEntry::Measurement { measurement, .. } => {
                let Some(measured) = proto_evidence::SignedMeasurement::decode(measurement)
                    .ok()
                    .and_then(|signed| proto_evidence::Measurement::decode(&signed.statement).ok())
                else {
                    return;
                };
                let stops = measured
                    .measured_at_ms
                    .saturating_add(locating.rule.max_age_ms)
                    .saturating_add(1);
                for instant in [measured.measured_at_ms, stops] {
                    if instant > at_ms {
                        self.pending.insert((instant, measured.host.clone()));
                    }
                }
                measured.host
            }
            LogEntry::KeyEnrolled { host_id, .. }
            | LogEntry::HostRebound { host_id, .. }
            | LogEntry::HostDecommissioned { host_id, .. } => host_id.clone(),
            LogEntry::KeyRevoked { key_id, .. } => match replayer.ledger().key(key_id) {
                Some(key) => key.host.clone(),
                None => return,
            },
            LogEntry::Attestation { .. } => return,
        };
        self.judge(&host, at_ms, replayer, locating);
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
