//! Key names, key IDs, verifier keys (c2sp.org/signed-note, "Verifier keys") and the signer
//! key encoding of Go's golang.org/x/mod/sumdb/note, which the spec does not define but the
//! ecosystem's tools read and write.

use std::fmt;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use sha2::{Digest as _, Sha256};

use crate::b64;

/// Signature type byte of plain Ed25519 note signatures (c2sp.org/signed-note).
const TYPE_ED25519: u8 = 0x01;
/// Signature type byte of timestamped Ed25519 checkpoint cosignatures
/// (c2sp.org/tlog-cosignature, cosignature/v1).
const TYPE_COSIGNATURE_V1: u8 = 0x04;

/// The prefix of Go's signer keys.
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// A key name: non-empty, without Unicode spaces, plus signs or ASCII control characters
/// (c2sp.org/signed-note, "Format"; control characters cannot appear in a note at all).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Checks `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, KeyError> {
        let name = name.into();
        if name.is_empty() {
            return Err(KeyError::EmptyName);
        }
        if let Some(c) = name.chars().find(|c| c.is_whitespace() || *c < '\u{20}') {
            return Err(KeyError::NameCharacter { name, character: c });
        }
        if name.contains('+') {
            return Err(KeyError::NameCharacter {
                name,
                character: '+',
            });
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key ID: the four bytes in front of every note signature, read as a big-endian integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// `SHA-256(name || 0x0A || signature type || public key)[:4]`, the key ID that
    /// c2sp.org/signed-note recommends and c2sp.org/tlog-cosignature requires.
    pub fn compute(name: &KeyName, signature_type: u8, public_key: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(name.as_str().as_bytes());
        hasher.update([b'\n', signature_type]);
        hasher.update(public_key);
        let digest = hasher.finalize();
        Self(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]))
    }

    /// The four bytes, big-endian.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// The signature types this crate signs and verifies, both over 32-byte Ed25519 keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureType {
    /// 0x01: Ed25519 over the note text (c2sp.org/signed-note, "Ed25519 signatures"); what
    /// logs sign checkpoints with.
    Ed25519,
    /// 0x04: a timestamp and Ed25519 over `cosignature/v1`, the time and the checkpoint
    /// (c2sp.org/tlog-cosignature); what witnesses sign with.
    CosignatureV1,
}

impl SignatureType {
    /// The type byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Ed25519 => TYPE_ED25519,
            Self::CosignatureV1 => TYPE_COSIGNATURE_V1,
        }
    }

    /// The type of a type byte, if this crate knows it.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            TYPE_ED25519 => Some(Self::Ed25519),
            TYPE_COSIGNATURE_V1 => Some(Self::CosignatureV1),
            _ => None,
        }
    }
}

/// A public key with its name, type and key ID, written as a vkey:
/// `<name>+<hex key ID>+<base64(type || public key)>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    name: KeyName,
    id: KeyId,
    signature_type: SignatureType,
    public_key: [u8; 32],
}

impl VerifierKey {
    /// The key `public_key` of `signature_type` under `name`, with its computed key ID.
    pub fn new(name: KeyName, signature_type: SignatureType, public_key: [u8; 32]) -> Self {
        let id = KeyId::compute(&name, signature_type.byte(), &public_key);
        Self {
            name,
            id,
            signature_type,
            public_key,
        }
    }

    /// Parses a vkey. The key ID must be eight lowercase hex digits equal to the one computed
    /// from the name, type and key; the type must be 0x01 or 0x04 with a 32-byte key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::VerifierKeyParts);
        };
        let name = KeyName::new(name)?;
        let stated = parse_key_id(id)?;
        let bytes = b64::decode(key).ok_or(KeyError::KeyNotBase64)?;
        let (signature_type, public_key) = typed_key(&bytes)?;
        let key = Self::new(name, signature_type, public_key);
        if key.id != stated {
            return Err(KeyError::KeyIdMismatch {
                stated,
                computed: key.id,
            });
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The signature type.
    pub fn signature_type(&self) -> SignatureType {
        self.signature_type
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// The same public key and name as another signature type (with that type's key ID).
    pub fn with_type(&self, signature_type: SignatureType) -> Self {
        Self::new(self.name.clone(), signature_type, self.public_key)
    }

    /// Checks one Ed25519 signature over `message` (ring).
    pub(crate) fn verify_ed25519(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut typed = Vec::with_capacity(33);
        typed.push(self.signature_type.byte());
        typed.extend_from_slice(&self.public_key);
        write!(f, "{}+{}+{}", self.name, self.id, b64::encode(&typed))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// An Ed25519 private key with its name, in the encoding of Go's sumdb/note signer keys:
/// `PRIVATE+KEY+<name>+<hex key ID>+<base64(type || 32-byte seed)>`, where the key ID is
/// that of the public key under the same name and type. Type 0x01 or 0x04; either can make
/// plain signatures and cosignatures, as Go's transparency-dev tools allow.
pub struct SignerKey {
    name: KeyName,
    signature_type: SignatureType,
    seed: [u8; 32],
    public_key: [u8; 32],
}

impl SignerKey {
    /// The key of a 32-byte Ed25519 seed (RFC 8032's private key).
    pub fn from_seed(
        name: KeyName,
        signature_type: SignatureType,
        seed: [u8; 32],
    ) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::BadSeed)?;
        let mut public_key = [0; 32];
        public_key.copy_from_slice(pair.public_key().as_ref());
        Ok(Self {
            name,
            signature_type,
            seed,
            public_key,
        })
    }

    /// Parses a signer key; the key ID must match the public key derived from the seed.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = text
            .strip_prefix(SIGNER_KEY_PREFIX)
            .ok_or(KeyError::SignerKeyPrefix)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::SignerKeyParts);
        };
        let name = KeyName::new(name)?;
        let stated = parse_key_id(id)?;
        let bytes = b64::decode(key).ok_or(KeyError::KeyNotBase64)?;
        let (signature_type, seed) = typed_key(&bytes)?;
        let key = Self::from_seed(name, signature_type, seed)?;
        let computed = key.verifier_key().id();
        if computed != stated {
            return Err(KeyError::KeyIdMismatch { stated, computed });
        }
        Ok(key)
    }

    /// The encoded secret key. Keep it secret: this is the one place the seed leaves.
    pub fn to_secret_string(&self) -> String {
        let mut typed = Vec::with_capacity(33);
        typed.push(self.signature_type.byte());
        typed.extend_from_slice(&self.seed);
        format!(
            "{SIGNER_KEY_PREFIX}{}+{}+{}",
            self.name,
            self.verifier_key().id(),
            b64::encode(&typed)
        )
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The signature type the key was written for.
    pub fn signature_type(&self) -> SignatureType {
        self.signature_type
    }

    /// The public half, as a vkey of the same name and type.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey::new(self.name.clone(), self.signature_type, self.public_key)
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// A copy of the key pair (ring's pairs cannot be cloned).
    pub(crate) fn pair_copy(&self) -> Result<Ed25519KeyPair, KeyError> {
        Ed25519KeyPair::from_seed_unchecked(&self.seed).map_err(|_| KeyError::BadSeed)
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("signature_type", &self.signature_type)
            .field("seed", &"<secret>")
            .finish()
    }
}

/// A key, key name or key encoding that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An empty key name.
    #[error("a key name must not be empty")]
    EmptyName,
    /// A key name with a character names may not hold.
    #[error(
        "key name {name:?} holds {character:?}; names hold no spaces, plus signs or control characters"
    )]
    NameCharacter {
        /// The name.
        name: String,
        /// The first character that is not allowed.
        character: char,
    },
    /// Not `name+id+key`.
    #[error("a verifier key has three parts joined by '+': <name>+<hex key ID>+<base64 key>")]
    VerifierKeyParts,
    /// Not `PRIVATE+KEY+…`.
    #[error("a signer key starts with \"PRIVATE+KEY+\"")]
    SignerKeyPrefix,
    /// Not `PRIVATE+KEY+name+id+key`.
    #[error("a signer key is PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")]
    SignerKeyParts,
    /// A key ID that is not eight lowercase hex digits.
    #[error("key ID {0:?} is not eight lowercase hex digits")]
    KeyIdSyntax(String),
    /// The key material is not standard, padded base64.
    #[error("the key material is not standard padded base64")]
    KeyNotBase64,
    /// No type byte.
    #[error("the key material is empty: it starts with a signature type byte")]
    EmptyKey,
    /// A type this crate does not verify.
    #[error(
        "signature type 0x{0:02x} is not supported (0x01 Ed25519 and 0x04 Ed25519 cosignature/v1 are)"
    )]
    UnsupportedType(u8),
    /// An Ed25519 key of the wrong length.
    #[error("an Ed25519 key is 32 bytes, this one is {0}")]
    KeyLength(usize),
    /// The key ID does not belong to the name, type and key.
    #[error("key ID {stated} does not match the name, type and key, whose key ID is {computed}")]
    KeyIdMismatch {
        /// The key ID written in the key.
        stated: KeyId,
        /// The key ID computed from the name, type and key.
        computed: KeyId,
    },
    /// ring refused the seed.
    #[error("the Ed25519 seed was refused")]
    BadSeed,
}

/// Eight lowercase hex digits.
fn parse_key_id(text: &str) -> Result<KeyId, KeyError> {
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if text.len() != 8 || !text.bytes().all(lower_hex) {
        return Err(KeyError::KeyIdSyntax(text.chars().take(16).collect()));
    }
    u32::from_str_radix(text, 16)
        .map(KeyId)
        .map_err(|_| KeyError::KeyIdSyntax(text.to_owned()))
}

/// `type || 32 bytes`, for a type this crate knows.
fn typed_key(bytes: &[u8]) -> Result<(SignatureType, [u8; 32]), KeyError> {
    let (&type_byte, key) = bytes.split_first().ok_or(KeyError::EmptyKey)?;
    let signature_type =
        SignatureType::from_byte(type_byte).ok_or(KeyError::UnsupportedType(type_byte))?;
    let key: [u8; 32] = key.try_into().map_err(|_| KeyError::KeyLength(key.len()))?;
    Ok((signature_type, key))
}
