//! The report model. Field order is the JSON order; every list is sorted and every map is a
//! `BTreeMap`, so one input always gives the same bytes.
//!
//! Shares are exact decimal strings with three decimals, truncated toward zero (`"74.999"`);
//! `"0.000"` for an empty fleet.
//!
//! A report speaks of `[period_start_ms, as_of_ms)`: the whole month once it is over, the time
//! up to the instant it was made while it is not (`partial`). Each instant of that period is in
//! one [`State`]; the days and the month fold their instants' states with one rule
//! ([`State::fold`]).

use std::collections::BTreeMap;

use proto_accounting::{CountryCode, Rule, Tier};
use serde::{Deserialize, Serialize};

use crate::encoding;
use crate::input::{ConflictEvent, GapEvent, LogEvidence, StaleSpan};
use crate::month::Month;

/// The `format` value of this version of the report (2: verdict states, `as_of_ms`,
/// `partial`).
pub const FORMAT: &str = "veu-report/2";

/// A month's compliance report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// The month reported on.
    pub month: Month,
    /// First millisecond of the month (inclusive).
    pub period_start_ms: i64,
    /// First millisecond after the month (exclusive).
    pub period_end_ms: i64,
    /// The end of what the report speaks of (exclusive): `period_end_ms` once the month is
    /// over, the instant the report was made while it is not. Nothing after it is claimed:
    /// no day, violation, silence or verdict.
    pub as_of_ms: i64,
    /// The month is not over (`as_of_ms < period_end_ms`): the report is provisional, and
    /// another made later says more.
    pub partial: bool,
    /// The policy's id.
    pub policy_id: String,
    /// SHA-256 of the policy file.
    pub policy_digest: String,
    /// SHA-256 of the catalogue file.
    pub catalogue_digest: String,
    /// The collector's log key id.
    pub collector: String,
    /// The organisation the report is about, when the operator named it; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// The policy's thresholds, as the renderers need them.
    pub limits: Limits,
    /// The month in three facts.
    pub verdict: Verdict,
    /// The distribution at the end of the period: after the month's last change, or at
    /// `as_of_ms` for a partial report.
    pub end_of_month: EndOfMonth,
    /// One entry per UTC day of the period: none for a day that starts at or after
    /// `as_of_ms`.
    pub daily: Vec<Day>,
    /// Step series for the charts.
    pub series: Series,
    /// Every interval during which a rule was broken.
    pub violations: Vec<ViolationInterval>,
    /// Per country: where the month started and ended.
    pub inventory_changes: Vec<InventoryChange>,
    /// Silences overlapping the period, clipped to it.
    pub stale: Vec<StaleSpan>,
    /// Chain gaps in the period.
    pub gaps: Vec<GapEvent>,
    /// GPU identity conflicts in the period.
    pub conflicts: Vec<ConflictEvent>,
    /// Rejected submissions by reason.
    pub rejections: Vec<RejectionCount>,
    /// The transparency log's evidence, as given.
    pub log: LogEvidence,
    /// Where landmarks' round trips place the hosts counted at the end of the period
    /// (docs/location.md); absent when the collector trusts no landmark, and in reports made
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationSection>,
}

/// The location verdicts of the hosts counted at the end of the period. Shown beside the
/// declared distribution; it does not change the verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationSection {
    /// Counted hosts per verdict.
    pub hosts: LocationCounts,
    /// How many landmark measurements the verdicts were judged from.
    pub measurements: u64,
    /// Every counted host whose measurements contradict its declared place, by host id.
    pub inconsistent: Vec<InconsistentHost>,
}

/// Counted hosts per location verdict; together, every host counted at the end of the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationCounts {
    /// Without a current measurement (and every counted host the location book did not list).
    pub unmeasured: u64,
    /// Measured and consistent, but the region reaches beyond the site's country.
    pub unverified: u64,
    /// The region lies wholly within the site's country.
    pub verified: u64,
    /// The measurements contradict the declared place.
    pub inconsistent: u64,
}

/// A counted host whose measurements contradict its declared place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InconsistentHost {
    /// The host.
    pub host_id: String,
    /// What contradicts its declared place, in words.
    pub reason: String,
}

/// The thresholds of the policy the report was evaluated against, as percentages with three
/// decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Minimum share of the total in Tier-1 countries, together.
    pub tier1_min_share: String,
    /// The home rule, when the policy has one for its headquarters.
    pub home: Option<HomeLimit>,
    /// Maximum share in any single Tier-2 country.
    pub tier2_country_max_share: String,
    /// Whether any compute in a Tier-3 country breaks the policy.
    pub tier3_prohibited: bool,
    /// Whether Tier-1 compute counts toward the Tier-1 and home minimums only while its host
    /// is location-verified (the policy's `[location] require_for_tier1`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tier1_requires_location: bool,
}

/// The home rule: a minimum share in the headquarters country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeLimit {
    /// The headquarters country.
    #[serde(with = "encoding::country")]
    pub country: CountryCode,
    /// Its minimum share.
    pub min_share: String,
}

impl Limits {
    /// The limit a country's own share is read against, and its percentage (`None` when no
    /// limit applies). The home rule takes precedence over the country's tier.
    pub fn for_country(&self, country: CountryCode, tier: Tier) -> (Option<String>, LimitKind) {
        if let Some(home) = &self.home
            && home.country == country
        {
            return (Some(home.min_share.clone()), LimitKind::HomeMin);
        }
        match tier {
            Tier::One => (Some(self.tier1_min_share.clone()), LimitKind::Tier1MinTotal),
            Tier::Two => (
                Some(self.tier2_country_max_share.clone()),
                LimitKind::Tier2Max,
            ),
            Tier::Three if self.tier3_prohibited => {
                (Some("0.000".to_owned()), LimitKind::Prohibited)
            }
            Tier::Three => (None, LimitKind::None),
        }
    }
}

/// The verdict state of an instant, a day or the month (SPEC section 5).
///
/// An instant is `no_evidence` before the fleet's first evidence (the first host change the
/// collector accepted, whenever it was), and otherwise has the verdict
/// [`proto_accounting::Evaluation::verdict`] gives its distribution: `not_compliant`,
/// `no_compute` or `compliant`. The order of the variants is the fold's: a span (a day, the
/// month) is in the greatest state of its instants, so one broken rule makes it
/// `not_compliant`, else one instant with evidence and no counted compute makes it
/// `no_compute`, else one instant with evidence makes it `compliant` (its instants without
/// evidence are not claimed; `evidence_from_ms` says from when), and only a span without any
/// evidence is `no_evidence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No evidence yet: nothing can be said, and nothing is compliant.
    NoEvidence,
    /// Counted compute, every rule holding.
    Compliant,
    /// Evidence, but zero counted TPP: no rule can be evaluated; never compliant.
    NoCompute,
    /// A rule broken.
    NotCompliant,
}

impl State {
    /// The state's name in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            State::NoEvidence => "no_evidence",
            State::Compliant => "compliant",
            State::NoCompute => "no_compute",
            State::NotCompliant => "not_compliant",
        }
    }

    /// The state of a span made of `self` and `other`: the greater of the two.
    pub fn fold(self, other: State) -> State {
        self.max(other)
    }
}

impl From<proto_accounting::Verdict> for State {
    fn from(verdict: proto_accounting::Verdict) -> Self {
        match verdict {
            proto_accounting::Verdict::Compliant => State::Compliant,
            proto_accounting::Verdict::NotCompliant => State::NotCompliant,
            proto_accounting::Verdict::NoCompute => State::NoCompute,
        }
    }
}

/// The month's verdict, over `[period_start_ms, as_of_ms)` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The month's state: every instant of the period folded ([`State`]). `compliant` means
    /// every instant from `evidence_from_ms` to `as_of_ms` had counted compute and broke no
    /// rule.
    pub state: State,
    /// The first instant of the period with evidence: `period_start_ms` when the evidence
    /// starts before the month; `null` when the period has none. The period before it is
    /// `no_evidence` and the verdict claims nothing about it.
    pub evidence_from_ms: Option<i64>,
    /// The state at the period's last instant (just before `as_of_ms`).
    pub at_end: State,
    /// Number of violation intervals (entries of `violations`).
    pub violations_count: u64,
}

/// The distribution at the end of the period (the month's end, or `as_of_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndOfMonth {
    /// Total counted TPP.
    pub total_tpp: u64,
    /// The part of `total_tpp` whose GPUs hold NVIDIA-signed hardware evidence (fresh and
    /// bound to the collector's challenge); the rest rests on NVML alone.
    pub hardware_tpp: u64,
    /// `hardware_tpp`'s share of the total.
    pub hardware_share: String,
    /// The part of `total_tpp` on hosts whose location is verified within their site's
    /// country (docs/location.md); 0 when the report has no `location`.
    #[serde(default)]
    pub location_verified_tpp: u64,
    /// `location_verified_tpp`'s share of the total.
    #[serde(default = "zero_share")]
    pub location_verified_share: String,
    /// Share of the total in Tier-1 countries (location-verified compute only, when the
    /// policy requires it).
    pub tier1_share: String,
    /// TPP in Tier-1 countries left out of the Tier-1 and home shares because its hosts are
    /// not location-verified there (only when the policy requires it; absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tier1_unlocated_tpp: u64,
    /// Share in the headquarters country; `null` without a home rule.
    pub home_share: Option<String>,
    /// Every country with a counted host, by code.
    pub countries: Vec<CountryStanding>,
    /// Every broken rule, by rule then country.
    pub violations: Vec<RuleBreach>,
}

/// A country's share and the limit that applies to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryStanding {
    /// The country.
    #[serde(with = "encoding::country")]
    pub country: CountryCode,
    /// Its tier under the policy.
    #[serde(with = "encoding::tier")]
    pub tier: Tier,
    /// Its counted TPP.
    pub tpp: u64,
    /// Its share of the total.
    pub share: String,
    /// The part of `tpp` whose GPUs hold NVIDIA-signed hardware evidence.
    pub hardware_tpp: u64,
    /// `hardware_tpp`'s share of the country's `tpp`.
    pub hardware_share: String,
    /// The part of `tpp` on hosts whose location is verified within the country.
    #[serde(default)]
    pub location_verified_tpp: u64,
    /// `location_verified_tpp`'s share of the country's `tpp`.
    #[serde(default = "zero_share")]
    pub location_verified_share: String,
    /// The limit's percentage, e.g. `"7.000"`; `null` when no limit applies.
    pub limit: Option<String>,
    /// Which limit.
    pub limit_kind: LimitKind,
}

/// The limit a country's share is read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// A Tier-1 country: the minimum applies to the sum of all Tier-1 countries.
    Tier1MinTotal,
    /// The headquarters country under a home rule: a minimum of its own.
    HomeMin,
    /// A Tier-2 country: a maximum of its own.
    Tier2Max,
    /// A Tier-3 country where the policy prohibits compute: the limit is 0.
    Prohibited,
    /// A Tier-3 country under a policy that does not prohibit it.
    None,
}

impl LimitKind {
    /// The name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Tier1MinTotal => "tier1_min_total",
            LimitKind::HomeMin => "home_min",
            LimitKind::Tier2Max => "tier2_max",
            LimitKind::Prohibited => "prohibited",
            LimitKind::None => "none",
        }
    }
}

/// A rule broken by a distribution; `country` is absent for the Tier-1 minimum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleBreach {
    /// The rule's name.
    #[serde(with = "encoding::rule")]
    pub rule: Rule,
    /// The country it concerns.
    #[serde(
        with = "encoding::optional_country",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub country: Option<CountryCode>,
}

/// One UTC day: the state after all changes before the day's end, and the extremes seen at any
/// instant during the day. The day of a partial report's `as_of_ms` ends there (`partial`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    /// The date, `2026-11-01`.
    pub date: String,
    /// The day is cut at the report's `as_of_ms`: "the day's end" below is that instant.
    pub partial: bool,
    /// Total counted TPP at the day's end.
    pub total_tpp: u64,
    /// Tier-1 share at the day's end.
    pub tier1_share: String,
    /// Home share at the day's end; `null` without a home rule.
    pub home_share: Option<String>,
    /// The state at the day's end.
    pub state: State,
    /// Every instant of the day folded, as the month's verdict is.
    pub state_all_day: State,
    /// Every country with a counted host at the day's end, by code.
    pub countries: Vec<DayCountry>,
    /// Lowest Tier-1 share at any instant of the day with counted compute; `null` when the
    /// day had none (no evidence, or no compute).
    pub min_tier1_share: Option<String>,
    /// Highest single Tier-2 country share at any instant of the day with counted compute;
    /// `null` when no Tier-2 country had a host then.
    pub max_tier2_share: Option<PeakShare>,
}

/// A country's line in a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCountry {
    /// The country.
    #[serde(with = "encoding::country")]
    pub country: CountryCode,
    /// Its tier.
    #[serde(with = "encoding::tier")]
    pub tier: Tier,
    /// Its counted TPP.
    pub tpp: u64,
    /// Its share of the total.
    pub share: String,
}

/// The country with the highest share, and that share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeakShare {
    /// The country (the lowest code among equal shares).
    #[serde(with = "encoding::country")]
    pub country: CountryCode,
    /// Its share.
    pub share: String,
}

/// Step series: each point holds until the next one, the last until the end of the period.
/// See [`crate::series`] for how long series are thinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The Tier-1 share, from the first instant with evidence (`"0.000"` while nothing is
    /// counted); empty when the period has no evidence.
    pub tier1: Vec<SeriesPoint>,
    /// The home share, as the Tier-1 share; empty without a home rule.
    pub home: Vec<SeriesPoint>,
    /// Each Tier-2 country's share, by country code, from its first instant with a host.
    pub tier2: BTreeMap<String, Vec<SeriesPoint>>,
    /// The spans with evidence but no counted compute, oldest first: every share is undefined
    /// there (the series hold `"0.000"`), so charts leave them blank. Absent when there are
    /// none, and in reports made before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_compute: Vec<Span>,
}

/// A span of time, `[from_ms, to_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First instant.
    pub from_ms: i64,
    /// First instant after it (the end of the period when it lasts until then).
    pub to_ms: i64,
}

/// A share from an instant on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// From when, Unix milliseconds.
    pub at_ms: i64,
    /// The share.
    pub share: String,
}

/// A rule broken from `start_ms` until `end_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationInterval {
    /// The rule's name.
    #[serde(with = "encoding::rule")]
    pub rule: Rule,
    /// The country it concerns; absent for the Tier-1 minimum.
    #[serde(
        with = "encoding::optional_country",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub country: Option<CountryCode>,
    /// First instant broken (the month's start when already broken then).
    pub start_ms: i64,
    /// First instant complying again; `null` when still broken at the end of the period (the
    /// month's end, or `as_of_ms`).
    pub end_ms: Option<i64>,
    /// The worst share during the interval: the lowest for a minimum, the highest for a
    /// maximum or a prohibition.
    pub worst_share: String,
}

/// A country's inventory at the month's start and end. `hosts_added` and `hosts_removed`
/// count hosts entering and leaving the country during the month (a first attestation, a
/// move, a decommissioning), so `hosts_end = hosts_start + hosts_added - hosts_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryChange {
    /// The country.
    #[serde(with = "encoding::country")]
    pub country: CountryCode,
    /// Counted TPP before the month's first change.
    pub tpp_start: u64,
    /// Counted TPP after the month's last change.
    pub tpp_end: u64,
    /// Counted hosts at the start.
    pub hosts_start: u64,
    /// Counted hosts at the end.
    pub hosts_end: u64,
    /// Hosts that entered the country.
    pub hosts_added: u64,
    /// Hosts that left the country.
    pub hosts_removed: u64,
    /// Counted devices at the start.
    pub devices_start: u64,
    /// Counted devices at the end.
    pub devices_end: u64,
}

/// Rejected submissions for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionCount {
    /// The reason code.
    pub reason: String,
    /// How many in the month.
    pub count: u64,
}

/// The share of nothing, which reports made before a share existed stand for.
fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn zero_share() -> String {
    "0.000".to_owned()
}

impl Report {
    /// Pretty JSON with a trailing newline; the same report always gives the same bytes.
    pub fn to_json(&self) -> String {
        // Invariant: serializing cannot fail: every map key is a string and there are no
        // floats, so the fallback is never taken.
        let mut json = serde_json::to_string_pretty(self).unwrap_or_default();
        json.push('\n');
        json
    }
}
