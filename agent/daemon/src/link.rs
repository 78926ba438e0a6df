//! Starting the uplink and turning its events into nonces, metrics and logs.

use std::sync::Arc;
use std::time::Duration;

use agent_uplink::{Backoff, Event, Fatal, Hello, UplinkConfig};
use proto_seal::Ed25519Signer;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Collector, Config};
use crate::metrics::Metrics;
use crate::outbox::JournalOutbox;
use crate::startup::Tls;

pub struct Shared {
    pub outbox: Arc<JournalOutbox>,
    pub signer: Arc<Ed25519Signer>,
    pub new_entry: Arc<Notify>,
    pub nonces: mpsc::Sender<Vec<u8>>,
    pub metrics: Arc<Metrics>,
}

pub fn start(
    collector: &Collector,
    tls: Tls,
    config: &Config,
    tracker: &TaskTracker,
    shared: Shared,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<Result<(), Fatal>>> {
    let uplink = UplinkConfig {
        endpoint: collector.endpoint.clone(),
        server_name: collector.server_name.clone(),
        ca_pem: tls.ca_pem,
        certificate_pem: tls.certificate_pem,
        key_pem: tls.key_pem,
        connect_timeout: Duration::from_secs(10),
        backoff: Backoff::default(),
        hello: Hello {
            host_id: config.host_id.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    };
    agent_uplink::endpoint(&uplink)?;
    // The certificate is read once, here: a renewed one is used (and measured) from the next
    // start.
    match veu_daemon_kit::exposition::certificate::not_after(&uplink.certificate_pem) {
        Some(expiry) => {
            shared.metrics.client_certificate_expiry.set(expiry);
        }
        None => tracing::warn!(
            path = %collector.certificate.display(),
            "cannot read the client certificate's expiry"
        ),
    }
    let (events, mut receiver) = mpsc::channel(64);
    let deps = agent_uplink::Deps {
        outbox: Arc::clone(&shared.outbox),
        signer: shared.signer,
        new_entry: shared.new_entry,
        events,
    };
    let metrics = Arc::clone(&shared.metrics);
    let outbox = Arc::clone(&shared.outbox);
    let nonces = shared.nonces;
    tracker.spawn(async move {
        while let Some(event) = receiver.recv().await {
            match event {
                Event::Connected => {
                    metrics.collector_connected.set(1);
                }
                Event::Disconnected { .. } => {
                    metrics.collector_connected.set(0);
                }
                Event::Challenge(nonce) => {
                    let _ = nonces.try_send(nonce);
                }
                Event::Acknowledged(sequence) => {
                    metrics.acked_now();
                    let (entries, bytes) = outbox.depth();
                    metrics
                        .spool_entries
                        .set(i64::try_from(entries).unwrap_or(i64::MAX));
                    metrics
                        .spool_bytes
                        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                    tracing::debug!(sequence, "acknowledged by the collector");
                }
                Event::Refused { .. } => {}
            }
        }
    });
    Ok(tracker.spawn(agent_uplink::run(uplink, deps, shutdown)))
}
