//! The signed-evidence model shared by agent, collector and offline verifier: attestation
//! payloads, envelopes, digests and the rules of a hash chain.
//!
//! Invariant: pure data and rules. No encoding library, no crypto library beyond SHA-256, no
//! I/O. Encoding, signing and verification live in `proto-seal`.

mod chain;
mod gpu;
pub mod hardware;
pub mod location;
pub mod log;
mod payload;
mod reject;

use std::fmt;

use sha2::Digest as _;

pub use chain::{ChainError, ChainHead, Link};
pub use gpu::{
    GpuEvidence, GpuEvidenceFault, MAX_GPU_CHAIN_BYTES, MAX_GPU_MESSAGE_BYTES,
    MAX_GPU_REPORT_BYTES, report_nonce, report_problem,
};
pub use hardware::{GpuProof, challenge_issued_at_ms};
pub use location::{
    Coordinates, CoordinatesError, MEASUREMENT_CONTEXT, Measurement, RTT_ANSWER_CONTEXT,
    SignedMeasurement, rtt_answer_payload,
};
pub use log::{LogDecodeError, LogEntry, REPORT_CONTEXT, TREE_HEAD_CONTEXT, TreeHead};
pub use payload::{
    AttestationPayload, DeviceFault, DeviceRecord, EvidenceSource, PAYLOAD_FORMAT, Totals,
};
pub use reject::RejectReason;

/// Domain-separation context signed before an attestation payload.
pub const ATTESTATION_CONTEXT: &[u8] = b"veu-attest/v1/attestation\0";

/// Domain-separation context signed before a collector challenge nonce.
pub const CHALLENGE_CONTEXT: &[u8] = b"veu-attest/v1/challenge-response\0";

/// What a signature covers: the context, then the exact payload bytes.
pub fn signed_message(context: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(context.len() + payload.len());
    message.extend_from_slice(context);
    message.extend_from_slice(payload);
    message
}

/// A SHA-256 value: key ids and chain digests.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// All zeros: the previous digest of a chain's first attestation.
    pub const ZERO: Sha256 = Sha256([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// From 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// From 32 raw bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.hex())
    }
}

/// Identifies a signing key: SHA-256 of the raw 32-byte Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub Sha256);

impl KeyId {
    /// The key id of a raw public key.
    pub fn of_public_key(public_key: &[u8]) -> Self {
        Self(Sha256::of(public_key))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The digest that links an attestation to the next one: SHA-256 of its exact payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainDigest(pub Sha256);

impl ChainDigest {
    /// The previous digest of a chain's first attestation.
    pub const GENESIS: ChainDigest = ChainDigest(Sha256::ZERO);

    /// Digest of signed payload bytes.
    pub fn of_payload(payload: &[u8]) -> Self {
        Self(Sha256::of(payload))
    }
}

impl fmt::Display for ChainDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A host's identifier (from enrollment).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub String);

/// A site's identifier (from the site registry).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(pub String);

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
}

/// A signed statement as received: nothing in it is trusted until verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The exact signed bytes.
    pub payload: Vec<u8>,
    /// Who claims to have signed.
    pub key_id: KeyId,
    /// How.
    pub algorithm: Algorithm,
    /// The signature over the context and `payload`.
    pub signature: Vec<u8>,
}

impl Envelope {
    /// The digest the next attestation of the chain names as its previous digest.
    pub fn chain_digest(&self) -> ChainDigest {
        ChainDigest::of_payload(&self.payload)
    }
}
