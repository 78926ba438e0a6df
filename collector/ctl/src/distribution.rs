//! A collector's distribution as veuctl shows it, for `status` (live) and `audit distribution`
//! (replayed as of an instant): the last-known view through the plan table, the verified view
//! and the stale hosts, evaluated here with the collector's own policy file.

use anyhow::anyhow;
use collector_client::{BooksView, CountryFigures, HostEntry};
use proto_accounting::{
    Catalogue, CountryCode, Distribution, Evaluation, Policy, Verdict, evaluate_located,
};
use serde_json::{Map, Value, json};

use crate::Failure;
use crate::number::grouped;
use crate::plan::{FleetLine, PlanReport};
use crate::time::rfc3339;

/// The unit headroom is also given in.
const UNIT: &str = "H100-SXM5-80GB";

/// What a collector sent about its distribution.
#[derive(Debug)]
pub struct Views<'a> {
    /// Where it came from, for the table's first line.
    pub source: String,
    /// The collector's policy file, and the digest it says that file has.
    pub policy_toml: &'a str,
    pub policy_digest: &'a str,
    /// Empty when the collector does not say.
    pub catalogue_digest: &'a str,
    pub last_known: Option<&'a BooksView>,
    pub verified: Option<&'a BooksView>,
    pub hosts: u32,
    pub stale_hosts: &'a [HostEntry],
    /// Enrolled agents, when the caller may see them (admin).
    pub agents: Option<u32>,
}

/// The distribution evaluated, ready to print.
#[derive(Debug)]
pub struct Standing {
    report: PlanReport,
    last_known_tpp: u64,
    verified: Evaluation,
    hosts: u32,
    agents: Option<u32>,
    stale_hosts: Vec<HostEntry>,
    /// The last-known view's hardware-attested TPP: in total, and per country with that
    /// country's counted TPP.
    hardware_tpp: u64,
    hardware: Vec<(CountryCode, u64, u64)>,
    /// The last-known view's location-verified TPP: in total, per country with that
    /// country's counted TPP, verified hosts and hosts whose round trips contradict their
    /// declared place.
    located_tpp: u64,
    located: Vec<(CountryCode, u64, u64)>,
    /// Tier-1 TPP in total, and the location-verified part of it.
    tier1_tpp: u64,
    tier1_located_tpp: u64,
    located_hosts: u32,
    inconsistent: Vec<String>,
}

impl Standing {
    /// Evaluates both views with the collector's policy.
    pub fn evaluate(views: &Views<'_>) -> Result<Self, Failure> {
        let failed = |error: anyhow::Error| Failure { status: 1, error };
        // The collector's own policy file: limits and verdicts exactly as it applies them.
        let policy = Policy::from_toml(views.policy_toml).map_err(|e| {
            failed(anyhow!(
                "the collector sent a policy this veuctl cannot read: {e}"
            ))
        })?;
        let digest = policy.digest().to_string();
        if !views.policy_digest.is_empty() && views.policy_digest != digest {
            eprintln!(
                "warning: the collector names policy {} but sent a file whose digest is {digest}",
                views.policy_digest
            );
        }
        let catalogue = Catalogue::builtin().map_err(|e| failed(e.into()))?;
        let unit = catalogue
            .by_id(UNIT)
            .ok_or_else(|| failed(anyhow!("the catalogue has no {UNIT}")))?;
        let last_known = sums(views.last_known);
        let verified = sums(views.verified);
        let evaluation = evaluate_located(&policy, &last_known, &located_sums(views.last_known));
        let source = FleetLine {
            file: views.source.clone(),
            rows: views.hosts as usize,
        };
        Ok(Self {
            report: PlanReport::new(
                source,
                &last_known,
                views.catalogue_digest,
                &policy,
                &evaluation,
                unit,
            ),
            last_known_tpp: evaluation.total_tpp,
            verified: evaluate_located(&policy, &verified, &located_sums(views.verified)),
            hosts: views.hosts,
            agents: views.agents,
            stale_hosts: views.stale_hosts.to_vec(),
            hardware_tpp: views.last_known.map_or(0, |v| v.hardware_tpp),
            hardware: per_country(views.last_known, |line| line.hardware_tpp),
            located_tpp: views.last_known.map_or(0, |v| v.location_verified_tpp),
            located: per_country(views.last_known, |line| line.location_verified_tpp),
            tier1_tpp: tier1_sum(&policy, views.last_known, |line| line.tpp),
            tier1_located_tpp: tier1_sum(&policy, views.last_known, |line| {
                line.location_verified_tpp.min(line.tpp)
            }),
            located_hosts: views.last_known.map_or(0, |v| v.location_verified_hosts),
            inconsistent: views
                .last_known
                .map(|v| v.location_inconsistent.clone())
                .unwrap_or_default(),
        })
    }

    /// The verdict on the last-known view (what `--check` judges: only `compliant` passes).
    pub fn verdict(&self) -> Verdict {
        self.report.verdict()
    }

    /// `last_known` (the plan report), `verified`, `hosts`, `agents` (when known) and
    /// `stale_hosts`, for a caller to add its own fields to.
    pub fn json(&self) -> Map<String, Value> {
        let verified = &self.verified;
        let mut object = Map::new();
        object.insert(
            "last_known".into(),
            serde_json::to_value(&self.report).unwrap_or_default(),
        );
        object.insert(
            "verified".into(),
            json!({
                "compliant": verified.compliant(),
                "verdict": verified.verdict().as_str(),
                "total_tpp": verified.total_tpp,
                "violations": verified.violations.iter().map(|v| json!({
                    "rule": v.rule.as_str(),
                    "country": v.country.map(|c| c.to_string()),
                })).collect::<Vec<_>>(),
            }),
        );
        object.insert(
            "hardware".into(),
            json!({
                "tpp": self.hardware_tpp,
                "share_percent": percent(self.hardware_tpp, self.last_known_tpp),
                "countries": self.hardware.iter().map(|(country, tpp, hardware)| json!({
                    "country": country.to_string(),
                    "tpp": tpp,
                    "hardware_tpp": hardware,
                    "share_percent": percent(*hardware, *tpp),
                })).collect::<Vec<_>>(),
            }),
        );
        object.insert(
            "location".into(),
            json!({
                "verified_tpp": self.located_tpp,
                "verified_share_percent": percent(self.located_tpp, self.last_known_tpp),
                "tier1_tpp": self.tier1_tpp,
                "tier1_verified_tpp": self.tier1_located_tpp,
                "tier1_verified_share_percent": percent(self.tier1_located_tpp, self.tier1_tpp),
                "verified_hosts": self.located_hosts,
                "inconsistent_hosts": self.inconsistent,
                "countries": self.located.iter().map(|(country, tpp, located)| json!({
                    "country": country.to_string(),
                    "tpp": tpp,
                    "verified_tpp": located,
                    "share_percent": percent(*located, *tpp),
                })).collect::<Vec<_>>(),
            }),
        );
        object.insert("hosts".into(), self.hosts.into());
        if let Some(agents) = self.agents {
            object.insert("agents".into(), agents.into());
        }
        object.insert(
            "stale_hosts".into(),
            self.stale_hosts
                .iter()
                .map(|h| {
                    json!({
                        "host_id": h.host_id,
                        "country": h.country,
                        "tpp": h.tpp,
                        "last_attested_unix_ms": h.last_attested_unix_ms.unwrap_or(0),
                    })
                })
                .collect(),
        );
        object
    }

    /// The plan table, the verified view, hosts and stale hosts.
    pub fn table(&self) -> String {
        let mut out = self.report.table();
        out.push('\n');
        out.push_str(&format!(
            "Verified within the freshness window: {} ({} TPP of {} TPP)\n",
            self.verified.verdict().headline(),
            grouped(self.verified.total_tpp),
            grouped(self.last_known_tpp)
        ));
        out.push_str(&format!(
            "Hardware-attested (NVIDIA-signed GPU reports): {} TPP of {} TPP ({:.1} %); the rest rests on NVML alone\n",
            grouped(self.hardware_tpp),
            grouped(self.last_known_tpp),
            percent(self.hardware_tpp, self.last_known_tpp)
        ));
        for (country, tpp, hardware) in &self.hardware {
            out.push_str(&format!(
                "  {country}: {} TPP of {} TPP ({:.1} %)\n",
                grouped(*hardware),
                grouped(*tpp),
                percent(*hardware, *tpp)
            ));
        }
        out.push_str(&format!(
            "Location-verified (landmarks' round trips within the site's country): {} TPP of {} TPP ({:.1} %), {} host(s); the rest rests on the declared site\n",
            grouped(self.located_tpp),
            grouped(self.last_known_tpp),
            percent(self.located_tpp, self.last_known_tpp),
            self.located_hosts
        ));
        if self.tier1_tpp > 0 {
            out.push_str(&format!(
                "  Tier 1: {} TPP of {} TPP ({:.1} %)\n",
                grouped(self.tier1_located_tpp),
                grouped(self.tier1_tpp),
                percent(self.tier1_located_tpp, self.tier1_tpp)
            ));
        }
        for (country, tpp, located) in self.located.iter().filter(|_| self.located_tpp > 0) {
            out.push_str(&format!(
                "  {country}: {} TPP of {} TPP ({:.1} %)\n",
                grouped(*located),
                grouped(*tpp),
                percent(*located, *tpp)
            ));
        }
        for host in &self.inconsistent {
            out.push_str(&format!(
                "  LOCATION INCONSISTENT: {}: its round trips contradict its declared site\n",
                crate::table::escape(host)
            ));
        }
        out.push_str(&format!(
            "Hosts {} ({} stale)",
            self.hosts,
            self.stale_hosts.len()
        ));
        if let Some(agents) = self.agents {
            out.push_str(&format!(", agents {agents}"));
        }
        out.push('\n');
        for host in &self.stale_hosts {
            out.push_str(&format!(
                "  stale: {} in {} ({} TPP), last attested {}\n",
                host.host_id,
                host.country,
                grouped(host.tpp),
                rfc3339(host.last_attested_unix_ms.unwrap_or(0))
            ));
        }
        out
    }
}

/// A view's countries with their counted TPP and the part `part` picks (hardware-attested,
/// location-verified); countries the accounting does not know are left out.
fn per_country(
    view: Option<&BooksView>,
    part: fn(&CountryFigures) -> u64,
) -> Vec<(CountryCode, u64, u64)> {
    view.iter()
        .flat_map(|v| &v.countries)
        .filter_map(|line| {
            let country = CountryCode::parse(&line.country).ok()?;
            Some((country, line.tpp, part(line).min(line.tpp)))
        })
        .collect()
}

/// `part` of `total` in percent, for display only (0 for no total).
fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    }
}

/// A view's per-country sums (countries the accounting does not know are left out).
/// `part` summed over a view's Tier-1 countries.
fn tier1_sum(policy: &Policy, view: Option<&BooksView>, part: fn(&CountryFigures) -> u64) -> u64 {
    view.iter()
        .flat_map(|v| &v.countries)
        .filter(|line| {
            CountryCode::parse(&line.country)
                .is_ok_and(|country| policy.tier(country) == proto_accounting::Tier::One)
        })
        .map(part)
        .fold(0u64, u64::saturating_add)
}

fn sums(view: Option<&BooksView>) -> Distribution {
    sums_of(view, |line| line.tpp)
}

/// A view's location-verified TPP per country (never more than the country's counted TPP).
fn located_sums(view: Option<&BooksView>) -> Distribution {
    sums_of(view, |line| line.location_verified_tpp.min(line.tpp))
}

fn sums_of(view: Option<&BooksView>, part: fn(&CountryFigures) -> u64) -> Distribution {
    let mut distribution = Distribution::new();
    for line in view.iter().flat_map(|v| &v.countries) {
        if let Ok(country) = CountryCode::parse(&line.country) {
            let _ = distribution.add(country, part(line));
        }
    }
    distribution
}
