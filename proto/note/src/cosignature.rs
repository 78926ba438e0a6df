//! Ed25519 checkpoint cosignatures, `cosignature/v1` (c2sp.org/tlog-cosignature): signature
//! type 0x04, a note signature whose bytes are an 8-byte big-endian timestamp followed by an
//! Ed25519 signature over `cosignature/v1\ntime <timestamp>\n<checkpoint text>`.

use std::fmt;

use ring::signature::Ed25519KeyPair;

use crate::checkpoint::Checkpoint;
use crate::key::{KeyError, KeyName, SignatureType, SignerKey, VerifierKey};
use crate::note::{NoteSignature, SignError};

/// The header line of the signed message, with its newline; it separates the domain of
/// cosignatures from every other use of the key.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1\n";

/// The latest timestamp a cosignature may state: 2^63 - 1.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The message a cosignature/v1 signs: the header line, `time <timestamp>` in decimal, and the
/// whole checkpoint text, extension lines included.
pub fn cosigned_message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("{COSIGNATURE_V1_HEADER}time {timestamp}\n{checkpoint_text}").into_bytes()
}

/// The bytes of a cosignature after its key ID: `timestamped_signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CosignatureV1 {
    /// When it was made, POSIX seconds, at most [`MAX_TIMESTAMP`].
    pub timestamp: u64,
    /// Ed25519 over [`cosigned_message`].
    pub signature: [u8; 64],
}

impl CosignatureV1 {
    /// Its encoded length: timestamp and signature.
    pub const LEN: usize = 8 + 64;

    /// Reads exactly [`Self::LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CosignatureError> {
        let bytes: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| CosignatureError::Length { bytes: bytes.len() })?;
        let (time, signature) = bytes.split_at(8);
        let mut timestamp = [0; 8];
        timestamp.copy_from_slice(time);
        let timestamp = u64::from_be_bytes(timestamp);
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::Timestamp { timestamp });
        }
        let mut out = [0; 64];
        out.copy_from_slice(signature);
        Ok(Self {
            timestamp,
            signature: out,
        })
    }

    /// The bytes of a note signature line, without checking the signature.
    pub fn from_note_signature(signature: &NoteSignature) -> Result<Self, CosignatureError> {
        Self::from_bytes(signature.signature())
    }

    /// The encoding.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..].copy_from_slice(&self.signature);
        out
    }
}

/// A witness's (or any cosigner's) Ed25519 key, making cosignature/v1 signatures.
pub struct Cosigner {
    key: VerifierKey,
    pair: Ed25519KeyPair,
}

impl Cosigner {
    /// The cosigner `name` signing with `pair`.
    pub fn new(name: KeyName, pair: Ed25519KeyPair) -> Self {
        use ring::signature::KeyPair as _;
        let mut public_key = [0; 32];
        public_key.copy_from_slice(pair.public_key().as_ref());
        Self {
            key: VerifierKey::new(name, SignatureType::CosignatureV1, public_key),
            pair,
        }
    }

    /// The cosigner of a signer key's name and seed (of type 0x01 or 0x04).
    pub fn from_signer_key(key: &SignerKey) -> Result<Self, KeyError> {
        Ok(Self::new(key.name().clone(), key.pair_copy()?))
    }

    /// The verifier key (type 0x04) that checks its cosignatures.
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.key
    }

    /// Cosigns the checkpoint text `checkpoint_text` (exactly as received) at `timestamp`.
    pub fn cosign(
        &self,
        checkpoint_text: &str,
        timestamp: u64,
    ) -> Result<NoteSignature, SignError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(SignError::Timestamp(timestamp));
        }
        Checkpoint::parse(checkpoint_text)?;
        let signature = self
            .pair
            .sign(&cosigned_message(timestamp, checkpoint_text));
        let mut bytes = [0; 64];
        bytes.copy_from_slice(signature.as_ref());
        let cosignature = CosignatureV1 {
            timestamp,
            signature: bytes,
        };
        NoteSignature::new(
            self.key.name().clone(),
            self.key.id(),
            cosignature.to_bytes().to_vec(),
        )
        .map_err(|_| SignError::Refused {
            name: self.key.name().to_string(),
        })
    }
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cosigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Bytes that are not a cosignature/v1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// Not 72 bytes.
    #[error("a cosignature/v1 is 72 bytes (timestamp and Ed25519 signature), this is {bytes}")]
    Length {
        /// How many.
        bytes: usize,
    },
    /// A timestamp past 2^63 - 1.
    #[error("the cosignature's timestamp {timestamp} is past 2^63 - 1")]
    Timestamp {
        /// The timestamp.
        timestamp: u64,
    },
}
