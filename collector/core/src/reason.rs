//! Why the collector refuses an input: one code per cause, counted and kept.

use std::fmt;

/// A rejection reason. `as_str` is the code in metrics, logs and the rejection log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
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

impl Reason {
    /// Every reason, for metrics that list zero counts too.
    pub const ALL: [Reason; 18] = [
        Reason::UnknownKey,
        Reason::RevokedKey,
        Reason::KeyIdentityMismatch,
        Reason::BadSignature,
        Reason::Malformed,
        Reason::Oversized,
        Reason::SequenceRollback,
        Reason::Fork,
        Reason::PreviousDigestMismatch,
        Reason::ClockSkew,
        Reason::StaleNonce,
        Reason::SiteMismatch,
        Reason::CatalogueMismatch,
        Reason::SimulatedEvidence,
        Reason::UnsupportedAlgorithm,
        Reason::ProtocolViolation,
        Reason::Backdated,
        Reason::DuplicateGpu,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownKey => "unknown_key",
            Reason::RevokedKey => "revoked_key",
            Reason::KeyIdentityMismatch => "key_identity_mismatch",
            Reason::BadSignature => "bad_signature",
            Reason::Malformed => "malformed",
            Reason::Oversized => "oversized",
            Reason::SequenceRollback => "sequence_rollback",
            Reason::Fork => "fork",
            Reason::PreviousDigestMismatch => "previous_digest_mismatch",
            Reason::ClockSkew => "clock_skew",
            Reason::StaleNonce => "stale_nonce",
            Reason::SiteMismatch => "site_mismatch",
            Reason::CatalogueMismatch => "catalogue_mismatch",
            Reason::SimulatedEvidence => "simulated_evidence",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::ProtocolViolation => "protocol_violation",
            Reason::Backdated => "backdated",
            Reason::DuplicateGpu => "duplicate_gpu",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
