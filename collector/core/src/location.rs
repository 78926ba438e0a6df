//! The location book: every landmark's newest measurement of each host, the rule that admits
//! a measurement, and each host's location verdict (`proto_location::locate`) as the books
//! show it. The live collector, the audit replay and the offline bundle verifier all admit
//! measurements through [`LocationBook::check`] and judge hosts through
//! [`LocationBook::locate`], so none of them can disagree on what a measurement proves.

use std::collections::{BTreeMap, HashMap};

use proto_accounting::Distribution;
use proto_evidence::{Coordinates, KeyId, Measurement};
use proto_location::{Declared, Landmarks, Location, LocationRule, Verdict, locate};

use crate::ledger::{HostRecord, Ledger};
use crate::sites::SiteRegistry;

/// How far a landmark's clock may be from the collector's when it delivers a measurement.
pub const MAX_SKEW_MS: i64 = 5 * 60_000;

/// Why a measurement is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasurementRefusal {
    /// The landmark is not in the registry of trusted landmarks.
    #[error("landmark {0} is not enrolled: it is not in the collector's landmark registry")]
    UnknownLandmark(String),
    /// The statement names another landmark than the one delivering it.
    #[error("the statement names landmark {statement}, but landmark {presenter} delivered it")]
    WrongLandmark {
        /// Named in the statement.
        statement: String,
        /// Named in the presenting certificate.
        presenter: String,
    },
    /// The statement's coordinates are not the registry's.
    #[error("landmark {landmark} is registered at {registered}, but the statement says {stated}")]
    MovedLandmark {
        /// The landmark.
        landmark: String,
        /// Its registered coordinates.
        registered: Coordinates,
        /// What the statement says.
        stated: Coordinates,
    },
    /// The host is not enrolled or not in service.
    #[error("host {0} is not a host in service")]
    UnknownHost(String),
    /// The measured key is not the host's current, unrevoked key.
    #[error("key {key} is not host {host}'s current key")]
    NotHostKey {
        /// The host.
        host: String,
        /// The key measured.
        key: KeyId,
    },
    /// Taken too long before or after the collector received it.
    #[error(
        "measured at {measured_at_ms} ms, {skew_ms} ms away from its receipt at {received_at_ms} ms (at most {MAX_SKEW_MS} ms)"
    )]
    Skewed {
        /// The statement's time.
        measured_at_ms: i64,
        /// Collector receipt time.
        received_at_ms: i64,
        /// The difference.
        skew_ms: i64,
    },
    /// The landmark already delivered a measurement of the host at least as new.
    #[error(
        "landmark {landmark} already delivered a measurement of host {host} taken at {newest_ms} ms, not older than this one ({measured_at_ms} ms): replayed or out of order"
    )]
    Replayed {
        /// The landmark.
        landmark: String,
        /// The host.
        host: String,
        /// Its newest admitted measurement's time.
        newest_ms: i64,
        /// This one's time.
        measured_at_ms: i64,
    },
}

impl MeasurementRefusal {
    /// Stable reason code (metrics, logs, the verifier's findings).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownLandmark(_) => "landmark_not_enrolled",
            Self::WrongLandmark { .. } => "landmark_mismatch",
            Self::MovedLandmark { .. } => "landmark_moved",
            Self::UnknownHost(_) => "host_unknown",
            Self::NotHostKey { .. } => "key_not_host",
            Self::Skewed { .. } => "measurement_skewed",
            Self::Replayed { .. } => "measurement_replayed",
        }
    }
}

/// A host's location verdict and the compute it covers, as the books show it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLocation {
    /// The host.
    pub host: String,
    /// Its counted TPP.
    pub tpp: u64,
    /// The verdict and what it rests on.
    pub location: Location,
}

/// Counted compute by location verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocationSums {
    /// Counted TPP of location-verified hosts, by country.
    pub verified: Distribution,
    /// The part of `verified` whose hosts attested within the freshness window.
    pub verified_fresh: Distribution,
    /// Hosts per verdict.
    pub hosts: BTreeMap<Verdict, usize>,
    /// Counted TPP per verdict.
    pub tpp: BTreeMap<Verdict, u64>,
    /// Hosts whose measurements contradict their declared place.
    pub inconsistent: Vec<String>,
}

/// Every landmark's newest admitted measurement of each host, and each host's verdict as last
/// judged (kept until a measurement arrives, ages in or out, or the host's key, site or
/// country changes, so the books are summed without judging every host again).
#[derive(Debug, Clone, Default)]
pub struct LocationBook {
    rule: LocationRule,
    hosts: HashMap<String, BTreeMap<String, Measurement>>,
    judged: HashMap<String, Judged>,
}

/// A host's verdict, and what it holds for.
#[derive(Debug, Clone)]
struct Judged {
    key: KeyId,
    /// Whether the key was revoked when judged.
    revoked: bool,
    site: String,
    country: proto_accounting::CountryCode,
    /// The verdict holds from this instant...
    from_ms: i64,
    /// ...until this one (exclusive): the next instant a measurement counts or expires.
    until_ms: i64,
    location: Location,
}

impl LocationBook {
    /// Empty, judging by `rule`.
    pub fn new(rule: LocationRule) -> Self {
        Self {
            rule,
            hosts: HashMap::new(),
            judged: HashMap::new(),
        }
    }

    /// The rule it judges by.
    pub fn rule(&self) -> &LocationRule {
        &self.rule
    }

    /// Whether a signature-checked measurement may enter the books, received at
    /// `received_at_ms` from the landmark named `presenter` (its certificate; `None` when
    /// replaying the log, which keeps only what was admitted): the landmark is trusted and
    /// stands where it is registered, the host is in service and the key is its current one
    /// in `ledger`, the clocks agree, and it is newer than the landmark's last of the host.
    pub fn check(
        &self,
        measurement: &Measurement,
        presenter: Option<&str>,
        landmarks: &Landmarks,
        ledger: &Ledger,
        received_at_ms: i64,
    ) -> Result<(), MeasurementRefusal> {
        if let Some(presenter) = presenter
            && presenter != measurement.landmark
        {
            return Err(MeasurementRefusal::WrongLandmark {
                statement: measurement.landmark.clone(),
                presenter: presenter.to_owned(),
            });
        }
        let landmark = landmarks
            .get(&measurement.landmark)
            .ok_or_else(|| MeasurementRefusal::UnknownLandmark(measurement.landmark.clone()))?;
        if landmark.at != measurement.at {
            return Err(MeasurementRefusal::MovedLandmark {
                landmark: landmark.id.clone(),
                registered: landmark.at,
                stated: measurement.at,
            });
        }
        let host = ledger
            .host(&measurement.host)
            .filter(|h| h.decommissioned_at_ms.is_none())
            .ok_or_else(|| MeasurementRefusal::UnknownHost(measurement.host.clone()))?;
        let key = measurement.agent_key_id();
        let current = ledger
            .key(&key)
            .is_some_and(|k| k.host == measurement.host && k.revoked_at_ms.is_none());
        if !current || (host.attested() && host.key != key) {
            return Err(MeasurementRefusal::NotHostKey {
                host: measurement.host.clone(),
                key,
            });
        }
        let skew_ms = measurement
            .measured_at_ms
            .saturating_sub(received_at_ms)
            .saturating_abs();
        if skew_ms > MAX_SKEW_MS {
            return Err(MeasurementRefusal::Skewed {
                measured_at_ms: measurement.measured_at_ms,
                received_at_ms,
                skew_ms,
            });
        }
        if let Some(newest) = self
            .hosts
            .get(&measurement.host)
            .and_then(|by_landmark| by_landmark.get(&measurement.landmark))
            && newest.measured_at_ms >= measurement.measured_at_ms
        {
            return Err(MeasurementRefusal::Replayed {
                landmark: measurement.landmark.clone(),
                host: measurement.host.clone(),
                newest_ms: newest.measured_at_ms,
                measured_at_ms: measurement.measured_at_ms,
            });
        }
        Ok(())
    }

    /// Enters a measurement that passed [`LocationBook::check`] (and is durably logged).
    pub fn accept(&mut self, measurement: Measurement) {
        self.judged.remove(&measurement.host);
        self.hosts
            .entry(measurement.host.clone())
            .or_default()
            .insert(measurement.landmark.clone(), measurement);
    }

    /// Measurements held, in all.
    pub fn len(&self) -> usize {
        self.hosts.values().map(BTreeMap::len).sum()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// A host's location at `now_ms`, its declared place read from its record and the site
    /// registry (the site's coordinates, where given, must lie in every disk). Only
    /// measurements of the record's key count, and none once `ledger` has that key revoked:
    /// a revoked key proves nothing about where the host is.
    pub fn locate(
        &self,
        host: &str,
        record: &HostRecord,
        ledger: &Ledger,
        sites: &SiteRegistry,
        now_ms: i64,
    ) -> Location {
        let declared = Declared {
            country: record.country,
            site: sites
                .get(&record.site)
                .and_then(|site| site.coordinates)
                .and_then(|(lat, lon)| Coordinates::from_degrees(lat, lon).ok()),
        };
        let measurements: Vec<Measurement> = self
            .hosts
            .get(host)
            .filter(|_| !revoked(ledger, &record.key))
            .map(|by_landmark| by_landmark.values().cloned().collect())
            .unwrap_or_default();
        locate(&declared, &record.key, &measurements, now_ms, &self.rule)
    }

    /// Judges a host again if what its last verdict rests on changed: its key, site or
    /// country, or a measurement starting or ceasing to count since.
    fn refresh(
        &mut self,
        host: &str,
        record: &HostRecord,
        ledger: &Ledger,
        sites: &SiteRegistry,
        now_ms: i64,
    ) {
        let revoked = revoked(ledger, &record.key);
        let fresh = self.judged.get(host).is_some_and(|j| {
            j.key == record.key
                && j.revoked == revoked
                && j.site == record.site
                && j.country == record.country
                && (j.from_ms..j.until_ms).contains(&now_ms)
        });
        if fresh {
            return;
        }
        let location = self.locate(host, record, ledger, sites, now_ms);
        // The verdict changes only when a measurement of the key starts to count (its time
        // is reached) or stops (it is older than the maximum age).
        let until_ms = self
            .hosts
            .get(host)
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(|m| m.agent_key_id() == record.key)
            .flat_map(|m| {
                [
                    m.measured_at_ms,
                    m.measured_at_ms
                        .saturating_add(self.rule.max_age_ms)
                        .saturating_add(1),
                ]
            })
            .filter(|&at| at > now_ms)
            .min()
            .unwrap_or(i64::MAX);
        self.judged.insert(
            host.to_owned(),
            Judged {
                key: record.key,
                revoked,
                site: record.site.clone(),
                country: record.country,
                from_ms: now_ms,
                until_ms,
                location,
            },
        );
    }

    /// A host's location at `now_ms`, as [`LocationBook::locate`] gives it, judged again only
    /// when what it rests on changed since it was last judged.
    pub fn judge(
        &mut self,
        host: &str,
        record: &HostRecord,
        ledger: &Ledger,
        sites: &SiteRegistry,
        now_ms: i64,
    ) -> Location {
        self.refresh(host, record, ledger, sites, now_ms);
        match self.judged.get(host) {
            Some(judged) => judged.location.clone(),
            None => self.locate(host, record, ledger, sites, now_ms),
        }
    }

    fn verdict(
        &mut self,
        host: &str,
        record: &HostRecord,
        ledger: &Ledger,
        sites: &SiteRegistry,
        now_ms: i64,
    ) -> Verdict {
        self.refresh(host, record, ledger, sites, now_ms);
        self.judged
            .get(host)
            .map_or(Verdict::Unmeasured, |judged| judged.location.verdict)
    }

    /// Every counting host's location at `now_ms`, by host id.
    pub fn hosts(
        &mut self,
        ledger: &Ledger,
        sites: &SiteRegistry,
        now_ms: i64,
    ) -> Vec<HostLocation> {
        let mut out: Vec<HostLocation> = ledger
            .hosts()
            .filter(|(_, record)| record.counts())
            .map(|(host, record)| HostLocation {
                host: host.clone(),
                tpp: record.tpp,
                location: self.judge(host, record, ledger, sites, now_ms),
            })
            .collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// Counted compute by verdict at `now_ms`: the location-verified distribution beside the
    /// declared one.
    pub fn sums(&mut self, ledger: &Ledger, sites: &SiteRegistry, now_ms: i64) -> LocationSums {
        let mut sums = LocationSums::default();
        for (host, record) in ledger.hosts().filter(|(_, record)| record.counts()) {
            let verdict = if self.hosts.contains_key(host.as_str()) {
                self.verdict(host, record, ledger, sites, now_ms)
            } else {
                Verdict::Unmeasured
            };
            *sums.hosts.entry(verdict).or_default() += 1;
            let tpp = sums.tpp.entry(verdict).or_default();
            *tpp = tpp.saturating_add(record.tpp);
            match verdict {
                Verdict::Verified => {
                    // A sum the ledger's own distribution already holds cannot overflow.
                    let _ = sums.verified.add(record.country, record.tpp);
                    if ledger.live().is_fresh(host) {
                        let _ = sums.verified_fresh.add(record.country, record.tpp);
                    }
                }
                Verdict::Inconsistent => sums.inconsistent.push(host.clone()),
                Verdict::Unmeasured | Verdict::Unverified => {}
            }
        }
        sums.inconsistent.sort();
        sums
    }
}

/// Whether `ledger` has `key` revoked.
fn revoked(ledger: &Ledger, key: &KeyId) -> bool {
    ledger
        .key(key)
        .is_some_and(|record| record.revoked_at_ms.is_some())
}

#[cfg(test)]
mod tests;
