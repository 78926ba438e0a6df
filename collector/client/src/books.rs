//! The collector's books as it answers them: a distribution (live or as of an instant) and the
//! admin's status, in plain types. The verdicts in them are the collector's; a client that must
//! not trust them re-evaluates the per-country figures with the policy file sent beside them.

use proto_wire::v1;

use crate::HostEntry;

/// One country's compute in a distribution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryFigures {
    /// ISO 3166-1 alpha-2 code, as the collector wrote it.
    pub country: String,
    /// Its tier under the collector's policy (1 to 3).
    pub tier: u32,
    /// TPP counted there.
    pub tpp: u64,
    /// The part of `tpp` from hosts past the freshness window.
    pub stale_tpp: u64,
    /// TPP that could still be added there before a rule breaks.
    pub headroom_tpp: u64,
    /// The part of `tpp` whose GPUs hold NVIDIA-signed reports.
    pub hardware_tpp: u64,
    /// The part of `tpp` on hosts location-verified in this country.
    pub location_verified_tpp: u64,
}

/// A rule the collector found broken, and the country it names (empty for a global rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleBreach {
    /// The rule's code (`tier1_min_share`, ...).
    pub rule: String,
    /// The country, or empty.
    pub country: String,
}

/// A distribution as the collector evaluated it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BooksView {
    /// Every rule holds and some compute counts.
    pub compliant: bool,
    /// All counted TPP.
    pub total_tpp: u64,
    /// Per country.
    pub countries: Vec<CountryFigures>,
    /// Broken rules.
    pub violations: Vec<RuleBreach>,
    /// TPP a new Tier-2 country could take.
    pub new_tier2_country_headroom_tpp: u64,
    /// The collector's verdict code.
    pub verdict: String,
    /// TPP whose GPUs hold NVIDIA-signed reports.
    pub hardware_tpp: u64,
    /// TPP on location-verified hosts.
    pub location_verified_tpp: u64,
    /// Location-verified hosts.
    pub location_verified_hosts: u32,
    /// Hosts whose round trips contradict their declared site.
    pub location_inconsistent: Vec<String>,
}

impl From<v1::DistributionView> for BooksView {
    fn from(view: v1::DistributionView) -> Self {
        Self {
            compliant: view.compliant,
            total_tpp: view.total_tpp,
            countries: view
                .countries
                .into_iter()
                .map(|line| CountryFigures {
                    country: line.country,
                    tier: line.tier,
                    tpp: line.tpp,
                    stale_tpp: line.stale_tpp,
                    headroom_tpp: line.headroom_tpp,
                    hardware_tpp: line.hardware_tpp,
                    location_verified_tpp: line.location_verified_tpp,
                })
                .collect(),
            violations: view
                .violations
                .into_iter()
                .map(|v| RuleBreach {
                    rule: v.rule,
                    country: v.country,
                })
                .collect(),
            new_tier2_country_headroom_tpp: view.new_tier2_country_headroom_tpp,
            verdict: view.verdict,
            hardware_tpp: view.hardware_tpp,
            location_verified_tpp: view.location_verified_tpp,
            location_verified_hosts: view.location_verified_hosts,
            location_inconsistent: view.location_inconsistent,
        }
    }
}

/// The books at an instant, as the audit service replays them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistributionAt {
    /// The instant, Unix ms.
    pub as_of_unix_ms: i64,
    /// The policy in force: its id, digest and file.
    pub policy_id: String,
    pub policy_digest: String,
    pub policy_toml: String,
    /// Every host's last attested compute.
    pub last_known: Option<BooksView>,
    /// Only hosts attested within the freshness window.
    pub verified: Option<BooksView>,
    /// Hosts past the window.
    pub stale_hosts: Vec<HostEntry>,
    /// Hosts in service.
    pub hosts: u32,
    /// The freshness window, ms.
    pub freshness_window_ms: i64,
}

impl From<v1::DistributionResponse> for DistributionAt {
    fn from(answer: v1::DistributionResponse) -> Self {
        Self {
            as_of_unix_ms: answer.as_of_unix_ms,
            policy_id: answer.policy_id,
            policy_digest: answer.policy_digest,
            policy_toml: answer.policy_toml,
            last_known: answer.last_known.map(BooksView::from),
            verified: answer.verified.map(BooksView::from),
            stale_hosts: answer
                .stale_hosts
                .into_iter()
                .map(HostEntry::from)
                .collect(),
            hosts: answer.hosts,
            freshness_window_ms: answer.freshness_window_ms,
        }
    }
}

/// A conflict the collector flagged (one GPU claimed by two hosts, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusEvent {
    /// When, Unix ms.
    pub at_unix_ms: i64,
    /// Its kind.
    pub kind: String,
    /// The host.
    pub host_id: String,
    /// In words.
    pub detail: String,
}

/// An input the collector refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejection {
    /// When, Unix ms.
    pub at_unix_ms: i64,
    /// The reason code.
    pub reason: String,
    /// The host it named, when known.
    pub host_id: String,
    /// The attestation's sequence, when known.
    pub sequence: u64,
    /// The peer's address.
    pub peer: String,
    /// In words.
    pub detail: String,
}

/// The collector's live state, as its admin sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectorStatus {
    /// The collector's clock, Unix ms.
    pub now_unix_ms: i64,
    /// The policy in force: its id, digest and file.
    pub policy_id: String,
    pub policy_digest: String,
    pub policy_toml: String,
    /// The catalogue's digest.
    pub catalogue_digest: String,
    /// Every host's last attested compute.
    pub last_known: Option<BooksView>,
    /// Only hosts attested within the freshness window.
    pub verified: Option<BooksView>,
    /// Hosts past the window.
    pub stale_hosts: Vec<HostEntry>,
    /// Conflicts flagged.
    pub conflicts: Vec<StatusEvent>,
    /// The latest refusals, newest first.
    pub recent_rejections: Vec<Rejection>,
    /// Refusals per reason code since start.
    pub rejection_counts: Vec<(String, u64)>,
    /// Hosts in service.
    pub hosts: u32,
    /// Enrolled agents.
    pub agents: u32,
    /// The freshness window, ms.
    pub freshness_window_ms: i64,
}

impl From<v1::StatusResponse> for CollectorStatus {
    fn from(status: v1::StatusResponse) -> Self {
        Self {
            now_unix_ms: status.now_unix_ms,
            policy_id: status.policy_id,
            policy_digest: status.policy_digest,
            policy_toml: status.policy_toml,
            catalogue_digest: status.catalogue_digest,
            last_known: status.last_known.map(BooksView::from),
            verified: status.verified.map(BooksView::from),
            stale_hosts: status
                .stale_hosts
                .into_iter()
                .map(HostEntry::from)
                .collect(),
            conflicts: status
                .conflicts
                .into_iter()
                .map(|c| StatusEvent {
                    at_unix_ms: c.at_unix_ms,
                    kind: c.kind,
                    host_id: c.host_id,
                    detail: c.detail,
                })
                .collect(),
            recent_rejections: status
                .recent_rejections
                .into_iter()
                .map(|r| Rejection {
                    at_unix_ms: r.at_unix_ms,
                    reason: r.reason,
                    host_id: r.host_id,
                    sequence: r.sequence,
                    peer: r.peer,
                    detail: r.detail,
                })
                .collect(),
            rejection_counts: status
                .rejection_counts
                .into_iter()
                .map(|r| (r.reason, r.count))
                .collect(),
            hosts: status.hosts,
            agents: status.agents,
            freshness_window_ms: status.freshness_window_ms,
        }
    }
}
