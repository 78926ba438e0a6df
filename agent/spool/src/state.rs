//! The chain-state file: the sequence and digest of the last attestation made durable, from
//! which the agent resumes its hash chain. Format: `b"VEUCHAIN"`, version byte 1, sequence
//! (u64 LE), the 32-byte digest, then a CRC32 (LE) over everything before it.
//!
//! Invariant: a damaged file is an error naming the path, never `None`; silently starting a
//! new chain would look to the collector like a forged or replayed history.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use proto_evidence::{ChainDigest, ChainHead, Sha256};

use crate::disk::{self, Failure};

const MAGIC: &[u8; 8] = b"VEUCHAIN";
const VERSION: u8 = 1;
const LEN: usize = 8 + 1 + 8 + 32 + 4;

/// Why a state file's content is not a chain state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidState {
    /// Not the fixed length of the format.
    #[error("{actual} bytes, a chain state file is {LEN}")]
    Length {
        /// Bytes the file holds.
        actual: usize,
    },
    /// Does not start with `VEUCHAIN`.
    #[error("not a chain state file (bad magic)")]
    BadMagic,
    /// A version this build does not read.
    #[error("unsupported chain state version {0}")]
    UnsupportedVersion(u8),
    /// The CRC32 does not match the content.
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The CRC32 in the file.
        stored: u32,
        /// The CRC32 of the content.
        computed: u32,
    },
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file exists but is damaged. Restore it or retire the key; do not delete it to
    /// start over.
    #[error("{path} is corrupt: {problem}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        problem: InvalidState,
    },
}

impl From<Failure> for StateError {
    fn from(failure: Failure) -> Self {
        StateError::Io {
            action: failure.action,
            path: failure.path,
            source: failure.source,
        }
    }
}

/// Reads the chain head last stored; `None` when the file does not exist (a chain not yet
/// started).
pub fn load(path: &Path) -> Result<Option<ChainHead>, StateError> {
    let content = match std::fs::read(path) {
        Ok(content) => content,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::new("cannot read", path, e).into()),
    };
    decode(&content)
        .map(Some)
        .map_err(|problem| StateError::Corrupt {
            path: path.to_path_buf(),
            problem,
        })
}

/// Replaces the state atomically and durably: temporary file beside it, fsync, rename, fsync
/// the directory. After a crash the file holds either the previous state or this one.
pub fn store(path: &Path, head: &ChainHead) -> Result<(), StateError> {
    let Some(name) = path.file_name() else {
        let source = io::Error::new(io::ErrorKind::InvalidInput, "not a file path");
        return Err(Failure::new("cannot store chain state at", path, source).into());
    };
    let mut temp_name = OsString::from(name);
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Err(failure) = disk::write_synced(&temp, &encode(head)) {
        let _ = disk::remove(&temp);
        return Err(failure.into());
    }
    if let Err(failure) = disk::rename(&temp, path) {
        let _ = disk::remove(&temp);
        return Err(failure.into());
    }
    // The new state is in place but may not survive a power loss until this succeeds; the
    // previous file is gone either way, so there is nothing to undo.
    disk::sync_dir(dir)?;
    Ok(())
}

fn encode(head: &ChainHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&head.sequence.to_le_bytes());
    out.extend_from_slice(head.digest.0.as_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(content: &[u8]) -> Result<ChainHead, InvalidState> {
    let Ok(content) = <&[u8; LEN]>::try_from(content) else {
        return Err(InvalidState::Length {
            actual: content.len(),
        });
    };
    // Fixed offsets into a fixed-length array: every slice below is in range.
    let (body, crc) = content.split_at(LEN - 4);
    if &body[..8] != MAGIC {
        return Err(InvalidState::BadMagic);
    }
    if body[8] != VERSION {
        return Err(InvalidState::UnsupportedVersion(body[8]));
    }
    let mut stored = [0; 4];
    stored.copy_from_slice(crc);
    let stored = u32::from_le_bytes(stored);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(InvalidState::Checksum { stored, computed });
    }
    let mut sequence = [0; 8];
    sequence.copy_from_slice(&body[9..17]);
    let mut digest = [0; 32];
    digest.copy_from_slice(&body[17..49]);
    Ok(ChainHead {
        sequence: u64::from_le_bytes(sequence),
        digest: ChainDigest(Sha256::from_bytes(digest)),
    })
}
