//! Signed notes (c2sp.org/signed-note): a text ending in newline, a blank line, and one or
//! more signature lines `— <key name> <base64(key ID || signature)>`.

use std::fmt;

use ring::signature::Ed25519KeyPair;

use crate::cosignature::{CosignatureV1, cosigned_message};
use crate::key::{KeyError, KeyId, KeyName, SignatureType, SignerKey, VerifierKey};
use crate::{b64, excerpt};

/// The largest note this crate parses or makes, in bytes. The spec asks verifiers to accept
/// at least 16 signatures of up to nearly 5 kB each; this is well above that.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// The most signature lines a note may carry (Go's sumdb/note limit; the spec asks for at
/// least 16).
pub const MAX_SIGNATURES: usize = 100;

/// What starts a signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// One signature line: key name, key ID, and the signature bytes that follow the key ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    name: KeyName,
    id: KeyId,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// A signature by key `name`/`id`; `signature` is what follows the key ID (not empty).
    pub fn new(name: KeyName, id: KeyId, signature: Vec<u8>) -> Result<Self, SignatureLineError> {
        if signature.is_empty() {
            return Err(SignatureLineError::TooShort { bytes: 4 });
        }
        Ok(Self {
            name,
            id,
            signature,
        })
    }

    /// Parses one signature line, without its final newline.
    pub fn parse_line(line: &str) -> Result<Self, SignatureLineError> {
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or(SignatureLineError::NoEmDash)?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or(SignatureLineError::NoSeparator)?;
        let name = KeyName::new(name).map_err(SignatureLineError::Name)?;
        let bytes = b64::decode(encoded).ok_or(SignatureLineError::NotBase64)?;
        let Some((id, signature)) = bytes.split_first_chunk::<4>() else {
            return Err(SignatureLineError::TooShort { bytes: bytes.len() });
        };
        Self::new(name, KeyId(u32::from_be_bytes(*id)), signature.to_vec())
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The signature bytes after the key ID.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line, with its em dash and final newline.
    pub fn to_line(&self) -> String {
        let mut bytes = Vec::with_capacity(4 + self.signature.len());
        bytes.extend_from_slice(&self.id.to_bytes());
        bytes.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, b64::encode(&bytes))
    }

    /// Whether this line names `key`.
    fn names(&self, key: &VerifierKey) -> bool {
        self.name == *key.name() && self.id == key.id()
    }
}

/// A note's text and signatures, parsed and not yet verified: what it says must be ignored
/// until [`SignedNote::verify`] finds a trusted signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a note: at most [`MAX_NOTE_BYTES`], UTF-8 with no ASCII control character but
    /// newline, the text separated from 1 to [`MAX_SIGNATURES`] signature lines by its last
    /// blank line. Signatures are kept in order, repeats included, so the note encodes back
    /// to the same bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge {
                size: bytes.len(),
                limit: MAX_NOTE_BYTES,
            });
        }
        let note = std::str::from_utf8(bytes).map_err(|error| NoteError::NotUtf8 {
            offset: error.valid_up_to(),
        })?;
        check_characters(note)?;
        let split = note.rfind("\n\n").ok_or(NoteError::NoSeparator)?;
        let (text, block) = (&note[..=split], &note[split + 2..]);
        let Some(block) = block.strip_suffix('\n') else {
            return Err(if block.is_empty() {
                NoteError::NoSignatures
            } else {
                NoteError::UnterminatedSignature
            });
        };
        let first_line = text.matches('\n').count() + 2;
        let mut signatures = Vec::new();
        for (index, line) in block.split('\n').enumerate() {
            if index == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures {
                    limit: MAX_SIGNATURES,
                });
            }
            let signature =
                NoteSignature::parse_line(line).map_err(|error| NoteError::SignatureLine {
                    line: first_line + index,
                    error,
                })?;
            signatures.push(signature);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// A note of `text` and `signatures` (at least one), such as the signatures of a
    /// [`VerifiedNote`] that a client keeps, with cosignatures added.
    pub fn new(text: String, signatures: Vec<NoteSignature>) -> Result<Self, NoteError> {
        check_text(&text)?;
        if signatures.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                limit: MAX_SIGNATURES,
            });
        }
        let note = Self { text, signatures };
        let size = note.encoded_len();
        if size > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge {
                size,
                limit: MAX_NOTE_BYTES,
            });
        }
        Ok(note)
    }

    /// Signs `text` with each of `signers`, in order.
    pub fn sign(text: impl Into<String>, signers: &[&dyn NoteSigner]) -> Result<Self, SignError> {
        let text = text.into();
        check_text(&text)?;
        if signers.is_empty() {
            return Err(SignError::NoSigners);
        }
        let mut note = Self {
            text,
            signatures: Vec::new(),
        };
        for signer in signers {
            let signature = signer.sign(&note.text)?;
            let signature = NoteSignature::new(signer.name().clone(), signer.key_id(), signature)
                .map_err(|_| SignError::Refused {
                name: signer.name().to_string(),
            })?;
            note.add_signature(signature)?;
        }
        Ok(note)
    }

    /// The text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signatures, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature (a cosignature, say), replacing one by the same key name and ID.
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        let replaced = self
            .signatures
            .iter()
            .position(|s| s.name == signature.name && s.id == signature.id);
        let mut size = self.encoded_len() + signature.to_line().len();
        match replaced {
            Some(index) => size -= self.signatures[index].to_line().len(),
            None if self.signatures.len() >= MAX_SIGNATURES => {
                return Err(NoteError::TooManySignatures {
                    limit: MAX_SIGNATURES,
                });
            }
            None => {}
        }
        if size > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge {
                size,
                limit: MAX_NOTE_BYTES,
            });
        }
        match replaced {
            Some(index) => self.signatures[index] = signature,
            None => self.signatures.push(signature),
        }
        Ok(())
    }

    /// Verifies every signature by a key in `keys` (same name and key ID) and ignores the
    /// others. Fails if a known key's signature does not verify, if two different keys share
    /// a name and ID that a signature uses, or if no known key signed.
    pub fn verify(&self, keys: &[VerifierKey]) -> Result<VerifiedNote, VerifyError> {
        let mut verified: Vec<VerifiedSignature> = Vec::new();
        let mut unverified: Vec<NoteSignature> = Vec::new();
        for signature in &self.signatures {
            let mut matching = keys.iter().filter(|key| signature.names(key));
            let Some(key) = matching.next() else {
                if !unverified.contains(signature) {
                    unverified.push(signature.clone());
                }
                continue;
            };
            if matching.any(|other| other != key) {
                return Err(VerifyError::Ambiguous {
                    name: signature.name.to_string(),
                    id: signature.id,
                });
            }
            let timestamp =
                check_signature(key, &self.text, &signature.signature).ok_or_else(|| {
                    VerifyError::BadSignature {
                        name: signature.name.to_string(),
                        id: signature.id,
                    }
                })?;
            if !verified.iter().any(|v| v.key == *key) {
                verified.push(VerifiedSignature {
                    key: key.clone(),
                    signature: signature.clone(),
                    timestamp,
                });
            }
        }
        if verified.is_empty() {
            return Err(VerifyError::NoKnownSignature {
                found: self
                    .signatures
                    .iter()
                    .map(|s| format!("{}+{}", excerpt(s.name.as_str(), 100), s.id))
                    .collect(),
            });
        }
        Ok(VerifiedNote {
            text: self.text.clone(),
            verified,
            unverified,
        })
    }

    fn encoded_len(&self) -> usize {
        self.text.len()
            + 1
            + self
                .signatures
                .iter()
                .map(|s| s.to_line().len())
                .sum::<usize>()
    }
}

impl fmt::Display for SignedNote {
    /// The encoded note: text, blank line, signature lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for signature in &self.signatures {
            f.write_str(&signature.to_line())?;
        }
        Ok(())
    }
}

/// A note with at least one signature by a trusted key that verified. Only
/// [`SignedNote::verify`] builds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    text: String,
    verified: Vec<VerifiedSignature>,
    unverified: Vec<NoteSignature>,
}

impl VerifiedNote {
    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// One entry per trusted key that signed, in the note's order.
    pub fn verified(&self) -> &[VerifiedSignature] {
        &self.verified
    }

    /// Signatures by keys not given to `verify`, ignored (repeats dropped).
    pub fn unverified(&self) -> &[NoteSignature] {
        &self.unverified
    }
}

/// A signature that verified, with the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    key: VerifierKey,
    signature: NoteSignature,
    timestamp: Option<u64>,
}

impl VerifiedSignature {
    /// The trusted key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// The signature line.
    pub fn signature(&self) -> &NoteSignature {
        &self.signature
    }

    /// The time a cosignature states (POSIX seconds); `None` for plain signatures.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }
}

/// Something that signs note texts under a key name and key ID.
pub trait NoteSigner {
    /// The key name.
    fn name(&self) -> &KeyName;
    /// The key ID.
    fn key_id(&self) -> KeyId;
    /// The signature bytes that follow the key ID, over exactly `text`.
    fn sign(&self, text: &str) -> Result<Vec<u8>, SignError>;
}

/// The signing function of an [`Ed25519NoteSigner`]: the 64-byte Ed25519 signature of the
/// message, or `None` to refuse.
type SignFn = dyn Fn(&[u8]) -> Option<[u8; 64]> + Send + Sync;

/// A plain Ed25519 (type 0x01) note signer around a ring key pair or any signing function,
/// such as a log key held elsewhere. Every signature it makes is checked against its public
/// key before it is returned.
pub struct Ed25519NoteSigner {
    key: VerifierKey,
    sign: Box<SignFn>,
}

impl Ed25519NoteSigner {
    /// A signer that calls `sign` with each text; `public_key` is the key it signs with.
    pub fn from_fn(
        name: KeyName,
        public_key: [u8; 32],
        sign: impl Fn(&[u8]) -> Option<[u8; 64]> + Send + Sync + 'static,
    ) -> Self {
        Self {
            key: VerifierKey::new(name, SignatureType::Ed25519, public_key),
            sign: Box::new(sign),
        }
    }

    /// A signer holding a ring key pair.
    pub fn from_key_pair(name: KeyName, pair: Ed25519KeyPair) -> Self {
        use ring::signature::KeyPair as _;
        let mut public_key = [0; 32];
        public_key.copy_from_slice(pair.public_key().as_ref());
        Self::from_fn(name, public_key, move |message| {
            pair.sign(message).as_ref().try_into().ok()
        })
    }

    /// A signer of plain Ed25519 signatures with a signer key's seed and name.
    pub fn from_signer_key(key: &SignerKey) -> Result<Self, KeyError> {
        Ok(Self::from_key_pair(key.name().clone(), key.pair_copy()?))
    }

    /// The verifier key of its signatures.
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.key
    }
}

impl NoteSigner for Ed25519NoteSigner {
    fn name(&self) -> &KeyName {
        self.key.name()
    }

    fn key_id(&self) -> KeyId {
        self.key.id()
    }

    fn sign(&self, text: &str) -> Result<Vec<u8>, SignError> {
        let name = || self.key.name().to_string();
        let signature =
            (self.sign)(text.as_bytes()).ok_or_else(|| SignError::Refused { name: name() })?;
        if !self.key.verify_ed25519(text.as_bytes(), &signature) {
            return Err(SignError::WrongKey { name: name() });
        }
        Ok(signature.to_vec())
    }
}

impl fmt::Debug for Ed25519NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519NoteSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Checks a note text on its own: at most [`MAX_NOTE_BYTES`], ending in newline, with no
/// ASCII control character but newline.
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge {
            size: text.len(),
            limit: MAX_NOTE_BYTES,
        });
    }
    check_characters(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotTerminated);
    }
    Ok(())
}

fn check_characters(text: &str) -> Result<(), NoteError> {
    match text.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            byte: text.as_bytes()[offset],
        }),
        None => Ok(()),
    }
}

/// `Some(timestamp)` when `signature` by `key` verifies over `text` (the timestamp only for
/// cosignatures), `None` when it does not.
fn check_signature(key: &VerifierKey, text: &str, signature: &[u8]) -> Option<Option<u64>> {
    match key.signature_type() {
        SignatureType::Ed25519 => key
            .verify_ed25519(text.as_bytes(), signature)
            .then_some(None),
        SignatureType::CosignatureV1 => {
            let cosignature = CosignatureV1::from_bytes(signature).ok()?;
            let message = cosigned_message(cosignature.timestamp, text);
            key.verify_ed25519(&message, &cosignature.signature)
                .then_some(Some(cosignature.timestamp))
        }
    }
}

/// A note that does not parse, or a text that cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Over the size limit.
    #[error("the note is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("the note is not UTF-8 (from byte {offset})")]
    NotUtf8 {
        /// Where valid UTF-8 ends.
        offset: usize,
    },
    /// An ASCII control character other than newline (a `\r` of CRLF line ends, a tab, NUL).
    #[error(
        "byte {offset} is the control character 0x{byte:02x}{}; a note holds no ASCII control character but newline",
        control_name(*byte)
    )]
    ControlCharacter {
        /// Where.
        offset: usize,
        /// Which.
        byte: u8,
    },
    /// No blank line before the signatures.
    #[error("no blank line separates the text from signature lines")]
    NoSeparator,
    /// A blank line and nothing after it.
    #[error("the note has no signature lines after its last blank line")]
    NoSignatures,
    /// The last signature line lacks its newline.
    #[error("the last signature line does not end in a newline")]
    UnterminatedSignature,
    /// A signature line that does not parse.
    #[error("line {line}: {error}")]
    SignatureLine {
        /// Its line number in the note, from 1.
        line: usize,
        /// What is wrong with it.
        error: SignatureLineError,
    },
    /// Too many signature lines.
    #[error("the note has more than {limit} signature lines")]
    TooManySignatures {
        /// The limit.
        limit: usize,
    },
    /// A text to sign that does not end in a newline.
    #[error("a note text ends in a newline")]
    TextNotTerminated,
}

fn control_name(byte: u8) -> &'static str {
    match byte {
        b'\r' => " (carriage return)",
        b'\t' => " (tab)",
        0 => " (NUL)",
        _ => "",
    }
}

/// A signature line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureLineError {
    /// Not `— ` first.
    #[error("a signature line starts with an em dash (U+2014) and a space")]
    NoEmDash,
    /// No space between key name and signature.
    #[error("a signature line has a space between the key name and the signature")]
    NoSeparator,
    /// A bad key name.
    #[error(transparent)]
    Name(KeyError),
    /// The signature is not base64.
    #[error("the signature is not standard padded base64")]
    NotBase64,
    /// Fewer than five bytes.
    #[error("the signature decodes to {bytes} bytes; it is a 4-byte key ID and at least one byte")]
    TooShort {
        /// How many bytes it decodes to.
        bytes: usize,
    },
}

/// Why a note was not verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A trusted key's signature does not verify: the whole note is refused.
    #[error("the signature by {name}+{id} does not verify")]
    BadSignature {
        /// Key name.
        name: String,
        /// Key ID.
        id: KeyId,
    },
    /// Two different trusted keys share the name and key ID a signature uses.
    #[error("two trusted keys are named {name} with key ID {id}")]
    Ambiguous {
        /// Key name.
        name: String,
        /// Key ID.
        id: KeyId,
    },
    /// No trusted key signed.
    #[error("no trusted key signed the note (it is signed by: {})", found.join(", "))]
    NoKnownSignature {
        /// `name+id` of each signature present.
        found: Vec<String>,
    },
}

/// Why a note was not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The text cannot be a note text, or the note would be too large.
    #[error("cannot sign: {0}")]
    Text(#[from] NoteError),
    /// Nobody to sign.
    #[error("a note needs at least one signer")]
    NoSigners,
    /// The signing function refused.
    #[error("the signer {name} refused to sign")]
    Refused {
        /// Key name.
        name: String,
    },
    /// The signing function signed with another key than the one it claims.
    #[error("the signature made for {name} does not verify under its public key")]
    WrongKey {
        /// Key name.
        name: String,
    },
    /// A cosignature over a text that is not a checkpoint.
    #[error("cannot cosign: {0}")]
    NotCheckpoint(#[from] crate::CheckpointError),
    /// A cosignature time past 2^63 - 1.
    #[error("timestamp {0} is past 2^63 - 1")]
    Timestamp(u64),
}
