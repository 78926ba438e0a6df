//! The attestation loop: enumerate on a watch interval, attest at once when the inventory
//! changes, on the periodic schedule, and when the collector sends a fresh nonce. Each
//! attestation is recorded in the journal (spooled durably, then the chain state) before the
//! chain advances and before it can be sent.

use std::sync::Arc;
use std::time::Duration;

use agent_core::{Chain, Challenges, Fingerprint, GpuSource, Identity, Rules, Schedule, price};
use agent_spool::{EntryKind, JournalError};
use proto_accounting::{Catalogue, Policy};
use proto_seal::{Ed25519Signer, SealError};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use veu_daemon_kit::now_unix_ms;

use crate::metrics::{KindLabel, Metrics};
use crate::outbox::JournalOutbox;

pub struct Attestor {
    pub chain: Chain,
    pub identity: Identity,
    pub rules: Rules,
    pub catalogue: Catalogue,
    pub policy: Policy,
    pub signer: Arc<Ed25519Signer>,
    pub outbox: Arc<JournalOutbox>,
    pub new_entry: Arc<Notify>,
    pub source: Arc<dyn GpuSource>,
    pub schedule: Schedule,
    pub watch_interval: Duration,
    pub nvml_timeout: Duration,
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
        // The attestation loop is the journal's only writer, so the head cannot move before
        // this payload is recorded.
        let head = self.outbox.lock().head();
        let mut payload = self.chain.next_payload(
            head,
            &self.identity,
            &self.rules,
            &priced,
            &inventory.driver_version,
            inventory.source,
            now_unix_ms(),
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
        let bytes = proto_seal::encode_envelope(&envelope);
        let sequence = payload.sequence;
        let outbox = Arc::clone(&self.outbox);
        let recorded = tokio::task::spawn_blocking(move || {
            outbox
                .lock()
                .record(&payload, digest, kind, bytes)
                .map(|recorded| (payload, recorded))
        })
        .await;
        let payload = match recorded {
            Ok(Ok((payload, recorded))) => {
                let pushed = recorded.pushed;
                if let Some(error) = recorded.state_error {
                    // The spool already holds the attestation, so this loses nothing: on
                    // restart the chain resumes from the newest spooled entry.
                    tracing::error!(%error, "cannot persist the chain state");
                }
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
                payload
            }
            Ok(Err(JournalError::NotNext { source, .. })) => {
                tracing::error!(error = %source, sequence, "chain refused its own next link");
                return;
            }
            Ok(Err(error)) => {
                // Not spooled, so never sent: the same sequence is used again next time.
                tracing::error!(%error, sequence, "cannot spool the attestation");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "spool task failed");
                return;
            }
        };
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

#[cfg(test)]
mod tests {
    use agent_core::FakeGpuSource;
    use agent_spool::{Journal, SpoolLimits};
    use proto_evidence::ChainDigest;
    use proto_seal::Ed25519Signer;
    use tokio::task::JoinHandle;

    use super::*;

    const INTERVAL: Duration = Duration::from_secs(60);
    const WATCH: Duration = Duration::from_secs(10);

    /// An attestation loop over a journal in a temporary directory, on paused time.
    struct Running {
        _dir: tempfile::TempDir,
        outbox: Arc<JournalOutbox>,
        signer: Arc<Ed25519Signer>,
        new_entry: Arc<Notify>,
        nonces: mpsc::Sender<Vec<u8>>,
        shutdown: CancellationToken,
        task: JoinHandle<()>,
        started: Instant,
    }

    impl Running {
        fn start(source: FakeGpuSource) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let (journal, _) = Journal::open(
                &dir.path().join("spool"),
                SpoolLimits::default(),
                &dir.path().join("chain.state"),
                |bytes| Ok(proto_seal::decode_envelope(bytes)?.chain_digest()),
            )
            .unwrap();
            let outbox = Arc::new(JournalOutbox::new(journal));
            let signer = Arc::new(Ed25519Signer::from_seed(&[7; 32]).unwrap());
            let catalogue = Catalogue::builtin().unwrap();
            let policy = Policy::uveu_2025_us().unwrap();
            let new_entry = Arc::new(Notify::new());
            let attestor = Attestor {
                chain: Chain::default(),
                identity: Identity {
                    key_id: signer.key_id(),
                    host_id: proto_evidence::HostId("gpu-test-1".into()),
                    site_id: proto_evidence::SiteId("us-va-1".into()),
                    agent_version: "test".into(),
                },
                rules: Rules {
                    catalogue_digest: catalogue.digest().to_string(),
                    policy_digest: policy.digest().to_string(),
                },
                catalogue,
                policy,
                signer: Arc::clone(&signer),
                outbox: Arc::clone(&outbox),
                new_entry: Arc::clone(&new_entry),
                source: Arc::new(source),
                schedule: Schedule {
                    interval: INTERVAL,
                    jitter_per_mille: 0,
                },
                watch_interval: WATCH,
                nvml_timeout: Duration::from_secs(5),
                metrics: Metrics::new(),
                fingerprint: None,
                gpu_evidence: crate::evidence::Settings {
                    enabled: false,
                    timeout: Duration::from_secs(5),
                },
                challenges: Challenges::default(),
            };
            let (nonces, receiver) = mpsc::channel(8);
            let shutdown = CancellationToken::new();
            let started = Instant::now();
            let task = tokio::spawn(attestor.run(receiver, shutdown.clone()));
            Self {
                _dir: dir,
                outbox,
                signer,
                new_entry,
                nonces,
                shutdown,
                task,
                started,
            }
        }

        /// Waits for the next recorded attestation: its time since the start, its kind and
        /// payload (verified), checked to be the journal's head.
        async fn next(&self) -> (Duration, EntryKind, proto_evidence::AttestationPayload) {
            self.new_entry.notified().await;
            let elapsed = self.started.elapsed();
            let journal = self.outbox.lock();
            let head = journal.head().unwrap();
            let pending = journal
                .spool()
                .pending()
                .find(|pending| pending.sequence == head.sequence)
                .copied()
                .unwrap();
            let bytes = journal.spool().read(head.sequence).unwrap().bytes;
            let envelope = proto_seal::decode_envelope(&bytes).unwrap();
            let verified = proto_seal::open(envelope, &self.signer.public_key()).unwrap();
            assert_eq!(verified.digest(), head.digest);
            (elapsed, pending.kind, verified.payload().clone())
        }

        async fn stop(self) {
            self.shutdown.cancel();
            self.task.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn attests_at_start_on_schedule_and_on_each_fresh_nonce_each_the_next_link() {
        let running = Running::start(FakeGpuSource::healthy(2));
        let (at, kind, first) = running.next().await;
        assert_eq!(
            (at, kind, first.sequence),
            (Duration::ZERO, EntryKind::Periodic, 1)
        );
        assert_eq!(first.previous_digest, ChainDigest::GENESIS);

        // Watching the inventory every ten seconds finds no change: the next is periodic.
        let (at, kind, second) = running.next().await;
        assert_eq!(
            (at, kind, second.sequence),
            (INTERVAL, EntryKind::Periodic, 2)
        );
        let first_head = running.outbox.lock().spool().read(1).unwrap().bytes;
        assert_eq!(
            second.previous_digest,
            proto_seal::decode_envelope(&first_head)
                .unwrap()
                .chain_digest()
        );

        running.nonces.send(b"nonce-1".to_vec()).await.unwrap();
        let (at, kind, third) = running.next().await;
        assert_eq!(
            (at, kind, third.sequence),
            (INTERVAL, EntryKind::Periodic, 3)
        );
        assert_eq!(third.collector_nonce, b"nonce-1");

        // A challenge does not move the periodic schedule.
        let (at, _, fourth) = running.next().await;
        assert_eq!((at, fourth.sequence), (2 * INTERVAL, 4));
        assert_eq!(state_sequence(&running), 4);
        running.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_inventory_change_attests_at_the_next_watch_and_restarts_the_schedule() {
        // Enumerations: the start's attestation, the watch at 10 s, then device 0 fails from
        // the watch at 20 s on.
        let running = Running::start(FakeGpuSource::device_lost_after(2));
        let (at, kind, first) = running.next().await;
        assert_eq!(
            (at, kind, first.totals.faulty_devices),
            (Duration::ZERO, EntryKind::Periodic, 0)
        );

        let (at, kind, second) = running.next().await;
        assert_eq!(
            (at, kind, second.sequence, second.totals.faulty_devices),
            (2 * WATCH, EntryKind::InventoryChange, 2, 1)
        );

        let (at, kind, third) = running.next().await;
        assert_eq!(
            (at, kind, third.sequence),
            (2 * WATCH + INTERVAL, EntryKind::Periodic, 3)
        );
        running.stop().await;
    }

    fn state_sequence(running: &Running) -> u64 {
        let journal = running.outbox.lock();
        agent_spool::state::load(journal.state_path())
            .unwrap()
            .unwrap()
            .sequence
    }
}
