//! The agent's Prometheus metrics, registered once and passed down, and a minimal `/metrics`
//! endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Label of `veu_agent_attestations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
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
        Arc::new(Metrics {
            registry,
            ..metrics
        })
    }

    pub fn acked_now(&self) {
        self.last_ack_unix_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The exposition text, with the ack age computed at scrape time.
    pub fn render(&self) -> String {
        let last = self.last_ack_unix_ms.load(Ordering::Relaxed);
        let age = if last == 0 {
            -1.0
        } else {
            (now_ms() - last) as f64 / 1000.0
        };
        self.last_ack_age.set(age);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Serves `GET /metrics` until shutdown. One short request per connection; anything else is
/// answered 404 (the endpoint is meant for a scraper on a private address).
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    loop {
        let (mut stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(%error, "metrics listener failed to accept");
                    continue;
                }
            },
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut request = [0u8; 2048];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut request))
                    .await;
            let Ok(Ok(length)) = read else { return };
            let head = String::from_utf8_lossy(&request[..length]);
            let response = if head.starts_with("GET /metrics ") || head.starts_with("GET /metrics?")
            {
                let body = metrics.render();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
