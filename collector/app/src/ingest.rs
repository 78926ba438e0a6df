//! The ingest pipeline: envelopes from one stream, as a batch, through size and field checks,
//! key lookup, signature verification (off the executor, in one blocking task per batch, as one
//! batch verification with `proto_seal::open_batch`), then under the state lock the rules of
//! the moment (`admit`) and the ledger (`Ledger::attest`, the one definition of what evidence
//! does to the books), with the batch queued for its durable commit before the lock is let go,
//! so the log holds batches in the ledger's order. Acknowledgements only after the commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use collector_core::admission::{NonceCheck, Submission};
use collector_core::ledger::{AdminRefusal, Binding};
use collector_core::{
    Admission, AdmissionContext, AgentBinding, EnrolRefusal, Ledger, Reason, SiteRegistry, admit,
};
use collector_store::ledger::{host_update, load_ledger};
use collector_store::{
    AcceptedAttestation, AgentRecord, AttestationStore, Batch, CommitFuture, Rejection, StoreError,
};
use proto_accounting::{Catalogue, CountryCode, Policy};
use proto_evidence::{ChainDigest, Envelope, HostId, KeyId, Link, SiteId};
use proto_seal::{OpenError, PublicKey};

use crate::metrics::Metrics;
use crate::nonce::NonceIssuer;
use crate::refusals::RefusalWindows;

/// An attestation a stream delivered whose envelope could not be read: refused by ingest, in
/// its place among the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The attestation carried no envelope.
    Missing,
    /// The envelope's fields are not valid.
    Invalid(proto_seal::InvalidEnvelope),
}

/// What an attestation's ingest came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (or already stored): the agent may drop it.
    Ack {
        /// Its sequence.
        sequence: u64,
        /// Its chain digest.
        digest: [u8; 32],
    },
    /// Refused, with the reason counted and kept.
    Reject {
        /// Its sequence, 0 when it could not be read.
        sequence: u64,
        /// Why.
        reason: Reason,
        /// In words.
        detail: String,
    },
}

/// Why a batch was not ingested (nothing of it was acknowledged), or the books could not be
/// loaded from the store.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed: a read, or the batch's commit.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// A blocking task (signature verification, a store read, a reload) did not finish.
    #[error("the {task} task did not finish: {source}")]
    Task {
        /// Which task.
        task: &'static str,
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl IngestError {
    fn task(task: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Self {
        move |source| Self::Task { task, source }
    }
}

/// Rules and limits admission runs with.
#[derive(Debug)]
pub struct Rules {
    /// Prices devices.
    pub catalogue: Catalogue,
    /// The compliance policy.
    pub policy: Policy,
    /// The policy file as loaded, for clients.
    pub policy_toml: String,
    /// The catalogue file as loaded, for evidence bundles.
    pub catalogue_toml: String,
    /// Where sites are.
    pub sites: SiteRegistry,
    /// How far in the future an issue time may be.
    pub max_future_skew_ms: i64,
    /// How old a replayed attestation may be.
    pub max_backlog_ms: i64,
}

/// An enrolled key as the collector keeps it in memory.
#[derive(Debug, Clone)]
pub struct KnownAgent {
    /// Identity, host, site, revocation.
    pub binding: AgentBinding,
    /// The Ed25519 public key.
    pub public_key: PublicKey,
}

/// The collector's in-memory state, rebuilt from the store at start.
#[derive(Debug)]
pub struct State {
    /// Enrolled keys: TLS identity and public key (what the log does not hold).
    pub agents: HashMap<KeyId, KnownAgent>,
    /// The books: keys, chains, hosts, GPU ownership and the live distribution.
    pub ledger: Ledger,
    /// Landmarks' newest measurements of each host, and the location verdicts.
    pub locations: collector_core::LocationBook,
}

impl State {
    /// Counted compute by location verdict at `now_ms`.
    pub fn location_sums(
        &mut self,
        sites: &SiteRegistry,
        now_ms: i64,
    ) -> collector_core::LocationSums {
        let State {
            ledger, locations, ..
        } = self;
        locations.sums(ledger, sites, now_ms)
    }

    /// Every counting host's location at `now_ms`.
    pub fn located_hosts(
        &mut self,
        sites: &SiteRegistry,
        now_ms: i64,
    ) -> Vec<collector_core::HostLocation> {
        let State {
            ledger, locations, ..
        } = self;
        locations.hosts(ledger, sites, now_ms)
    }
}

/// Why an administrative change of the books was not made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The ledger refuses the enrolment or re-binding.
    #[error(transparent)]
    Enrol(#[from] EnrolRefusal),
    /// The ledger refuses the revocation or decommissioning.
    #[error(transparent)]
    Refused(#[from] AdminRefusal),
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The books could not be loaded again from the store after a failed commit.
    #[error(transparent)]
    Unsettled(#[from] IngestError),
}

/// Everything the services share.
pub struct Collector {
    /// Durable storage.
    pub store: Arc<dyn AttestationStore>,
    /// Admission rules.
    pub rules: Rules,
    /// Challenge nonces.
    pub nonces: NonceIssuer,
    /// Metrics, registered once.
    pub metrics: Arc<Metrics>,
    state: Mutex<State>,
    /// Set when a commit failed after the ledger applied its batch: the books may hold what
    /// was not stored, and are loaded again from the store before anything else is admitted.
    unsettled: AtomicBool,
    clock: fn() -> i64,
    freshness_ms: i64,
    /// The organisation monthly reports name (`[report] organisation`).
    organisation: Option<String>,
    /// Verifies GPU hardware reports.
    gpu: Arc<GpuVerifier>,
    /// Repeated refusals counted per peer, reason and window rather than stored one by one.
    refusals: RefusalWindows,
    /// The round-trip-time landmarks whose measurements count (`[location] landmarks`).
    landmarks: proto_location::Landmarks,
    /// Landmarks' measurements are admitted one at a time.
    measurement_lock: tokio::sync::Mutex<()>,
}

/// The roots GPU hardware reports must chain to, and the chains already validated.
#[derive(Debug)]
pub struct GpuVerifier {
    trust: proto_gpu_evidence::Trust,
    cache: proto_gpu_evidence::ChainCache,
}

impl GpuVerifier {
    /// Reports must chain to one of `trust`'s roots.
    pub fn new(trust: proto_gpu_evidence::Trust) -> Self {
        Self {
            trust,
            cache: proto_gpu_evidence::ChainCache::default(),
        }
    }

    /// Each device of `payload` judged at `received_at_ms` (`proto_gpu_evidence::assess`).
    pub fn assess(
        &self,
        payload: &proto_evidence::AttestationPayload,
        received_at_ms: i64,
    ) -> Vec<proto_evidence::GpuProof> {
        proto_gpu_evidence::assess(payload, received_at_ms, &self.trust, Some(&self.cache))
    }
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Collector {
    /// Loads the state from the store.
    pub fn open(
        store: Arc<dyn AttestationStore>,
        rules: Rules,
        nonces: NonceIssuer,
        metrics: Arc<Metrics>,
        freshness_ms: i64,
        clock: fn() -> i64,
    ) -> Result<Self, IngestError> {
        let landmarks = proto_location::Landmarks::default();
        let state = load_state(
            store.as_ref(),
            freshness_ms,
            &rules.policy,
            &landmarks,
            clock(),
        )?;
        Ok(Self {
            store,
            rules,
            nonces,
            metrics,
            state: Mutex::new(state),
            unsettled: AtomicBool::new(false),
            clock,
            freshness_ms,
            organisation: None,
            gpu: Arc::new(GpuVerifier::new(proto_gpu_evidence::Trust::nvidia())),
            refusals: RefusalWindows::default(),
            landmarks,
            measurement_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Measurements of `landmarks` count (none otherwise); the location book alone is loaded
    /// again from the store's measurement leaves with them (the ledger stays as opened).
    pub fn with_landmarks(
        mut self,
        landmarks: proto_location::Landmarks,
    ) -> Result<Self, IngestError> {
        self.landmarks = landmarks;
        let now = self.now_ms();
        let mut state = self.state();
        state.locations = load_locations(
            self.store.as_ref(),
            &self.rules.policy,
            &self.landmarks,
            &state.ledger,
            now,
        )?;
        drop(state);
        Ok(self)
    }

    /// Counted compute by location verdict now (the live books).
    pub fn location_sums(&self) -> collector_core::LocationSums {
        let now = self.now_ms();
        self.state().location_sums(&self.rules.sites, now)
    }

    /// The books loaded again from the store, as of now.
    fn load(&self) -> Result<State, IngestError> {
        load_state(
            self.store.as_ref(),
            self.freshness_ms,
            &self.rules.policy,
            &self.landmarks,
            self.now_ms(),
        )
    }

    /// The landmarks whose measurements count.
    pub fn landmarks(&self) -> &proto_location::Landmarks {
        &self.landmarks
    }

    /// Held while one measurement is admitted.
    pub(crate) fn measurement_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.measurement_lock
    }

    /// GPU hardware reports must chain to one of `trust`'s roots (NVIDIA's Device Identity CA
    /// unless configured otherwise).
    #[must_use]
    pub fn with_gpu_trust(mut self, trust: proto_gpu_evidence::Trust) -> Self {
        self.gpu = Arc::new(GpuVerifier::new(trust));
        self
    }

    /// Names the organisation in every monthly report.
    #[must_use]
    pub fn with_organisation(mut self, organisation: Option<String>) -> Self {
        self.organisation = organisation;
        self
    }

    /// The rows to store for `rejections` decided now: each that opens a window of repeats,
    /// and the summaries of the windows that ended (`refusals`).
    pub fn refusal_rows(&self, rejections: Vec<Rejection>) -> Vec<Rejection> {
        let mut rows = self.refusals.due(self.now_ms());
        for rejection in rejections {
            rows.extend(self.refusals.record(rejection));
        }
        rows
    }

    /// Stores the summaries of the windows of repeated refusals that ended by now, or with
    /// `all`, of every open window (at shutdown); a store failure is logged.
    pub async fn flush_refusals(&self, all: bool) {
        let rejections = if all {
            self.drain_refusals()
        } else {
            self.refusals.due(self.now_ms())
        };
        if rejections.is_empty() {
            return;
        }
        let batch = Batch {
            rejections,
            ..Batch::default()
        };
        if let Err(error) = self.store.commit(batch).await {
            tracing::error!(%error, "cannot store the counts of repeated refusals");
        }
    }

    /// The summaries of every open window of repeated refusals, which close; the caller
    /// stores them.
    pub fn drain_refusals(&self) -> Vec<Rejection> {
        self.refusals.drain(self.now_ms())
    }

    /// Repeated refusals counted but not stored yet, by reason: `veuctl status` adds them to
    /// the stored counts, so its counts include every refusal at once.
    pub fn pending_refusals(&self) -> Vec<(String, u64)> {
        self.refusals.pending()
    }

    /// The organisation monthly reports name, if any.
    pub fn organisation(&self) -> Option<&str> {
        self.organisation.as_deref()
    }

    /// How long a host counts as verified after its last attestation.
    pub fn freshness_ms(&self) -> i64 {
        self.freshness_ms
    }

    /// The collector's clock, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// The state, locked.
    pub fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation keeps the state consistent between statements; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An enrolled key, from memory or (enrolled by another replica) from the store.
    pub async fn agent(&self, key: &KeyId) -> Option<KnownAgent> {
        if let Some(agent) = self.state().agents.get(key) {
            return Some(agent.clone());
        }
        let store = Arc::clone(&self.store);
        let key_id = *key;
        let record = tokio::task::spawn_blocking(move || store.agent(&key_id))
            .await
            .ok()?
            .ok()??;
        let agent = known(&record)?;
        self.state().agents.insert(*key, agent.clone());
        Some(agent)
    }

    /// Brings the in-memory books up to what other replicas stored (several collectors on one
    /// database): the ledger and the enrolled keys are loaded again from the store. The
    /// daemon calls it every few seconds on a shared store.
    pub fn refresh_from_store(&self) -> Result<(), IngestError> {
        let fresh = self.load()?;
        *self.state() = fresh;
        Ok(())
    }

    /// Loads the books again from the store, off the executor, and puts them in place.
    async fn reload_books(&self) -> Result<(), IngestError> {
        let store = Arc::clone(&self.store);
        let (freshness, now) = (self.freshness_ms, self.now_ms());
        let policy = self.rules.policy.clone();
        let landmarks = self.landmarks.clone();
        let fresh = tokio::task::spawn_blocking(move || {
            load_state(store.as_ref(), freshness, &policy, &landmarks, now)
        })
        .await
        .map_err(IngestError::task("reload"))??;
        *self.state() = fresh;
        Ok(())
    }

    /// Loads the books again from the store if a failed commit left them unsettled; fails
    /// (and nothing may be admitted) while the store cannot be read.
    async fn settle_books(&self) -> Result<(), IngestError> {
        if !self.unsettled.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.reload_books().await?;
        self.unsettled.store(false, Ordering::SeqCst);
        tracing::info!("books loaded again from the store after a failed commit");
        Ok(())
    }

    /// Whether the key is revoked (in the books) or unknown.
    pub fn is_revoked(&self, key: &KeyId) -> bool {
        self.state()
            .ledger
            .key(key)
            .is_some_and(|k| k.revoked_at_ms.is_some())
    }

    /// Enrols a key for a new host or, with `rebind`, re-binds an existing host to it: the
    /// ledger decides, the store persists (under the state lock, so the log keeps the
    /// ledger's order). Blocks on the store: call it from a blocking thread.
    pub fn enrol(&self, record: &AgentRecord, rebind: bool) -> Result<(), AdminError> {
        let country = CountryCode::parse(&record.country)
            .map_err(|e| StoreError::Corrupt(format!("country {:?}: {e}", record.country)))?;
        let binding = Binding {
            at_ms: record.enrolled_at_ms,
            key: record.key_id,
            host: &record.host_id.0,
            site: &record.site_id.0,
            country,
        };
        let mut state = self.state();
        self.settle_locked(&mut state)?;
        let (change, _revoked) = state.ledger.enrol(&binding, rebind)?;
        let stored = if rebind {
            let change = change.as_ref().map(collector_store::ledger::host_change);
            self.store.rebind_host(record, change.as_ref())
        } else {
            self.store.put_agent(record)
        };
        self.settle(&mut state, stored)?;
        if let Some(agent) = known(record) {
            state.agents.insert(agent.binding.key_id, agent);
        }
        Ok(())
    }

    /// Revokes a key forever. Blocks on the store.
    pub fn revoke(&self, key: &KeyId, at_ms: i64) -> Result<(), AdminError> {
        let mut state = self.state();
        self.settle_locked(&mut state)?;
        state.ledger.revoke(at_ms, *key)?;
        let stored = self.store.revoke_agent(key, at_ms).map(drop);
        self.settle(&mut state, stored)
    }

    /// Decommissions a host: it counts nothing from now on. Blocks on the store.
    pub fn decommission(&self, host: &str, at_ms: i64) -> Result<(), AdminError> {
        let mut state = self.state();
        self.settle_locked(&mut state)?;
        let change = state.ledger.decommission(at_ms, host)?;
        let stored = self.store.decommission(host, change.at_ms).map(drop);
        self.settle(&mut state, stored)?;
        self.metrics
            .observe(state.ledger.live(), &self.rules.policy);
        Ok(())
    }

    /// `settle_books` for a caller that holds the state lock on a blocking thread.
    fn settle_locked(&self, state: &mut State) -> Result<(), AdminError> {
        if self.unsettled.load(Ordering::SeqCst) {
            *state = self.load()?;
            self.unsettled.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// After the ledger applied a change and the store was asked to persist it: on a store
    /// failure the books are loaded again from the store, which holds exactly what was made
    /// durable.
    fn settle(&self, state: &mut State, stored: Result<(), StoreError>) -> Result<(), AdminError> {
        if let Err(error) = stored {
            match self.load() {
                Ok(fresh) => *state = fresh,
                Err(reload) => {
                    self.unsettled.store(true, Ordering::SeqCst);
                    tracing::error!(%reload, "cannot reload the books after a store failure");
                }
            }
            return Err(error.into());
        }
        Ok(())
    }

    /// Ingests the attestations one stream delivered, in order: their signers identified,
    /// their signatures verified off the executor, the books caught up with chains another
    /// replica continued, the stored digests of resubmissions looked up, then admission under
    /// the state lock, one durable commit, and acknowledgements only after it.
    pub async fn ingest(
        &self,
        peer: &str,
        attestations: Vec<Result<Envelope, Unreadable>>,
    ) -> Result<Vec<Outcome>, IngestError> {
        self.settle_books().await?;
        let now = self.now_ms();
        let mut results = Results {
            outcomes: vec![None; attestations.len()],
            rejections: Vec::new(),
            now,
            peer,
            metrics: &self.metrics,
        };
        let to_verify = self.identify(attestations, &mut results).await;
        let verified = self.verify(to_verify, now).await?;
        self.catch_up(&verified).await?;
        let stored = self.stored_digests(&verified).await?;
        let queued = self.admit_batch(verified, &stored, &mut results);
        self.commit(queued.commit, queued.rejections).await?;
        Ok(self.acknowledge(queued.accepted, queued.conflicts, results))
    }

    /// Stage 1: fields and sizes, and the signer's key (looked up once per key: a stream's
    /// batch is one agent's). Unreadable envelopes and unknown keys are refused here.
    async fn identify(
        &self,
        attestations: Vec<Result<Envelope, Unreadable>>,
        results: &mut Results<'_>,
    ) -> Vec<Unverified> {
        let mut signers: Vec<(KeyId, Option<Arc<KnownAgent>>)> = Vec::new();
        let mut to_verify: Vec<Unverified> = Vec::with_capacity(attestations.len());
        for (index, attestation) in attestations.into_iter().enumerate() {
            let envelope = match attestation {
                Ok(envelope) => envelope,
                Err(Unreadable::Missing) => {
                    results.reject(
                        index,
                        0,
                        None,
                        None,
                        Reason::Malformed,
                        "attestation without an envelope".into(),
                    );
                    continue;
                }
                Err(Unreadable::Invalid(error)) => {
                    let reason = match error {
                        proto_seal::InvalidEnvelope::Oversized(_) => Reason::Oversized,
                        proto_seal::InvalidEnvelope::Algorithm(_) => Reason::UnsupportedAlgorithm,
                        _ => Reason::Malformed,
                    };
                    results.reject(index, 0, None, None, reason, error.to_string());
                    continue;
                }
            };
            let agent = match signers.iter().find(|(key, _)| *key == envelope.key_id) {
                Some((_, agent)) => agent.clone(),
                None => {
                    let agent = self.agent(&envelope.key_id).await.map(Arc::new);
                    signers.push((envelope.key_id, agent.clone()));
                    agent
                }
            };
            match agent {
                Some(agent) => to_verify.push(Unverified {
                    index,
                    envelope,
                    agent,
                }),
                None => {
                    let detail = format!("key {} is not enrolled", envelope.key_id);
                    results.reject(
                        index,
                        0,
                        Some(envelope.key_id),
                        None,
                        Reason::UnknownKey,
                        detail,
                    );
                }
            }
        }
        to_verify
    }

    /// Stage 2: signatures over the received bytes, verified as one batch in a blocking task
    /// (off the executor), and the hardware reports of the attestations that carry any, judged
    /// there too (at receipt, before any lock).
    async fn verify(
        &self,
        to_verify: Vec<Unverified>,
        now: i64,
    ) -> Result<Vec<Verified>, IngestError> {
        let gpu = Arc::clone(&self.gpu);
        tokio::task::spawn_blocking(move || {
            let (envelopes, owners): (Vec<Envelope>, Vec<_>) = to_verify
                .into_iter()
                .map(
                    |Unverified {
                         index,
                         envelope,
                         agent,
                     }| {
                        let key = envelope.key_id;
                        (envelope, (index, key, agent))
                    },
                )
                .unzip();
            let opened = proto_seal::open_batch(
                envelopes
                    .into_iter()
                    .zip(owners.iter().map(|(_, _, agent)| &agent.public_key)),
            );
            owners
                .into_iter()
                .zip(opened)
                .map(|((index, key, agent), result)| {
                    let proofs = match &result {
                        Ok(attestation) => gpu.assess(attestation.payload(), now),
                        Err(_) => Vec::new(),
                    };
                    Verified {
                        index,
                        key,
                        result,
                        agent,
                        proofs,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(IngestError::task("verification"))
    }

    /// Stage 3: a chain another replica continued. Where the books have no head for the key,
    /// or the link skips past it, and the store holds a newer head, the books are loaded again
    /// (several collectors on one database), so an agent that moved between replicas is
    /// neither a gap nor a fork.
    async fn catch_up(&self, verified: &[Verified]) -> Result<(), IngestError> {
        let behind: Vec<KeyId> = {
            let state = self.state();
            let mut keys: Vec<KeyId> = verified
                .iter()
                .filter_map(|v| {
                    let sequence = v.result.as_ref().ok()?.payload().sequence;
                    let head = state.ledger.key(&v.key).and_then(|k| k.head);
                    let behind = head.map_or(sequence > 1, |head| sequence > head.sequence + 1);
                    behind.then_some(v.key)
                })
                .collect();
            keys.sort();
            keys.dedup();
            keys
        };
        if behind.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        let found = tokio::task::spawn_blocking(move || {
            behind
                .into_iter()
                .map(|key| (key, store.chain_head(&key)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(IngestError::task("store lookup"))?;
        let mut stale = false;
        {
            let state = self.state();
            for (key, head) in found {
                let known = state.ledger.key(&key).and_then(|k| k.head);
                if let Some((sequence, _)) = head?
                    && known.is_none_or(|h| sequence > h.sequence)
                {
                    stale = true;
                }
            }
        }
        if stale {
            self.reload_books().await?;
        }
        Ok(())
    }

    /// Stage 4: the stored digests of resubmissions at or below their key's head (immutable
    /// once stored), for admission to tell a duplicate from a fork.
    async fn stored_digests(
        &self,
        verified: &[Verified],
    ) -> Result<HashMap<(KeyId, u64), ChainDigest>, IngestError> {
        let mut stored: HashMap<(KeyId, u64), ChainDigest> = HashMap::new();
        let lookups: Vec<(KeyId, u64)> = {
            let state = self.state();
            verified
                .iter()
                .filter_map(|v| {
                    v.result
                        .as_ref()
                        .ok()
                        .map(|a| (v.key, a.payload().sequence))
                })
                .filter(|(key, sequence)| {
                    state
                        .ledger
                        .key(key)
                        .and_then(|k| k.head)
                        .is_some_and(|head| *sequence <= head.sequence)
                })
                .collect()
        };
        if !lookups.is_empty() {
            let store = Arc::clone(&self.store);
            let found = tokio::task::spawn_blocking(move || {
                lookups
                    .into_iter()
                    .map(|(key, sequence)| (key, sequence, store.stored_digest(&key, sequence)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(IngestError::task("store lookup"))?;
            for (key, sequence, digest) in found {
                if let Some(digest) = digest? {
                    stored.insert((key, sequence), digest);
                }
            }
        }
        Ok(stored)
    }

    /// Stage 5: the rules of the moment (`admit`), then the ledger (`Ledger::attest`), under
    /// the state lock; the batch, with the refusals due, is queued for its commit before the
    /// lock is let go, so the log holds batches in the ledger's order.
    fn admit_batch(
        &self,
        verified: Vec<Verified>,
        stored: &HashMap<(KeyId, u64), ChainDigest>,
        results: &mut Results<'_>,
    ) -> Queued {
        let (peer, now) = (results.peer, results.now);
        let mut accepted: Vec<(usize, u64, [u8; 32])> = Vec::with_capacity(verified.len());
        let mut rows: Vec<AcceptedAttestation> = Vec::with_capacity(verified.len());
        let mut hosts = Vec::with_capacity(verified.len());
        let mut events = Vec::new();
        let mut conflicts = 0u64;
        // A stream answers one nonce until the next challenge: judge each nonce once.
        let mut nonce_checks: Vec<(KeyId, Vec<u8>, NonceCheck)> = Vec::new();
        let mut state = self.state();
        for Verified {
            index,
            key,
            result,
            agent,
            proofs,
        } in verified
        {
            let host = || Some(agent.binding.host_id.clone());
            let attestation = match result {
                Ok(attestation) => attestation,
                Err(error) => {
                    let reason = match error {
                        OpenError::Oversized(_) => Reason::Oversized,
                        OpenError::BadSignature => Reason::BadSignature,
                        OpenError::UnknownKey { .. } => Reason::UnknownKey,
                        OpenError::Malformed(_)
                        | OpenError::PayloadKeyMismatch { .. }
                        | OpenError::WrongNonce => Reason::Malformed,
                    };
                    results.reject(index, 0, Some(key), host(), reason, error.to_string());
                    continue;
                }
            };
            let payload = attestation.payload();
            let nonce = match nonce_checks
                .iter()
                .find(|(k, nonce, _)| *k == key && *nonce == payload.collector_nonce)
            {
                Some((_, _, check)) => *check,
                None => {
                    let check = self.nonces.check(&key, &payload.collector_nonce);
                    nonce_checks.push((key, payload.collector_nonce.clone(), check));
                    check
                }
            };
            let submission = Submission {
                presenting_identity: peer,
                payload,
                digest: attestation.digest(),
                nonce,
            };
            let context = AdmissionContext {
                catalogue: &self.rules.catalogue,
                policy: &self.rules.policy,
                sites: &self.rules.sites,
                now_ms: now,
                max_future_skew_ms: self.rules.max_future_skew_ms,
                max_backlog_ms: self.rules.max_backlog_ms,
            };
            let stored_digest = stored.get(&(key, payload.sequence)).copied();
            let fresh = match admit(&agent.binding, stored_digest, submission, context) {
                Err((reason, detail)) => {
                    results.reject(index, payload.sequence, Some(key), host(), reason, detail);
                    continue;
                }
                Ok(Admission::Duplicate) => {
                    results.outcomes[index] = Some(Outcome::Ack {
                        sequence: payload.sequence,
                        digest: *attestation.digest().0.as_bytes(),
                    });
                    continue;
                }
                Ok(Admission::Accept { fresh }) => fresh,
            };
            let applied = match state
                .ledger
                .attest(now, payload, attestation.digest(), &proofs)
            {
                Ok(applied) => applied,
                Err((reason, detail)) => {
                    results.reject(index, payload.sequence, Some(key), host(), reason, detail);
                    continue;
                }
            };
            let host_id = payload.host_id.0.as_str();
            let Some(record) = state.ledger.host(host_id) else {
                // The ledger just applied an attestation of this host.
                results.reject(
                    index,
                    payload.sequence,
                    Some(key),
                    host(),
                    Reason::UnknownKey,
                    format!("host {host_id} is not in the books"),
                );
                continue;
            };
            let catalogue_ids: Vec<&str> = payload
                .devices
                .iter()
                .map(|d| d.catalogue_id.as_str())
                .collect();
            let update = host_update(host_id, record, &catalogue_ids, applied.change.as_ref());
            for event in &applied.events {
                if let collector_core::LedgerEvent::GpuConflict { conflict, .. } = event {
                    conflicts += 1;
                    tracing::warn!(?conflict, "GPU identity seen on two hosts; it counts once");
                }
                events.push(collector_store::ledger::event(now, event));
            }
            rows.push(AcceptedAttestation {
                key_id: key,
                sequence: payload.sequence,
                digest: attestation.digest(),
                previous_digest: payload.previous_digest,
                host_id: payload.host_id.clone(),
                site_id: payload.site_id.clone(),
                country: record.country.to_string(),
                issued_at_ms: payload.issued_at_unix_ms,
                received_at_ms: now,
                tpp: applied.tpp,
                devices: applied.devices,
                simulated: payload.source == proto_evidence::EvidenceSource::Simulated,
                gap_before: match applied.link {
                    Link::Next => 0,
                    Link::Gap { missing } => missing,
                },
                fresh,
                envelope: proto_seal::encode_envelope(attestation.envelope()),
                gpus: update.gpus.clone(),
                log_index: None,
            });
            hosts.push(update);
            accepted.push((index, payload.sequence, *attestation.digest().0.as_bytes()));
        }
        // Kept apart too: when the batch fails, its rejections are stored on their own.
        let rejections = self.refusal_rows(std::mem::take(&mut results.rejections));
        let batch = Batch {
            attestations: rows,
            hosts,
            events,
            rejections: rejections.clone(),
        };
        let commit = self.store.commit(batch);
        if !accepted.is_empty() {
            self.metrics
                .observe(state.ledger.live(), &self.rules.policy);
        }
        drop(state);
        Queued {
            commit,
            accepted,
            rejections,
            conflicts,
        }
    }

    /// Stage 6: the one durable commit. When it fails the books may hold what was not stored:
    /// nothing more is admitted until they are loaded again from the store, and the batch's
    /// refusals are stored on their own.
    async fn commit(
        &self,
        commit: CommitFuture,
        rejections: Vec<Rejection>,
    ) -> Result<(), IngestError> {
        let Err(error) = commit.await else {
            return Ok(());
        };
        // The books may hold what was not stored: nothing more is admitted until they are
        // loaded again from the store.
        self.unsettled.store(true, Ordering::SeqCst);
        // The refusals were decided whatever became of the accepted attestations: keep
        // their record (a rejection changes nothing in the books).
        if !rejections.is_empty() {
            let kept = rejections.len();
            let alone = Batch {
                rejections,
                ..Batch::default()
            };
            match self.store.commit(alone).await {
                Ok(_) => tracing::warn!(kept, "batch not stored; its rejections were"),
                Err(again) => {
                    tracing::error!(%again, kept, "the rejections of a failed batch were not stored either");
                }
            }
        }
        if let Err(reload) = self.settle_books().await {
            tracing::error!(%reload, "cannot reload the books after a failed commit; ingest waits for the store");
        }
        Err(IngestError::Store(error))
    }

    /// Stage 7, after the commit: the accepted attestations acknowledged and counted, every
    /// outcome in the order the stream delivered them.
    fn acknowledge(
        &self,
        accepted: Vec<(usize, u64, [u8; 32])>,
        conflicts: u64,
        mut results: Results<'_>,
    ) -> Vec<Outcome> {
        for _ in 0..conflicts {
            self.metrics.conflicts.inc();
        }
        for (index, sequence, digest) in accepted {
            self.metrics.accepted.inc();
            results.outcomes[index] = Some(Outcome::Ack { sequence, digest });
        }
        results.outcomes.into_iter().flatten().collect()
    }
}

/// An attestation whose signer the books know, its signature not yet verified.
struct Unverified {
    /// Its place in the stream's batch.
    index: usize,
    envelope: Envelope,
    agent: Arc<KnownAgent>,
}

/// An attestation after verification: opened or refused, with its hardware proofs.
struct Verified {
    /// Its place in the stream's batch.
    index: usize,
    /// The signer's key.
    key: KeyId,
    result: Result<proto_seal::VerifiedAttestation, OpenError>,
    agent: Arc<KnownAgent>,
    /// Each device's proof, judged at receipt; none when the signature did not verify.
    proofs: Vec<proto_evidence::GpuProof>,
}

/// What admission left for after the state lock: the queued commit and what it decides.
struct Queued {
    /// The batch's durable commit, queued under the lock.
    commit: CommitFuture,
    /// Accepted attestations: place in the batch, sequence and digest.
    accepted: Vec<(usize, u64, [u8; 32])>,
    /// The refusal rows in the batch, stored alone when it fails.
    rejections: Vec<Rejection>,
    /// GPU identities seen on two hosts.
    conflicts: u64,
}

/// Outcomes and rejection records of one batch.
struct Results<'a> {
    outcomes: Vec<Option<Outcome>>,
    rejections: Vec<Rejection>,
    now: i64,
    peer: &'a str,
    metrics: &'a Metrics,
}

impl Results<'_> {
    fn reject(
        &mut self,
        index: usize,
        sequence: u64,
        key: Option<KeyId>,
        host: Option<String>,
        reason: Reason,
        detail: String,
    ) {
        self.metrics.rejected(reason);
        tracing::warn!(reason = reason.as_str(), sequence, peer = self.peer, %detail, "attestation rejected");
        self.rejections.push(Rejection {
            at_ms: self.now,
            reason: reason.as_str().to_owned(),
            key_id: key,
            host_id: host.map(HostId),
            // A sequence the store cannot hold is named in the detail, not kept as a number:
            // the record of a refusal must never fail its batch.
            sequence: (sequence > 0 && i64::try_from(sequence).is_ok()).then_some(sequence),
            peer: self.peer.to_owned(),
            detail: detail.clone(),
            count: 1,
        });
        self.outcomes[index] = Some(Outcome::Reject {
            sequence,
            reason,
            detail,
        });
    }
}

pub use collector_store::ledger::SILENCE_EVENT;

/// The record of `public_key` enrolled for `host` at `site` at `at_ms`: the one form both the
/// enrollment service and an administrator's registration store (identity
/// `urn:veu:agent:<host>`, the site's country). Fails on a host id no certificate may carry.
pub fn agent_record(
    public_key: &PublicKey,
    host: &str,
    site: &collector_core::Site,
    at_ms: i64,
) -> Result<AgentRecord, collector_pki::IdentityError> {
    let identity = collector_pki::PeerIdentity::new(collector_pki::Role::Agent, host)?;
    Ok(AgentRecord {
        key_id: public_key.key_id(),
        public_key: *public_key.as_bytes(),
        host_id: HostId(host.to_owned()),
        site_id: SiteId(site.id.clone()),
        country: site.country.to_string(),
        identity: identity.to_string(),
        enrolled_at_ms: at_ms,
        revoked_at_ms: None,
    })
}

/// Keys and books as the store holds them.
fn load_state(
    store: &dyn AttestationStore,
    freshness_ms: i64,
    policy: &Policy,
    landmarks: &proto_location::Landmarks,
    now_ms: i64,
) -> Result<State, IngestError> {
    let ledger = load_ledger(store, freshness_ms, policy.evidence.clone(), now_ms)?;
    let locations = load_locations(store, policy, landmarks, &ledger, now_ms)?;
    for note in ledger.restore_notes() {
        tracing::warn!(note, "stored books brought to the ledger's rules");
    }
    let mut agents = HashMap::new();
    for record in store.agents()? {
        if let Some(agent) = known(&record) {
            agents.insert(agent.binding.key_id, agent);
        }
    }
    Ok(State {
        agents,
        ledger,
        locations,
    })
}

/// The location book from the measurement leaves of the last `[location] max_age_hours`, each
/// opened with the landmarks trusted now and admitted by the book's rule (a landmark removed
/// from the registry no longer counts).
fn load_locations(
    store: &dyn AttestationStore,
    policy: &Policy,
    landmarks: &proto_location::Landmarks,
    ledger: &Ledger,
    now_ms: i64,
) -> Result<collector_core::LocationBook, StoreError> {
    let rule = proto_location::LocationRule::from(&policy.location);
    let mut book = collector_core::LocationBook::new(rule);
    if landmarks.is_empty() {
        return Ok(book);
    }
    let since = now_ms.saturating_sub(rule.max_age_ms + collector_core::location::MAX_SKEW_MS);
    let mut skipped = 0usize;
    let mut entries = Vec::new();
    for record in store.measurements(since)? {
        match proto_evidence::LogEntry::decode(&record.entry) {
            Ok(entry) => entries.push((record.log_index, entry)),
            Err(_) => skipped += 1,
        }
    }
    // Only the newest of each landmark and host is opened: the book keeps no other.
    let newest = collector_bundle::newest_of_each_pair(entries.iter().map(|(i, e)| (*i, e)));
    for (_, entry) in newest {
        let proto_evidence::LogEntry::Measurement {
            received_at_ms,
            measurement,
        } = entry
        else {
            continue;
        };
        let admitted = crate::landmark::open(measurement, landmarks)
            .ok()
            .filter(|m| {
                book.check(m, None, landmarks, ledger, *received_at_ms)
                    .is_ok()
            });
        match admitted {
            Some(m) => book.accept(m),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::info!(
            skipped,
            "logged measurements that no longer count (landmark no longer trusted, key replaced)"
        );
    }
    Ok(book)
}

fn known(record: &AgentRecord) -> Option<KnownAgent> {
    Some(KnownAgent {
        binding: AgentBinding {
            key_id: record.key_id,
            host_id: record.host_id.0.clone(),
            site_id: record.site_id.0.clone(),
            identity: record.identity.clone(),
        },
        public_key: PublicKey::from_slice(&record.public_key).ok()?,
    })
}
