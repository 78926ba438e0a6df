//! The monthly compliance report, built from the stored history (host changes, events,
//! rejections, signed heads) and signed with the log key. The same log and policy give
//! byte-identical `report.json` for a month that is over; the current month's report is
//! partial, as of the instant it is made; a month that has not started has none.

use collector_report::month::{format_date, format_timestamp};
use collector_report::{
    ChangeKind, ConflictEvent, GapEvent, HostChange, LogEvidence, Month, Report, ReportInput,
    SignedHead, StaleSpan,
};
use collector_store::{StoreError, StoredTreeHead};
use proto_accounting::CountryCode;

use veu_daemon_kit::hex;

use crate::distribution::replay;
use crate::ingest::Collector;
use crate::log::{LogError, LogKeeper};

/// Events one report reads at most.
const EVENT_LIMIT: usize = 10_000_000;

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The month is not `YYYY-MM`.
    #[error("{0}")]
    Month(String),
    /// The month has not started: there is nothing to report on.
    #[error(
        "the month {month} has not started: it begins {}, and today is {} (UTC); a report \
         covers only time that has passed",
        format_timestamp(month.start_ms()),
        format_date(*now_ms)
    )]
    NotStarted {
        /// The month asked for.
        month: Month,
        /// The collector's clock.
        now_ms: i64,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The log failed.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// Stored data does not make a report.
    #[error("{0}")]
    Data(String),
}

/// The report's location section: each host's verdict at `as_of` from the log's
/// administrative leaves and the measurement leaves of the last `[location] max_age_hours`
/// (`collector_bundle::located_at`, which the offline verifier runs on the bundle's leaves),
/// and with `changes_from` (the period's start, when the policy requires location
/// verification for Tier 1) every change of a host's location-verified state since; `None`
/// when the collector trusts no landmark.
pub fn location_at(
    collector: &Collector,
    as_of: i64,
    changes_from: Option<i64>,
) -> Result<Option<collector_report::LocationInput>, ReportError> {
    if collector.landmarks().is_empty() {
        return Ok(None);
    }
    let store = collector.store.as_ref();
    let locating = collector_bundle::Locating {
        landmarks: collector.landmarks(),
        sites: &collector.rules.sites,
        rule: proto_location::LocationRule::from(&collector.rules.policy.location),
    };
    let since = changes_from
        .unwrap_or(as_of)
        .min(as_of)
        .saturating_sub(collector_bundle::window_ms(&locating));
    let mut records = store.key_records(u64::MAX)?;
    records.extend(store.measurements(since)?);
    records.sort_by_key(|record| record.log_index);
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        let entry = proto_evidence::LogEntry::decode(&record.entry)
            .map_err(|e| ReportError::Data(format!("log leaf {}: {e}", record.log_index)))?;
        entries.push((record.log_index, entry));
    }
    Ok(Some(collector_bundle::located_at(
        entries.iter().map(|(index, entry)| (*index, entry)),
        locating,
        as_of,
        changes_from,
    )))
}

fn signed_head(head: &StoredTreeHead) -> Result<SignedHead, ReportError> {
    let envelope = proto_seal::decode_envelope(&head.envelope)
        .map_err(|e| ReportError::Data(format!("stored tree head {}: {e}", head.tree_size)))?;
    Ok(SignedHead {
        tree_size: head.tree_size,
        root: hex(&head.root),
        timestamp_ms: head.timestamp_ms,
        key_id: hex(envelope.key_id.0.as_bytes()),
        signature: hex(&envelope.signature),
    })
}

/// The report of `month` over the collector's store, as of `min(now, month end)`: the whole
/// month once it is over, the part that has passed while it is not (a partial report). A
/// month that has not started is refused.
pub fn build(collector: &Collector, log: &LogKeeper, month: &str) -> Result<Report, ReportError> {
    let month: Month = month
        .parse()
        .map_err(|e| ReportError::Month(format!("month {month:?}: {e}")))?;
    let (start, end) = (month.start_ms(), month.end_ms());
    // Read once, before anything is gathered: every change, event and silence the report
    // reads is before it, and the end head is signed at or after it.
    let now_ms = collector.now_ms();
    if now_ms <= start {
        return Err(ReportError::NotStarted { month, now_ms });
    }
    let as_of = end.min(now_ms);
    let store = collector.store.as_ref();

    // Changes before the as-of instant only: evidence that arrives while the report is being
    // gathered belongs to a later one.
    let stored = store.host_changes(as_of)?;
    let mut changes = Vec::with_capacity(stored.len());
    for change in &stored {
        let country = CountryCode::parse(&change.country).map_err(|e| {
            ReportError::Data(format!(
                "host {} has stored country {:?}: {e}",
                change.host_id, change.country
            ))
        })?;
        changes.push(HostChange {
            at_ms: change.at_ms,
            host_id: change.host_id.0.clone(),
            site_id: change.site_id.0.clone(),
            country,
            tpp: change.tpp,
            hardware_tpp: change.hardware_tpp,
            devices: change.devices,
            kind: if change.decommissioned {
                ChangeKind::Decommissioned
            } else {
                ChangeKind::Attested
            },
        });
    }

    // Hosts silent during the month and heard again are `silence` events (below); these are
    // the hosts still silent at the month's end (or as of now, for the current month).
    let freshness = collector.freshness_ms();
    let horizon = as_of;
    let in_service = replay(&stored);
    let mut stale = Vec::new();
    for (host, last) in store.last_received(horizon)? {
        let Some(change) = in_service.get(host.as_str()) else {
            continue;
        };
        let since = last.saturating_add(freshness);
        if since < horizon {
            let country = CountryCode::parse(&change.country)
                .map_err(|e| ReportError::Data(format!("host {host}: {e}")))?;
            stale.push(StaleSpan {
                host_id: host,
                country,
                tpp: change.tpp,
                from_ms: since,
                to_ms: None,
            });
        }
    }

    let mut gaps = Vec::new();
    let mut conflicts = Vec::new();
    for event in store.events(start, EVENT_LIMIT)? {
        if event.at_ms >= as_of {
            break;
        }
        let host_id = event.host_id.clone().map(|host| host.0).unwrap_or_default();
        match event.kind.as_str() {
            "gap" => gaps.push(GapEvent {
                at_ms: event.at_ms,
                host_id,
                missing: event.value.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            }),
            "gpu_conflict" => conflicts.push(ConflictEvent {
                at_ms: event.at_ms,
                host_id,
                detail: event.detail,
            }),
            crate::ingest::SILENCE_EVENT => {
                // Where the host counted while silent: its last change before it was heard.
                let Some(from_ms) = event.value else {
                    continue;
                };
                let Some(change) = stored
                    .iter()
                    .rev()
                    .find(|c| c.host_id.0 == host_id && c.at_ms <= event.at_ms)
                else {
                    continue;
                };
                let country = CountryCode::parse(&change.country)
                    .map_err(|e| ReportError::Data(format!("host {host_id}: {e}")))?;
                stale.push(StaleSpan {
                    tpp: change.tpp,
                    host_id,
                    country,
                    from_ms,
                    to_ms: Some(event.at_ms),
                });
            }
            _ => {}
        }
    }

    let start_head = store.tree_head_before(start)?;
    // The first head signed at or after the as-of instant (the month's end, once it is over)
    // covers every change the report read; when none exists yet (the current month, or a
    // quiet log), one is signed now.
    let end_head = log.head_covering(as_of, false)?;
    // An auditor refuses a report that claims time its end head does not cover.
    if end_head.timestamp_ms < as_of {
        return Err(ReportError::Data(format!(
            "the log's newest head was signed at {}, before the report's as-of instant {}: \
             the collector's clock went backwards",
            format_timestamp(end_head.timestamp_ms),
            format_timestamp(as_of)
        )));
    }
    let end_head = Some(end_head);
    let consistency_proof = match (&start_head, &end_head) {
        (Some(first), Some(second)) if first.tree_size <= second.tree_size => log
            .consistency(first.tree_size, second.tree_size)?
            .iter()
            .map(|h| hex(h))
            .collect(),
        _ => Vec::new(),
    };
    let rules = &collector.rules;
    let location = location_at(
        collector,
        as_of,
        collector
            .rules
            .policy
            .location
            .required_for_tier1
            .then_some(start),
    )?;
    let input = ReportInput {
        month,
        as_of_ms: as_of,
        policy: rules.policy.clone(),
        policy_id: rules.policy.id.clone(),
        policy_digest: rules.policy.digest().to_string(),
        catalogue_digest: rules.catalogue.digest().to_string(),
        collector: hex(log.public_key().key_id().0.as_bytes()),
        organisation: collector.organisation().map(str::to_owned),
        changes,
        stale,
        gaps,
        conflicts,
        rejections: store.rejections_by_reason(start, as_of)?,
        location,
        log: LogEvidence {
            start: start_head.as_ref().map(signed_head).transpose()?,
            end: end_head.as_ref().map(signed_head).transpose()?,
            consistency_proof,
            checkpoint: end_head
                .as_ref()
                .map(|head| log.signed_checkpoint(head))
                .transpose()?
                .map(|note| note.to_string()),
        },
    };
    collector_report::build(&input).map_err(|e| ReportError::Data(e.to_string()))
}
