//! The plain data the store keeps: what the collector decided (accepted attestations, events,
//! rejections) and what it administers (agents, enrolment tokens). No behaviour lives here; the
//! meaning of each field is fixed by the collector's verifier, the store only keeps it.

pub use proto_evidence::{ChainDigest, HostId, KeyId, SiteId};

/// An enrolled agent key and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentRecord {
    pub key_id: KeyId,
    pub public_key: [u8; 32],
    pub host_id: HostId,
    pub site_id: SiteId,
    /// The country of the site at enrolment, as the log records it.
    pub country: String,
    /// The TLS client identity bound to the key (e.g. the client certificate's SHA-256 in hex).
    pub identity: String,
    pub enrolled_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// One attestation the collector verified and accepted, with the exact bytes it received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcceptedAttestation {
    pub key_id: KeyId,
    pub sequence: u64,
    pub digest: ChainDigest,
    pub previous_digest: ChainDigest,
    pub host_id: HostId,
    pub site_id: SiteId,
    pub country: String,
    pub issued_at_ms: i64,
    pub received_at_ms: i64,
    /// Counted TPP, as the ledger decided (GPUs another host holds excluded; 0 for a
    /// decommissioned host).
    pub tpp: u64,
    /// Counted devices, as the ledger decided.
    pub devices: u32,
    pub simulated: bool,
    /// Sequences missing before this one (lost evidence).
    pub gap_before: u64,
    /// Whether it answered a live nonce of the collector.
    pub fresh: bool,
    /// The exact bytes received, kept verbatim: the evidence an auditor re-verifies.
    pub envelope: Vec<u8>,
    /// Its GPUs, normalised, each with whether the ledger counted it.
    pub gpus: Vec<Gpu>,
    /// Its position in the transparency log: assigned by the store when it commits (a value
    /// given to `commit` is ignored), returned by reads.
    pub log_index: Option<u64>,
}

/// A chain's newest stored link: where the chain of `key_id` continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoredHead {
    pub key_id: KeyId,
    pub sequence: u64,
    pub digest: ChainDigest,
    /// The link's issue time (the agent's clock).
    pub issued_at_ms: i64,
}

/// Position just after one attestation in the `attestations` order, which is the order of
/// these fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub received_at_ms: i64,
    pub key_id: KeyId,
    pub sequence: u64,
}

impl Cursor {
    /// The position just after `attestation`: the next page starts with what follows it.
    pub fn after(attestation: &AcceptedAttestation) -> Self {
        Self {
            received_at_ms: attestation.received_at_ms,
            key_id: attestation.key_id,
            sequence: attestation.sequence,
        }
    }
}

/// One physical accelerator as an attestation reported it: identities normalised
/// (`collector_core::conflicts::normalise`), and whether it counts for its host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gpu {
    pub uuid: String,
    pub serial: String,
    pub catalogue_id: String,
    pub tpp: u64,
    /// False when another host holds one of its identities, or its host does not count.
    pub counted: bool,
    /// Its hardware identity: the canonical string of its NVIDIA device certificate (e.g.
    /// `NVIDIA:GH100:48B02D...`); empty when it has no verified hardware evidence.
    pub hardware: String,
    /// When its hardware evidence was last proven (collector time); 0 for never.
    pub hardware_at_ms: i64,
}

/// Where a host stands in the ledger (`collector_core::HostRecord`, persisted): a row exists
/// from the host's enrolment on; `last_sequence` is 0 until it attests (again, after a
/// re-binding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostState {
    pub host_id: HostId,
    pub site_id: SiteId,
    pub country: String,
    pub key_id: KeyId,
    pub last_sequence: u64,
    pub last_digest: ChainDigest,
    pub last_issued_at_ms: i64,
    pub last_received_at_ms: i64,
    /// Counted TPP and devices.
    pub tpp: u64,
    pub devices: u32,
    pub decommissioned_at_ms: Option<i64>,
}

impl HostState {
    /// A host's state from its enrolment (or re-binding) until its first attestation: at the
    /// agent's site, under its key, counting nothing.
    pub fn enrolled(agent: &AgentRecord) -> Self {
        Self {
            host_id: agent.host_id.clone(),
            site_id: agent.site_id.clone(),
            country: agent.country.clone(),
            key_id: agent.key_id,
            last_sequence: 0,
            last_digest: ChainDigest::GENESIS,
            last_issued_at_ms: 0,
            last_received_at_ms: 0,
            tpp: 0,
            devices: 0,
            decommissioned_at_ms: None,
        }
    }
}

/// What the ledger decided about one host, for the store to persist as it is: its new state,
/// its GPUs, and the change of what counts (if any), appended to the host changes in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostUpdate {
    pub state: HostState,
    pub gpus: Vec<Gpu>,
    pub change: Option<HostChange>,
}

/// Something the collector flagged ("gap", "gpu_conflict", "revoked", "decommissioned", ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    pub at_ms: i64,
    pub kind: String,
    pub host_id: Option<HostId>,
    pub key_id: Option<KeyId>,
    /// In words, for people.
    pub detail: String,
    /// The event's number, for programs (never parsed from `detail`): a gap's missing count, a
    /// silence's start, a decommissioned host's decommissioning time.
    pub value: Option<i64>,
}

/// An input the collector refused, with its reason code (e.g. "bad_signature").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rejection {
    pub at_ms: i64,
    pub reason: String,
    pub key_id: Option<KeyId>,
    pub host_id: Option<HostId>,
    pub sequence: Option<u64>,
    pub peer: String,
    pub detail: String,
    /// How many refusals the row stands for: 1, or a window's repeats of the same refusal
    /// from the same peer, stored as one row (docs/collector.md, "Hostile networks").
    pub count: u64,
}

/// A one-time enrolment token, kept only as its hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnrollToken {
    pub token_hash: [u8; 32],
    pub site_id: SiteId,
    pub created_at_ms: i64,
    /// The first instant at which the token no longer works.
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
    /// A rebind token: it re-binds this existing host (an administrator's explicit move or
    /// re-key) instead of enrolling a new one.
    pub rebind_host: Option<HostId>,
}

/// Everything one verification step decided, stored all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub attestations: Vec<AcceptedAttestation>,
    /// The ledger's effects of those attestations, in the order it applied them.
    pub hosts: Vec<HostUpdate>,
    pub events: Vec<Event>,
    pub rejections: Vec<Rejection>,
}

impl Batch {
    /// Whether the batch carries nothing to store.
    pub fn is_empty(&self) -> bool {
        self.attestations.is_empty()
            && self.hosts.is_empty()
            && self.events.is_empty()
            && self.rejections.is_empty()
    }
}

/// What a durable commit did with the batch's attestations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CommitReceipt {
    /// Attestations stored by this commit.
    pub stored: usize,
    /// Attestations that were already stored with the same digest (idempotent resubmissions).
    pub repeated: usize,
}

/// One leaf of the transparency log, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogRecord {
    pub log_index: u64,
    pub at_ms: i64,
    /// The exact entry bytes (`proto_evidence::LogEntry`) hashed as the Merkle leaf.
    pub entry: Vec<u8>,
    /// For an attestation entry, the stored envelope bytes it commits to.
    pub envelope: Option<Vec<u8>>,
}

/// A tree head the collector signed with its log key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredTreeHead {
    pub tree_size: u64,
    pub root: [u8; 32],
    pub timestamp_ms: i64,
    /// The encoded signed envelope (`proto_seal::sign_tree_head`).
    pub envelope: Vec<u8>,
}

/// A witness's cosignature on the log's checkpoint of `tree_size` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredCosignature {
    pub tree_size: u64,
    /// The witness's key name, as in its note signature.
    pub witness: String,
    /// The note signature line (`— <name> <base64>`) the witness answered.
    pub line: String,
    /// When the collector received it.
    pub received_at_ms: i64,
}

/// A host's state from one instant on: what past distributions and reports replay. Stored in
/// the ledger's order; `at_ms` is the ledger's clock (collector time, never the agent's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostChange {
    /// The ledger's instant.
    pub at_ms: i64,
    pub host_id: HostId,
    pub site_id: SiteId,
    pub country: String,
    pub tpp: u64,
    pub devices: u32,
    /// The host stopped counting (decommissioned, or re-bound and not attested yet).
    pub decommissioned: bool,
    /// The part of `tpp` whose GPUs proved their hardware identity (0 for changes stored
    /// before hardware evidence was kept).
    pub hardware_tpp: u64,
}
