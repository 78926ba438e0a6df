//! The ingest pipeline: envelopes from one stream, as a batch, through size and field checks,
//! key lookup, signature verification (off the executor, in one blocking task per batch, as one
//! batch verification with `proto_seal::open_batch`), admission under the state lock, one
//! durable store commit, and only then the live distribution, GPU conflicts and
//! acknowledgements.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use collector_core::admission::{NonceCheck, Submission};
use collector_core::conflicts::GpuIds;
use collector_core::{
    Admission, AdmissionContext, AgentBinding, GpuIndex, LiveDistribution, Reason, SiteRegistry,
    admit,
};
use collector_store::{
    AcceptedAttestation, AgentRecord, AttestationStore, Batch, Event, Gpu, Rejection,
};
use proto_accounting::{Catalogue, CountryCode, Policy};
use proto_evidence::{ChainDigest, ChainHead, Envelope, KeyId, Link, Sha256};
use proto_seal::{OpenError, PublicKey, VerifiedAttestation};
use proto_wire::v1;

use crate::metrics::Metrics;
use crate::nonce::NonceIssuer;

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

/// The store did not commit: nothing of the batch was acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("the store did not commit: {0}")]
pub struct IngestError(pub String);

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
    /// Enrolled keys.
    pub agents: HashMap<KeyId, KnownAgent>,
    /// Chain head per key.
    pub heads: HashMap<KeyId, ChainHead>,
    /// The live distribution.
    pub live: LiveDistribution,
    /// GPU ownership.
    pub gpus: GpuIndex,
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
    clock: fn() -> i64,
    freshness_ms: i64,
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
        let fail = |e: collector_store::StoreError| IngestError(e.to_string());
        let now = clock();
        let mut state = State {
            agents: HashMap::new(),
            heads: HashMap::new(),
            live: LiveDistribution::new(freshness_ms),
            gpus: GpuIndex::new(),
        };
        for record in store.agents().map_err(fail)? {
            if let Some(agent) = known(&record) {
                state.agents.insert(agent.binding.key_id, agent);
            }
        }
        for (key, sequence, digest) in store.chain_heads().map_err(fail)? {
            state.heads.insert(
                key_id(&key),
                ChainHead {
                    sequence,
                    digest: chain_digest(&digest),
                },
            );
        }
        let mut gpus_by_host: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (uuid, serial, host) in store.gpu_owners().map_err(fail)? {
            gpus_by_host.entry(host).or_default().push((uuid, serial));
        }
        for host in store.host_states().map_err(fail)? {
            if host.decommissioned_at_ms.is_some() {
                continue;
            }
            let Ok(country) = CountryCode::parse(&host.country) else {
                tracing::error!(
                    host = host.host_id,
                    country = host.country,
                    "stored host has an invalid country; skipped"
                );
                continue;
            };
            let ids = gpus_by_host.remove(&host.host_id).unwrap_or_default();
            let ids: Vec<GpuIds<'_>> = ids
                .iter()
                .map(|(u, s)| GpuIds { uuid: u, serial: s })
                .collect();
            state.gpus.update(&host.host_id, &ids);
            state
                .live
                .upsert(
                    &host.host_id,
                    country,
                    host.tpp,
                    host.last_received_at_ms,
                    now,
                )
                .map_err(|e| IngestError(e.to_string()))?;
        }
        Ok(Self {
            store,
            rules,
            nonces,
            metrics,
            state: Mutex::new(state),
            clock,
            freshness_ms,
        })
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
        let raw = *key.0.as_bytes();
        let record = tokio::task::spawn_blocking(move || store.agent(&raw))
            .await
            .ok()?
            .ok()??;
        let agent = known(&record)?;
        self.state().agents.insert(*key, agent.clone());
        Some(agent)
    }

    /// Brings the in-memory view up to what other replicas stored (several collectors on one
    /// database): enrolled keys and revocations, chain heads, and each host's latest state in
    /// the live distribution. The daemon calls it every few seconds on a shared store.
    pub fn refresh_from_store(&self) -> Result<(), IngestError> {
        let fail = |e: collector_store::StoreError| IngestError(e.to_string());
        let agents = self.store.agents().map_err(fail)?;
        let heads = self.store.chain_heads().map_err(fail)?;
        let hosts = self.store.host_states().map_err(fail)?;
        let now = self.now_ms();
        let mut state = self.state();
        for record in &agents {
            if let Some(agent) = known(record) {
                state.agents.insert(agent.binding.key_id, agent);
            }
        }
        for (key, sequence, digest) in heads {
            let key = key_id(&key);
            if state.heads.get(&key).is_none_or(|h| sequence > h.sequence) {
                state.heads.insert(
                    key,
                    ChainHead {
                        sequence,
                        digest: chain_digest(&digest),
                    },
                );
            }
        }
        for host in hosts {
            if host.decommissioned_at_ms.is_some() {
                state.live.remove(&host.host_id);
                continue;
            }
            let Ok(country) = CountryCode::parse(&host.country) else {
                continue;
            };
            let seen = state
                .live
                .host(&host.host_id)
                .map(|entry| entry.last_received_ms);
            if seen.is_none_or(|seen| host.last_received_at_ms > seen) {
                state
                    .live
                    .upsert(
                        &host.host_id,
                        country,
                        host.tpp,
                        host.last_received_at_ms,
                        now,
                    )
                    .map_err(|e| IngestError(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Adds or replaces an enrolled key in memory (after the store has it).
    pub fn remember(&self, record: &AgentRecord) {
        if let Some(agent) = known(record) {
            self.state().agents.insert(agent.binding.key_id, agent);
        }
    }

    /// Ingests the attestations one stream delivered, in order.
    pub async fn ingest(
        &self,
        peer: &str,
        attestations: Vec<v1::SignedAttestation>,
    ) -> Result<Vec<Outcome>, IngestError> {
        let now = self.now_ms();
        let mut results = Results {
            outcomes: vec![None; attestations.len()],
            rejections: Vec::new(),
            now,
            peer,
            metrics: &self.metrics,
        };

        // 1. Fields and sizes, and the signer's key (looked up once per key: a stream's batch
        //    is one agent's).
        let mut signers: Vec<(KeyId, Option<Arc<KnownAgent>>)> = Vec::new();
        let mut to_verify: Vec<(usize, Envelope, Arc<KnownAgent>)> =
            Vec::with_capacity(attestations.len());
        for (index, attestation) in attestations.into_iter().enumerate() {
            let Some(wire) = attestation.envelope else {
                results.reject(
                    index,
                    0,
                    None,
                    None,
                    Reason::Malformed,
                    "attestation without an envelope".into(),
                );
                continue;
            };
            let envelope = match proto_seal::envelope_from_wire(wire) {
                Ok(envelope) => envelope,
                Err(error) => {
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
                Some(agent) => to_verify.push((index, envelope, agent)),
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

        // 2. Signatures over the received bytes, verified as one batch in a blocking task.
        let verified = tokio::task::spawn_blocking(move || {
            let (envelopes, owners): (Vec<Envelope>, Vec<_>) = to_verify
                .into_iter()
                .map(|(index, envelope, agent)| {
                    let key = envelope.key_id;
                    (envelope, (index, key, agent))
                })
                .unzip();
            let opened = proto_seal::open_batch(
                envelopes
                    .into_iter()
                    .zip(owners.iter().map(|(_, _, agent)| &agent.public_key)),
            );
            owners
                .into_iter()
                .zip(opened)
                .map(|((index, key, agent), result)| (index, key, result, agent))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| IngestError(format!("verification task failed: {e}")))?;

        // 2b. A chain another replica continued: where memory has no head for the key, or the
        //     link skips past it, take the store's head when it is newer, so an agent that moved
        //     between replicas is neither a gap nor a fork.
        let behind: Vec<KeyId> = {
            let state = self.state();
            let mut keys: Vec<KeyId> = verified
                .iter()
                .filter_map(|(_, key, result, _)| {
                    let sequence = result.as_ref().ok()?.payload().sequence;
                    let behind = state
                        .heads
                        .get(key)
                        .map_or(sequence > 1, |head| sequence > head.sequence + 1);
                    behind.then_some(*key)
                })
                .collect();
            keys.sort();
            keys.dedup();
            keys
        };
        if !behind.is_empty() {
            let store = Arc::clone(&self.store);
            let found = tokio::task::spawn_blocking(move || {
                behind
                    .into_iter()
                    .map(|key| (key, store.chain_head(key.0.as_bytes())))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| IngestError(format!("store lookup failed: {e}")))?;
            let mut state = self.state();
            for (key, head) in found {
                if let Some((sequence, digest)) = head.map_err(|e| IngestError(e.to_string()))?
                    && state.heads.get(&key).is_none_or(|h| sequence > h.sequence)
                {
                    state.heads.insert(
                        key,
                        ChainHead {
                            sequence,
                            digest: chain_digest(&digest),
                        },
                    );
                }
            }
        }

        // 3. Stored digests for resubmissions at or below the head (immutable once stored).
        let mut stored: HashMap<(KeyId, u64), ChainDigest> = HashMap::new();
        {
            let lookups: Vec<(KeyId, u64)> = {
                let state = self.state();
                verified
                    .iter()
                    .filter_map(|(_, key, result, _)| {
                        result.as_ref().ok().map(|v| (*key, v.payload().sequence))
                    })
                    .filter(|(key, sequence)| {
                        state
                            .heads
                            .get(key)
                            .is_some_and(|head| *sequence <= head.sequence)
                    })
                    .collect()
            };
            if !lookups.is_empty() {
                let store = Arc::clone(&self.store);
                let found = tokio::task::spawn_blocking(move || {
                    lookups
                        .into_iter()
                        .map(|(key, sequence)| {
                            (
                                key,
                                sequence,
                                store.stored_digest(key.0.as_bytes(), sequence),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| IngestError(format!("store lookup failed: {e}")))?;
                for (key, sequence, digest) in found {
                    if let Some(digest) = digest.map_err(|e| IngestError(e.to_string()))? {
                        stored.insert((key, sequence), chain_digest(&digest));
                    }
                }
            }
        }

        // 4. Admission, advancing chain heads tentatively (undone if the commit fails).
        let mut accepted: Vec<(usize, VerifiedAttestation, CountryCode)> =
            Vec::with_capacity(verified.len());
        let mut rows: Vec<AcceptedAttestation> = Vec::with_capacity(verified.len());
        let mut events = Vec::new();
        // Hosts already checked for a silence in this batch.
        let mut heard: Vec<String> = Vec::new();
        let mut previous_heads: HashMap<KeyId, Option<ChainHead>> = HashMap::new();
        // A stream answers one nonce until the next challenge: judge each nonce once.
        let mut nonce_checks: Vec<(KeyId, Vec<u8>, NonceCheck)> = Vec::new();
        {
            let mut state = self.state();
            for (index, key, result, agent) in verified {
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
                let head = state.heads.get(&key).copied();
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
                match admit(&agent.binding, head, stored_digest, submission, context) {
                    Err((reason, detail)) => {
                        results.reject(index, payload.sequence, Some(key), host(), reason, detail)
                    }
                    Ok(Admission::Duplicate) => {
                        results.outcomes[index] = Some(Outcome::Ack {
                            sequence: payload.sequence,
                            digest: *attestation.digest().0.as_bytes(),
                        });
                    }
                    Ok(Admission::Accept {
                        link,
                        fresh,
                        country,
                    }) => {
                        previous_heads.entry(key).or_insert(head);
                        state
                            .heads
                            .insert(key, ChainHead::after(payload, attestation.digest()));
                        let gap_before = match link {
                            Link::Next => 0,
                            Link::Gap { missing } => missing,
                        };
                        if gap_before > 0 {
                            events.push(Event {
                                at_ms: now,
                                kind: "gap".into(),
                                host_id: host(),
                                key_id: Some(*key.0.as_bytes()),
                                detail: format!(
                                    "{gap_before} attestation(s) missing before sequence {}",
                                    payload.sequence
                                ),
                            });
                        }
                        // A host heard again after going stale: the silence, for the report.
                        if !heard.contains(&payload.host_id.0) {
                            heard.push(payload.host_id.0.clone());
                            if let Some(entry) = state.live.host(&payload.host_id.0)
                                && now.saturating_sub(entry.last_received_ms) > self.freshness_ms
                            {
                                events.push(silence_event(
                                    now,
                                    entry.last_received_ms.saturating_add(self.freshness_ms),
                                    &payload.host_id.0,
                                    key,
                                ));
                            }
                        }
                        let row = AcceptedAttestation {
                            key_id: *key.0.as_bytes(),
                            sequence: payload.sequence,
                            digest: *attestation.digest().0.as_bytes(),
                            previous_digest: *payload.previous_digest.0.as_bytes(),
                            host_id: payload.host_id.0.clone(),
                            site_id: payload.site_id.0.clone(),
                            country: country.to_string(),
                            issued_at_ms: payload.issued_at_unix_ms,
                            received_at_ms: now,
                            tpp: payload.totals.tpp,
                            devices: payload.totals.devices,
                            simulated: payload.source == proto_evidence::EvidenceSource::Simulated,
                            gap_before,
                            fresh,
                            envelope: proto_seal::encode_envelope(attestation.envelope()),
                            gpus: payload
                                .devices
                                .iter()
                                .map(|d| Gpu {
                                    uuid: d.uuid.clone(),
                                    serial: d.serial.clone(),
                                    catalogue_id: d.catalogue_id.clone(),
                                    tpp: d.tpp,
                                })
                                .collect(),
                            log_index: None,
                        };
                        rows.push(row);
                        accepted.push((index, attestation, country));
                    }
                }
            }
        }

        // 5. One durable commit; acknowledgements only after it.
        let batch = Batch {
            attestations: rows,
            events,
            rejections: std::mem::take(&mut results.rejections),
        };
        if let Err(error) = self.store.commit(batch).await {
            let mut state = self.state();
            for (key, head) in previous_heads {
                match head {
                    Some(head) => state.heads.insert(key, head),
                    None => state.heads.remove(&key),
                };
            }
            return Err(IngestError(error.to_string()));
        }

        // 6. The live view, after the commit.
        let mut conflict_events = Vec::new();
        {
            let mut state = self.state();
            for (index, attestation, country) in &accepted {
                let payload = attestation.payload();
                let host = &payload.host_id.0;
                let ids: Vec<GpuIds<'_>> = payload
                    .devices
                    .iter()
                    .map(|d| GpuIds {
                        uuid: &d.uuid,
                        serial: &d.serial,
                    })
                    .collect();
                let (counted, conflicts) = state.gpus.update(host, &ids);
                let tpp = payload
                    .devices
                    .iter()
                    .zip(&counted)
                    .filter(|(_, counts)| **counts)
                    .map(|(d, _)| d.tpp)
                    .sum();
                for conflict in conflicts {
                    self.metrics.conflicts.inc();
                    tracing::warn!(?conflict, "GPU identity seen on two hosts; it counts once");
                    conflict_events.push(Event {
                        at_ms: now,
                        kind: "gpu_conflict".into(),
                        host_id: Some(conflict.claimant.clone()),
                        key_id: Some(*attestation.envelope().key_id.0.as_bytes()),
                        detail: format!(
                            "{:?} {} is also reported by {} (counted there)",
                            conflict.kind, conflict.value, conflict.owner
                        ),
                    });
                }
                if let Err(error) = state.live.upsert(host, *country, tpp, now, now) {
                    tracing::error!(%error, host, "cannot count this host");
                }
                self.metrics.accepted.inc();
                results.outcomes[*index] = Some(Outcome::Ack {
                    sequence: payload.sequence,
                    digest: *attestation.digest().0.as_bytes(),
                });
            }
            self.metrics.observe(&state.live, &self.rules.policy);
        }
        if !conflict_events.is_empty() {
            let batch = Batch {
                attestations: Vec::new(),
                events: conflict_events,
                rejections: Vec::new(),
            };
            if let Err(error) = self.store.commit(batch).await {
                tracing::error!(%error, "cannot store GPU conflict events");
            }
        }
        Ok(results.outcomes.into_iter().flatten().collect())
    }
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
            key_id: key.map(|k| *k.0.as_bytes()),
            host_id: host,
            sequence: (sequence > 0).then_some(sequence),
            peer: self.peer.to_owned(),
            detail: detail.clone(),
        });
        self.outcomes[index] = Some(Outcome::Reject {
            sequence,
            reason,
            detail,
        });
    }
}

/// Kind of the event recorded when a stale host is heard again.
pub const SILENCE_EVENT: &str = "silence";

/// A host stale from `stale_from_ms` (its last receipt plus the freshness window) until `now`.
/// The detail starts with `stale_from_ms`, which `silence_start` reads back.
fn silence_event(now: i64, stale_from_ms: i64, host: &str, key: KeyId) -> Event {
    Event {
        at_ms: now,
        kind: SILENCE_EVENT.into(),
        host_id: Some(host.to_owned()),
        key_id: Some(*key.0.as_bytes()),
        detail: format!(
            "{stale_from_ms}: stale for {} s, beyond the freshness window, until heard again",
            now.saturating_sub(stale_from_ms) / 1000
        ),
    }
}

/// When the silence a `silence` event closes began.
pub fn silence_start(event: &Event) -> Option<i64> {
    event.detail.split(':').next()?.parse().ok()
}

fn known(record: &AgentRecord) -> Option<KnownAgent> {
    Some(KnownAgent {
        binding: AgentBinding {
            key_id: key_id(&record.key_id),
            host_id: record.host_id.clone(),
            site_id: record.site_id.clone(),
            identity: record.identity.clone(),
            revoked: record.revoked_at_ms.is_some(),
        },
        public_key: PublicKey::from_slice(&record.public_key).ok()?,
    })
}

/// A stored key id.
pub fn key_id(raw: &[u8; 32]) -> KeyId {
    KeyId(Sha256::from_slice(raw).unwrap_or_default())
}

fn chain_digest(raw: &[u8; 32]) -> ChainDigest {
    ChainDigest(Sha256::from_slice(raw).unwrap_or_default())
}
