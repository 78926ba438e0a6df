//! The live distribution: each host's counted TPP in the country of its site, kept up to date
//! per attestation with one map update (never a rescan), shown two ways: "last known" (every
//! host that has not been decommissioned, stale ones included) and "verified within the
//! freshness window".

use std::collections::{BTreeMap, HashMap, HashSet};

use proto_accounting::evaluation::TppOverflow;
use proto_accounting::{CountryCode, Distribution, Evaluation, Policy, evaluate_located};

/// One host's place in the distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// Country of its enrolled site.
    pub country: CountryCode,
    /// Counted TPP (conflicting GPUs excluded).
    pub tpp: u64,
    /// The part of `tpp` at the hardware level.
    pub hardware_tpp: u64,
    /// When its last attestation was received.
    pub last_received_ms: i64,
}

/// A host's counted TPP and the part of it at the hardware level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sums {
    /// Counted TPP.
    pub tpp: u64,
    /// The part of `tpp` whose GPUs hold hardware evidence.
    pub hardware_tpp: u64,
}

/// Every attesting host and both distributions.
#[derive(Debug, Clone)]
pub struct LiveDistribution {
    freshness_ms: i64,
    hosts: HashMap<String, HostEntry>,
    /// Hosts ordered by last receipt, to find the ones going stale without a scan.
    by_age: BTreeMap<(i64, String), ()>,
    last_known: Distribution,
    fresh: Distribution,
    hardware_last_known: Distribution,
    hardware_fresh: Distribution,
    fresh_hosts: HashSet<String>,
}

impl LiveDistribution {
    /// Empty, with a host counting as verified for `freshness_ms` after each attestation.
    pub fn new(freshness_ms: i64) -> Self {
        Self {
            freshness_ms,
            hosts: HashMap::new(),
            by_age: BTreeMap::new(),
            last_known: Distribution::new(),
            fresh: Distribution::new(),
            hardware_last_known: Distribution::new(),
            hardware_fresh: Distribution::new(),
            fresh_hosts: HashSet::new(),
        }
    }

    /// How long a host counts as verified after its last attestation.
    pub fn freshness_ms(&self) -> i64 {
        self.freshness_ms
    }

    /// Records a host's latest attestation (or, at start-up, its stored state).
    pub fn upsert(
        &mut self,
        host: &str,
        country: CountryCode,
        sums: Sums,
        received_ms: i64,
        now_ms: i64,
    ) -> Result<(), TppOverflow> {
        let Sums { tpp, hardware_tpp } = sums;
        let entry = HostEntry {
            country,
            tpp,
            hardware_tpp,
            last_received_ms: received_ms,
        };
        let old = self.hosts.get(host).cloned();
        let was_fresh = self.fresh_hosts.contains(host);
        let is_fresh = now_ms - received_ms <= self.freshness_ms;
        for (sum, pick) in [
            (&mut self.last_known, tpp_of as fn(&HostEntry) -> u64),
            (&mut self.hardware_last_known, hardware_of),
        ] {
            sum.replace(
                old.as_ref().map(|e| (e.country, pick(e))),
                Some((country, pick(&entry))),
            )?;
        }
        for (sum, pick) in [
            (&mut self.fresh, tpp_of as fn(&HostEntry) -> u64),
            (&mut self.hardware_fresh, hardware_of),
        ] {
            let old_fresh = if was_fresh {
                old.as_ref().map(|e| (e.country, pick(e)))
            } else {
                None
            };
            sum.replace(old_fresh, is_fresh.then_some((country, pick(&entry))))?;
        }
        if is_fresh {
            self.fresh_hosts.insert(host.to_owned());
        } else {
            self.fresh_hosts.remove(host);
        }
        if let Some(old) = &old {
            self.by_age.remove(&(old.last_received_ms, host.to_owned()));
        }
        self.by_age.insert((received_ms, host.to_owned()), ());
        self.hosts.insert(host.to_owned(), entry);
        Ok(())
    }

    /// Removes a decommissioned host from both distributions.
    pub fn remove(&mut self, host: &str) {
        if let Some(old) = self.hosts.remove(host) {
            // Removing never overflows.
            let _ = self.last_known.replace(Some((old.country, old.tpp)), None);
            let _ = self
                .hardware_last_known
                .replace(Some((old.country, old.hardware_tpp)), None);
            if self.fresh_hosts.remove(host) {
                let _ = self.fresh.replace(Some((old.country, old.tpp)), None);
                let _ = self
                    .hardware_fresh
                    .replace(Some((old.country, old.hardware_tpp)), None);
            }
            self.by_age.remove(&(old.last_received_ms, host.to_owned()));
        }
    }

    /// Moves hosts silent for longer than the freshness window out of the verified
    /// distribution; returns them. Cost: the hosts that went stale, not all hosts.
    pub fn sweep(&mut self, now_ms: i64) -> Vec<String> {
        let cutoff = now_ms - self.freshness_ms;
        // Hosts leave the age index when they go stale, so each sweep visits only new ones.
        let expired: Vec<(i64, String)> = self
            .by_age
            .range(..(cutoff, String::new()))
            .map(|(key, ())| key.clone())
            .collect();
        let mut newly_stale = Vec::with_capacity(expired.len());
        for key in expired {
            self.by_age.remove(&key);
            let host = key.1;
            if self.fresh_hosts.remove(&host) {
                if let Some(entry) = self.hosts.get(&host) {
                    let _ = self.fresh.replace(Some((entry.country, entry.tpp)), None);
                    let _ = self
                        .hardware_fresh
                        .replace(Some((entry.country, entry.hardware_tpp)), None);
                }
                newly_stale.push(host);
            }
        }
        newly_stale
    }

    /// Hosts outside the freshness window (they keep counting in "last known").
    pub fn stale_hosts(&self) -> Vec<(&str, &HostEntry)> {
        let mut stale: Vec<(&str, &HostEntry)> = self
            .hosts
            .iter()
            .filter(|(host, _)| !self.fresh_hosts.contains(*host))
            .map(|(host, entry)| (host.as_str(), entry))
            .collect();
        stale.sort_by_key(|(host, _)| *host);
        stale
    }

    /// Whether a host attested within the freshness window (as of the last sweep).
    pub fn is_fresh(&self, host: &str) -> bool {
        self.fresh_hosts.contains(host)
    }

    /// How many hosts are stale, without listing them (for metrics on the ingest path).
    pub fn stale_count(&self) -> usize {
        self.hosts.len() - self.fresh_hosts.len()
    }

    /// One host.
    pub fn host(&self, host: &str) -> Option<&HostEntry> {
        self.hosts.get(host)
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True without hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Counted TPP per country, stale hosts included.
    pub fn last_known(&self) -> &Distribution {
        &self.last_known
    }

    /// Counted TPP per country of hosts verified within the freshness window.
    pub fn fresh(&self) -> &Distribution {
        &self.fresh
    }

    /// The part of `last_known` at the hardware level, per country.
    pub fn hardware_last_known(&self) -> &Distribution {
        &self.hardware_last_known
    }

    /// The part of `fresh` at the hardware level, per country.
    pub fn hardware_fresh(&self) -> &Distribution {
        &self.hardware_fresh
    }

    /// The verdicts on both views, `located` giving the location-verified part of each
    /// (`LocationSums::verified` and `verified_fresh`), which counts toward the Tier-1 and
    /// home minimums when the policy requires it.
    pub fn evaluate(
        &self,
        policy: &Policy,
        located: (&Distribution, &Distribution),
    ) -> (Evaluation, Evaluation) {
        (
            evaluate_located(policy, &self.last_known, located.0),
            evaluate_located(policy, &self.fresh, located.1),
        )
    }
}

fn tpp_of(entry: &HostEntry) -> u64 {
    entry.tpp
}

fn hardware_of(entry: &HostEntry) -> u64 {
    entry.hardware_tpp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> CountryCode {
        CountryCode::parse(text).unwrap()
    }

    fn sums(tpp: u64) -> Sums {
        Sums {
            tpp,
            hardware_tpp: 0,
        }
    }

    #[test]
    fn hosts_move_between_countries_without_a_rescan() {
        let mut live = LiveDistribution::new(180_000);
        live.upsert("a", code("US"), sums(126_720), 0, 0).unwrap();
        live.upsert("b", code("MY"), sums(126_720), 0, 0).unwrap();
        assert_eq!(live.last_known().total(), 253_440);
        live.upsert("b", code("SG"), sums(63_360), 1000, 1000)
            .unwrap();
        assert_eq!(live.last_known().of(code("MY")), 0);
        assert_eq!(live.last_known().of(code("SG")), 63_360);
        assert_eq!(live.fresh().total(), 190_080);
        live.remove("a");
        assert_eq!(
            (live.last_known().total(), live.fresh().total(), live.len()),
            (63_360, 63_360, 1)
        );
    }

    #[test]
    fn silent_hosts_go_stale_but_keep_counting_as_last_known() {
        let mut live = LiveDistribution::new(180_000);
        live.upsert("a", code("US"), sums(1000), 0, 0).unwrap();
        live.upsert("b", code("US"), sums(500), 100_000, 100_000)
            .unwrap();
        assert!(live.sweep(150_000).is_empty());
        assert_eq!(live.sweep(200_000), ["a"]);
        assert_eq!(live.sweep(200_000), Vec::<String>::new(), "reported once");
        assert_eq!(
            (live.last_known().total(), live.fresh().total()),
            (1500, 500)
        );
        assert_eq!(
            live.stale_hosts()
                .iter()
                .map(|(h, _)| *h)
                .collect::<Vec<_>>(),
            ["a"]
        );
        // It attests again: verified again.
        live.upsert("a", code("US"), sums(1000), 300_000, 300_000)
            .unwrap();
        assert_eq!(live.fresh().total(), 1500, "b is not swept yet");
        assert_eq!(live.sweep(300_000), ["b"]);
        assert_eq!(live.fresh().total(), 1000);
    }

    #[test]
    fn a_stored_state_older_than_the_window_starts_stale() {
        let mut live = LiveDistribution::new(180_000);
        live.upsert("old", code("DE"), sums(700), 0, 1_000_000)
            .unwrap();
        assert_eq!((live.last_known().total(), live.fresh().total()), (700, 0));
        assert_eq!(live.stale_hosts().len(), 1);
        assert_eq!(live.stale_count(), 1);
    }

    #[test]
    fn a_million_gpus_evaluate_from_per_country_sums() {
        // 125,000 hosts of 8 H100s over 12 countries; evaluation reads ~12 sums, not 125,000 hosts.
        let countries = [
            "US", "US", "US", "US", "US", "US", "DE", "JP", "GB", "MY", "IN", "SG",
        ];
        let mut live = LiveDistribution::new(180_000);
        for host in 0..125_000u32 {
            let country = code(countries[host as usize % countries.len()]);
            live.upsert(&format!("h{host}"), country, sums(8 * 15_840), 0, 0)
                .unwrap();
        }
        let policy = Policy::uveu_2025_us().unwrap();
        let (last_known, fresh) = live.evaluate(&policy, (live.last_known(), live.fresh()));
        assert_eq!(last_known.total_tpp, 1_000_000 * 15_840);
        assert_eq!(last_known, fresh);
        assert_eq!(last_known.countries.len(), 7);
        // MY, IN and SG each hold 1/12 = 8.33 %: above 7 %.
        assert_eq!(last_known.violations.len(), 3);
    }
}
