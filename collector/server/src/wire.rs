//! Domain to generated types, in one place.

use collector_core::Reason;
use proto_wire::v1::RejectReason;

/// The wire code of a rejection reason.
pub fn reject_reason(reason: Reason) -> RejectReason {
    match reason {
        Reason::UnknownKey => RejectReason::UnknownKey,
        Reason::RevokedKey => RejectReason::RevokedKey,
        Reason::KeyIdentityMismatch => RejectReason::KeyIdentityMismatch,
        Reason::BadSignature => RejectReason::BadSignature,
        Reason::Malformed => RejectReason::Malformed,
        Reason::Oversized => RejectReason::Oversized,
        Reason::SequenceRollback => RejectReason::SequenceRollback,
        Reason::Fork => RejectReason::Fork,
        Reason::PreviousDigestMismatch => RejectReason::PreviousDigestMismatch,
        Reason::ClockSkew => RejectReason::ClockSkew,
        Reason::StaleNonce => RejectReason::StaleNonce,
        Reason::SiteMismatch => RejectReason::SiteMismatch,
        Reason::CatalogueMismatch => RejectReason::CatalogueMismatch,
        Reason::SimulatedEvidence => RejectReason::SimulatedEvidence,
        Reason::UnsupportedAlgorithm => RejectReason::UnsupportedAlgorithm,
        Reason::ProtocolViolation => RejectReason::ProtocolViolation,
        Reason::Backdated => RejectReason::Backdated,
        Reason::DuplicateGpu => RejectReason::DuplicateGpu,
    }
}
