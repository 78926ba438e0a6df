//! Generated types to domain and back, in one place.

use collector_app::ingest::Unreadable;
use collector_core::Reason;
use proto_evidence::Envelope;
use proto_wire::v1;

/// The envelope of a delivered attestation, or why it has none that ingest can read.
pub fn attestation(attestation: v1::SignedAttestation) -> Result<Envelope, Unreadable> {
    let wire = attestation.envelope.ok_or(Unreadable::Missing)?;
    proto_seal::envelope_from_wire(wire).map_err(Unreadable::Invalid)
}

/// The wire code of a rejection reason.
pub fn reject_reason(reason: Reason) -> i32 {
    proto_seal::reject_reason_to_wire(reason)
}
