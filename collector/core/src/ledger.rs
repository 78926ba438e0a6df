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

use proto_accounting::{CountryCode, Distribution};
use proto_evidence::{AttestationPayload, ChainDigest, ChainError, ChainHead, KeyId, Link};

use crate::conflicts::{GpuId, IdKind, gpu_ids};
use crate::live::LiveDistribution;
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
    clock_ms: i64,
    /// What `restore` had to change in books written before the ledger's rules.
    restore_notes: Vec<String>,
}

impl Ledger {
    /// Empty books; a host counts as verified for `freshness_ms` after each attestation.
    pub fn new(freshness_ms: i64) -> Self {
        Self {
            keys: HashMap::new(),
            hosts: BTreeMap::new(),
            owners: HashMap::new(),
            live: LiveDistribution::new(freshness_ms),
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
        now_ms: i64,
    ) -> Result<Self, RestoreError> {
        let mut ledger = Self::new(freshness_ms);
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
                let normalised = self::claim(&claim.uuid, &claim.serial, claim.tpp, claim.counted);
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
            if record.counts() {
                ledger
                    .live
                    .upsert(
                        &host,
                        record.country,
                        record.tpp,
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
            } => self
                .attest(at_ms, payload, digest)
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
        record.devices = 0;
        Ok(HostChange {
            at_ms: clock,
            host: host.to_owned(),
            site: record.site.clone(),
            country: record.country,
            tpp: 0,
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

    /// Applies an attestation received at `at_ms`.
    pub fn attest(
        &mut self,
        at_ms: i64,
        payload: &AttestationPayload,
        digest: ChainDigest,
    ) -> Result<Applied, (Reason, String)> {
        let link = self.check(payload, digest)?;
        let host_id = payload.host_id.0.as_str();
        // The common case: the same GPUs as the host's last attestation, every one counted
        // there. Nobody else can hold them, and they held no duplicate, so they are neither
        // checked nor claimed again (and nothing is allocated for them).
        let unchanged = self
            .hosts
            .get(host_id)
            .is_some_and(|r| r.decommissioned_at_ms.is_none() && holds(&r.gpus, payload));
        let reported = if unchanged {
            None
        } else {
            Some(claims_of(payload)?)
        };
        let clock = self.clock_ms.max(at_ms);
        let key = payload.key_id;
        // Taken out of the books while it is changed, put back below (no copy of its GPUs).
        let Some((host_key, mut record)) = self.hosts.remove_entry(host_id) else {
            // Every enrolled key's host is in the books; keep them consistent anyway.
            return Err((
                Reason::UnknownKey,
                format!("host {host_id} is not in the books"),
            ));
        };
        let mut events = Vec::new();
        if let Link::Gap { missing } = link {
            events.push(LedgerEvent::Gap {
                host: host_id.to_owned(),
                key,
                sequence: payload.sequence,
                missing,
            });
        }
        if let Some(key_record) = self.keys.get_mut(&key) {
            key_record.head = Some(ChainPoint {
                sequence: payload.sequence,
                digest,
                issued_at_ms: payload.issued_at_unix_ms,
            });
        }
        let counted_before = record.counts();
        let (tpp_before, devices_before) = (record.tpp, record.devices);
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
        let (tpp, devices) = if record.decommissioned_at_ms.is_none() {
            let tpp = claims.iter().filter(|c| c.counted).map(|c| c.tpp).sum();
            let devices = counted.iter().filter(|c| **c).count();
            (tpp, u32::try_from(devices).unwrap_or(u32::MAX))
        } else {
            (0, 0)
        };
        record.key = key;
        record.tpp = tpp;
        record.devices = devices;
        record.gpus = claims;
        record.last_received_ms = clock;
        record.last_issued_ms = payload.issued_at_unix_ms;
        record.last_sequence = payload.sequence;
        record.last_digest = digest;
        let counts = record.counts();
        let change = (counts != counted_before
            || (counts && (tpp != tpp_before || devices != devices_before)))
            .then(|| HostChange {
                at_ms: clock,
                host: host_id.to_owned(),
                site: record.site.clone(),
                country: record.country,
                tpp,
                devices,
                counts,
                cause: ChangeCause::Attested,
            });
        let live = if counts {
            self.live.upsert(host_id, record.country, tpp, clock, clock)
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
        }
    }
    GpuClaim {
        uuid: u,
        serial: s,
        tpp,
        counted,
    }
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

/// A claim's identities (its stored values are normalised already).
fn claim_ids(claim: &GpuClaim) -> impl Iterator<Item = GpuId> + '_ {
    gpu_ids(&claim.uuid, &claim.serial)
}

#[cfg(test)]
mod tests;
