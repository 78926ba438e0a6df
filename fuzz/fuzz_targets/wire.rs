//! The gRPC messages as protobuf bytes, the first byte choosing which: what an agent sends a
//! collector (stream messages, enrolment and renewal requests), what a collector sends an agent
//! and veuctl (challenges, acks, rejects, stored attestations, tree heads, proofs, evidence
//! items), then the conversion to the evidence model that the receiver applies. Every message
//! that decodes encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto_wire::v1;
use veu_fuzz::public_key;

/// Decodes `bytes` as `M`; what decodes survives an encode and decode unchanged.
fn decode<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let again = M::decode(message.encode_to_vec().as_slice()).expect("prost reads its own bytes");
    assert_eq!(again, message);
    Some(message)
}

/// What a receiver does with an envelope: checks its fields, then opens or decodes it.
fn envelope(message: Option<v1::Envelope>) {
    let Some(message) = message else { return };
    if let Ok(envelope) = proto_seal::envelope_from_wire(message) {
        assert_eq!(
            proto_seal::decode_envelope(&proto_seal::encode_envelope(&envelope)).as_ref(),
            Ok(&envelope)
        );
        let _ = proto_seal::decode_payload_unverified(&envelope);
        let _ = proto_seal::check_challenge_response(&envelope, &public_key(1), b"nonce");
        let _ = proto_seal::open_tree_head(&envelope, &public_key(2));
        let _ = proto_seal::open(envelope, &public_key(1));
    }
}

/// Stored envelope and entry bytes, as veuctl and the bundle writer read them.
fn stored(entry: &[u8], envelope_bytes: &[u8]) {
    let _ = proto_evidence::LogEntry::decode(entry);
    if let Ok(envelope) = proto_seal::decode_envelope(envelope_bytes) {
        let _ = proto_seal::decode_payload_unverified(&envelope);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 9 {
        0 => {
            if let Some(message) = decode::<v1::AgentMessage>(bytes) {
                match message.message {
                    Some(v1::agent_message::Message::Attestation(signed)) => {
                        envelope(signed.envelope)
                    }
                    Some(v1::agent_message::Message::ChallengeResponse(response)) => {
                        envelope(response.envelope)
                    }
                    Some(v1::agent_message::Message::Hello(hello)) => {
                        let _ = proto_evidence::Sha256::from_slice(&hello.key_id);
                    }
                    None => {}
                }
            }
        }
        1 => {
            decode::<v1::CollectorMessage>(bytes);
        }
        2 => {
            decode::<v1::EnrollRequest>(bytes);
        }
        3 => {
            decode::<v1::EnrollResponse>(bytes);
        }
        4 => {
            decode::<v1::RenewRequest>(bytes);
        }
        5 => {
            if let Some(stored_attestation) = decode::<v1::StoredAttestation>(bytes) {
                envelope(stored_attestation.envelope);
            }
        }
        6 => {
            if let Some(head) = decode::<v1::SignedTreeHead>(bytes) {
                envelope(head.signature);
                let _ = proto_seal::PublicKey::from_slice(&head.log_public_key);
            }
        }
        7 => {
            if let Some(proof) = decode::<v1::InclusionProofResponse>(bytes) {
                stored(&proof.entry, &proof.envelope);
            }
        }
        _ => {
            if let Some(item) = decode::<v1::EvidenceItem>(bytes) {
                match item.item {
                    Some(v1::evidence_item::Item::Leaf(leaf)) => {
                        stored(&leaf.entry, &leaf.envelope)
                    }
                    Some(v1::evidence_item::Item::TreeHead(head)) => envelope(head.signature),
                    _ => {}
                }
            }
        }
    }
});
