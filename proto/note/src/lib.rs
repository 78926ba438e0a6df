//! The transparency-log ecosystem's text formats, as the C2SP specifications define them:
//! signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint), Ed25519
//! cosignatures (c2sp.org/tlog-cosignature, `cosignature/v1`) and the message bodies of the
//! witness protocol (c2sp.org/tlog-witness); and the checkpoint a veu-attest log signs for its
//! tree head, so that outside witnesses can cosign it.
//!
//! Invariant: pure. No I/O and no clock (timestamps come in as arguments); ring signs and
//! verifies Ed25519 and nothing else does crypto. Every parser is bounded and answers any
//! input with a value or an error that says what was wrong, never a panic; what it accepts
//! it formats back byte for byte, so signatures are checked over the bytes received.

mod checkpoint;
mod cosignature;
mod key;
mod note;
mod witness;

pub use checkpoint::{Checkpoint, CheckpointError, LogSigner};
pub use cosignature::{
    COSIGNATURE_V1_HEADER, CosignatureError, CosignatureV1, Cosigner, MAX_TIMESTAMP,
    cosigned_message,
};
pub use key::{KeyError, KeyId, KeyName, SignatureType, SignerKey, VerifierKey};
pub use note::{
    Ed25519NoteSigner, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, NoteSignature, NoteSigner,
    SignError, SignatureLineError, SignedNote, VerifiedNote, VerifiedSignature, VerifyError,
};
pub use witness::{
    AddCheckpointRequest, MAX_PROOF_HASHES, RequestError, SIZE_CONTENT_TYPE, format_cosignatures,
    format_size_body, parse_cosignatures, parse_size_body,
};

/// A SHA-256 hash: a Merkle tree root or a consistency-proof node.
pub type Hash = [u8; 32];

/// Standard, padded base64 (RFC 4648 section 4), decoded strictly: padding and trailing bits
/// must be canonical, so a decoded value encodes back to the same text.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub(crate) fn encode(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        STANDARD.decode(text).ok()
    }

    /// A 32-byte hash in base64.
    pub(crate) fn decode_hash(text: &str) -> Option<crate::Hash> {
        // 44 characters encode 32 bytes; refuse longer text before decoding it.
        if text.len() != 44 {
            return None;
        }
        decode(text)?.try_into().ok()
    }
}

/// An ASCII decimal with no leading zeroes (`0` alone for zero), as tree sizes, old sizes and
/// timestamps are written.
fn parse_decimal(text: &str) -> Result<u64, DecimalError> {
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotDigits);
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(DecimalError::LeadingZero);
    }
    text.parse().map_err(|_| DecimalError::TooLarge)
}

/// Why a decimal field did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Nothing where a number belongs.
    #[error("is empty")]
    Empty,
    /// Something other than ASCII digits.
    #[error("is not made of ASCII decimal digits")]
    NotDigits,
    /// `007`.
    #[error("has a leading zero")]
    LeadingZero,
    /// Past 2^64 - 1.
    #[error("is larger than 2^64 - 1")]
    TooLarge,
}

/// Up to `limit` characters of untrusted text, for an error message.
fn excerpt(text: &str, limit: usize) -> String {
    let mut out: String = text.chars().take(limit).collect();
    if text.chars().nth(limit).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
