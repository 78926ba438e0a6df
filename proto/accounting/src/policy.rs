//! The compliance policy as data: tiers, thresholds, headquarters, the H100 reference and which
//! devices count. Read from TOML, validated with every error reported by its key.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::catalogue::{Accelerator, Catalogue};
use crate::evaluation::Tier;
use crate::{CountryCode, Digest, FieldError, Percent, join_lines};

/// The 2025 UVEU policy with a US headquarters, compiled in as the default.
pub const UVEU_2025_US_TOML: &str = include_str!("../../../deploy/policies/uveu-2025-us.toml");

/// Every policy this release ships (`deploy/policies/`), by file name: the texts an id such as
/// `uveu-2025-us` stands for, so that an offline verifier can tell a shipped policy from an
/// altered one that kept its id.
pub const SHIPPED: &[(&str, &str)] = &[
    ("uveu-2025-us.toml", UVEU_2025_US_TOML),
    (
        "uveu-2025-us-simulated.toml",
        include_str!("../../../deploy/policies/uveu-2025-us-simulated.toml"),
    ),
    (
        "uveu-2026-us.toml",
        include_str!("../../../deploy/policies/uveu-2026-us.toml"),
    ),
];

/// The text of the shipped policy file `file` (e.g. `uveu-2025-us-simulated.toml`).
pub fn shipped(file: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, text)| *text)
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Stable identifier, e.g. `uveu-2025-us`.
    pub id: String,
    /// Incremented on every change of the same policy.
    pub version: u32,
    /// Human title.
    pub title: String,
    /// First day the policy applies, `YYYY-MM-DD`.
    pub effective: String,
    /// Where the rule is published.
    pub source: Vec<String>,
    /// The authorisation holder's headquarters country.
    pub headquarters: CountryCode,
    /// TPP of one H100 equivalent.
    pub h100_reference_tpp: u64,
    /// Minimum share of all counted compute in Tier-1 countries.
    pub tier1_min_share: Percent,
    /// Minimum share in the headquarters country, when the home rule applies to it.
    pub home_min_share: Option<Percent>,
    /// Maximum share in any single Tier-2 country.
    pub tier2_country_max_share: Percent,
    /// Whether any compute in a Tier-3 country is a violation.
    pub tier3_prohibited: bool,
    /// Which devices count.
    pub counting: Counting,
    /// Which devices need NVIDIA-signed hardware evidence to count.
    pub evidence: EvidenceRule,
    /// How landmarks' round trips bound where hosts are (the `[location]` table).
    pub location: LocationTerms,
    tier1: BTreeSet<CountryCode>,
    tier3: BTreeSet<CountryCode>,
    digest: Digest,
}

/// Which devices count as AI compute, and what to do with devices the catalogue lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counting {
    /// A catalogue device counts when its ECCN starts with one of these...
    pub eccn_prefixes: Vec<String>,
    /// ...or its TPP is at least this.
    pub min_tpp: u64,
    /// How an unknown device is priced.
    pub unknown_devices: UnknownDevices,
    /// Whether simulated (fixture) evidence is accepted.
    pub simulated_evidence: SimulatedEvidence,
}

/// Which devices count only with NVIDIA-signed hardware evidence, and how long such evidence
/// holds after the challenge it answered (the `[evidence]` table; absent: nothing required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRule {
    /// Whose compute needs hardware evidence to count.
    pub require_hardware: RequireHardware,
    /// Architectures (NVML's names, compared case-insensitively) whose GPUs sign reports.
    pub hardware_architectures: Vec<String>,
    /// How long a verified report keeps a device at the hardware level after the challenge it
    /// answered was issued.
    pub hardware_max_age_ms: i64,
}

impl Default for EvidenceRule {
    fn default() -> Self {
        Self {
            require_hardware: RequireHardware::None,
            hardware_architectures: vec!["Hopper".into(), "Blackwell".into()],
            hardware_max_age_ms: DEFAULT_HARDWARE_MAX_AGE_MINUTES * 60_000,
        }
    }
}

/// How round-trip measurements turn into where a host can be (the `[location]` table;
/// absent: the defaults, which are sound on any network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationTerms {
    /// Assumed fastest signal speed, metres per millisecond (rounded up from the policy's
    /// km/ms). Sound only if no path between landmark and host is faster.
    pub speed_m_per_ms: u64,
    /// A measurement counts this long after the landmark took it.
    pub max_age_ms: i64,
    /// Compute in a Tier-1 country counts toward the Tier-1 and home minimums only while its
    /// host is location-verified there (`require_for_tier1`); the rest still counts in the
    /// total. Off by default.
    pub required_for_tier1: bool,
}

/// Light in vacuum, metres per millisecond, rounded up: the default speed, sound whatever the
/// path.
pub const LIGHT_M_PER_MS: u64 = 299_793;

/// The default `[location] max_age_hours`.
pub const DEFAULT_LOCATION_MAX_AGE_HOURS: i64 = 24;

impl Default for LocationTerms {
    fn default() -> Self {
        Self {
            speed_m_per_ms: LIGHT_M_PER_MS,
            max_age_ms: DEFAULT_LOCATION_MAX_AGE_HOURS * 3_600_000,
            required_for_tier1: false,
        }
    }
}

/// The default `[evidence] hardware_max_age_minutes`: three default challenge periods.
pub const DEFAULT_HARDWARE_MAX_AGE_MINUTES: i64 = 15;

impl EvidenceRule {
    /// Whether a GPU of `architecture` can sign hardware evidence.
    pub fn capable(&self, architecture: &str) -> bool {
        let architecture = architecture.trim();
        self.hardware_architectures
            .iter()
            .any(|a| a.eq_ignore_ascii_case(architecture))
    }

    /// Whether a GPU of `architecture` counts without hardware evidence.
    pub fn counts_without_hardware(&self, architecture: &str) -> bool {
        match self.require_hardware {
            RequireHardware::None => true,
            RequireHardware::Capable => !self.capable(architecture),
            RequireHardware::All => false,
        }
    }

    /// Whether hardware evidence proven by a challenge issued at `challenge_ms` still holds at
    /// `now_ms`.
    pub fn holds(&self, challenge_ms: i64, now_ms: i64) -> bool {
        now_ms.saturating_sub(challenge_ms) <= self.hardware_max_age_ms
    }
}

/// Whose compute needs hardware evidence to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequireHardware {
    /// NVML evidence counts for every device; the hardware-attested share is shown beside it.
    None,
    /// GPUs of the architectures that sign reports count only with hardware evidence.
    Capable,
    /// No GPU counts without hardware evidence.
    All,
}

impl RequireHardware {
    /// The policy file's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Capable => "capable",
            Self::All => "all",
        }
    }
}

/// The conservative choice for a device the catalogue does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownDevices {
    /// Count it at the highest TPP of its architecture (of the whole catalogue when the
    /// architecture is unknown or has no entry).
    HighestOfArchitecture,
    /// Count it at the highest TPP in the catalogue.
    HighestInCatalogue,
    /// Refuse evidence that contains it.
    Reject,
}

/// Whether evidence made from fixture data is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimulatedEvidence {
    /// Production: simulated evidence never counts.
    Reject,
    /// Demonstrations and tests.
    Accept,
}

/// A device the policy refuses to price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the policy rejects evidence with unknown devices")]
pub struct UnknownDeviceRejected;

/// A policy that could not be read: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML of the expected shape (syntax, unknown key, wrong type, missing key).
    #[error("policy is not valid: {0}")]
    Parse(String),
    /// Well-formed TOML with invalid values.
    #[error("policy has {} error(s):\n{}", .0.len(), join_lines(.0))]
    Invalid(Vec<FieldError>),
}

impl PolicyError {
    /// Each problem on its own line's worth of text: the parse error, or every field error.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Parse(message) => vec![message.clone()],
            Self::Invalid(fields) => fields.iter().map(FieldError::to_string).collect(),
        }
    }
}

impl Policy {
    /// The shipped 2025 UVEU policy with a US headquarters.
    pub fn uveu_2025_us() -> Result<Self, PolicyError> {
        Self::from_toml(UVEU_2025_US_TOML)
    }

    /// Reads and validates a policy file, reporting every invalid value with its key.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|error| PolicyError::Parse(error.to_string()))?;
        let mut errors = Vec::new();
        let policy = validate(raw, Digest::of(text.as_bytes()), &mut errors);
        match policy {
            Some(policy) if errors.is_empty() => Ok(policy),
            _ => Err(PolicyError::Invalid(errors)),
        }
    }

    /// SHA-256 of the policy file's exact bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The tier of a country under this policy.
    pub fn tier(&self, country: CountryCode) -> Tier {
        if self.tier1.contains(&country) {
            Tier::One
        } else if self.tier3.contains(&country) {
            Tier::Three
        } else {
            Tier::Two
        }
    }

    /// Tier-1 countries.
    pub fn tier1(&self) -> impl Iterator<Item = CountryCode> + '_ {
        self.tier1.iter().copied()
    }

    /// Tier-3 countries.
    pub fn tier3(&self) -> impl Iterator<Item = CountryCode> + '_ {
        self.tier3.iter().copied()
    }

    /// The home rule's country, when the home rule applies.
    pub fn home_rule(&self) -> Option<(CountryCode, Percent)> {
        self.home_min_share.map(|share| (self.headquarters, share))
    }

    /// Whether a catalogue device counts as AI compute under this policy.
    pub fn counts(&self, accelerator: &Accelerator) -> bool {
        let by_eccn = accelerator.eccn.as_deref().is_some_and(|eccn| {
            self.counting
                .eccn_prefixes
                .iter()
                .any(|prefix| eccn.trim().starts_with(prefix.as_str()))
        });
        by_eccn || accelerator.tpp >= self.counting.min_tpp
    }

    /// The TPP to count for a device the catalogue does not know.
    pub fn unknown_device_tpp(
        &self,
        catalogue: &Catalogue,
        architecture: Option<&str>,
    ) -> Result<u64, UnknownDeviceRejected> {
        let highest = |filter: &dyn Fn(&Accelerator) -> bool| {
            catalogue
                .entries()
                .iter()
                .filter(|entry| filter(entry))
                .map(|entry| entry.tpp)
                .max()
        };
        let everything = highest(&|_| true).unwrap_or(0);
        match self.counting.unknown_devices {
            UnknownDevices::Reject => Err(UnknownDeviceRejected),
            UnknownDevices::HighestInCatalogue => Ok(everything),
            UnknownDevices::HighestOfArchitecture => Ok(architecture
                .and_then(|arch| highest(&|entry| entry.architecture.eq_ignore_ascii_case(arch)))
                .unwrap_or(everything)),
        }
    }

    /// H100 equivalents of `tpp`, for display only.
    pub fn h100e(&self, tpp: u64) -> f64 {
        // Display only: every decision is made on integer TPP.
        tpp as f64 / self.h100_reference_tpp as f64
    }
}

fn validate(raw: RawPolicy, digest: Digest, errors: &mut Vec<FieldError>) -> Option<Policy> {
    let mut error = |key: &str, message: String| errors.push(FieldError::new(key, message));

    let id = raw.id.trim().to_owned();
    if id.is_empty() || id.contains(char::is_whitespace) {
        error("id", "must be non-empty, without spaces".into());
    }
    if raw.version == 0 {
        error("version", "must be at least 1".into());
    }
    if !is_date(&raw.effective) {
        error(
            "effective",
            format!("{:?} is not a date written YYYY-MM-DD", raw.effective),
        );
    }
    let headquarters = CountryCode::parse(&raw.headquarters)
        .map_err(|e| error("headquarters", e.to_string()))
        .ok();
    if raw.h100_reference_tpp == 0 {
        error("h100_reference_tpp", "must be greater than zero".into());
    }

    let tier1 = country_set("tiers.tier1", &raw.tiers.tier1, &mut error);
    let tier3 = country_set("tiers.tier3", &raw.tiers.tier3, &mut error);
    for both in tier1.intersection(&tier3) {
        error("tiers", format!("{both} is in both tier1 and tier3"));
    }

    let tier1_min_share = percent(
        "rules.tier1_min_share",
        &raw.rules.tier1_min_share,
        &mut error,
    );
    let tier2_max = percent(
        "rules.tier2_country_max_share",
        &raw.rules.tier2_country_max_share,
        &mut error,
    );
    let home = raw.rules.home.as_ref().map(|home| {
        let share = percent("rules.home.min_share", &home.min_share, &mut error);
        let key = "rules.home.applies_to_headquarters";
        (
            share,
            country_set(key, &home.applies_to_headquarters, &mut error),
        )
    });
    let home_min_share = match (&home, headquarters) {
        (Some((share, applies)), Some(hq)) if applies.contains(&hq) => *share,
        _ => None,
    };

    let evidence = raw.evidence.map_or_else(EvidenceRule::default, |raw| {
        let defaults = EvidenceRule::default();
        let minutes = raw
            .hardware_max_age_minutes
            .unwrap_or(DEFAULT_HARDWARE_MAX_AGE_MINUTES);
        if !(1..=24 * 60).contains(&minutes) {
            error(
                "evidence.hardware_max_age_minutes",
                format!("{minutes} is not between 1 and 1440 minutes"),
            );
        }
        let architectures = raw
            .hardware_architectures
            .unwrap_or(defaults.hardware_architectures);
        for (i, name) in architectures.iter().enumerate() {
            if name.trim().is_empty() {
                error(
                    &format!("evidence.hardware_architectures[{i}]"),
                    "must not be empty".into(),
                );
            }
        }
        EvidenceRule {
            require_hardware: raw.require_hardware,
            hardware_architectures: architectures,
            hardware_max_age_ms: minutes.saturating_mul(60_000),
        }
    });

    let location = raw.location.map_or_else(LocationTerms::default, |raw| {
        let defaults = LocationTerms::default();
        let speed = raw.speed_km_per_ms.unwrap_or(299.792_458);
        let speed_m_per_ms = if speed.is_finite() && (100.0..=300.0).contains(&speed) {
            (speed * 1000.0).ceil() as u64
        } else {
            error(
                "location.speed_km_per_ms",
                format!(
                    "{speed} is not between 100 (slower than any real path) and 300 km/ms (light in vacuum is 299.792458)"
                ),
            );
            defaults.speed_m_per_ms
        };
        let hours = raw.max_age_hours.unwrap_or(DEFAULT_LOCATION_MAX_AGE_HOURS);
        if !(1..=24 * 31).contains(&hours) {
            error(
                "location.max_age_hours",
                format!("{hours} is not between 1 and 744 hours"),
            );
        }
        LocationTerms {
            speed_m_per_ms,
            max_age_ms: hours.saturating_mul(3_600_000),
            required_for_tier1: raw.require_for_tier1,
        }
    });

    for (i, prefix) in raw.counting.eccn_prefixes.iter().enumerate() {
        if prefix.trim().is_empty() {
            error(
                &format!("counting.eccn_prefixes[{i}]"),
                "must not be empty".into(),
            );
        }
    }

    Some(Policy {
        id,
        version: raw.version,
        title: raw.title,
        effective: raw.effective,
        source: raw.source,
        headquarters: headquarters?,
        h100_reference_tpp: raw.h100_reference_tpp,
        tier1_min_share: tier1_min_share?,
        home_min_share,
        tier2_country_max_share: tier2_max?,
        tier3_prohibited: raw.rules.tier3_prohibited,
        counting: Counting {
            eccn_prefixes: raw.counting.eccn_prefixes,
            min_tpp: raw.counting.min_tpp,
            unknown_devices: raw.counting.unknown_devices,
            simulated_evidence: raw.counting.simulated_evidence,
        },
        evidence,
        location,
        tier1,
        tier3,
        digest,
    })
}

/// A list of country codes, each valid and listed once.
fn country_set(
    key: &str,
    list: &[String],
    error: &mut impl FnMut(&str, String),
) -> BTreeSet<CountryCode> {
    let mut set = BTreeSet::new();
    for (i, text) in list.iter().enumerate() {
        match CountryCode::parse(text) {
            Err(e) => error(&format!("{key}[{i}]"), e.to_string()),
            Ok(code) if !set.insert(code) => {
                error(&format!("{key}[{i}]"), format!("{code} is listed twice"))
            }
            Ok(_) => {}
        }
    }
    set
}

fn percent(key: &str, value: &RawPercent, error: &mut impl FnMut(&str, String)) -> Option<Percent> {
    value.parse().map_err(|message| error(key, message)).ok()
}

/// `YYYY-MM-DD` with a real month and day.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts[..] else {
        return false;
    };
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (Some(year), Some(month), Some(day)) = (number(year, 4), number(month, 2), number(day, 2))
    else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: String,
    version: u32,
    #[serde(default)]
    title: String,
    effective: String,
    headquarters: String,
    h100_reference_tpp: u64,
    #[serde(default)]
    source: Vec<String>,
    tiers: RawTiers,
    rules: RawRules,
    counting: RawCounting,
    evidence: Option<RawEvidence>,
    location: Option<RawLocation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    speed_km_per_ms: Option<f64>,
    max_age_hours: Option<i64>,
    #[serde(default)]
    require_for_tier1: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    require_hardware: RequireHardware,
    hardware_architectures: Option<Vec<String>>,
    hardware_max_age_minutes: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    tier1: Vec<String>,
    tier3: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    tier1_min_share: RawPercent,
    tier2_country_max_share: RawPercent,
    tier3_prohibited: bool,
    home: Option<RawHomeRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHomeRule {
    min_share: RawPercent,
    applies_to_headquarters: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounting {
    eccn_prefixes: Vec<String>,
    min_tpp: u64,
    unknown_devices: UnknownDevices,
    simulated_evidence: SimulatedEvidence,
}

/// A percentage written as an integer (`75`) or a decimal string (`"7.5"`); TOML floats are
/// refused because they cannot hold every decimal exactly.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawPercent {
    Integer(i64),
    Text(String),
    Float(f64),
}

impl RawPercent {
    fn parse(&self) -> Result<Percent, String> {
        match self {
            Self::Integer(value) => u8::try_from(*value)
                .ok()
                .and_then(Percent::whole)
                .ok_or_else(|| format!("{value} is not a percentage between 0 and 100")),
            Self::Text(text) => Percent::parse(text).map_err(|e| e.to_string()),
            Self::Float(value) => Err(format!(
                "{value} is a float; write fractional percentages as strings, e.g. \"{value}\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UVEU_2026_US: &str = SHIPPED[2].1;

    fn code(text: &str) -> CountryCode {
        CountryCode::parse(text).unwrap()
    }

    #[test]
    fn shipped_2025_policy_has_the_rule_as_published() {
        let policy = Policy::uveu_2025_us().unwrap();
        assert_eq!(policy.tier1().count(), 19);
        assert_eq!(policy.tier(code("US")), Tier::One);
        assert_eq!(policy.tier(code("TW")), Tier::One);
        assert_eq!(policy.tier(code("MY")), Tier::Two);
        assert_eq!(policy.tier(code("KH")), Tier::Three);
        assert_eq!(policy.tier(code("MO")), Tier::Three);
        assert_eq!(policy.tier1_min_share, Percent::whole(75).unwrap());
        assert_eq!(
            policy.home_rule(),
            Some((code("US"), Percent::whole(50).unwrap()))
        );
        assert_eq!(policy.tier2_country_max_share, Percent::whole(7).unwrap());
        assert_eq!(policy.h100_reference_tpp, 15840);
        assert_eq!(
            policy.counting.simulated_evidence,
            SimulatedEvidence::Reject
        );
    }

    #[test]
    fn shipped_2026_variant_drops_cambodia_only() {
        let y2025 = Policy::uveu_2025_us().unwrap();
        let y2026 = Policy::from_toml(UVEU_2026_US).unwrap();
        let removed: Vec<_> = y2025
            .tier3()
            .filter(|c| y2026.tier(*c) != Tier::Three)
            .collect();
        assert_eq!(removed, [code("KH")]);
        assert_eq!(y2026.tier3().count() + 1, y2025.tier3().count());
        assert_eq!(y2026.tier(code("KH")), Tier::Two);
        assert_ne!(y2025.digest(), y2026.digest());
    }

    #[test]
    fn non_us_headquarters_turns_the_home_rule_off() {
        let text = UVEU_2025_US_TOML.replace("headquarters = \"US\"", "headquarters = \"DE\"");
        let policy = Policy::from_toml(&text).unwrap();
        assert_eq!(policy.home_rule(), None);
        let text = text.replace(
            "applies_to_headquarters = [\"US\"]",
            "applies_to_headquarters = [\"US\", \"DE\"]",
        );
        let policy = Policy::from_toml(&text).unwrap();
        assert_eq!(
            policy.home_rule(),
            Some((code("DE"), Percent::whole(50).unwrap()))
        );
    }

    #[test]
    fn reports_every_invalid_value_with_its_key() {
        let text = UVEU_2025_US_TOML
            .replace("version = 1", "version = 0")
            .replace("effective = \"2025-01-15\"", "effective = \"2025-02-30\"")
            .replace("headquarters = \"US\"", "headquarters = \"USA\"")
            .replace("\"AU\"", "\"XX\"")
            .replace("\"GB\"", "\"GB\", \"gb\", \"CN\"")
            .replace("tier1_min_share = 75", "tier1_min_share = 75.5")
            .replace(
                "tier2_country_max_share = 7",
                "tier2_country_max_share = \"107\"",
            );
        let Err(PolicyError::Invalid(errors)) = Policy::from_toml(&text) else {
            panic!("expected validation errors");
        };
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "version",
                "effective",
                "headquarters",
                "tiers.tier1[1]",
                "tiers.tier1[19]",
                "tiers",
                "rules.tier1_min_share",
                "rules.tier2_country_max_share",
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = UVEU_2025_US_TOML.replace("[counting]", "[counting]\nmin_tp = 3");
        let error = Policy::from_toml(&text).unwrap_err().to_string();
        assert!(error.contains("min_tp"), "{error}");
    }

    #[test]
    fn dates_are_checked() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2025-02-29"));
        assert!(!is_date("2025-1-15"));
        assert!(!is_date("2025-13-01"));
    }

    #[test]
    fn unknown_devices_are_priced_conservatively() {
        let catalogue = Catalogue::builtin().unwrap();
        let mut policy = Policy::uveu_2025_us().unwrap();
        let hopper = policy
            .unknown_device_tpp(&catalogue, Some("hopper"))
            .unwrap();
        assert_eq!(hopper, 15840);
        let highest = catalogue.entries().iter().map(|a| a.tpp).max().unwrap();
        assert_eq!(
            policy.unknown_device_tpp(&catalogue, None).unwrap(),
            highest
        );
        assert_eq!(
            policy
                .unknown_device_tpp(&catalogue, Some("Kepler"))
                .unwrap(),
            highest
        );
        policy.counting.unknown_devices = UnknownDevices::Reject;
        assert!(
            policy
                .unknown_device_tpp(&catalogue, Some("Hopper"))
                .is_err()
        );
    }

    fn with_evidence(table: &str) -> Result<Policy, PolicyError> {
        Policy::from_toml(&format!("{}\n{table}", SHIPPED[0].1))
    }

    #[test]
    fn the_location_table_is_checked_with_its_keys() {
        let base = UVEU_2025_US_TOML;
        let policy = Policy::from_toml(base).unwrap();
        assert_eq!(policy.location, LocationTerms::default());
        assert_eq!(policy.location.speed_m_per_ms, 299_793);
        let tight = format!("{base}\n[location]\nspeed_km_per_ms = 204\nmax_age_hours = 6\n");
        let policy = Policy::from_toml(&tight).unwrap();
        assert_eq!(policy.location.speed_m_per_ms, 204_000);
        assert_eq!(policy.location.max_age_ms, 6 * 3_600_000);
        assert!(!policy.location.required_for_tier1);
        let required = format!("{base}\n[location]\nrequire_for_tier1 = true\n");
        assert!(
            Policy::from_toml(&required)
                .unwrap()
                .location
                .required_for_tier1
        );
        let mistyped = format!("{base}\n[location]\nrequire_for_tier1 = \"yes\"\n");
        let error = Policy::from_toml(&mistyped).unwrap_err().to_string();
        assert!(error.contains("require_for_tier1"), "{error}");
        let bad = format!("{base}\n[location]\nspeed_km_per_ms = 400\nmax_age_hours = 0\n");
        let error = Policy::from_toml(&bad).unwrap_err().to_string();
        assert!(error.contains("location.speed_km_per_ms"), "{error}");
        assert!(error.contains("location.max_age_hours"), "{error}");
    }

    #[test]
    fn shipped_policies_require_no_hardware_evidence() {
        let policy = Policy::uveu_2025_us().unwrap();
        assert_eq!(policy.evidence, EvidenceRule::default());
        assert!(policy.evidence.counts_without_hardware("Hopper"));
        assert!(policy.evidence.capable("hopper "));
        assert!(!policy.evidence.capable("Ampere"));
    }

    #[test]
    fn evidence_rule_reads_each_choice() {
        let capable = with_evidence(
            "[evidence]\nrequire_hardware = \"capable\"\nhardware_max_age_minutes = 10\n",
        )
        .unwrap()
        .evidence;
        assert!(!capable.counts_without_hardware("Hopper"));
        assert!(!capable.counts_without_hardware("BLACKWELL"));
        assert!(capable.counts_without_hardware("Ampere"));
        assert!(capable.holds(0, 600_000));
        assert!(!capable.holds(0, 600_001));
        let all = with_evidence("[evidence]\nrequire_hardware = \"all\"\n")
            .unwrap()
            .evidence;
        assert!(!all.counts_without_hardware("Ampere"));
        assert_eq!(all.hardware_max_age_ms, 15 * 60_000);
    }

    #[test]
    fn evidence_rule_errors_name_their_key() {
        let error = with_evidence(
            "[evidence]\nrequire_hardware = \"capable\"\nhardware_max_age_minutes = 0\nhardware_architectures = [\"\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("evidence.hardware_max_age_minutes"),
            "{error}"
        );
        assert!(
            error.contains("evidence.hardware_architectures[0]"),
            "{error}"
        );
        let error = with_evidence("[evidence]\nrequire_hardware = \"some\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("some"), "{error}");
    }
}
