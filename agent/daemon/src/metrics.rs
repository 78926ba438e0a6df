//! The agent's Prometheus metrics, registered once and passed down, and a minimal `/metrics`
//! endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use veu_daemon_kit::now_unix_ms;

/// Label of `veu_agent_attestations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// Labels of `veu_agent_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    pub version: &'static str,
    pub commit: &'static str,
}

/// Every metric the agent exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub devices: Gauge,
    pub faulty_devices: Gauge,
    pub unknown_devices: Gauge,
    pub tpp: Gauge,
    pub attestations: Family<KindLabel, Counter>,
    pub nvml_errors: Counter,
    pub chain_sequence: Gauge,
    pub spool_entries: Gauge,
    pub spool_bytes: Gauge,
    pub collector_connected: Gauge,
    last_ack_age: Gauge<f64, AtomicU64>,
    last_ack_unix_ms: AtomicI64,
    build_info: Family<BuildLabel, Gauge>,
    pub client_certificate_expiry: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("veu_agent");
        let metrics = Metrics {
            devices: Gauge::default(),
            faulty_devices: Gauge::default(),
            unknown_devices: Gauge::default(),
            tpp: Gauge::default(),
            attestations: Family::default(),
            nvml_errors: Counter::default(),
            chain_sequence: Gauge::default(),
            spool_entries: Gauge::default(),
            spool_bytes: Gauge::default(),
            collector_connected: Gauge::default(),
            last_ack_age: Gauge::default(),
            last_ack_unix_ms: AtomicI64::new(0),
            build_info: Family::default(),
            client_certificate_expiry: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "devices",
            "Physical accelerators in the last inventory",
            metrics.devices.clone(),
        );
        registry.register(
            "faulty_devices",
            "Devices with at least one failed NVML query",
            metrics.faulty_devices.clone(),
        );
        registry.register(
            "unknown_devices",
            "Devices the catalogue does not know",
            metrics.unknown_devices.clone(),
        );
        registry.register(
            "tpp",
            "Counted TPP of the last inventory",
            metrics.tpp.clone(),
        );
        registry.register(
            "attestations",
            "Attestations signed and spooled, by trigger",
            metrics.attestations.clone(),
        );
        registry.register(
            "nvml_errors",
            "Enumerations that failed or timed out",
            metrics.nvml_errors.clone(),
        );
        registry.register(
            "chain_sequence",
            "Sequence number of the last signed attestation",
            metrics.chain_sequence.clone(),
        );
        registry.register(
            "spool_entries",
            "Signed attestations waiting for the collector's ack",
            metrics.spool_entries.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes held in the spool",
            metrics.spool_bytes.clone(),
        );
        registry.register(
            "collector_connected",
            "1 while a stream to the collector is up",
            metrics.collector_connected.clone(),
        );
        registry.register(
            "last_ack_age_seconds",
            "Seconds since the collector last acknowledged an attestation (-1: never)",
            metrics.last_ack_age.clone(),
        );
        registry.register(
            "build_info",
            "1, labelled with the agent's version and the git commit it was built from",
            metrics.build_info.clone(),
        );
        registry.register(
            "client_certificate_expiry_timestamp_seconds",
            "Unix time at which the agent's TLS client certificate expires (0: none read)",
            metrics.client_certificate_expiry.clone(),
        );
        metrics
            .build_info
            .get_or_create(&BuildLabel {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("VEU_COMMIT"),
            })
            .set(1);
        Arc::new(Metrics {
            registry,
            ..metrics
        })
    }

    pub fn acked_now(&self) {
        self.last_ack_unix_ms
            .store(now_unix_ms(), Ordering::Relaxed);
    }

    /// The exposition text, with the ack age computed at scrape time.
    pub fn render(&self) -> String {
        let last = self.last_ack_unix_ms.load(Ordering::Relaxed);
        let age = if last == 0 {
            -1.0
        } else {
            (now_unix_ms() - last) as f64 / 1000.0
        };
        self.last_ack_age.set(age);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The agent's `/readyz`: ready while it can keep what it attests, that is while a stream to
/// the collector is up or, without one, while its spool has room (a full spool drops
/// attestations). An agent without a `[collector]` section is ready while its spool has room.
pub fn readiness(
    metrics: Arc<Metrics>,
    limits: agent_spool::SpoolLimits,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    move || {
        if metrics.collector_connected.get() == 1 {
            return Ok(());
        }
        let entries = u64::try_from(metrics.spool_entries.get()).unwrap_or(0);
        let bytes = u64::try_from(metrics.spool_bytes.get()).unwrap_or(0);
        if entries >= limits.max_entries as u64 || bytes >= limits.max_bytes {
            Err(format!(
                "no stream to the collector and the spool is full ({entries} attestations, {bytes} bytes)"
            ))
        } else {
            Ok(())
        }
    }
}
