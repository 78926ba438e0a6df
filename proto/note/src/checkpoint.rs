//! Checkpoints (c2sp.org/tlog-checkpoint): the note text of a log's tree head, and the signer
//! a log makes them with.

use std::fmt;

use ring::signature::Ed25519KeyPair;

use crate::key::{KeyError, KeyName, VerifierKey};
use crate::note::{Ed25519NoteSigner, NoteError, SignError, SignedNote, check_text};
use crate::{DecimalError, Hash, b64, excerpt, parse_decimal};

/// A log's tree head as a checkpoint: origin, tree size, RFC 6962 root hash, and optional
/// extension lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines. The origin must be a non-empty line.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        check_line(&origin)?;
        Ok(Self {
            origin,
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension line (non-empty). The spec does not recommend them: monitors cannot
    /// audit them, and witnesses make no statement about them.
    pub fn with_extension(mut self, line: impl Into<String>) -> Result<Self, CheckpointError> {
        let line = line.into();
        if line.is_empty() {
            return Err(CheckpointError::EmptyExtension {
                line: 4 + self.extensions.len(),
            });
        }
        check_line(&line)?;
        self.extensions.push(line);
        Ok(self)
    }

    /// Parses a note text as a checkpoint: at least three non-empty lines, each ending in a
    /// newline; a tree size with no leading zero; a root of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        check_text(text)?;
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { lines: lines.len() });
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_decimal(size).map_err(|error| CheckpointError::Size {
            text: excerpt(size, 40),
            error,
        })?;
        let root = b64::decode_hash(root).ok_or_else(|| CheckpointError::Root {
            text: excerpt(root, 60),
        })?;
        if let Some(index) = extensions.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::EmptyExtension { line: 4 + index });
        }
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }

    /// The origin line: the log's identity.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 Merkle tree hash of those leaves.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The extension lines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The note text.
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.size)?;
        writeln!(f, "{}", b64::encode(&self.root))?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// A log's checkpoint signer: its Ed25519 key under the key name equal to its origin, as logs
/// name their keys. The key stays wherever the signing function keeps it; the collector passes
/// its log key (`Arc<proto_seal::Ed25519Signer>`) as
/// `LogSigner::new(origin, *key.public_key().as_bytes(), move |m| key.sign_unframed(m))`, and
/// turns each signed tree head into a checkpoint with `sign_checkpoint(tree_size, root)`.
#[derive(Debug)]
pub struct LogSigner {
    origin: String,
    signer: Ed25519NoteSigner,
}

impl LogSigner {
    /// The log `origin`, whose key `public_key` is used through `sign` (which returns the
    /// 64-byte Ed25519 signature of the message it is given, or `None` to refuse). The origin
    /// must also be a key name: no spaces, plus signs or control characters.
    pub fn new(
        origin: &str,
        public_key: [u8; 32],
        sign: impl Fn(&[u8]) -> Option<[u8; 64]> + Send + Sync + 'static,
    ) -> Result<Self, KeyError> {
        let name = KeyName::new(origin)?;
        Ok(Self {
            origin: origin.to_owned(),
            signer: Ed25519NoteSigner::from_fn(name, public_key, sign),
        })
    }

    /// The log `origin` signing with a ring key pair.
    pub fn from_key_pair(origin: &str, pair: Ed25519KeyPair) -> Result<Self, KeyError> {
        let name = KeyName::new(origin)?;
        Ok(Self {
            origin: origin.to_owned(),
            signer: Ed25519NoteSigner::from_key_pair(name, pair),
        })
    }

    /// The origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key witnesses and auditors pin for this log.
    pub fn verifier_key(&self) -> &VerifierKey {
        self.signer.verifier_key()
    }

    /// The signed checkpoint note of the tree of `size` leaves with root `root`.
    pub fn sign_checkpoint(&self, size: u64, root: Hash) -> Result<SignedNote, SignError> {
        let checkpoint = Checkpoint::new(self.origin.clone(), size, root)?;
        SignedNote::sign(checkpoint.to_text(), &[&self.signer])
    }
}

/// A line of a checkpoint made here: no newline and no control character.
fn check_line(line: &str) -> Result<(), CheckpointError> {
    if line.bytes().any(|b| b < 0x20) {
        return Err(CheckpointError::LineCharacter {
            text: excerpt(line, 60),
        });
    }
    Ok(())
}

/// A text that is not a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not a note text.
    #[error(transparent)]
    Text(#[from] NoteError),
    /// Fewer than three lines.
    #[error("a checkpoint has at least three lines (origin, size, root hash); this has {lines}")]
    TooFewLines {
        /// How many.
        lines: usize,
    },
    /// An empty first line.
    #[error("the origin line is empty")]
    EmptyOrigin,
    /// A bad tree size line.
    #[error("the tree size {text:?} {error}")]
    Size {
        /// The line.
        text: String,
        /// What is wrong with it.
        error: DecimalError,
    },
    /// A bad root hash line.
    #[error("the root hash {text:?} is not 32 bytes in standard padded base64")]
    Root {
        /// The line.
        text: String,
    },
    /// An empty extension line.
    #[error("line {line} is empty; extension lines are not")]
    EmptyExtension {
        /// Its line number, from 1.
        line: usize,
    },
    /// A line holding a newline or another control character.
    #[error("the line {text:?} holds a newline or another control character")]
    LineCharacter {
        /// The line.
        text: String,
    },
}
