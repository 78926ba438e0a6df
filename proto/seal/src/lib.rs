//! Seal and open attestations: encode a payload once, sign the domain-separation context
//! followed by the exact bytes (Ed25519, ring), and on the other side verify the received bytes
//! before decoding them, into a `VerifiedAttestation` that nothing but `open` and `open_batch`
//! can build.
//!
//! Invariant: bytes are never re-encoded to be verified; generated protobuf types do not leave
//! this crate's `wire` module; ring verifies every single signature, ed25519-dalek only whole
//! batches (`open_batch`), with ring deciding whenever a batch does not verify.

mod batch;
pub mod keyfile;
mod location;
mod log;
mod wire;

use std::fmt;

use ed25519_dalek::VerifyingKey;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

pub use batch::open_batch;
pub use location::{
    MeasurementError, answer_rtt, check_rtt_answer, landmark_named, open_delivered,
    open_measurement, sign_measurement,
};
pub use log::{
    DetachedSignature, LogSignatureError, check_report, open_tree_head, sign_report, sign_tree_head,
};
use proto_evidence::{
    ATTESTATION_CONTEXT, Algorithm, AttestationPayload, CHALLENGE_CONTEXT, ChainDigest, Envelope,
    KeyId, signed_message,
};
pub use proto_wire::MAX_PAYLOAD_BYTES;
pub use wire::{
    InvalidEnvelope, InvalidPayload, decode_envelope, encode_envelope, envelope_from_wire,
    envelope_to_wire, reject_reason_from_wire, reject_reason_to_wire,
};

/// An Ed25519 signing key held in memory.
#[derive(Debug)]
pub struct Ed25519Signer {
    pair: Ed25519KeyPair,
    public_key: PublicKey,
}

/// A key that could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The system random generator failed.
    #[error("could not generate an Ed25519 key: the system random generator failed")]
    Generate,
    /// Not a PKCS#8 v1/v2 Ed25519 private key.
    #[error("not an Ed25519 PKCS#8 private key: {0}")]
    Pkcs8(String),
    /// A public key of the wrong length.
    #[error("an Ed25519 public key is 32 bytes, got {0}")]
    PublicKeyLength(usize),
    /// 32 bytes that do not encode a point of the curve.
    #[error("not an Ed25519 public key: the bytes encode no point of the curve")]
    NotOnCurve,
    /// A point of small order: signatures under it can be forged without any secret.
    #[error("a weak Ed25519 public key (a point of small order) is refused")]
    WeakPublicKey,
}

/// A payload that could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The payload names another key than the signer's.
    #[error("payload key id {payload} is not the signer's key id {signer}")]
    KeyMismatch {
        /// The key id in the payload.
        payload: KeyId,
        /// The signer's key id.
        signer: KeyId,
    },
    /// The encoded payload exceeds what any verifier accepts.
    #[error("encoded payload is {0} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit")]
    Oversized(usize),
}

/// Why an envelope did not open. Each maps to one reject reason on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The envelope names another key than the one it was checked with.
    #[error("envelope key id {envelope} is not the expected key {expected}")]
    UnknownKey {
        /// Key id the envelope names.
        envelope: KeyId,
        /// Key id of the public key supplied.
        expected: KeyId,
    },
    /// The payload exceeds the size limit; it was not examined.
    #[error("payload is {0} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit")]
    Oversized(usize),
    /// The signature does not verify over the context and the received bytes.
    #[error("signature does not verify")]
    BadSignature,
    /// Correctly signed bytes that are not a valid payload.
    #[error("signed payload is malformed: {0}")]
    Malformed(#[from] InvalidPayload),
    /// The signed payload names a different key than the envelope.
    #[error("signed payload names key {payload}, but the envelope is signed by {envelope}")]
    PayloadKeyMismatch {
        /// Key id in the signed payload.
        payload: KeyId,
        /// Key id on the envelope.
        envelope: KeyId,
    },
    /// A challenge response for another nonce.
    #[error("challenge response answers another nonce")]
    WrongNonce,
}

impl Ed25519Signer {
    /// Generates a new key and returns its PKCS#8 (v2) encoding, to be stored by the caller.
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|document| document.as_ref().to_vec())
            .map_err(|_| KeyError::Generate)
    }

    /// Reads a PKCS#8 Ed25519 private key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|error| KeyError::Pkcs8(error.to_string()))?;
        Self::from_pair(pair)
    }

    /// A key from a 32-byte seed: deterministic, for fixtures and tests only.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|error| KeyError::Pkcs8(error.to_string()))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: Ed25519KeyPair) -> Result<Self, KeyError> {
        // A key made from a secret is never weak; the check only makes the type's promise.
        let public_key = PublicKey::from_slice(pair.public_key().as_ref())?;
        Ok(Self { pair, public_key })
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The key id: SHA-256 of the public key.
    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id
    }

    /// Signs `context || payload` and wraps the bytes in an envelope.
    pub fn sign(&self, context: &[u8], payload: Vec<u8>) -> Envelope {
        let signature = self.pair.sign(&signed_message(context, &payload));
        Envelope {
            payload,
            key_id: self.key_id(),
            algorithm: Algorithm::Ed25519,
            signature: signature.as_ref().to_vec(),
        }
    }

    /// Signs `message` as it is, with no context in front: for formats that frame their own
    /// messages, such as the C2SP signed notes whose text a transparency log signs as its
    /// checkpoint. Refuses (`None`) a message holding a NUL byte: every context this crate
    /// signs with ends in NUL, so no signature made here can pass for an attestation, a
    /// challenge response, a tree head or a report.
    pub fn sign_unframed(&self, message: &[u8]) -> Option<[u8; 64]> {
        if message.contains(&0) {
            return None;
        }
        let signature = self.pair.sign(message);
        signature.as_ref().try_into().ok()
    }
}

/// An Ed25519 public key: 32 bytes that encode a point of the curve which is not of small
/// order, kept with its decompressed point (for batch verification) and its key id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey {
    point: VerifyingKey,
    key_id: KeyId,
}

impl PublicKey {
    /// From raw bytes; refuses bytes that are no point of the curve and weak (small-order)
    /// points, under which anyone could make signatures.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let raw: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::PublicKeyLength(bytes.len()))?;
        let point = VerifyingKey::from_bytes(raw).map_err(|_| KeyError::NotOnCurve)?;
        if point.is_weak() {
            return Err(KeyError::WeakPublicKey);
        }
        Ok(Self {
            point,
            key_id: KeyId::of_public_key(raw),
        })
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.point.as_bytes()
    }

    /// Its key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// What every verification checks before the signature: the key, the size, the length of
    /// the signature.
    fn check_envelope(&self, envelope: &Envelope) -> Result<(), OpenError> {
        if envelope.key_id != self.key_id {
            return Err(OpenError::UnknownKey {
                envelope: envelope.key_id,
                expected: self.key_id,
            });
        }
        if envelope.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(OpenError::Oversized(envelope.payload.len()));
        }
        Ok(())
    }

    /// One signature over `message` (context and payload), with ring.
    fn verify_message(&self, message: &[u8], envelope: &Envelope) -> Result<(), OpenError> {
        match envelope.algorithm {
            Algorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, self.as_bytes())
                .verify(message, &envelope.signature)
                .map_err(|_| OpenError::BadSignature),
        }
    }

    /// One raw 64-byte signature over `message`, with ring.
    pub(crate) fn verify_raw(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), ()> {
        UnparsedPublicKey::new(&ED25519, self.as_bytes())
            .verify(message, signature)
            .map_err(|_| ())
    }

    fn verify(&self, context: &[u8], envelope: &Envelope) -> Result<(), OpenError> {
        self.check_envelope(envelope)?;
        self.verify_message(&signed_message(context, &envelope.payload), envelope)
    }

    /// `verify` without the payload size limit (for reports, which are signed detached).
    fn verify_unbounded(&self, context: &[u8], envelope: &Envelope) -> Result<(), OpenError> {
        if envelope.key_id != self.key_id {
            return Err(OpenError::UnknownKey {
                envelope: envelope.key_id,
                expected: self.key_id,
            });
        }
        self.verify_message(&signed_message(context, &envelope.payload), envelope)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "PublicKey({hex})")
    }
}

/// An attestation whose signature verified over the received bytes and whose payload decoded.
/// Only [`open`] and [`open_batch`] build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    envelope: Envelope,
    payload: AttestationPayload,
    digest: ChainDigest,
}

impl VerifiedAttestation {
    /// The envelope exactly as received.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The decoded payload.
    pub fn payload(&self) -> &AttestationPayload {
        &self.payload
    }

    /// The chain digest of the signed bytes.
    pub fn digest(&self) -> ChainDigest {
        self.digest
    }

    /// The envelope, giving up the decoded view.
    pub fn into_envelope(self) -> Envelope {
        self.envelope
    }
}

/// Encodes `payload` once and signs it.
pub fn seal(payload: &AttestationPayload, signer: &Ed25519Signer) -> Result<Envelope, SealError> {
    if payload.key_id != signer.key_id() {
        return Err(SealError::KeyMismatch {
            payload: payload.key_id,
            signer: signer.key_id(),
        });
    }
    let bytes = wire::encode_payload(payload);
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(SealError::Oversized(bytes.len()));
    }
    Ok(signer.sign(ATTESTATION_CONTEXT, bytes))
}

/// Verifies the signature over the received bytes with `key`, then decodes them.
pub fn open(envelope: Envelope, key: &PublicKey) -> Result<VerifiedAttestation, OpenError> {
    key.verify(ATTESTATION_CONTEXT, &envelope)?;
    decode_verified(envelope)
}

/// Decodes an envelope whose signature has just been verified.
fn decode_verified(envelope: Envelope) -> Result<VerifiedAttestation, OpenError> {
    let payload = wire::decode_payload(&envelope.payload)?;
    if payload.key_id != envelope.key_id {
        return Err(OpenError::PayloadKeyMismatch {
            payload: payload.key_id,
            envelope: envelope.key_id,
        });
    }
    let digest = envelope.chain_digest();
    Ok(VerifiedAttestation {
        envelope,
        payload,
        digest,
    })
}

/// Decodes an envelope's payload **without verifying its signature**, for display only: an
/// auditor's listing of stored attestations (`veuctl audit history`) shows their fields without
/// holding every agent's key. Nothing decoded here is evidence of anything; only [`open`], which
/// verifies first, builds a [`VerifiedAttestation`].
pub fn decode_payload_unverified(
    envelope: &Envelope,
) -> Result<AttestationPayload, InvalidPayload> {
    if envelope.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(InvalidPayload {
            field: "payload",
            reason: format!(
                "{} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit",
                envelope.payload.len()
            ),
        });
    }
    wire::decode_payload(&envelope.payload)
}

/// Signs a collector nonce to prove the key is held now.
pub fn answer_challenge(nonce: &[u8], signer: &Ed25519Signer) -> Envelope {
    signer.sign(CHALLENGE_CONTEXT, nonce.to_vec())
}

/// Checks a challenge response: the right key, the right nonce, a valid signature.
pub fn check_challenge_response(
    response: &Envelope,
    key: &PublicKey,
    nonce: &[u8],
) -> Result<(), OpenError> {
    key.verify(CHALLENGE_CONTEXT, response)?;
    if response.payload == nonce {
        Ok(())
    } else {
        Err(OpenError::WrongNonce)
    }
}

#[cfg(test)]
mod gpu_tests;
#[cfg(test)]
mod tests;
