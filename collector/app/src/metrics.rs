//! The collector's Prometheus metrics, registered once and passed down.

use std::sync::atomic::AtomicU64;

use collector_core::{LiveDistribution, Reason};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use proto_accounting::{Distribution, Policy, Rule, Tier, Verdict, evaluate_located};

use crate::witnesses::Submitted;

/// Every policy rule, in the order `evaluate` reports them.
const RULES: [Rule; 4] = [
    Rule::Tier1MinShare,
    Rule::HomeMinShare,
    Rule::Tier2CountryMaxShare,
    Rule::Tier3Prohibited,
];

/// `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A rejection reason code.
    pub reason: &'static str,
}

/// `view` label: `last_known` or `verified`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViewLabel {
    /// Which distribution.
    pub view: &'static str,
}

/// `country`, `tier` and `view` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CountryLabel {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// 1, 2 or 3.
    pub tier: String,
    /// Which distribution.
    pub view: &'static str,
}

/// `rule` label: a policy rule's name (`tier1_min_share`, `tier2_country_max_share`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    /// The rule's name in reports and JSON.
    pub rule: &'static str,
}

/// `rule` and `view` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleViewLabel {
    /// The rule's name in reports and JSON.
    pub rule: &'static str,
    /// Which distribution.
    pub view: &'static str,
}

/// `view` and `verdict` labels: one series per verdict, 1 for the view's current one.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    /// Which distribution.
    pub view: &'static str,
    /// `compliant`, `not_compliant` or `no_compute`.
    pub verdict: &'static str,
}

/// `country` and `view` labels, for the home country's share.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HomeLabel {
    /// ISO 3166-1 alpha-2 of the headquarters.
    pub country: String,
    /// Which distribution.
    pub view: &'static str,
}

/// `witness` label: a witness's key name, as in its cosignature lines and `collector.toml`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WitnessLabel {
    /// The witness's key name.
    pub witness: String,
}

/// `witness` and `outcome` labels: what one checkpoint submission came to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubmissionLabel {
    /// The witness's key name.
    pub witness: String,
    /// `cosigned`, `ahead` or `failed`.
    pub outcome: &'static str,
}

/// `outcome` label: what a landmark's measurement came to (`accepted` or a refusal's code).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `accepted`, or why it was refused.
    pub outcome: &'static str,
}

/// `verdict` label: a host's location verdict.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LocationLabel {
    /// `unmeasured`, `unverified`, `verified` or `inconsistent`.
    pub verdict: &'static str,
}

/// `country` and `tier` labels of the location-verified compute.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LocatedLabel {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// 1, 2 or 3.
    pub tier: String,
}

/// `version` and `commit` labels of `veu_collector_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    /// The package version.
    pub version: String,
    /// The short git commit built from, or `unknown`.
    pub commit: String,
}

/// Every submission outcome, so that each configured witness has all three series from the
/// start (a rate over a series that appears only with its first failure misses that failure).
const OUTCOMES: [&str; 3] = ["cosigned", "ahead", "failed"];

/// Every metric of the collector.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Attestations stored and acknowledged.
    pub accepted: Counter,
    rejections: Family<ReasonLabel, Counter>,
    /// GPU identities seen on two hosts.
    pub conflicts: Counter,
    hosts: Gauge,
    stale_hosts: Gauge,
    tpp: Family<CountryLabel, Gauge>,
    hardware_tpp: Family<CountryLabel, Gauge>,
    hardware_share: Family<CountryLabel, Gauge<f64, AtomicU64>>,
    share: Family<CountryLabel, Gauge<f64, AtomicU64>>,
    tier1_share: Family<ViewLabel, Gauge<f64, AtomicU64>>,
    home_share: Family<HomeLabel, Gauge<f64, AtomicU64>>,
    share_limits: Family<RuleLabel, Gauge<f64, AtomicU64>>,
    rule_violations: Family<RuleViewLabel, Gauge>,
    compliant: Family<ViewLabel, Gauge>,
    verdict: Family<VerdictLabel, Gauge>,
    violations: Family<ViewLabel, Gauge>,
    /// Open agent streams.
    pub streams: Gauge,
    /// Open connections (handshaking or not).
    pub connections_open: Gauge,
    connections_refused: Family<ReasonLabel, Counter>,
    enrollments_refused: Family<ReasonLabel, Counter>,
    log_tree_size: Gauge,
    witness_submissions: Family<SubmissionLabel, Counter>,
    witness_cosigned_size: Family<WitnessLabel, Gauge>,
    witness_cosigned_at: Family<WitnessLabel, Gauge>,
    build_info: Family<BuildLabel, Gauge>,
    server_certificate_expiry: Gauge,
    measurements: Family<OutcomeLabel, Counter>,
    location_hosts: Family<LocationLabel, Gauge>,
    location_tpp: Family<LocationLabel, Gauge>,
    location_verified_tpp: Family<LocatedLabel, Gauge>,
    /// The location-verified part of each view (last known, verified) as last observed: the
    /// verdict gauges evaluate with it between location observations, which cost a pass
    /// over the hosts and so are made on the sweeper's tick, not per attestation.
    located: std::sync::Mutex<(Distribution, Distribution)>,
}

impl Metrics {
    /// Registers every metric under `veu_collector_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("veu_collector");
        let metrics = Self {
            registry: Registry::default(),
            accepted: Counter::default(),
            rejections: Family::default(),
            conflicts: Counter::default(),
            hosts: Gauge::default(),
            stale_hosts: Gauge::default(),
            tpp: Family::default(),
            hardware_tpp: Family::default(),
            hardware_share: Family::default(),
            share: Family::default(),
            tier1_share: Family::default(),
            home_share: Family::default(),
            share_limits: Family::default(),
            rule_violations: Family::default(),
            compliant: Family::default(),
            verdict: Family::default(),
            violations: Family::default(),
            streams: Gauge::default(),
            connections_open: Gauge::default(),
            connections_refused: Family::default(),
            enrollments_refused: Family::default(),
            log_tree_size: Gauge::default(),
            witness_submissions: Family::default(),
            witness_cosigned_size: Family::default(),
            witness_cosigned_at: Family::default(),
            build_info: Family::default(),
            server_certificate_expiry: Gauge::default(),
            measurements: Family::default(),
            location_hosts: Family::default(),
            location_tpp: Family::default(),
            location_verified_tpp: Family::default(),
            located: std::sync::Mutex::default(),
        };
        registry.register(
            "location_measurements",
            "Round-trip measurements delivered by landmarks, by outcome: accepted, or the refusal's code (landmark_not_enrolled, landmark_bad_signature, agent_bad_answer, key_not_host, measurement_replayed, ...)",
            metrics.measurements.clone(),
        );
        registry.register(
            "location_hosts",
            "Counted hosts by location verdict: verified (region within the site's country), unverified, unmeasured, inconsistent (round trips contradict the declared place)",
            metrics.location_hosts.clone(),
        );
        registry.register(
            "location_tpp",
            "Counted TPP (last known) by its hosts' location verdict",
            metrics.location_tpp.clone(),
        );
        registry.register(
            "location_verified_tpp",
            "Counted TPP (last known) of location-verified hosts, per country",
            metrics.location_verified_tpp.clone(),
        );
        registry.register(
            "attestations_accepted",
            "Attestations verified, stored and acknowledged",
            metrics.accepted.clone(),
        );
        registry.register(
            "rejections",
            "Inputs refused, by reason",
            metrics.rejections.clone(),
        );
        registry.register(
            "gpu_conflicts",
            "GPU UUIDs or serials reported by a second host",
            metrics.conflicts.clone(),
        );
        registry.register(
            "hosts",
            "Hosts counted in the last-known distribution",
            metrics.hosts.clone(),
        );
        registry.register(
            "stale_hosts",
            "Hosts silent for longer than the freshness window",
            metrics.stale_hosts.clone(),
        );
        registry.register("tpp", "Counted TPP per country", metrics.tpp.clone());
        registry.register(
            "hardware_tpp",
            "The part of a country's counted TPP whose GPUs hold NVIDIA-signed hardware evidence",
            metrics.hardware_tpp.clone(),
        );
        registry.register(
            "hardware_share_percent",
            "Percent of a country's counted TPP that holds NVIDIA-signed hardware evidence",
            metrics.hardware_share.clone(),
        );
        registry.register(
            "share_percent",
            "Share of total counted TPP per country, percent",
            metrics.share.clone(),
        );
        registry.register(
            "tier1_share_percent",
            "Share of total counted TPP in Tier-1 countries, percent (0 when nothing is counted)",
            metrics.tier1_share.clone(),
        );
        registry.register(
            "home_share_percent",
            "Share of total counted TPP in the headquarters country, percent, when the policy has a home rule",
            metrics.home_share.clone(),
        );
        registry.register(
            "share_limit_percent",
            "The policy's share limits, percent: minimums for tier1_min_share and home_min_share, the maximum per country for tier2_country_max_share",
            metrics.share_limits.clone(),
        );
        registry.register(
            "rule_violations",
            "Broken policy rules by rule, decided exactly on integer TPP (the verdict; the share gauges are for display)",
            metrics.rule_violations.clone(),
        );
        registry.register(
            "compliant",
            "1 when compute is counted and every policy rule holds; 0 when a rule is broken or nothing is counted (no compute)",
            metrics.compliant.clone(),
        );
        registry.register(
            "verdict",
            "1 for the view's verdict (compliant, not_compliant, or no_compute: zero counted TPP, no rule can be evaluated), 0 for the others",
            metrics.verdict.clone(),
        );
        registry.register(
            "violations",
            "Broken policy rules",
            metrics.violations.clone(),
        );
        registry.register(
            "agent_streams",
            "Open agent streams",
            metrics.streams.clone(),
        );
        registry.register(
            "connections_open",
            "Open connections to the gRPC port, handshaking or not",
            metrics.connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused or closed before serving, by reason: max_connections, max_connections_per_ip, max_anonymous (no client certificate), handshake_evicted (made way for a newer handshake), handshake_timeout, handshake_failed, first_request_timeout",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "enrollments_refused",
            "Enrollment calls refused before any work, by reason: peer_rate, global_rate, busy",
            metrics.enrollments_refused.clone(),
        );
        registry.register(
            "log_tree_size",
            "Leaves in the log's latest signed checkpoint, the one published at /checkpoint and submitted to the witnesses",
            metrics.log_tree_size.clone(),
        );
        registry.register(
            "witness_submissions",
            "Checkpoint submissions to each configured witness, by outcome: cosigned, ahead (the witness holds a larger tree of this log), failed (refused or unreachable)",
            metrics.witness_submissions.clone(),
        );
        registry.register(
            "witness_cosigned_tree_size",
            "Leaves in the largest checkpoint each witness has cosigned that this collector keeps; 0 until it keeps one",
            metrics.witness_cosigned_size.clone(),
        );
        registry.register(
            "witness_last_cosignature_timestamp_seconds",
            "Unix time at which the collector received the cosignature counted in witness_cosigned_tree_size",
            metrics.witness_cosigned_at.clone(),
        );
        registry.register(
            "build_info",
            "1, labelled with the collector's version and the git commit it was built from",
            metrics.build_info.clone(),
        );
        registry.register(
            "server_certificate_expiry_timestamp_seconds",
            "Unix time at which the TLS server certificate the collector serves expires (0 until read)",
            metrics.server_certificate_expiry.clone(),
        );
        for reason in Reason::ALL {
            let _ = metrics.rejections.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts a delivered measurement by `outcome`.
    pub fn measurement(&self, outcome: &'static str) {
        self.measurements
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The location verdicts of the counted hosts now.
    pub fn observe_location(&self, sums: &collector_core::LocationSums, policy: &Policy) {
        *self
            .located
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (sums.verified.clone(), sums.verified_fresh.clone());
        for verdict in [
            proto_location::Verdict::Unmeasured,
            proto_location::Verdict::Unverified,
            proto_location::Verdict::Verified,
            proto_location::Verdict::Inconsistent,
        ] {
            let label = LocationLabel {
                verdict: verdict.as_str(),
            };
            let hosts = sums.hosts.get(&verdict).copied().unwrap_or(0);
            self.location_hosts
                .get_or_create(&label)
                .set(i64::try_from(hosts).unwrap_or(i64::MAX));
            let tpp = sums.tpp.get(&verdict).copied().unwrap_or(0);
            self.location_tpp
                .get_or_create(&label)
                .set(i64::try_from(tpp).unwrap_or(i64::MAX));
        }
        self.location_verified_tpp.clear();
        for (country, tpp) in sums.verified.countries() {
            let tier = match policy.tier(country) {
                Tier::One => "1",
                Tier::Two => "2",
                Tier::Three => "3",
            };
            self.location_verified_tpp
                .get_or_create(&LocatedLabel {
                    country: country.to_string(),
                    tier: tier.to_owned(),
                })
                .set(i64::try_from(tpp).unwrap_or(i64::MAX));
        }
    }

    /// Sets `build_info{version, commit}` to 1.
    pub fn build(&self, version: &str, commit: &str) {
        self.build_info
            .get_or_create(&BuildLabel {
                version: version.to_owned(),
                commit: commit.to_owned(),
            })
            .set(1);
    }

    /// The served certificate expires at `unix_s` (its `notAfter`).
    pub fn server_certificate_expires(&self, unix_s: i64) {
        self.server_certificate_expiry.set(unix_s);
    }

    /// Counts a connection refused or closed for `reason`.
    pub fn connection_refused(&self, reason: &'static str) {
        self.connection_refused_series(reason).inc();
    }

    /// The series of `reason`, created at zero so a rate over it sees its first refusal.
    pub fn connection_refused_series(&self, reason: &'static str) -> Counter {
        self.connections_refused
            .get_or_create(&ReasonLabel { reason })
            .clone()
    }

    /// Counts an enrollment call refused for `reason`.
    pub fn enrollment_refused(&self, reason: &'static str) {
        self.enrollment_refused_series(reason).inc();
    }

    /// The series of `reason`, created at zero.
    pub fn enrollment_refused_series(&self, reason: &'static str) -> Counter {
        self.enrollments_refused
            .get_or_create(&ReasonLabel { reason })
            .clone()
    }

    /// Counts one rejection.
    pub fn rejected(&self, reason: Reason) {
        self.rejections
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Makes a configured witness's series: every outcome counted 0 and a cosigned size of 0,
    /// so that a witness that never answers is seen lagging from the start.
    pub fn witness_configured(&self, witness: &str) {
        for outcome in OUTCOMES {
            let _ = self.witness_submissions.get_or_create(&SubmissionLabel {
                witness: witness.to_owned(),
                outcome,
            });
        }
        let _ = self.witness_cosigned_size.get_or_create(&WitnessLabel {
            witness: witness.to_owned(),
        });
    }

    /// The size of the log's latest signed checkpoint, the one the witnesses are asked to
    /// cosign.
    pub fn log_checkpoint(&self, tree_size: u64) {
        self.log_tree_size
            .set(i64::try_from(tree_size).unwrap_or(i64::MAX));
    }

    /// Counts one submission by its outcome; a cosignature also moves the witness's gauges.
    pub fn witness_submitted(&self, submitted: &Submitted) {
        let (witness, outcome) = match submitted {
            Submitted::Cosigned {
                witness,
                tree_size,
                received_at_ms,
            } => {
                self.witness_cosigned(witness, *tree_size, *received_at_ms);
                (witness, "cosigned")
            }
            Submitted::Ahead { witness, .. } => (witness, "ahead"),
            Submitted::Failed { witness, .. } => (witness, "failed"),
        };
        self.witness_submissions
            .get_or_create(&SubmissionLabel {
                witness: witness.clone(),
                outcome,
            })
            .inc();
    }

    /// `witness`'s cosignature of the checkpoint of `tree_size` leaves, received at `at_ms`
    /// (Unix milliseconds), is kept: by this submission, an earlier one, or another replica.
    /// The gauges keep the largest size seen, so an older cosignature never moves them back.
    pub fn witness_cosigned(&self, witness: &str, tree_size: u64, at_ms: i64) {
        let label = WitnessLabel {
            witness: witness.to_owned(),
        };
        let size = self.witness_cosigned_size.get_or_create(&label);
        let tree_size = i64::try_from(tree_size).unwrap_or(i64::MAX);
        if tree_size < size.get() {
            return;
        }
        size.set(tree_size);
        self.witness_cosigned_at
            .get_or_create(&label)
            .set(at_ms.div_euclid(1000));
    }

    /// Refreshes the distribution gauges: one pass over the countries of each view.
    pub fn observe(&self, live: &LiveDistribution, policy: &Policy) {
        self.hosts
            .set(i64::try_from(live.len()).unwrap_or(i64::MAX));
        self.stale_hosts
            .set(i64::try_from(live.stale_count()).unwrap_or(i64::MAX));
        let limits = [
            (Rule::Tier1MinShare, Some(policy.tier1_min_share)),
            (
                Rule::HomeMinShare,
                policy.home_rule().map(|(_, share)| share),
            ),
            (
                Rule::Tier2CountryMaxShare,
                Some(policy.tier2_country_max_share),
            ),
        ];
        for (rule, limit) in limits {
            if let Some(limit) = limit {
                self.share_limits
                    .get_or_create(&RuleLabel {
                        rule: rule.as_str(),
                    })
                    .set(limit.as_f64());
            }
        }
        let located = self
            .located
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (view, distribution, hardware, located) in [
            (
                "last_known",
                live.last_known(),
                live.hardware_last_known(),
                &located.0,
            ),
            ("verified", live.fresh(), live.hardware_fresh(), &located.1),
        ] {
            self.observe_view(view, distribution, hardware, located, policy);
        }
    }

    fn observe_view(
        &self,
        view: &'static str,
        distribution: &Distribution,
        hardware: &Distribution,
        located: &Distribution,
        policy: &Policy,
    ) {
        let evaluation = evaluate_located(policy, distribution, located);
        let total = distribution.total();
        for (country, tpp) in distribution.countries() {
            let tier = match policy.tier(country) {
                Tier::One => "1",
                Tier::Two => "2",
                Tier::Three => "3",
            };
            let label = CountryLabel {
                country: country.to_string(),
                tier: tier.to_owned(),
                view,
            };
            self.tpp
                .get_or_create(&label)
                .set(i64::try_from(tpp).unwrap_or(i64::MAX));
            self.share
                .get_or_create(&label)
                .set(display_share(tpp, total));
            let attested = hardware.of(country);
            self.hardware_tpp
                .get_or_create(&label)
                .set(i64::try_from(attested).unwrap_or(i64::MAX));
            self.hardware_share
                .get_or_create(&label)
                .set(display_share(attested, tpp));
        }
        // The same integers the verdict is decided on: Tier-1 and home TPP from the evaluation.
        self.tier1_share
            .get_or_create(&ViewLabel { view })
            .set(display_share(evaluation.tier1_tpp, evaluation.total_tpp));
        if let Some((country, tpp)) = evaluation.home {
            self.home_share
                .get_or_create(&HomeLabel {
                    country: country.to_string(),
                    view,
                })
                .set(display_share(tpp, evaluation.total_tpp));
        }
        for rule in RULES {
            let broken = evaluation
                .violations
                .iter()
                .filter(|violation| violation.rule == rule)
                .count();
            self.rule_violations
                .get_or_create(&RuleViewLabel {
                    rule: rule.as_str(),
                    view,
                })
                .set(i64::try_from(broken).unwrap_or(i64::MAX));
        }
        let verdict = evaluation.verdict();
        self.compliant
            .get_or_create(&ViewLabel { view })
            .set(i64::from(verdict == Verdict::Compliant));
        for state in Verdict::ALL {
            self.verdict
                .get_or_create(&VerdictLabel {
                    view,
                    verdict: state.as_str(),
                })
                .set(i64::from(state == verdict));
        }
        self.violations
            .get_or_create(&ViewLabel { view })
            .set(i64::try_from(evaluation.violations.len()).unwrap_or(i64::MAX));
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// `100 · part / total` as a float, 0 for an empty total. Display only: verdicts are decided
/// on integers. The division is correctly rounded, so a share exactly at a whole or half-point
/// limit shows exactly as the limit.
fn display_share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use proto_accounting::CountryCode;

    use super::*;

    fn live(hosts: &[(&str, u64)]) -> LiveDistribution {
        let mut live = LiveDistribution::new(180_000);
        for (i, (country, tpp)) in hosts.iter().enumerate() {
            let country = CountryCode::parse(country).unwrap();
            live.upsert(
                &format!("host-{i}"),
                country,
                collector_core::live::Sums {
                    tpp: *tpp,
                    hardware_tpp: 0,
                },
                1_000,
                1_000,
            )
            .unwrap();
        }
        live
    }

    fn observed(hosts: &[(&str, u64)]) -> String {
        let metrics = Metrics::new();
        let policy = Policy::uveu_2025_us().unwrap();
        metrics.observe(&live(hosts), &policy);
        metrics.render()
    }

    fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    #[test]
    fn witness_submissions_are_counted_by_outcome_and_cosignatures_move_the_gauges() {
        let metrics = Metrics::new();
        let text = metrics.render();
        assert!(
            !text.contains("veu_collector_witness_submissions_total{"),
            "{text}"
        );

        let witness = "witness.regulator.example";
        metrics.witness_configured(witness);
        metrics.log_checkpoint(120);
        let text = metrics.render();
        for outcome in OUTCOMES {
            has(
                &text,
                &format!(
                    "veu_collector_witness_submissions_total{{witness=\"{witness}\",outcome=\"{outcome}\"}} 0"
                ),
            );
        }
        // Lagging from the start: nothing cosigned yet, no time of a cosignature.
        has(
            &text,
            &format!("veu_collector_witness_cosigned_tree_size{{witness=\"{witness}\"}} 0"),
        );
        has(&text, "veu_collector_log_tree_size 120");
        assert!(
            !text.contains("veu_collector_witness_last_cosignature_timestamp_seconds{"),
            "{text}"
        );

        for submitted in [
            Submitted::Failed {
                witness: witness.into(),
                reason: "connection refused".into(),
            },
            Submitted::Failed {
                witness: witness.into(),
                reason: "connection refused".into(),
            },
            Submitted::Ahead {
                witness: witness.into(),
                witness_size: 130,
            },
            Submitted::Cosigned {
                witness: witness.into(),
                tree_size: 120,
                received_at_ms: 1_767_225_600_999,
            },
        ] {
            metrics.witness_submitted(&submitted);
        }
        let text = metrics.render();
        for (outcome, count) in [("cosigned", 1), ("ahead", 1), ("failed", 2)] {
            has(
                &text,
                &format!(
                    "veu_collector_witness_submissions_total{{witness=\"{witness}\",outcome=\"{outcome}\"}} {count}"
                ),
            );
        }
        has(
            &text,
            &format!("veu_collector_witness_cosigned_tree_size{{witness=\"{witness}\"}} 120"),
        );
        has(
            &text,
            &format!(
                "veu_collector_witness_last_cosignature_timestamp_seconds{{witness=\"{witness}\"}} 1767225600"
            ),
        );

        // A cosignature kept earlier (found in the store) never moves the gauges back; one
        // of the same size received later moves the time.
        metrics.witness_cosigned(witness, 100, 1_767_225_000_000);
        metrics.witness_cosigned(witness, 120, 1_767_225_660_000);
        let text = metrics.render();
        has(
            &text,
            &format!("veu_collector_witness_cosigned_tree_size{{witness=\"{witness}\"}} 120"),
        );
        has(
            &text,
            &format!(
                "veu_collector_witness_last_cosignature_timestamp_seconds{{witness=\"{witness}\"}} 1767225660"
            ),
        );
        // Finding a kept cosignature is not a submission.
        has(
            &text,
            &format!(
                "veu_collector_witness_submissions_total{{witness=\"{witness}\",outcome=\"cosigned\"}} 1"
            ),
        );
    }

    #[test]
    fn shares_at_the_limits_show_as_the_limits_and_keep_the_rules() {
        // Tier 1 exactly 75 %, IN exactly 7 %, MY above 7 %.
        let text = observed(&[("US", 600), ("DE", 150), ("IN", 70), ("MY", 180)]);
        for view in ["last_known", "verified"] {
            has(
                &text,
                &format!("veu_collector_tier1_share_percent{{view=\"{view}\"}} 75.0"),
            );
            has(
                &text,
                &format!("veu_collector_home_share_percent{{country=\"US\",view=\"{view}\"}} 60.0"),
            );
            has(
                &text,
                &format!(
                    "veu_collector_share_percent{{country=\"IN\",tier=\"2\",view=\"{view}\"}} 7.0"
                ),
            );
            for (rule, broken) in [
                ("tier1_min_share", 0),
                ("home_min_share", 0),
                ("tier2_country_max_share", 1),
                ("tier3_prohibited", 0),
            ] {
                has(
                    &text,
                    &format!(
                        "veu_collector_rule_violations{{rule=\"{rule}\",view=\"{view}\"}} {broken}"
                    ),
                );
            }
        }
        has(
            &text,
            "veu_collector_share_limit_percent{rule=\"tier1_min_share\"} 75.0",
        );
        has(
            &text,
            "veu_collector_share_limit_percent{rule=\"home_min_share\"} 50.0",
        );
        has(
            &text,
            "veu_collector_share_limit_percent{rule=\"tier2_country_max_share\"} 7.0",
        );
    }

    #[test]
    fn hosts_that_count_nothing_are_no_compute_until_one_counts() {
        let text = observed(&[("US", 0), ("CN", 0)]);
        has(&text, "veu_collector_compliant{view=\"last_known\"} 0");
        has(
            &text,
            "veu_collector_verdict{view=\"last_known\",verdict=\"no_compute\"} 1",
        );
        let text = observed(&[("US", 1), ("CN", 0)]);
        has(&text, "veu_collector_compliant{view=\"last_known\"} 1");
        has(
            &text,
            "veu_collector_verdict{view=\"last_known\",verdict=\"compliant\"} 1",
        );
        has(
            &text,
            "veu_collector_verdict{view=\"last_known\",verdict=\"no_compute\"} 0",
        );
        let text = observed(&[("US", 1), ("CN", 1)]);
        has(
            &text,
            "veu_collector_verdict{view=\"last_known\",verdict=\"not_compliant\"} 1",
        );
    }

    #[test]
    fn under_a_location_requirement_the_verdict_gauges_count_only_located_tier1_compute() {
        let metrics = Metrics::new();
        let mut policy = Policy::uveu_2025_us().unwrap();
        policy.location.required_for_tier1 = true;
        let fleet = live(&[("US", 800), ("DE", 200)]);
        // Nothing located yet: Tier 1 and home are at 0 %.
        metrics.observe(&fleet, &policy);
        let text = metrics.render();
        has(&text, "veu_collector_compliant{view=\"last_known\"} 0");
        has(
            &text,
            "veu_collector_tier1_share_percent{view=\"last_known\"} 0.0",
        );
        // The sweeper's location observation: all of it verified, so the next observation
        // (an attestation, or the same tick) is compliant.
        let mut located = collector_core::LocationSums::default();
        for (country, tpp) in [("US", 800), ("DE", 200)] {
            let country = CountryCode::parse(country).unwrap();
            located.verified.add(country, tpp).unwrap();
            located.verified_fresh.add(country, tpp).unwrap();
        }
        metrics.observe_location(&located, &policy);
        metrics.observe(&fleet, &policy);
        let text = metrics.render();
        has(&text, "veu_collector_compliant{view=\"last_known\"} 1");
        has(&text, "veu_collector_compliant{view=\"verified\"} 1");
        has(
            &text,
            "veu_collector_tier1_share_percent{view=\"last_known\"} 100.0",
        );
    }

    #[test]
    fn one_tpp_below_the_tier1_minimum_is_a_violation() {
        let text = observed(&[("US", 599), ("DE", 150), ("IN", 70), ("MY", 180)]);
        has(
            &text,
            "veu_collector_rule_violations{rule=\"tier1_min_share\",view=\"last_known\"} 1",
        );
        let share: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("veu_collector_tier1_share_percent{view=\"last_known\"} "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(share < 75.0, "{share}");
    }

    #[test]
    fn an_empty_fleet_breaks_no_rule_and_is_no_compute() {
        let text = observed(&[]);
        for view in ["last_known", "verified"] {
            has(
                &text,
                &format!("veu_collector_compliant{{view=\"{view}\"}} 0"),
            );
            for (verdict, value) in [("compliant", 0), ("not_compliant", 0), ("no_compute", 1)] {
                has(
                    &text,
                    &format!(
                        "veu_collector_verdict{{view=\"{view}\",verdict=\"{verdict}\"}} {value}"
                    ),
                );
            }
        }
        has(
            &text,
            "veu_collector_tier1_share_percent{view=\"last_known\"} 0.0",
        );
        for rule in RULES {
            has(
                &text,
                &format!(
                    "veu_collector_rule_violations{{rule=\"{}\",view=\"verified\"}} 0",
                    rule.as_str()
                ),
            );
        }
    }
}
