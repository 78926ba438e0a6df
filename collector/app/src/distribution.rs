//! Distributions at an instant, replayed from the stored history of host changes: what each
//! host counted then, which hosts had attested within the freshness window, and the location
//! books (the live ones now, the log's measurements judged as the report judges them for a
//! past instant).

use std::collections::BTreeMap;

use collector_core::LocationSums;
use collector_store::{AttestationStore, HostChange, StoreError};
use proto_accounting::{CountryCode, Distribution};

use crate::ingest::Collector;
use crate::report::{ReportError, location_at};

/// The distributions at one instant.
#[derive(Debug, Clone)]
pub struct DistributionAt {
    /// The instant.
    pub as_of_ms: i64,
    /// Every counted host's last known place and compute.
    pub last_known: Distribution,
    /// The hosts that attested within the freshness window.
    pub verified: Distribution,
    /// The hosts that did not.
    pub stale: Distribution,
    /// `last_known` with each host's hardware TPP.
    pub hardware_last_known: Distribution,
    /// `verified` with each host's hardware TPP.
    pub hardware_verified: Distribution,
    /// The stale hosts, by host id.
    pub stale_hosts: Vec<StaleHost>,
    /// Hosts counted.
    pub hosts: usize,
    /// The location books then; `None` when there are none to read.
    pub located: Option<LocationSums>,
    /// The freshness window, in milliseconds.
    pub freshness_ms: i64,
}

/// A counted host that had not attested within the freshness window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleHost {
    /// Its id.
    pub host_id: String,
    /// Its site.
    pub site_id: String,
    /// Its country, as stored.
    pub country: String,
    /// When it last attested (its last change, when no receipt is stored).
    pub last_attested_ms: i64,
    /// The TPP it counts.
    pub tpp: u64,
    /// Its devices.
    pub devices: u32,
}

/// Why a distribution could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Stored data that makes no distribution.
    #[error("{0}")]
    Data(String),
    /// A country's sum does not fit.
    #[error("TPP sum overflows")]
    Overflow,
    /// The location books of a past instant could not be read.
    #[error(transparent)]
    Location(#[from] ReportError),
}

/// The distributions at `as_of` from `store`'s history of host changes and receipts.
pub fn at(
    collector: &Collector,
    store: &dyn AttestationStore,
    as_of: i64,
) -> Result<DistributionAt, DistributionError> {
    let until = as_of.saturating_add(1);
    let changes = store.host_changes(until)?;
    let last_received: BTreeMap<String, i64> = store.last_received(until)?.into_iter().collect();
    let freshness = collector.freshness_ms();
    let mut last_known = Distribution::new();
    let mut verified = Distribution::new();
    let mut stale = Distribution::new();
    let (mut hardware_last_known, mut hardware_verified) =
        (Distribution::new(), Distribution::new());
    let mut stale_hosts = Vec::new();
    let hosts = replay(&changes);
    for (host, change) in &hosts {
        let country = CountryCode::parse(&change.country).map_err(|e| {
            DistributionError::Data(format!(
                "host {host} has stored country {:?}: {e}",
                change.country
            ))
        })?;
        let overflow = |_| DistributionError::Overflow;
        last_known.add(country, change.tpp).map_err(overflow)?;
        hardware_last_known
            .add(country, change.hardware_tpp)
            .map_err(overflow)?;
        let seen = last_received.get(*host).copied().unwrap_or(change.at_ms);
        if as_of.saturating_sub(seen) <= freshness {
            verified.add(country, change.tpp).map_err(overflow)?;
            hardware_verified
                .add(country, change.hardware_tpp)
                .map_err(overflow)?;
        } else {
            stale.add(country, change.tpp).map_err(overflow)?;
            stale_hosts.push(StaleHost {
                host_id: (*host).to_owned(),
                site_id: change.site_id.0.clone(),
                country: change.country.clone(),
                last_attested_ms: seen,
                tpp: change.tpp,
                devices: change.devices,
            });
        }
    }
    // Now, the live location book; a past instant, the log's measurements judged as the
    // report and the offline verifier judge them.
    let located = if as_of >= collector.now_ms().saturating_sub(60_000) {
        Some(
            collector
                .state()
                .location_sums(&collector.rules.sites, collector.now_ms()),
        )
    } else {
        location_at(collector, until, None)?.map(|input| {
            located_then(&input, &hosts, |host| {
                let seen = last_received.get(host).copied();
                seen.is_some_and(|seen| as_of.saturating_sub(seen) <= freshness)
            })
        })
    };
    Ok(DistributionAt {
        as_of_ms: as_of,
        last_known,
        verified,
        stale,
        hardware_last_known,
        hardware_verified,
        stale_hosts,
        hosts: hosts.len(),
        located,
        freshness_ms: freshness,
    })
}

/// Each host's latest change among `changes` (oldest first), decommissioned hosts dropped: the
/// hosts a past distribution counts.
pub fn replay(changes: &[HostChange]) -> BTreeMap<&str, &HostChange> {
    let mut hosts = BTreeMap::new();
    for change in changes {
        if change.decommissioned {
            hosts.remove(change.host_id.0.as_str());
        } else {
            hosts.insert(change.host_id.0.as_str(), change);
        }
    }
    hosts
}

/// The location books at a past instant from each counted host's verdict then (`input`) and
/// its last change before it (`hosts`); `fresh` says which hosts attested within the
/// freshness window.
fn located_then(
    input: &collector_report::LocationInput,
    hosts: &BTreeMap<&str, &HostChange>,
    fresh: impl Fn(&str) -> bool,
) -> LocationSums {
    use collector_report::LocationVerdict;
    use proto_location::Verdict;
    let verdicts: BTreeMap<&str, LocationVerdict> = input
        .hosts
        .iter()
        .map(|located| (located.host_id.as_str(), located.verdict))
        .collect();
    let mut sums = LocationSums::default();
    for (host, change) in hosts {
        let Ok(country) = CountryCode::parse(&change.country) else {
            continue;
        };
        // A counted host the input does not list has no current measurement.
        let verdict = match verdicts.get(host) {
            None | Some(LocationVerdict::Unmeasured) => Verdict::Unmeasured,
            Some(LocationVerdict::Unverified) => Verdict::Unverified,
            Some(LocationVerdict::Verified) => Verdict::Verified,
            Some(LocationVerdict::Inconsistent) => Verdict::Inconsistent,
        };
        *sums.hosts.entry(verdict).or_default() += 1;
        let tpp = sums.tpp.entry(verdict).or_default();
        *tpp = tpp.saturating_add(change.tpp);
        match verdict {
            Verdict::Verified => {
                // Parts of a distribution that fits in 64 bits.
                let _ = sums.verified.add(country, change.tpp);
                if fresh(host) {
                    let _ = sums.verified_fresh.add(country, change.tpp);
                }
            }
            Verdict::Inconsistent => sums.inconsistent.push((*host).to_owned()),
            Verdict::Unmeasured | Verdict::Unverified => {}
        }
    }
    sums
}
