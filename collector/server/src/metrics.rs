//! The collector's Prometheus metrics, registered once and passed down.

use std::sync::atomic::AtomicU64;

use collector_core::{LiveDistribution, Reason};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use proto_accounting::{Distribution, Policy, Tier, evaluate};

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
    share: Family<CountryLabel, Gauge<f64, AtomicU64>>,
    compliant: Family<ViewLabel, Gauge>,
    violations: Family<ViewLabel, Gauge>,
    /// Open agent streams.
    pub streams: Gauge,
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
            share: Family::default(),
            compliant: Family::default(),
            violations: Family::default(),
            streams: Gauge::default(),
        };
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
            "share_percent",
            "Share of total counted TPP per country, percent",
            metrics.share.clone(),
        );
        registry.register(
            "compliant",
            "1 when every policy rule holds",
            metrics.compliant.clone(),
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

    /// Counts one rejection.
    pub fn rejected(&self, reason: Reason) {
        self.rejections
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Refreshes the distribution gauges: one pass over the countries of each view.
    pub fn observe(&self, live: &LiveDistribution, policy: &Policy) {
        self.hosts
            .set(i64::try_from(live.len()).unwrap_or(i64::MAX));
        self.stale_hosts
            .set(i64::try_from(live.stale_count()).unwrap_or(i64::MAX));
        for (view, distribution) in [
            ("last_known", live.last_known()),
            ("verified", live.fresh()),
        ] {
            self.observe_view(view, distribution, policy);
        }
    }

    fn observe_view(&self, view: &'static str, distribution: &Distribution, policy: &Policy) {
        let evaluation = evaluate(policy, distribution);
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
            // Display only: verdicts are decided on integers.
            let share = if total == 0 {
                0.0
            } else {
                100.0 * tpp as f64 / total as f64
            };
            self.share.get_or_create(&label).set(share);
        }
        self.compliant
            .get_or_create(&ViewLabel { view })
            .set(i64::from(evaluation.compliant()));
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
