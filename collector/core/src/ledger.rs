//! The ledger: the one definition of how accepted evidence changes the books.
//!
//! Every path that needs a host's place and counted compute — ingest and the live view, both
//! stores (which only persist what the ledger decided), audit replay, the monthly report and
//! the offline bundle verifier — applies the same log entries, in the collector's order of
//! acceptance (log index), to a [`Ledger`]. Time is an argument: each entry carries the
//! collector's instant, and the ledger's own clock only moves forward, so the agent's clock
//! never orders anything.
//!
//! The rules, each refusal with its [`Reason`] (or [`EnrolRefusal`]):
//! - a key is enrolled once, for a host id nobody holds yet; a host id that exists is never
//!   taken over by enrolment, only re-bound by an explicit administrative [`Entry::Rebound`],
//!   which revokes every earlier key of the host and starts it again without counted compute;
//! - a revoked key is revoked forever: it is never enrolled again and nothing it signs is
//!   accepted;
//! - an attestation must come from an enrolled, unrevoked key, name the key's host and site,
//!   extend the key's chain (no rollback, fork or wrong predecessor; gaps are recorded), be
//!   issued no earlier than its predecessor nor than the key's enrolment, and list each GPU
//!   once (identities compared trimmed and case-folded);
//! - a GPU (by UUID or serial) counts once, for the host that holds it; another host
//!   reporting it keeps it uncounted and raises a conflict, once per standing conflict;
//! - a decommissioned host's attestations are kept as evidence, flagged, and never counted;
//! - a host that falls silent keeps counting at its last attested place until it is
//!   decommissioned (the live view also shows it as stale).

use std::collections::{BTreeMap, HashMap, HashSet};

use proto_accounting::{CountryCode, Distribution, EvidenceRule};
use proto_evidence::{
    AttestationPayload, ChainDigest, ChainError, ChainHead, GpuProof, KeyId, Link,
};

use crate::conflicts::{GpuId, IdKind, gpu_ids};
use crate::live::{LiveDistribution, Sums};
use crate::{Conflict, Reason};

/// One accepted log entry, as the ledger applies it.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// A key enrolled for a new host at a site.
    Enrolled(Binding<'a>),
    /// An administrator re-bound an existing host to a new key (and perhaps a new site).
    Rebound(Binding<'a>),
    /// A key revoked.
    Revoked {
        /// Collector time.
        at_ms: i64,
        /// The key.
        key: KeyId,
    },
    /// A host decommissioned by an administrator.
    Decommissioned {
        /// Collector time.
        at_ms: i64,
        /// The host.
        host: &'a str,
    },
    /// A signature-checked attestation.
    Attested {
        /// Collector time of receipt.
        at_ms: i64,
        /// Its chain digest.
        digest: ChainDigest,
        /// The decoded payload (its `key_id` is the signer).
        payload: &'a AttestationPayload,
        /// Each device's hardware evidence as judged (`proto_gpu_evidence::assess`), in the
        /// payload's device order; a missing one is `GpuProof::Absent`.
        gpu: &'a [GpuProof],
    },
}

/// A key bound to a host and site.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// Collector time.
    pub at_ms: i64,
    /// The key.
    pub key: KeyId,
    /// The host it attests for.
    pub host: &'a str,
    /// Its site.
    pub site: &'a str,
    /// The site's country, as logged.
    pub country: CountryCode,
}

/// Why an enrolment or re-binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrolRefusal {
    /// The key is already enrolled.
    #[error("key {0} is already enrolled")]
    KeyKnown(KeyId),
    /// The key was revoked; revocation is forever.
    #[error("key {0} was revoked, and a revoked key is never enrolled again")]
    KeyRevoked(KeyId),
    /// The host id is held; only an administrator's re-binding moves or re-keys it.
    #[error(
        "host {0} is already enrolled; moving or re-keying it takes an administrator's rebind token (veuctl enroll-token --site SITE --rebind {0})"
    )]
    HostTaken(String),
    /// A re-binding names a host that was never enrolled.
    #[error("host {0} is not enrolled, so it cannot be re-bound")]
    UnknownHost(String),
}

/// Why an administrative entry changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    /// Not an enrolled key.
    #[error("key {0} is not enrolled")]
    UnknownKey(KeyId),
    /// Already revoked.
    #[error("key {0} is already revoked")]
    AlreadyRevoked(KeyId),
    /// Not a host in service.
    #[error("host {0} is not a host in service")]
    NotInService(String),
}

/// What the ledger knows of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The host it attests for.
    pub host: String,
    /// Its site.
    pub site: String,
    /// The site's country, as logged at enrolment.
    pub country: CountryCode,
    /// When it was enrolled (collector time).
    pub enrolled_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// Its newest accepted link.
    pub head: Option<ChainPoint>,
}

/// A chain's newest accepted link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPoint {
    /// Sequence.
    pub sequence: u64,
    /// Chain digest.
    pub digest: ChainDigest,
    /// The agent's issue time.
    pub issued_at_ms: i64,
}

/// A host's place in the books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// Its site.
    pub site: String,
    /// Where its compute counts.
    pub country: CountryCode,
    /// The key of its newest accepted attestation (or of its binding before any).
    pub key: KeyId,
    /// Counted TPP (uncounted GPUs excluded).
    pub tpp: u64,
    /// The part of `tpp` whose GPUs hold hardware evidence.
    pub hardware_tpp: u64,
    /// Counted devices.
    pub devices: u32,
    /// Its newest attestation's GPUs, normalised, each with whether it counts here.
    pub gpus: Vec<GpuClaim>,
    /// When it was decommissioned; it counts nothing while set.
    pub decommissioned_at_ms: Option<i64>,
    /// Receipt time of its newest accepted attestation (0 before any).
    pub last_received_ms: i64,
    /// Issue time of its newest accepted attestation (0 before any).
    pub last_issued_ms: i64,
    /// Sequence of its newest accepted attestation (0 before any since its enrolment or
    /// re-binding).
    pub last_sequence: u64,
    /// Chain digest of its newest accepted attestation.
    pub last_digest: ChainDigest,
}

impl HostRecord {
    /// Whether it has attested since it was enrolled or re-bound: only then can it count.
    pub fn attested(&self) -> bool {
        self.last_sequence > 0
    }

    /// Whether its compute counts: attested and in service.
    pub fn counts(&self) -> bool {
        self.attested() && self.decommissioned_at_ms.is_none()
    }
}

/// One GPU of a host's newest attestation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GpuClaim {
    /// Normalised UUID (empty when absent or a placeholder).
    pub uuid: String,
    /// Normalised serial (empty when absent or a placeholder).
    pub serial: String,
    /// Its TPP.
    pub tpp: u64,
    /// Whether it counts for this host (false: another host holds one of its identities).
    pub counted: bool,
    /// Its hardware identity, from the last verified report of this GPU on this host (empty
    /// when none was ever verified). It stays after the evidence expires: it is the GPU's
    /// identity in the conflict index.
    pub hardware: String,
    /// When the challenge of that report was issued (0: never); the GPU is at the hardware
    /// level while the policy's `EvidenceRule::holds` says so.
    pub hardware_at_ms: i64,
}

/// A host's new place in the books, from one instant (the ledger's clock) on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostChange {
    /// Ledger time.
    pub at_ms: i64,
    /// The host.
    pub host: String,
    /// Its site.
    pub site: String,
    /// Its country.
    pub country: CountryCode,
    /// Counted TPP from now on (0 when it stops counting).
    pub tpp: u64,
    /// The part of `tpp` whose GPUs hold hardware evidence.
    pub hardware_tpp: u64,
    /// Counted devices from now on.
    pub devices: u32,
    /// Whether it counts from now on.
    pub counts: bool,
    /// What caused it.
    pub cause: ChangeCause,
}

/// What moved a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeCause {
    /// An attestation.
    Attested,
    /// Decommissioning.
    Decommissioned,
    /// An administrator re-bound the host to a new key.
    Rebound,
}

/// Something the ledger flags while applying an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEvent {
    /// Sequences missing before an accepted link (lost evidence).
    Gap {
        /// The host.
        host: String,
        /// The key.
        key: KeyId,
        /// The accepted sequence.
        sequence: u64,
        /// How many are missing before it.
        missing: u64,
    },
    /// A GPU identity another host holds: it counts there, not here.
    GpuConflict {
        /// The key that reported it.
        key: KeyId,
        /// Who, what and where.
        conflict: Conflict,
    },
    /// A decommissioned host attests again; its evidence is kept and not counted.
    DecommissionedHostAttesting {
        /// The host.
        host: String,
        /// The key.
        key: KeyId,
        /// When it was decommissioned.
        decommissioned_at_ms: i64,
    },
    /// A host heard again after a silence longer than the freshness window.
    Silence {
        /// The host.
        host: String,
        /// The key.
        key: KeyId,
        /// When it became stale.
        from_ms: i64,
    },
    /// A device's hardware report failed verification: it counts as NVML evidence only.
    GpuEvidenceRefused {
        /// The host.
        host: String,
        /// The key.
        key: KeyId,
        /// The device's NVML index.
        device: u32,
        /// The verifier's reason code.
        reason: String,
        /// What was wrong.
        detail: String,
    },
    /// The silicon behind a GPU's labels changed: one hardware identity under new NVML
    /// identifiers, or one NVML identifier over new silicon.
    GpuRelabelled {
        /// The host.
        host: String,
        /// The key.
        key: KeyId,
        /// What changed.
        detail: String,
    },
    /// A re-binding revoked an earlier key of the host.
    KeyRevokedByRebind {
        /// The host.
        host: String,
        /// The key.
        key: KeyId,
    },
}

/// What applying an entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A key bound (enrolled or re-bound).
    Bound {
        /// The host's change (a re-bound host stops counting until it attests).
        change: Option<HostChange>,
        /// Keys a re-binding revoked.
        events: Vec<LedgerEvent>,
    },
    /// A key revoked.
    Revoked,
    /// A host decommissioned.
    Decommissioned(HostChange),
    /// An attestation applied.
    Attested(Applied),
}

impl Effect {
    /// The host change it made, if any.
    pub fn change(&self) -> Option<&HostChange> {
        match self {
            Self::Bound { change, .. } => change.as_ref(),
            Self::Revoked => None,
            Self::Decommissioned(change) => Some(change),
            Self::Attested(applied) => applied.change.as_ref(),
        }
    }
}

/// An entry the ledger refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// An attestation, with its reason code.
    #[error("{0}: {1}")]
    Attestation(Reason, String),
    /// An enrolment or re-binding.
    #[error(transparent)]
    Enrol(EnrolRefusal),
    /// A revocation or decommissioning that changes nothing.
    #[error(transparent)]
    Admin(AdminRefusal),
}

/// What applying one attestation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// How it extends its chain.
    pub link: Link,
    /// Its counted TPP (0 when its host does not count).
    pub tpp: u64,
    /// Its counted devices.
    pub devices: u32,
    /// Per device of the payload, whether it counts.
    pub counted: Vec<bool>,
    /// The host's change, when what counts changed.
    pub change: Option<HostChange>,
    /// What it raised.
    pub events: Vec<LedgerEvent>,
}

/// The books: keys, hosts, GPU ownership and the per-country sums of both views.
#[derive(Debug, Clone)]
pub struct Ledger {
    keys: HashMap<KeyId, KeyRecord>,
    hosts: BTreeMap<String, HostRecord>,
    owners: HashMap<GpuId, String>,
    live: LiveDistribution,
    evidence: EvidenceRule,
    clock_ms: i64,
    /// What `restore` had to change in books written before the ledger's rules.
    restore_notes: Vec<String>,
}

impl Ledger {
    /// Empty books; a host counts as verified for `freshness_ms` after each attestation, and
    /// a GPU at the hardware level, and counts without it, as the policy's `evidence` says.
    pub fn new(freshness_ms: i64, evidence: EvidenceRule) -> Self {
        Self {
            keys: HashMap::new(),
            hosts: BTreeMap::new(),
            owners: HashMap::new(),
            live: LiveDistribution::new(freshness_ms),
            evidence,
            clock_ms: i64::MIN,
            restore_notes: Vec::new(),
        }
    }

    /// Books restored from what a store persisted of earlier applications (keys and hosts as
    /// the ledger left them). `now_ms` decides who is stale. Restoring what a ledger
    /// persisted gives that ledger back: same keys, hosts, owners and sums.
    pub fn restore(
        keys: impl IntoIterator<Item = (KeyId, KeyRecord)>,
        hosts: impl IntoIterator<Item = (String, HostRecord)>,
        freshness_ms: i64,
        evidence: EvidenceRule,
        now_ms: i64,
    ) -> Result<Self, RestoreError> {
        let mut ledger = Self::new(freshness_ms, evidence);
        for (key, record) in keys {
            ledger.tick(record.enrolled_at_ms);
            if let Some(at) = record.revoked_at_ms {
                ledger.tick(at);
            }
            ledger.keys.insert(key, record);
        }
        for (host, mut record) in hosts {
            ledger.tick(record.last_received_ms);
            if let Some(at) = record.decommissioned_at_ms {
                ledger.tick(at);
            }
            // What the ledger persisted is normalised and owned once. Books written before it
            // (identities as reported, a GPU counted on two hosts) are brought to its rules:
            // a GPU another host already holds stops counting here, and the change is noted.
            let mut recount = false;
            for claim in &mut record.gpus {
                let mut normalised =
                    self::claim(&claim.uuid, &claim.serial, claim.tpp, claim.counted);
                normalised.hardware = std::mem::take(&mut claim.hardware);
                normalised.hardware_at_ms = claim.hardware_at_ms;
                *claim = normalised;
                if !claim.counted {
                    continue;
                }
                let taken: Vec<GpuId> = claim_ids(claim)
                    .filter(|id| ledger.owners.get(id).is_some_and(|o| *o != host))
                    .collect();
                if let Some(id) = taken.first() {
                    ledger.restore_notes.push(format!(
                        "GPU {} {} was counted for both {} and {host}; it now counts for {} only",
                        id.kind.as_str(),
                        id.value,
                        ledger.owners.get(id).map_or("", String::as_str),
                        ledger.owners.get(id).map_or("", String::as_str),
                    ));
                    claim.counted = false;
                    recount = true;
                    continue;
                }
                for id in claim_ids(claim) {
                    ledger.owners.insert(id, host.clone());
                }
            }
            if recount {
                record.tpp = record
                    .gpus
                    .iter()
                    .filter(|c| c.counted)
                    .map(|c| c.tpp)
                    .sum();
                let devices = record.gpus.iter().filter(|c| c.counted).count();
                record.devices = u32::try_from(devices).unwrap_or(u32::MAX);
            }
            record.hardware_tpp = ledger.hardware_tpp(&record.gpus, record.last_received_ms);
            if record.counts() {
                ledger
                    .live
                    .upsert(
                        &host,
                        record.country,
                        Sums {
                            tpp: record.tpp,
                            hardware_tpp: record.hardware_tpp,
                        },
                        record.last_received_ms,
                        now_ms,
                    )
                    .map_err(|e| RestoreError(e.to_string()))?;
            }
            ledger.hosts.insert(host, record);
        }
        Ok(ledger)
    }

    /// Applies any entry: what a replay of the log calls for each leaf, in log order.
    pub fn apply(&mut self, entry: &Entry<'_>) -> Result<Effect, Refused> {
        match *entry {
            Entry::Enrolled(binding) => self
                .enrol(&binding, false)
                .map(|(change, events)| Effect::Bound { change, events })
                .map_err(Refused::Enrol),
            Entry::Rebound(binding) => self
                .enrol(&binding, true)
                .map(|(change, events)| Effect::Bound { change, events })
                .map_err(Refused::Enrol),
            Entry::Revoked { at_ms, key } => self
                .revoke(at_ms, key)
                .map(|()| Effect::Revoked)
                .map_err(Refused::Admin),
            Entry::Decommissioned { at_ms, host } => self
                .decommission(at_ms, host)
                .map(Effect::Decommissioned)
                .map_err(Refused::Admin),
            Entry::Attested {
                at_ms,
                digest,
                payload,
                gpu,
            } => self
                .attest(at_ms, payload, digest, gpu)
                .map(Effect::Attested)
                .map_err(|(reason, detail)| Refused::Attestation(reason, detail)),
        }
    }

    /// Enrols a key for a new host or, with `rebind`, re-binds an existing host to it
    /// (revoking the host's earlier keys). Returns the host's change and what it raised.
    pub fn enrol(
        &mut self,
        binding: &Binding<'_>,
        rebind: bool,
    ) -> Result<(Option<HostChange>, Vec<LedgerEvent>), EnrolRefusal> {
        self.check_enrol(binding, rebind)?;
        self.tick(binding.at_ms);
        let mut events = Vec::new();
        let mut change = None;
        if rebind {
            let mut revoked: Vec<KeyId> = self
                .keys
                .iter_mut()
                .filter(|(_, k)| k.host == binding.host && k.revoked_at_ms.is_none())
                .map(|(key, record)| {
                    record.revoked_at_ms = Some(binding.at_ms);
                    *key
                })
                .collect();
            revoked.sort();
            events.extend(
                revoked
                    .into_iter()
                    .map(|key| LedgerEvent::KeyRevokedByRebind {
                        host: binding.host.to_owned(),
                        key,
                    }),
            );
            self.release_gpus(binding.host);
            let clock = self.clock_ms;
            if let Some(host) = self.hosts.get_mut(binding.host) {
                let counted_before = host.counts();
                host.site = binding.site.to_owned();
                host.country = binding.country;
                host.key = binding.key;
                host.last_sequence = 0;
                host.last_digest = ChainDigest::GENESIS;
                host.tpp = 0;
                host.hardware_tpp = 0;
                host.devices = 0;
                host.gpus.clear();
                host.decommissioned_at_ms = None;
                if counted_before {
                    change = Some(HostChange {
                        at_ms: clock,
                        host: binding.host.to_owned(),
                        site: binding.site.to_owned(),
                        country: binding.country,
                        tpp: 0,
                        hardware_tpp: 0,
                        devices: 0,
                        counts: false,
                        cause: ChangeCause::Rebound,
                    });
                }
            }
            self.live.remove(binding.host);
        } else {
            self.hosts.insert(
                binding.host.to_owned(),
                HostRecord {
                    site: binding.site.to_owned(),
                    country: binding.country,
                    key: binding.key,
                    tpp: 0,
                    hardware_tpp: 0,
                    devices: 0,
                    gpus: Vec::new(),
                    decommissioned_at_ms: None,
                    last_received_ms: 0,
                    last_issued_ms: 0,
                    last_sequence: 0,
                    last_digest: ChainDigest::GENESIS,
                },
            );
        }
        self.keys.insert(
            binding.key,
            KeyRecord {
                host: binding.host.to_owned(),
                site: binding.site.to_owned(),
                country: binding.country,
                enrolled_at_ms: binding.at_ms,
                revoked_at_ms: None,
                head: None,
            },
        );
        Ok((change, events))
    }

    /// Whether an enrolment (or, with `rebind`, a re-binding) would be accepted.
    pub fn check_enrol(&self, binding: &Binding<'_>, rebind: bool) -> Result<(), EnrolRefusal> {
        if let Some(known) = self.keys.get(&binding.key) {
            return Err(if known.revoked_at_ms.is_some() {
                EnrolRefusal::KeyRevoked(binding.key)
            } else {
                EnrolRefusal::KeyKnown(binding.key)
            });
        }
        let exists = self.hosts.contains_key(binding.host);
        match (exists, rebind) {
            (true, false) => Err(EnrolRefusal::HostTaken(binding.host.to_owned())),
            (false, true) => Err(EnrolRefusal::UnknownHost(binding.host.to_owned())),
            _ => Ok(()),
        }
    }

    /// Revokes a key, forever.
    pub fn revoke(&mut self, at_ms: i64, key: KeyId) -> Result<(), AdminRefusal> {
        self.check_revoke(&key)?;
        self.tick(at_ms);
        if let Some(record) = self.keys.get_mut(&key) {
            record.revoked_at_ms = Some(at_ms);
        }
        Ok(())
    }

    /// Whether `revoke` would change anything.
    pub fn check_revoke(&self, key: &KeyId) -> Result<(), AdminRefusal> {
        match self.keys.get(key) {
            None => Err(AdminRefusal::UnknownKey(*key)),
            Some(record) if record.revoked_at_ms.is_some() => {
                Err(AdminRefusal::AlreadyRevoked(*key))
            }
            Some(_) => Ok(()),
        }
    }

    /// Decommissions a host: it stops counting and releases its GPUs.
    pub fn decommission(&mut self, at_ms: i64, host: &str) -> Result<HostChange, AdminRefusal> {
        self.check_decommission(host)?;
        self.tick(at_ms);
        self.release_gpus(host);
        self.live.remove(host);
        let clock = self.clock_ms;
        let record = self
            .hosts
            .get_mut(host)
            .ok_or_else(|| AdminRefusal::NotInService(host.to_owned()))?;
        record.decommissioned_at_ms = Some(clock);
        for claim in &mut record.gpus {
            claim.counted = false;
        }
        record.tpp = 0;
        record.hardware_tpp = 0;
        record.devices = 0;
        Ok(HostChange {
            at_ms: clock,
            host: host.to_owned(),
            site: record.site.clone(),
            country: record.country,
            tpp: 0,
            hardware_tpp: 0,
            devices: 0,
            counts: false,
            cause: ChangeCause::Decommissioned,
        })
    }

    /// Whether `decommission` would change anything.
    pub fn check_decommission(&self, host: &str) -> Result<(), AdminRefusal> {
        match self.hosts.get(host) {
            Some(record) if record.decommissioned_at_ms.is_none() => Ok(()),
            _ => Err(AdminRefusal::NotInService(host.to_owned())),
        }
    }

    /// Checks an attestation against every ledger rule without applying it.
    pub fn check_attestation(
        &self,
        payload: &AttestationPayload,
        digest: ChainDigest,
    ) -> Result<Link, (Reason, String)> {
        let link = self.check(payload, digest)?;
        claims_of(payload)?;
        Ok(link)
    }

    /// Every rule but the GPUs'.
    fn check(
        &self,
        payload: &AttestationPayload,
        digest: ChainDigest,
    ) -> Result<Link, (Reason, String)> {
        let key = payload.key_id;
        let Some(record) = self.keys.get(&key) else {
            return Err((Reason::UnknownKey, format!("key {key} is not enrolled")));
        };
        if let Some(at) = record.revoked_at_ms {
            return Err((
                Reason::RevokedKey,
                format!("key {key} was revoked at {at} ms"),
            ));
        }
        if payload.host_id.0 != record.host {
            return Err((
                Reason::KeyIdentityMismatch,
                format!(
                    "key {key} is enrolled for host {}, the payload names {}",
                    record.host, payload.host_id
                ),
            ));
        }
        if payload.site_id.0 != record.site {
            return Err((
                Reason::SiteMismatch,
                format!(
                    "host {} is enrolled at site {}, the payload names {}",
                    record.host, record.site, payload.site_id
                ),
            ));
        }
        let head = record.head.map(|point| ChainHead {
            sequence: point.sequence,
            digest: point.digest,
        });
        let link = ChainHead::check(head, payload, digest).map_err(|error| {
            let reason = match error {
                ChainError::Rollback { .. } => Reason::SequenceRollback,
                ChainError::Fork { .. } => Reason::Fork,
                ChainError::PreviousDigestMismatch { .. } | ChainError::BadStart { .. } => {
                    Reason::PreviousDigestMismatch
                }
            };
            (reason, error.to_string())
        })?;
        let issued = payload.issued_at_unix_ms;
        if let Some(point) = record.head
            && issued < point.issued_at_ms
        {
            return Err((
                Reason::Backdated,
                format!(
                    "sequence {} is issued {} ms before sequence {}, its predecessor in the chain",
                    payload.sequence,
                    point.issued_at_ms.saturating_sub(issued),
                    point.sequence
                ),
            ));
        }
        if issued < record.enrolled_at_ms {
            return Err((
                Reason::Backdated,
                format!(
                    "sequence {} is issued {} ms before its key was enrolled",
                    payload.sequence,
                    record.enrolled_at_ms.saturating_sub(issued)
                ),
            ));
        }
        Ok(link)
    }

    /// Applies an attestation received at `at_ms`, with its devices' hardware evidence as
    /// judged (`gpu`, in device order).
    pub fn attest(
        &mut self,
        at_ms: i64,
        payload: &AttestationPayload,
        digest: ChainDigest,
        gpu: &[GpuProof],
    ) -> Result<Applied, (Reason, String)> {
        let link = self.check(payload, digest)?;
        let host_id = payload.host_id.0.as_str();
        let proofs_absent = gpu.iter().all(|proof| *proof == GpuProof::Absent);
        // The common case: the same GPUs as the host's last attestation, every one counted
        // there, and no new hardware report. Nobody else can hold them, and they held no
        // duplicate, so they are neither checked nor claimed again (and nothing is allocated
        // for them).
        let unchanged = proofs_absent
            && self
                .hosts
                .get(host_id)
                .is_some_and(|r| r.decommissioned_at_ms.is_none() && holds(&r.gpus, payload));
        let clock = self.clock_ms.max(at_ms);
        let key = payload.key_id;
        let mut events = Vec::new();
        let reported = if unchanged {
            None
        } else {
            let mut claims = claims_of(payload)?;
            let held = self.hosts.get(host_id).map_or(&[][..], |r| &r.gpus[..]);
            events.extend(hardware_of(payload, gpu, held, clock, &mut claims)?);
            Some(claims)
        };
        // Taken out of the books while it is changed, put back below (no copy of its GPUs).
        let Some((host_key, mut record)) = self.hosts.remove_entry(host_id) else {
            // Every enrolled key's host is in the books; keep them consistent anyway.
            return Err((
                Reason::UnknownKey,
                format!("host {host_id} is not in the books"),
            ));
        };
        if let Link::Gap { missing } = link {
            events.insert(
                0,
                LedgerEvent::Gap {
                    host: host_id.to_owned(),
                    key,
                    sequence: payload.sequence,
                    missing,
                },
            );
        }
        if let Some(key_record) = self.keys.get_mut(&key) {
            key_record.head = Some(ChainPoint {
                sequence: payload.sequence,
                digest,
                issued_at_ms: payload.issued_at_unix_ms,
            });
        }
        let counted_before = record.counts();
        let (tpp_before, hardware_before, devices_before) =
            (record.tpp, record.hardware_tpp, record.devices);
        let freshness = self.live.freshness_ms();
        if counted_before && clock.saturating_sub(record.last_received_ms) > freshness {
            events.push(LedgerEvent::Silence {
                host: host_id.to_owned(),
                key,
                from_ms: record.last_received_ms.saturating_add(freshness),
            });
        }

        let claims = match record.decommissioned_at_ms {
            Some(decommissioned_at_ms) => {
                if record.last_received_ms <= decommissioned_at_ms {
                    events.push(LedgerEvent::DecommissionedHostAttesting {
                        host: host_id.to_owned(),
                        key,
                        decommissioned_at_ms,
                    });
                }
                reported
                    .unwrap_or_default()
                    .into_iter()
                    .map(|claim| GpuClaim {
                        counted: false,
                        ..claim
                    })
                    .collect()
            }
            None => match reported {
                None => {
                    let mut claims = std::mem::take(&mut record.gpus);
                    for (claim, device) in claims.iter_mut().zip(&payload.devices) {
                        claim.tpp = device.tpp;
                    }
                    claims
                }
                Some(reported) => {
                    let (claims, conflicts) = self.claim_gpus(host_id, &record.gpus, reported);
                    events.extend(
                        conflicts
                            .into_iter()
                            .map(|conflict| LedgerEvent::GpuConflict { key, conflict }),
                    );
                    claims
                }
            },
        };
        let counted: Vec<bool> = claims.iter().map(|c| c.counted).collect();
        let (tpp, hardware_tpp, devices) = if record.decommissioned_at_ms.is_none() {
            self.counted_sums(&claims, payload, clock)
        } else {
            (0, 0, 0)
        };
        record.key = key;
        record.tpp = tpp;
        record.hardware_tpp = hardware_tpp;
        record.devices = devices;
        record.gpus = claims;
        record.last_received_ms = clock;
        record.last_issued_ms = payload.issued_at_unix_ms;
        record.last_sequence = payload.sequence;
        record.last_digest = digest;
        let counts = record.counts();
        let change = (counts != counted_before
            || (counts
                && (tpp != tpp_before
                    || hardware_tpp != hardware_before
                    || devices != devices_before)))
            .then(|| HostChange {
                at_ms: clock,
                host: host_id.to_owned(),
                site: record.site.clone(),
                country: record.country,
                tpp,
                hardware_tpp,
                devices,
                counts,
                cause: ChangeCause::Attested,
            });
        let live = if counts {
            let sums = Sums { tpp, hardware_tpp };
            self.live
                .upsert(host_id, record.country, sums, clock, clock)
        } else {
            Ok(())
        };
        self.hosts.insert(host_key, record);
        // The sums cannot overflow for TPP that fits the catalogue; were they to, the entry is
        // refused with the books as they stand.
        live.map_err(|error| (Reason::Malformed, error.to_string()))?;
        self.tick(at_ms);
        Ok(Applied {
            link,
            tpp,
            devices,
            counted,
            change,
            events,
        })
    }

    /// Whether `claim` is at the hardware level at `now_ms`.
    fn hardware_level(&self, claim: &GpuClaim, now_ms: i64) -> bool {
        !claim.hardware.is_empty()
            && claim.hardware_at_ms != 0
            && self.evidence.holds(claim.hardware_at_ms, now_ms)
    }

    /// The counted TPP of `claims` (GPUs this host holds, at the hardware level or allowed
    /// without it), the part at the hardware level, and the counted devices.
    fn counted_sums(
        &self,
        claims: &[GpuClaim],
        payload: &AttestationPayload,
        now_ms: i64,
    ) -> (u64, u64, u32) {
        let (mut tpp, mut hardware_tpp, mut devices) = (0u64, 0u64, 0u32);
        for (claim, device) in claims.iter().zip(&payload.devices) {
            if !claim.counted {
                continue;
            }
            let hardware = self.hardware_level(claim, now_ms);
            if hardware || self.evidence.counts_without_hardware(&device.architecture) {
                tpp = tpp.saturating_add(claim.tpp);
                devices = devices.saturating_add(1);
            }
            if hardware {
                hardware_tpp = hardware_tpp.saturating_add(claim.tpp);
            }
        }
        (tpp, hardware_tpp, devices)
    }

    /// The TPP of the counted GPUs of `gpus` at the hardware level at `now_ms`.
    fn hardware_tpp(&self, gpus: &[GpuClaim], now_ms: i64) -> u64 {
        gpus.iter()
            .filter(|c| c.counted && self.hardware_level(c, now_ms))
            .map(|c| c.tpp)
            .fold(0, u64::saturating_add)
    }

    /// The policy's evidence rule the books apply.
    pub fn evidence_rule(&self) -> &EvidenceRule {
        &self.evidence
    }

    /// Moves hosts silent beyond the freshness window out of the verified view.
    pub fn sweep(&mut self, now_ms: i64) -> Vec<String> {
        self.live.sweep(now_ms)
    }

    /// The live view: per-country sums, last known and verified within the window.
    pub fn live(&self) -> &LiveDistribution {
        &self.live
    }

    /// Counted TPP per country of every host in service (stale ones included).
    pub fn distribution(&self) -> &Distribution {
        self.live.last_known()
    }

    /// One key.
    pub fn key(&self, key: &KeyId) -> Option<&KeyRecord> {
        self.keys.get(key)
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = (&KeyId, &KeyRecord)> {
        self.keys.iter()
    }

    /// One host.
    pub fn host(&self, host: &str) -> Option<&HostRecord> {
        self.hosts.get(host)
    }

    /// Every host, by id.
    pub fn hosts(&self) -> impl Iterator<Item = (&String, &HostRecord)> {
        self.hosts.iter()
    }

    /// What `restore` changed in stored books that broke the ledger's rules (books written by
    /// an older version); empty for books the ledger wrote itself.
    pub fn restore_notes(&self) -> &[String] {
        &self.restore_notes
    }

    /// The ledger's clock: the latest collector instant it applied.
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    fn tick(&mut self, at_ms: i64) {
        self.clock_ms = self.clock_ms.max(at_ms);
    }

    /// Releases every GPU identity `host` holds.
    fn release_gpus(&mut self, host: &str) {
        let Some(record) = self.hosts.get(host) else {
            return;
        };
        for id in record.gpus.iter().filter(|c| c.counted).flat_map(claim_ids) {
            if self.owners.get(&id).is_some_and(|owner| owner == host) {
                self.owners.remove(&id);
            }
        }
    }

    /// Claims `reported` (normalised) for `host`, which held `held`: a GPU counts unless
    /// another host holds one of its identities. A conflict is raised when it was not already
    /// standing for this host (its previous attestation had that identity uncounted).
    fn claim_gpus(
        &mut self,
        host: &str,
        held: &[GpuClaim],
        mut reported: Vec<GpuClaim>,
    ) -> (Vec<GpuClaim>, Vec<Conflict>) {
        let standing: HashSet<GpuId> = held
            .iter()
            .filter(|c| !c.counted)
            .flat_map(claim_ids)
            .collect();
        for id in held.iter().filter(|c| c.counted).flat_map(claim_ids) {
            if self.owners.get(&id).is_some_and(|owner| owner == host) {
                self.owners.remove(&id);
            }
        }
        let mut conflicts = Vec::new();
        for gpu in &mut reported {
            let taken: Vec<(GpuId, String)> = claim_ids(gpu)
                .filter_map(|id| {
                    let owner = self.owners.get(&id).filter(|o| o.as_str() != host)?;
                    Some((id, owner.clone()))
                })
                .collect();
            if taken.is_empty() {
                for id in claim_ids(gpu) {
                    self.owners.insert(id, host.to_owned());
                }
                gpu.counted = true;
            } else {
                gpu.counted = false;
                conflicts.extend(
                    taken
                        .into_iter()
                        .filter(|(id, _)| !standing.contains(id))
                        .map(|(id, owner)| Conflict {
                            kind: id.kind,
                            value: id.value,
                            owner,
                            claimant: host.to_owned(),
                        }),
                );
            }
        }
        (reported, conflicts)
    }
}

/// Persisted books that do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored books are inconsistent: {0}")]
pub struct RestoreError(pub String);

fn claim(uuid: &str, serial: &str, tpp: u64, counted: bool) -> GpuClaim {
    let mut ids = gpu_ids(uuid, serial);
    let (mut u, mut s) = (String::new(), String::new());
    for id in ids.by_ref() {
        match id.kind {
            IdKind::Uuid => u = id.value,
            IdKind::Serial => s = id.value,
            IdKind::Hardware => {}
        }
    }
    GpuClaim {
        uuid: u,
        serial: s,
        tpp,
        counted,
        hardware: String::new(),
        hardware_at_ms: 0,
    }
}

/// Sets each reported claim's hardware identity: from this attestation's verified report, else
/// carried over from the same GPU (same UUID and serial) in the host's previous attestation.
/// Raises an event for each refused report and each GPU whose silicon and labels no longer
/// match; refuses a payload that presents one hardware identity for two devices.
fn hardware_of(
    payload: &AttestationPayload,
    gpu: &[GpuProof],
    held: &[GpuClaim],
    clock: i64,
    claims: &mut [GpuClaim],
) -> Result<Vec<LedgerEvent>, (Reason, String)> {
    let (host, key) = (&payload.host_id.0, payload.key_id);
    let mut events = Vec::new();
    let labels = |c: &GpuClaim| format!("UUID {:?} serial {:?}", c.uuid, c.serial);
    for (at, claim) in claims.iter_mut().enumerate() {
        let index = payload.devices.get(at).map_or(0, |d| d.index);
        match gpu.get(at).unwrap_or(&GpuProof::Absent) {
            GpuProof::Hardware {
                identity,
                challenge_issued_at_ms,
            } => {
                if let Some(old) = held.iter().find(|h| h.hardware == *identity)
                    && (old.uuid != claim.uuid || old.serial != claim.serial)
                {
                    events.push(LedgerEvent::GpuRelabelled {
                        host: host.clone(),
                        key,
                        detail: format!(
                            "hardware identity {identity} was reported as {}, now as {} (device {index})",
                            labels(old),
                            labels(claim)
                        ),
                    });
                }
                if let Some(old) = held.iter().find(|h| {
                    !h.hardware.is_empty()
                        && h.hardware != *identity
                        && ((!h.uuid.is_empty() && h.uuid == claim.uuid)
                            || (!h.serial.is_empty() && h.serial == claim.serial))
                }) {
                    events.push(LedgerEvent::GpuRelabelled {
                        host: host.clone(),
                        key,
                        detail: format!(
                            "{} was hardware identity {}, now {identity} (device {index})",
                            labels(old),
                            old.hardware
                        ),
                    });
                }
                claim.hardware.clone_from(identity);
                claim.hardware_at_ms = (*challenge_issued_at_ms).min(clock);
            }
            proof => {
                if let GpuProof::Refused { reason, detail } = proof {
                    events.push(LedgerEvent::GpuEvidenceRefused {
                        host: host.clone(),
                        key,
                        device: index,
                        reason: reason.clone(),
                        detail: detail.clone(),
                    });
                }
                let labelled = !claim.uuid.is_empty() || !claim.serial.is_empty();
                if let Some(old) = held.iter().find(|h| {
                    labelled
                        && !h.hardware.is_empty()
                        && h.uuid == claim.uuid
                        && h.serial == claim.serial
                }) {
                    claim.hardware.clone_from(&old.hardware);
                    claim.hardware_at_ms = old.hardware_at_ms;
                }
            }
        }
    }
    for (at, claim) in claims.iter().enumerate() {
        if !claim.hardware.is_empty()
            && claims[..at]
                .iter()
                .any(|earlier| earlier.hardware == claim.hardware)
        {
            return Err((
                Reason::DuplicateGpu,
                format!(
                    "GPU hardware identity {} is presented for more than one device (device {})",
                    claim.hardware,
                    payload.devices.get(at).map_or(0, |d| d.index)
                ),
            ));
        }
    }
    Ok(events)
}

/// The payload's GPUs, normalised and counted (until claimed); a GPU listed twice (by either
/// identity) refuses the payload.
fn claims_of(payload: &AttestationPayload) -> Result<Vec<GpuClaim>, (Reason, String)> {
    let claims: Vec<GpuClaim> = payload
        .devices
        .iter()
        .map(|d| claim(&d.uuid, &d.serial, d.tpp, true))
        .collect();
    for (at, gpu) in claims.iter().enumerate() {
        for earlier in &claims[..at] {
            let same = [
                (IdKind::Uuid, &gpu.uuid, &earlier.uuid),
                (IdKind::Serial, &gpu.serial, &earlier.serial),
            ]
            .into_iter()
            .find(|(_, a, b)| !a.is_empty() && a == b);
            if let Some((kind, value, _)) = same {
                return Err((
                    Reason::DuplicateGpu,
                    format!(
                        "GPU {} {value} is listed more than once (device {})",
                        kind.as_str(),
                        payload.devices.get(at).map_or(0, |d| d.index)
                    ),
                ));
            }
        }
    }
    Ok(claims)
}

/// Whether `payload` lists exactly the GPUs of `held`, in order, every one counted there
/// (compared as `normalise` would, without allocating).
fn holds(held: &[GpuClaim], payload: &AttestationPayload) -> bool {
    held.len() == payload.devices.len()
        && held.iter().zip(&payload.devices).all(|(claim, device)| {
            claim.counted
                && crate::conflicts::same(&device.uuid, &claim.uuid)
                && crate::conflicts::same(&device.serial, &claim.serial)
        })
}

/// A claim's identities (its stored values are normalised already): UUID, serial and, once a
/// report proved it, the hardware identity.
fn claim_ids(claim: &GpuClaim) -> impl Iterator<Item = GpuId> + '_ {
    gpu_ids(&claim.uuid, &claim.serial).chain((!claim.hardware.is_empty()).then(|| GpuId {
        kind: IdKind::Hardware,
        value: claim.hardware.clone(),
    }))
}

#[cfg(test)]
mod tests;
