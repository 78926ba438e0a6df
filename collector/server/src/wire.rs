//! Generated types to domain and back, in one place.

use collector_app::ingest::Unreadable;
use collector_core::Reason;
use proto_evidence::Envelope;
use proto_wire::v1;
use proto_wire::v1::RejectReason;

/// The envelope of a delivered attestation, or why it has none that ingest can read.
pub fn attestation(attestation: v1::SignedAttestation) -> Result<Envelope, Unreadable> {
    let wire = attestation.envelope.ok_or(Unreadable::Missing)?;
    proto_seal::envelope_from_wire(wire).map_err(Unreadable::Invalid)
}

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
