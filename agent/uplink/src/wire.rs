//! The generated `veu.v1` stream messages, converted at the boundary.

use proto_evidence::Envelope;
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as Outgoing;
use proto_wire::v1::collector_message::Message as Incoming;

/// Protocol version this agent speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why the collector refused an attestation (the wire's `RejectReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Reason not given (or from a newer collector).
    Unspecified,
    /// The key is not enrolled.
    UnknownKey,
    /// The key was revoked.
    RevokedKey,
    /// The key is bound to another TLS identity.
    KeyIdentityMismatch,
    /// The signature does not verify.
    BadSignature,
    /// The bytes are not a valid payload.
    Malformed,
    /// Too large.
    Oversized,
    /// The sequence is not after the collector's head.
    SequenceRollback,
    /// Another attestation already has this sequence.
    Fork,
    /// The previous digest is not the collector's head.
    PreviousDigestMismatch,
    /// The issue time is too far from the collector's clock.
    ClockSkew,
    /// The nonce is unknown or expired.
    StaleNonce,
    /// The payload names another site than the enrolled one.
    SiteMismatch,
    /// Devices or TPP disagree with the collector's catalogue.
    CatalogueMismatch,
    /// Simulated evidence under a production policy.
    SimulatedEvidence,
    /// Not Ed25519.
    UnsupportedAlgorithm,
    /// The stream broke the protocol.
    ProtocolViolation,
    /// Issued before its predecessor or before the key's enrolment (the host's clock went back).
    Backdated,
    /// The payload listed one GPU twice.
    DuplicateGpu,
}

impl RejectReason {
    fn from_wire(value: i32) -> Self {
        use v1::RejectReason as W;
        match W::try_from(value) {
            Ok(W::UnknownKey) => Self::UnknownKey,
            Ok(W::RevokedKey) => Self::RevokedKey,
            Ok(W::KeyIdentityMismatch) => Self::KeyIdentityMismatch,
            Ok(W::BadSignature) => Self::BadSignature,
            Ok(W::Malformed) => Self::Malformed,
            Ok(W::Oversized) => Self::Oversized,
            Ok(W::SequenceRollback) => Self::SequenceRollback,
            Ok(W::Fork) => Self::Fork,
            Ok(W::PreviousDigestMismatch) => Self::PreviousDigestMismatch,
            Ok(W::ClockSkew) => Self::ClockSkew,
            Ok(W::StaleNonce) => Self::StaleNonce,
            Ok(W::SiteMismatch) => Self::SiteMismatch,
            Ok(W::CatalogueMismatch) => Self::CatalogueMismatch,
            Ok(W::SimulatedEvidence) => Self::SimulatedEvidence,
            Ok(W::UnsupportedAlgorithm) => Self::UnsupportedAlgorithm,
            Ok(W::ProtocolViolation) => Self::ProtocolViolation,
            Ok(W::Backdated) => Self::Backdated,
            Ok(W::DuplicateGpu) => Self::DuplicateGpu,
            Ok(W::Unspecified) | Err(_) => Self::Unspecified,
        }
    }
}

/// A message from the collector, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromCollector {
    /// A fresh nonce.
    Challenge(Vec<u8>),
    /// Stored up to this sequence.
    Ack(u64),
    /// Refused.
    Reject {
        /// Which attestation.
        sequence: u64,
        /// Why.
        reason: RejectReason,
        /// In words.
        detail: String,
    },
}

/// A collector message that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid message from the collector: {0}")]
pub struct InvalidCollectorMessage(pub &'static str);

/// Largest nonce accepted from a collector.
const MAX_NONCE_BYTES: usize = 64;

pub fn from_collector(
    message: v1::CollectorMessage,
) -> Result<FromCollector, InvalidCollectorMessage> {
    match message.message {
        None => Err(InvalidCollectorMessage("empty message")),
        Some(Incoming::Challenge(challenge)) => {
            if challenge.nonce.is_empty() || challenge.nonce.len() > MAX_NONCE_BYTES {
                return Err(InvalidCollectorMessage(
                    "challenge nonce must be 1 to 64 bytes",
                ));
            }
            Ok(FromCollector::Challenge(challenge.nonce))
        }
        Some(Incoming::Ack(ack)) => Ok(FromCollector::Ack(ack.sequence)),
        Some(Incoming::Reject(reject)) => Ok(FromCollector::Reject {
            sequence: reject.sequence,
            reason: RejectReason::from_wire(reject.reason),
            detail: reject.detail,
        }),
    }
}

pub fn hello(
    host_id: &str,
    agent_version: &str,
    key_id: &[u8],
    last: (u64, Vec<u8>),
) -> v1::AgentMessage {
    v1::AgentMessage {
        message: Some(Outgoing::Hello(v1::Hello {
            protocol_version: PROTOCOL_VERSION,
            key_id: key_id.to_vec(),
            host_id: host_id.to_owned(),
            agent_version: agent_version.to_owned(),
            last_sequence: last.0,
            last_digest: last.1,
        })),
    }
}

/// An attestation already encoded as a `veu.v1.Envelope` (as the spool holds it).
pub fn attestation(encoded_envelope: &[u8]) -> Result<v1::AgentMessage, prost::DecodeError> {
    use prost::Message;
    let envelope = v1::Envelope::decode(encoded_envelope)?;
    Ok(v1::AgentMessage {
        message: Some(Outgoing::Attestation(v1::SignedAttestation {
            envelope: Some(envelope),
        })),
    })
}

pub fn challenge_response(response: &Envelope) -> v1::AgentMessage {
    v1::AgentMessage {
        message: Some(Outgoing::ChallengeResponse(v1::ChallengeResponse {
            envelope: Some(proto_seal::envelope_to_wire(response)),
        })),
    }
}
