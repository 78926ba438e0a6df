//! What a report is computed from: the month, the policy, every host state change up to the
//! as-of instant, and the period's silences, chain gaps, conflicts, rejections and log evidence.

use proto_accounting::{CountryCode, Policy};
use serde::{Deserialize, Serialize};

use crate::encoding;
use crate::month::Month;

/// Everything a monthly report is built from. The caller gathers it from the collector's
/// store; [`crate::build`] only computes.
///
/// Not comparable or serializable as a whole because [`Policy`] is neither; every other input
/// type is.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// The month reported on.
    pub month: Month,
    /// The end of what the report speaks of (exclusive), in `(month start, month end]`: the
    /// month's end once it is over; while it is not, the instant the input was gathered (the
    /// collector passes `min(now, month end)`). An explicit input, never a clock read here,
    /// so the same input gives the same report. Changes, gaps and conflicts must lie before it.
    pub as_of_ms: i64,
    /// The policy the fleet is evaluated against.
    pub policy: Policy,
    /// The policy's id as in its file.
    pub policy_id: String,
    /// SHA-256 of the policy file, `sha256:<hex>`.
    pub policy_digest: String,
    /// SHA-256 of the catalogue file, `sha256:<hex>`.
    pub catalogue_digest: String,
    /// The collector's log key id, hex.
    pub collector: String,
    /// The organisation the report is about, as the operator configured it (`[report]
    /// organisation`); `None` leaves it out of the report.
    pub organisation: Option<String>,
    /// Every host state change before `as_of_ms`, from the first ever, oldest first (sorted by
    /// `at_ms`; changes at the same instant keep their order, and the last one for a host wins).
    /// Changes before the month's start give the state at its start; the first change is the
    /// fleet's first evidence, and every instant before it is `no_evidence`.
    pub changes: Vec<HostChange>,
    /// Silences: a host whose newest attestation was older than the freshness window, from the
    /// instant it became stale to the instant it attested again (`None`: still silent at the
    /// end of the period). Spans outside the period are ignored.
    pub stale: Vec<StaleSpan>,
    /// Breaks in hosts' attestation chains, within the period.
    pub gaps: Vec<GapEvent>,
    /// GPU identity conflicts, within the period.
    pub conflicts: Vec<ConflictEvent>,
    /// Rejected submissions within the period: reason code and count.
    pub rejections: Vec<(String, u64)>,
    /// The transparency log's signed heads and the proof that joins them.
    pub log: LogEvidence,
    /// Each counted host's location verdict at `as_of_ms`; `None` when the collector trusts
    /// no landmark, and the report then claims no location-verified compute.
    pub location: Option<LocationInput>,
}

/// Each counted host's location verdict at `as_of_ms` (docs/location.md), as the collector's
/// location book judged it; `None` when the collector trusts no landmark.
///
/// A host counted at the end of the period but not listed here is `unmeasured`; a listed host
/// not counted then is ignored. A host listed twice is an input error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationInput {
    /// One verdict per host.
    pub hosts: Vec<LocatedHost>,
    /// How many measurement leaves the log received in the window that could count at the
    /// as-of instant (the policy's maximum age plus the landmarks' clock window).
    pub measurements: u64,
    /// When the policy requires location verification for Tier 1: every instant a host
    /// became location-verified or ceased to be, oldest first, up to the as-of instant, from
    /// early enough before the month's start to give the state at its start. Empty otherwise.
    /// Between them a host keeps its state; a host never listed is not verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<LocationChange>,
}

/// A host becoming location-verified in its site's country, or ceasing to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationChange {
    /// When, in Unix milliseconds.
    pub at_ms: i64,
    /// The host.
    pub host_id: String,
    /// Whether it is location-verified from this instant on.
    pub verified: bool,
}

/// One host's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocatedHost {
    /// The host.
    pub host_id: String,
    /// Its verdict.
    pub verdict: LocationVerdict,
    /// What the verdict rests on, in words (for an inconsistent host, what contradicts its
    /// declared place).
    pub reason: String,
}

/// Where round trips from trusted landmarks place a host, against its declared site's
/// country (docs/location.md). The caller converts its own verdict type into this one, so the
/// report depends on no location code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationVerdict {
    /// No current measurement of the host's key.
    Unmeasured,
    /// Measured and consistent with the declared place, but the region reaches beyond the
    /// site's country.
    Unverified,
    /// The whole region lies within the site's country.
    Verified,
    /// The measurements contradict the declared place.
    Inconsistent,
}

impl LocationVerdict {
    /// The verdict's name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LocationVerdict::Unmeasured => "unmeasured",
            LocationVerdict::Unverified => "unverified",
            LocationVerdict::Verified => "verified",
            LocationVerdict::Inconsistent => "inconsistent",
        }
    }
}

/// A host's new state, as the collector recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostChange {
    /// When, in Unix milliseconds.
    pub at_ms: i64,
    /// The host.
    pub host_id: String,
    /// Its enrolled site.
    pub site_id: String,
    /// The site's country.
    #[serde(with = "encoding::country")]
    pub country: CountryCode,
    /// Counted TPP of the host.
    pub tpp: u64,
    /// The part of `tpp` whose GPUs hold NVIDIA-signed hardware evidence.
    #[serde(default)]
    pub hardware_tpp: u64,
    /// Counted devices of the host.
    pub devices: u32,
    /// What happened.
    pub kind: ChangeKind,
}

/// What a change does to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The host's state is now (country, TPP, devices).
    Attested,
    /// The host stops counting (its TPP and devices are ignored).
    Decommissioned,
}

/// A silence: the host kept counting at its last known place without fresh evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StaleSpan {
    /// The host.
    pub host_id: String,
    /// Its last attested country.
    #[serde(with = "encoding::country")]
    pub country: CountryCode,
    /// Its last attested TPP, still counted.
    pub tpp: u64,
    /// When it became stale.
    pub from_ms: i64,
    /// When it attested again; `None` while still silent at the end of the period.
    pub to_ms: Option<i64>,
}

/// Attestations missing from a host's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapEvent {
    /// When the gap was seen.
    pub at_ms: i64,
    /// The host.
    pub host_id: String,
    /// How many sequence numbers are missing.
    pub missing: u64,
}

/// A GPU identity claimed by more than one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictEvent {
    /// When the conflict was raised.
    pub at_ms: i64,
    /// The host whose attestation raised it.
    pub host_id: String,
    /// What conflicts, in words.
    pub detail: String,
}

/// A signed tree head of the collector's transparency log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    /// Number of leaves.
    pub tree_size: u64,
    /// Merkle root, hex.
    pub root: String,
    /// When it was signed, Unix milliseconds.
    pub timestamp_ms: i64,
    /// The signing key's id, hex.
    pub key_id: String,
    /// The signature, hex.
    pub signature: String,
}

/// The log's heads at the month's start and end and the consistency proof between them, so an
/// auditor can check that the month's log extends the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvidence {
    /// The newest head at or before the month's start.
    pub start: Option<SignedHead>,
    /// The first head signed at or after the end of the period (`as_of_ms`): it covers every
    /// change the report read.
    pub end: Option<SignedHead>,
    /// Hashes proving `end` extends `start`, hex.
    pub consistency_proof: Vec<String>,
    /// `end` as a C2SP checkpoint (c2sp.org/tlog-checkpoint) signed by the log key: the form
    /// witnesses cosign and any checkpoint client reads. Without cosignatures, which arrive
    /// later, so that a closed month's report stays byte-identical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}
