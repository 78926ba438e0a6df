//! The agent's journal: the spool and the chain-state file kept in step, and the one chain head
//! the agent signs after and the uplink announces.
//!
//! Invariant: the head only moves to an attestation the spool durably holds, and only to the
//! exact next link. `record` pushes to the spool first and stores the state second, so after a
//! crash between the two the spool is ahead; `open` therefore resumes from the newer of the
//! state file and the newest spooled attestation, and the chain never forks.

use std::error::Error;
use std::path::{Path, PathBuf};

use proto_evidence::{AttestationPayload, ChainDigest, ChainError, ChainHead, Link};

use crate::state::{self, StateError};
use crate::{Entry, EntryKind, Pushed, Recovery, Spool, SpoolError, SpoolLimits};

/// Why a spooled attestation's chain digest could not be read: the spool holds envelopes as
/// opaque bytes, so the caller decodes them.
pub type DigestError = Box<dyn Error + Send + Sync>;

/// A journal operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The spool failed (the error names the action and the path).
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The chain-state file could not be read (the error names the path).
    #[error(transparent)]
    State(#[from] StateError),
    /// The newest spooled attestation, from which the chain would resume, does not decode.
    #[error("spooled attestation {sequence} ({}) is not an envelope", path.display())]
    NotAnEnvelope {
        /// Its sequence.
        sequence: u64,
        /// Its file.
        path: PathBuf,
        /// Why it does not decode.
        #[source]
        source: DigestError,
    },
    /// An attestation that is not the exact next link of the journal's head.
    #[error("attestation {sequence} is not the next link of the agent's chain")]
    NotNext {
        /// The attestation's sequence.
        sequence: u64,
        /// How it fails to follow the head.
        #[source]
        source: ChainError,
    },
}

/// What a successful `record` did besides storing the attestation and advancing the head.
#[derive(Debug)]
pub struct Recorded {
    /// What the spool's size policy did.
    pub pushed: Pushed,
    /// The chain-state file could not be stored. Nothing is lost, since the spool holds the
    /// attestation and `open` resumes from it; the next `record` stores the state again.
    pub state_error: Option<StateError>,
}

/// The spool, the chain-state file and the chain head, opened by one process at a time.
#[derive(Debug)]
pub struct Journal {
    spool: Spool,
    state_path: PathBuf,
    head: Option<ChainHead>,
}

impl Journal {
    /// Opens the spool (as `Spool::open` does) and resumes the chain head: the persisted state,
    /// or the newest spooled attestation when it is newer (the agent stopped between spooling
    /// and storing the state). `digest_of` reads a spooled envelope's chain digest; it is called
    /// only in that case. A damaged state file is an error, never a new chain.
    pub fn open(
        spool_dir: &Path,
        limits: SpoolLimits,
        state_path: &Path,
        digest_of: impl FnOnce(&[u8]) -> Result<ChainDigest, DigestError>,
    ) -> Result<(Journal, Recovery), JournalError> {
        let (spool, recovery) = Spool::open(spool_dir, limits)?;
        let head = resume(&spool, state_path, digest_of)?;
        let journal = Journal {
            spool,
            state_path: state_path.to_path_buf(),
            head,
        };
        Ok((journal, recovery))
    }

    /// The last attestation recorded: the one the next must follow and `Hello` announces.
    pub fn head(&self) -> Option<ChainHead> {
        self.head
    }

    /// Records a signed attestation: checks that `payload` (with chain digest `digest`) is the
    /// exact next link, durably spools its `envelope`, stores the chain state, then advances
    /// the head. Nothing changes when the link or the spool push is refused.
    pub fn record(
        &mut self,
        payload: &AttestationPayload,
        digest: ChainDigest,
        kind: EntryKind,
        envelope: Vec<u8>,
    ) -> Result<Recorded, JournalError> {
        let head = follow(self.head, payload, digest)?;
        let entry = Entry {
            sequence: head.sequence,
            kind,
            bytes: envelope,
        };
        let pushed = self.spool.push(&entry)?;
        let state_error = state::store(&self.state_path, &head).err();
        self.head = Some(head);
        Ok(Recorded {
            pushed,
            state_error,
        })
    }

    /// Up to `limit` held attestations with a sequence above `after`, in order:
    /// `(sequence, envelope)`.
    pub fn pending_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        let sequences: Vec<u64> = self
            .spool
            .pending()
            .map(|pending| pending.sequence)
            .filter(|sequence| *sequence > after)
            .take(limit)
            .collect();
        let mut batch = Vec::with_capacity(sequences.len());
        for sequence in sequences {
            batch.push((sequence, self.spool.read(sequence)?.bytes));
        }
        Ok(batch)
    }

    /// The collector stored everything up to and including `sequence`: removes it from the
    /// spool (as `Spool::ack`). The head stays where it is. Returns how many were removed.
    pub fn acknowledged(&mut self, sequence: u64) -> Result<usize, JournalError> {
        Ok(self.spool.ack(sequence)?)
    }

    /// The collector refused `sequence` for good: moves it to the spool's rejected folder (as
    /// `Spool::set_aside`) and returns where it is now. The head stays where it is.
    pub fn refused(&mut self, sequence: u64) -> Result<PathBuf, JournalError> {
        Ok(self.spool.set_aside(sequence)?)
    }

    /// The spool, for inspection (entries held, bytes, limits).
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The chain-state file.
    pub fn state_path(&self) -> &Path {
        &self.state_path
    }
}

/// The head after `payload`, when it is the exact next link of `head`. A gap is refused too:
/// the agent itself never skips a sequence.
fn follow(
    head: Option<ChainHead>,
    payload: &AttestationPayload,
    digest: ChainDigest,
) -> Result<ChainHead, JournalError> {
    let sequence = payload.sequence;
    let link = ChainHead::check(head, payload, digest)
        .map_err(|source| JournalError::NotNext { sequence, source })?;
    match link {
        Link::Next => Ok(ChainHead::after(payload, digest)),
        Link::Gap { .. } => Err(JournalError::NotNext {
            sequence,
            source: ChainError::Rollback {
                sequence,
                head: head.map_or(0, |head| head.sequence),
            },
        }),
    }
}

/// The persisted state, or the newest spooled attestation when it is newer.
fn resume(
    spool: &Spool,
    state_path: &Path,
    digest_of: impl FnOnce(&[u8]) -> Result<ChainDigest, DigestError>,
) -> Result<Option<ChainHead>, JournalError> {
    let stored = state::load(state_path)?;
    let Some(newest) = spool.newest() else {
        return Ok(stored);
    };
    if stored.is_some_and(|head| head.sequence >= newest) {
        return Ok(stored);
    }
    let entry = spool.read(newest)?;
    let digest = digest_of(&entry.bytes).map_err(|source| JournalError::NotAnEnvelope {
        sequence: newest,
        path: spool.entry_path(newest),
        source,
    })?;
    Ok(Some(ChainHead {
        sequence: newest,
        digest,
    }))
}

#[cfg(test)]
mod tests;
