//! The message bodies of the witness protocol's `add-checkpoint` call (c2sp.org/tlog-witness):
//! the request (`old <size>`, consistency proof lines, a blank line, the checkpoint note), the
//! cosignature lines of a 200 answer and the size body of a 409 answer.

use std::fmt;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::note::{MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, NoteSignature, SignedNote};
use crate::{DecimalError, Hash, b64, excerpt, parse_decimal};

/// The most consistency proof lines a request may carry.
pub const MAX_PROOF_HASHES: usize = 63;

/// The content type of a 409 answer's body, the witness's latest cosigned tree size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The longest preamble: `old <20 digits>` and 63 base64 hashes, each line with its newline.
const MAX_PREAMBLE_BYTES: usize = 4 + 20 + 1 + MAX_PROOF_HASHES * 45 + 1;

/// A parsed `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    old_size: u64,
    proof: Vec<Hash>,
    note: SignedNote,
    checkpoint: Checkpoint,
}

impl AddCheckpointRequest {
    /// A request to extend the witness's view from `old_size` to the checkpoint `note`, with
    /// the consistency proof between them.
    pub fn new(old_size: u64, proof: Vec<Hash>, note: SignedNote) -> Result<Self, RequestError> {
        if proof.len() > MAX_PROOF_HASHES {
            return Err(RequestError::TooManyProofHashes {
                limit: MAX_PROOF_HASHES,
            });
        }
        let checkpoint = Checkpoint::parse(note.text())?;
        if old_size > checkpoint.size() {
            return Err(RequestError::OldSizeTooLarge {
                old_size,
                size: checkpoint.size(),
            });
        }
        Ok(Self {
            old_size,
            proof,
            note,
            checkpoint,
        })
    }

    /// Parses a request body. Besides its syntax, the old size must not exceed the
    /// checkpoint's (the spec answers both with 400 Bad Request).
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let limit = MAX_PREAMBLE_BYTES + MAX_NOTE_BYTES;
        if body.len() > limit {
            return Err(RequestError::TooLarge {
                size: body.len(),
                limit,
            });
        }
        let (first, mut rest) = split_line(body).ok_or(RequestError::NoOldLine)?;
        let old_size = std::str::from_utf8(first)
            .ok()
            .and_then(|line| line.strip_prefix("old "))
            .ok_or(RequestError::NoOldLine)?;
        let old_size = parse_decimal(old_size).map_err(|error| RequestError::OldSize {
            text: excerpt(old_size, 40),
            error,
        })?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = split_line(rest).ok_or(RequestError::NoBlankLine)?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_HASHES {
                return Err(RequestError::TooManyProofHashes {
                    limit: MAX_PROOF_HASHES,
                });
            }
            let hash = std::str::from_utf8(line).ok().and_then(b64::decode_hash);
            let hash = hash.ok_or_else(|| RequestError::ProofLine {
                line: proof.len() + 2,
                text: excerpt(&String::from_utf8_lossy(line), 60),
            })?;
            proof.push(hash);
        }
        Self::new(old_size, proof, SignedNote::parse(rest)?)
    }

    /// The size of the witness's latest cosigned checkpoint, as the client believes it.
    pub fn old_size(&self) -> u64 {
        self.old_size
    }

    /// The consistency proof from the old size to the checkpoint's size.
    pub fn proof(&self) -> &[Hash] {
        &self.proof
    }

    /// The checkpoint note, with every signature it came with.
    pub fn note(&self) -> &SignedNote {
        &self.note
    }

    /// The note's text, parsed. Its claims count only once a log key's signature verifies.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

impl fmt::Display for AddCheckpointRequest {
    /// The request body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "old {}", self.old_size)?;
        for hash in &self.proof {
            writeln!(f, "{}", b64::encode(hash))?;
        }
        writeln!(f)?;
        write!(f, "{}", self.note)
    }
}

/// The body of a 409 answer: the size in decimal and a newline.
pub fn format_size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Reads the body of a 409 answer.
pub fn parse_size_body(body: &[u8]) -> Result<u64, RequestError> {
    let text = std::str::from_utf8(body)
        .ok()
        .filter(|text| text.len() <= 21)
        .and_then(|text| text.strip_suffix('\n'))
        .ok_or_else(|| RequestError::SizeBody {
            text: excerpt(&String::from_utf8_lossy(body), 40),
        })?;
    parse_decimal(text).map_err(|_| RequestError::SizeBody {
        text: excerpt(text, 40),
    })
}

/// The body of a 200 answer: one signature line per cosignature.
pub fn format_cosignatures(signatures: &[NoteSignature]) -> String {
    signatures.iter().map(NoteSignature::to_line).collect()
}

/// Reads the body of a 200 answer: one or more signature lines, each ending in a newline.
/// The signatures are not verified: add them to the checkpoint note and verify it with the
/// witness keys you trust.
pub fn parse_cosignatures(body: &[u8]) -> Result<Vec<NoteSignature>, RequestError> {
    if body.len() > MAX_NOTE_BYTES {
        return Err(RequestError::TooLarge {
            size: body.len(),
            limit: MAX_NOTE_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|error| NoteError::NotUtf8 {
        offset: error.valid_up_to(),
    })?;
    if let Some(offset) = text.bytes().position(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::ControlCharacter {
            offset,
            byte: body[offset],
        }
        .into());
    }
    let lines = text
        .strip_suffix('\n')
        .ok_or(RequestError::NoCosignatures)?;
    let mut signatures = Vec::new();
    for (index, line) in lines.split('\n').enumerate() {
        if index == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                limit: MAX_SIGNATURES,
            }
            .into());
        }
        let signature = NoteSignature::parse_line(line).map_err(|error| {
            RequestError::from(NoteError::SignatureLine {
                line: index + 1,
                error,
            })
        })?;
        signatures.push(signature);
    }
    Ok(signatures)
}

/// The first line of `bytes` without its newline, and what follows; `None` with no newline.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

/// An add-checkpoint request or answer body that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Over the size limit.
    #[error("the body is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The first line is not `old <size>`.
    #[error("the first line of the body must be \"old <size>\" ending in a newline")]
    NoOldLine,
    /// A bad old size.
    #[error("the old size {text:?} {error}")]
    OldSize {
        /// The text.
        text: String,
        /// What is wrong with it.
        error: DecimalError,
    },
    /// A proof line that is not one base64 hash.
    #[error("line {line} ({text:?}) is not a 32-byte hash in standard padded base64")]
    ProofLine {
        /// Its line number, from 1.
        line: usize,
        /// The line.
        text: String,
    },
    /// More than 63 proof lines.
    #[error("the consistency proof has more than {limit} hashes")]
    TooManyProofHashes {
        /// The limit.
        limit: usize,
    },
    /// No blank line before the checkpoint.
    #[error("no blank line separates the consistency proof from the checkpoint")]
    NoBlankLine,
    /// The checkpoint is not a signed note.
    #[error("the checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The note's text is not a checkpoint.
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The old size is past the checkpoint's.
    #[error("the old size {old_size} is larger than the checkpoint's size {size}")]
    OldSizeTooLarge {
        /// The old size.
        old_size: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// A 409 body that is not a size and a newline.
    #[error("the conflict body {text:?} is not a tree size in decimal and a newline")]
    SizeBody {
        /// The body.
        text: String,
    },
    /// An empty answer, or one whose last line has no newline.
    #[error("the answer holds no cosignature lines ending in a newline")]
    NoCosignatures,
}
