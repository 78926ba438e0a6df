//! Why a collector refuses an input: one code per cause, counted and kept by the collector and
//! read by the agent, which decides from it whether to retry or set an attestation aside.

use std::fmt;

/// A rejection reason. `as_str` is the code in metrics, logs and the rejection log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// The key is not enrolled.
    UnknownKey,
    /// The key was revoked.
    RevokedKey,
    /// The key is bound to another TLS identity, host or role.
    KeyIdentityMismatch,
    /// The signature does not verify over the received bytes.
    BadSignature,
    /// Undecodable bytes or an invalid payload.
    Malformed,
    /// Over the size limit.
    Oversized,
    /// A sequence at or below the chain head with other content.
    SequenceRollback,
    /// Another attestation already holds this sequence.
    Fork,
    /// The next sequence names another predecessor.
    PreviousDigestMismatch,
    /// Issued too far in the future, or older than the backlog window.
    ClockSkew,
    /// A nonce this collector did not issue to this key, or one issued after the statement.
    StaleNonce,
    /// The payload names another site than the enrolled one.
    SiteMismatch,
    /// Devices or TPP disagree with the collector's catalogue and policy.
    CatalogueMismatch,
    /// Simulated evidence under a policy that forbids it.
    SimulatedEvidence,
    /// Not Ed25519.
    UnsupportedAlgorithm,
    /// The stream broke the protocol (no hello, wrong order).
    ProtocolViolation,
    /// Issued before its predecessor in the chain, or before its key was enrolled.
    Backdated,
    /// The payload lists one GPU (by normalised UUID or serial) more than once.
    DuplicateGpu,
}

impl RejectReason {
    /// Every reason, for metrics that list zero counts too.
    pub const ALL: [RejectReason; 18] = [
        RejectReason::UnknownKey,
        RejectReason::RevokedKey,
        RejectReason::KeyIdentityMismatch,
        RejectReason::BadSignature,
        RejectReason::Malformed,
        RejectReason::Oversized,
        RejectReason::SequenceRollback,
        RejectReason::Fork,
        RejectReason::PreviousDigestMismatch,
        RejectReason::ClockSkew,
        RejectReason::StaleNonce,
        RejectReason::SiteMismatch,
        RejectReason::CatalogueMismatch,
        RejectReason::SimulatedEvidence,
        RejectReason::UnsupportedAlgorithm,
        RejectReason::ProtocolViolation,
        RejectReason::Backdated,
        RejectReason::DuplicateGpu,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::RevokedKey => "revoked_key",
            RejectReason::KeyIdentityMismatch => "key_identity_mismatch",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::Malformed => "malformed",
            RejectReason::Oversized => "oversized",
            RejectReason::SequenceRollback => "sequence_rollback",
            RejectReason::Fork => "fork",
            RejectReason::PreviousDigestMismatch => "previous_digest_mismatch",
            RejectReason::ClockSkew => "clock_skew",
            RejectReason::StaleNonce => "stale_nonce",
            RejectReason::SiteMismatch => "site_mismatch",
            RejectReason::CatalogueMismatch => "catalogue_mismatch",
            RejectReason::SimulatedEvidence => "simulated_evidence",
            RejectReason::UnsupportedAlgorithm => "unsupported_algorithm",
            RejectReason::ProtocolViolation => "protocol_violation",
            RejectReason::Backdated => "backdated",
            RejectReason::DuplicateGpu => "duplicate_gpu",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
