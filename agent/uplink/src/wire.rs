//! The generated `veu.v1` stream messages, converted at the boundary.

use proto_evidence::{Envelope, RejectReason};
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as Outgoing;
use proto_wire::v1::collector_message::Message as Incoming;

/// Protocol version this agent speaks.
pub const PROTOCOL_VERSION: u32 = 1;

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
        /// Why: `None` when the collector gave no reason or one this agent does not know.
        reason: Option<RejectReason>,
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
            reason: proto_seal::reject_reason_from_wire(reject.reason),
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
