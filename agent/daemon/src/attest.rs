//! The attestation loop: enumerate on a watch interval, attest at once when the inventory
//! changes, on the periodic schedule, and when the collector sends a fresh nonce. Each
//! attestation is spooled (durably) before the chain advances and before it can be sent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_core::{Chain, Challenges, Fingerprint, GpuSource, Identity, Rules, Schedule, price};
use agent_spool::{Entry, EntryKind};
use proto_accounting::{Catalogue, Policy};
use proto_evidence::ChainHead;
use proto_seal::{Ed25519Signer, SealError};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{KindLabel, Metrics};
use crate::outbox::SpoolOutbox;

pub struct Attestor {
    pub chain: Chain,
    pub identity: Identity,
    pub rules: Rules,
    pub catalogue: Catalogue,
    pub policy: Policy,
    pub signer: Arc<Ed25519Signer>,
    pub outbox: Arc<SpoolOutbox>,
    pub new_entry: Arc<Notify>,
    pub source: Arc<dyn GpuSource>,
    pub schedule: Schedule,
    pub watch_interval: Duration,
    pub nvml_timeout: Duration,
    pub state_path: PathBuf,
    pub metrics: Arc<Metrics>,
    pub fingerprint: Option<Fingerprint>,
    pub gpu_evidence: crate::evidence::Settings,
    /// The challenge the last durable attestation answered with hardware evidence.
    pub challenges: Challenges,
}

/// Why an attestation is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Periodic,
    InventoryChange,
    Challenge,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Periodic => "periodic",
            Trigger::InventoryChange => "inventory_change",
            Trigger::Challenge => "challenge",
        }
    }
}

impl Attestor {
    pub async fn run(mut self, mut nonces: mpsc::Receiver<Vec<u8>>, shutdown: CancellationToken) {
        self.attest(Trigger::Start).await;
        let mut next_periodic = Instant::now() + self.schedule.delay(agent_uplink::random_u32());
        let mut next_watch = Instant::now() + self.watch_interval;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(next_periodic) => {
                    self.attest(Trigger::Periodic).await;
                    next_periodic = Instant::now() + self.schedule.delay(agent_uplink::random_u32());
                }
                () = tokio::time::sleep_until(next_watch) => {
                    next_watch = Instant::now() + self.watch_interval;
                    if self.inventory_changed().await {
                        self.attest(Trigger::InventoryChange).await;
                        next_periodic = Instant::now() + self.schedule.delay(agent_uplink::random_u32());
                    }
                }
                Some(nonce) = nonces.recv() => {
                    self.chain.observe_nonce(nonce);
                    self.attest(Trigger::Challenge).await;
                }
            }
        }
    }

    /// Enumerates off the executor, bounded by the NVML deadline.
    async fn enumerate(&self) -> Option<agent_core::RawInventory> {
        let source = Arc::clone(&self.source);
        let task = tokio::task::spawn_blocking(move || source.enumerate());
        match tokio::time::timeout(self.nvml_timeout, task).await {
            Ok(Ok(Ok(inventory))) => Some(inventory),
            Ok(Ok(Err(error))) => {
                tracing::error!(%error, "enumeration failed; no attestation this time");
                self.metrics.nvml_errors.inc();
                None
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "enumeration task failed");
                self.metrics.nvml_errors.inc();
                None
            }
            Err(_) => {
                tracing::error!(
                    timeout_ms = self.nvml_timeout.as_millis() as u64,
                    "NVML did not answer in time"
                );
                self.metrics.nvml_errors.inc();
                None
            }
        }
    }

    async fn inventory_changed(&mut self) -> bool {
        let Some(inventory) = self.enumerate().await else {
            return false;
        };
        let fingerprint = Fingerprint::of(&price(&inventory, &self.catalogue, &self.policy));
        match &self.fingerprint {
            Some(before) => {
                let changes = fingerprint.changes_since(before);
                if changes.is_empty() {
                    return false;
                }
                tracing::warn!(?changes, "inventory changed; attesting now");
                true
            }
            None => true,
        }
    }

    async fn attest(&mut self, trigger: Trigger) {
        let Some(inventory) = self.enumerate().await else {
            return;
        };
        let priced = price(&inventory, &self.catalogue, &self.policy);
        let fingerprint = Fingerprint::of(&priced);
        // Collected before the payload is made, so its time is after the reports were signed.
        let evidence = crate::evidence::for_attestation(
            self.gpu_evidence,
            &self.challenges,
            &self.source,
            &self.identity.key_id,
            self.chain.nonce(),
            inventory.devices.iter().map(|device| device.index),
        )
        .await;
        let mut payload = self.chain.next_payload(
            &self.identity,
            &self.rules,
            &priced,
            &inventory.driver_version,
            inventory.source,
            now_ms(),
        );
        let answers_challenge = evidence.is_some();
        if let Some(evidence) = evidence {
            agent_core::evidence::attach(&mut payload, evidence);
        }
        let envelope = match proto_seal::seal(&payload, &self.signer) {
            Ok(envelope) => envelope,
            Err(SealError::Oversized(size)) if answers_challenge => {
                // The inventory must go out: without the reports it fits.
                let reason = format!(
                    "left out: with every device's report the attestation would be {size} bytes, over the {}-byte limit",
                    proto_seal::MAX_PAYLOAD_BYTES
                );
                tracing::warn!(
                    size,
                    "attestation too large with every GPU report; sending it without them"
                );
                agent_core::evidence::drop_reports(&mut payload, &reason);
                match proto_seal::seal(&payload, &self.signer) {
                    Ok(envelope) => envelope,
                    Err(error) => {
                        tracing::error!(%error, "cannot seal the attestation");
                        return;
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot seal the attestation");
                return;
            }
        };
        let digest = envelope.chain_digest();
        let head = ChainHead::after(&payload, digest);
        let kind = if matches!(trigger, Trigger::InventoryChange)
            || self
                .fingerprint
                .as_ref()
                .is_some_and(|before| *before != fingerprint)
        {
            EntryKind::InventoryChange
        } else {
            EntryKind::Periodic
        };
        let entry = Entry {
            sequence: payload.sequence,
            kind,
            bytes: proto_seal::encode_envelope(&envelope),
        };
        let outbox = Arc::clone(&self.outbox);
        let state_path = self.state_path.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let pushed = outbox.push(&entry, head)?;
            // The spool already holds the attestation, so a failure here loses nothing: on
            // restart the chain resumes from the newest spooled entry.
            let state = agent_spool::state::ChainState {
                sequence: head.sequence,
                digest: *head.digest.0.as_bytes(),
            };
            if let Err(error) = agent_spool::state::store(&state_path, &state) {
                tracing::error!(%error, "cannot persist the chain state");
            }
            Ok::<_, String>(pushed)
        })
        .await;
        match stored {
            Ok(Ok(pushed)) => {
                if !pushed.dropped.is_empty() {
                    tracing::warn!(dropped = ?pushed.dropped, "spool full: dropped the oldest periodic attestations (the collector records the gaps)");
                }
                if pushed.over_limits {
                    tracing::warn!(
                        "spool over its limits with inventory changes only; they are never dropped"
                    );
                }
                if let Some(error) = pushed.trim_error {
                    tracing::warn!(%error, "spool trimming failed; retried on the next push");
                }
            }
            Ok(Err(error)) => {
                // Not spooled, so never sent: the same sequence is used again next time.
                tracing::error!(%error, sequence = payload.sequence, "cannot spool the attestation");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "spool task failed");
                return;
            }
        }
        if let Err(error) = self.chain.advance(&payload, digest) {
            tracing::error!(%error, "chain refused its own next link");
            return;
        }
        if answers_challenge {
            self.challenges.answered(&payload.collector_nonce);
        }
        self.fingerprint = Some(fingerprint);
        self.new_entry.notify_one();

        let totals = priced.totals;
        let metrics = &self.metrics;
        metrics.devices.set(i64::from(totals.devices));
        metrics.faulty_devices.set(i64::from(totals.faulty_devices));
        metrics
            .unknown_devices
            .set(i64::from(totals.unknown_devices));
        metrics
            .tpp
            .set(i64::try_from(totals.tpp).unwrap_or(i64::MAX));
        metrics
            .chain_sequence
            .set(i64::try_from(payload.sequence).unwrap_or(i64::MAX));
        metrics
            .attestations
            .get_or_create(&KindLabel {
                kind: trigger.label(),
            })
            .inc();
        let (entries, bytes) = self.outbox.depth();
        metrics
            .spool_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        metrics
            .spool_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        tracing::info!(
            sequence = payload.sequence,
            trigger = trigger.label(),
            devices = totals.devices,
            tpp = totals.tpp,
            faulty = totals.faulty_devices,
            spooled = entries,
            "attestation signed and spooled"
        );
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
