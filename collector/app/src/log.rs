//! The log keeper: signs tree heads over the store's transparency log with the collector's log
//! key (on an interval and on demand) and answers inclusion and consistency proofs.
//!
//! Every method blocks on the store; async callers run them on a blocking thread.

use std::sync::{Arc, Mutex, PoisonError};

use collector_store::{AttestationStore, LogNodes, StoreError, StoredTreeHead};
use proto_evidence::TreeHead;
use proto_merkle::{Hash, ProofError};
use proto_note::{LogSigner, SignedNote};
use proto_seal::{Ed25519Signer, PublicKey};

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store failed or holds an inconsistent log.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The request names leaves or sizes the log does not have.
    #[error("{0}")]
    OutOfRange(String),
    /// No tree head has been signed yet.
    #[error("no tree head has been signed yet")]
    NoHead,
    /// The log's origin cannot name its checkpoints.
    #[error("{0}")]
    Origin(String),
}

/// The origin a log's checkpoints carry when none is configured: the product's name and the
/// first 16 hex digits of the log key's id, so that two collectors' logs never share one.
pub fn default_origin(key: &PublicKey) -> String {
    let id = key.key_id().to_string();
    format!("veu-attest/log/{}", &id[..id.len().min(16)])
}

impl From<ProofError<StoreError>> for LogError {
    fn from(error: ProofError<StoreError>) -> Self {
        match error {
            ProofError::Source(error) => Self::Store(error),
            other => Self::OutOfRange(other.to_string()),
        }
    }
}

/// Signs and proves over one store's log.
pub struct LogKeeper {
    store: Arc<dyn AttestationStore>,
    signer: Arc<Ed25519Signer>,
    /// The same key signing checkpoints (C2SP signed notes) under the log's origin.
    notes: LogSigner,
    clock: fn() -> i64,
    /// One signer at a time, so two heads of one size are never both attempted.
    signing: Mutex<()>,
}

impl std::fmt::Debug for LogKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKeeper")
            .field("key", &self.signer.key_id())
            .finish_non_exhaustive()
    }
}

impl LogKeeper {
    /// A keeper signing with `signer` (the log key) over `store`'s log, its checkpoints
    /// under `origin` (`None`: [`default_origin`]).
    pub fn new(
        store: Arc<dyn AttestationStore>,
        signer: Ed25519Signer,
        origin: Option<&str>,
        clock: fn() -> i64,
    ) -> Result<Self, LogError> {
        let signer = Arc::new(signer);
        let origin = origin.map_or_else(|| default_origin(&signer.public_key()), str::to_owned);
        let signing = Arc::clone(&signer);
        let notes = LogSigner::new(&origin, *signer.public_key().as_bytes(), move |message| {
            signing.sign_unframed(message)
        })
        .map_err(|e| LogError::Origin(format!("log origin {origin:?}: {e}")))?;
        Ok(Self {
            store,
            signer,
            notes,
            clock,
            signing: Mutex::new(()),
        })
    }

    /// The store the log lives in.
    pub fn store(&self) -> &Arc<dyn AttestationStore> {
        &self.store
    }

    /// The keeper's clock, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// The log's origin: the first line of its checkpoints and the name of its note key.
    pub fn origin(&self) -> &str {
        self.notes.origin()
    }

    /// The log key as witnesses and auditors pin it for checkpoints (`origin+id+key`).
    pub fn verifier_key(&self) -> &proto_note::VerifierKey {
        self.notes.verifier_key()
    }

    /// `head` as a C2SP checkpoint signed with the log key alone.
    pub fn signed_checkpoint(&self, head: &StoredTreeHead) -> Result<SignedNote, LogError> {
        self.notes
            .sign_checkpoint(head.tree_size, head.root)
            .map_err(|e| LogError::Origin(format!("cannot sign a checkpoint: {e}")))
    }

    /// `head` as a C2SP checkpoint signed with the log key, followed by every cosignature a
    /// witness gave on it.
    pub fn checkpoint(&self, head: &StoredTreeHead) -> Result<SignedNote, LogError> {
        let mut note = self.signed_checkpoint(head)?;
        for cosignature in self.store.cosignatures(head.tree_size)? {
            // Only lines that were checked when they were kept are stored; a line that no
            // longer parses is left out rather than failing the checkpoint.
            if let Ok(line) = proto_note::NoteSignature::parse_line(&cosignature.line) {
                let _ = note.add_signature(line);
            }
        }
        Ok(note)
    }

    /// The log's public key: what auditors pin.
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }

    /// Signs a head over the whole log when it grew since the newest head (or none exists);
    /// returns the newest head either way. Only the replica that leads the log signs (see
    /// `AttestationStore::lead_log`); the others return the newest head the leader signed.
    pub fn sign(&self) -> Result<StoredTreeHead, LogError> {
        let _one = self.signing.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.store.lead_log()? {
            return self.head(None);
        }
        let size = self.store.log_size()?;
        let latest = self.store.tree_head(None)?;
        if let Some(latest) = latest
            && latest.tree_size >= size
        {
            return Ok(latest);
        }
        let stored = self.sign_size(size)?;
        self.store.put_tree_head(&stored)?;
        Ok(stored)
    }

    /// The log's first `size` leaves as a head signed now (not stored).
    fn sign_size(&self, size: u64) -> Result<StoredTreeHead, LogError> {
        let root = proto_merkle::root(&LogNodes(self.store.as_ref()), size)?;
        let head = TreeHead {
            tree_size: size,
            root,
            timestamp_ms: self.timestamp(size)?,
        };
        let envelope = proto_seal::sign_tree_head(&head, &self.signer);
        Ok(StoredTreeHead {
            tree_size: size,
            root,
            timestamp_ms: head.timestamp_ms,
            envelope: proto_seal::encode_envelope(&envelope),
        })
    }

    /// A head over the whole log signed now, whether or not the log grew: what an export or
    /// a report ends with, so that its head's time is at or after every leaf it covers (a head
    /// signed earlier over the same size proves nothing about the time since). Stored when the
    /// size is new; otherwise the stored head of that size stays the first one signed.
    pub fn sign_fresh(&self) -> Result<StoredTreeHead, LogError> {
        let _one = self.signing.lock().unwrap_or_else(PoisonError::into_inner);
        let size = self.store.log_size()?;
        let stored = self.sign_size(size)?;
        if self.store.lead_log()? && self.store.tree_head(Some(size))?.is_none() {
            self.store.put_tree_head(&stored)?;
        }
        Ok(stored)
    }

    /// A head's time: now, but never before its last leaf was received (the books' clock
    /// never goes back even when the system clock does, and a head may not look older than a
    /// leaf it holds).
    fn timestamp(&self, size: u64) -> Result<i64, LogError> {
        let now = (self.clock)();
        let Some(last) = size.checked_sub(1) else {
            return Ok(now);
        };
        let newest = self
            .store
            .log_records(last, 1)?
            .first()
            .and_then(|record| proto_evidence::LogEntry::decode(&record.entry).ok())
            .map_or(now, |entry| entry.at_ms());
        Ok(now.max(newest))
    }

    /// The head an export or a report of evidence received before `until_ms` ends with: the
    /// first head signed at or after it; else the newest head over the whole log, signed now
    /// when it is older than `until_ms` or than now, so that its time proves the log complete
    /// up to `until_ms` (for an instant still to come: up to now, the most any head can).
    ///
    /// With `witnessed`, a head some witness cosigned is preferred, so that an auditor who
    /// requires cosignatures gets one: the first cosigned head at or after `until_ms`, or, for
    /// an instant still to come, the newest cosigned head (the bundle then ends there). Without
    /// any cosignature in the store, it is the same as without `witnessed`.
    pub fn head_covering(
        &self,
        until_ms: i64,
        witnessed: bool,
    ) -> Result<StoredTreeHead, LogError> {
        let now = (self.clock)();
        if witnessed {
            if let Some(head) = self.store.cosigned_head(Some(until_ms))? {
                return Ok(head);
            }
            if until_ms > now
                && let Some(head) = self.store.cosigned_head(None)?
            {
                return Ok(head);
            }
        }
        if let Some(head) = self
            .store
            .tree_heads(until_ms, i64::MAX)?
            .into_iter()
            .next()
        {
            return Ok(head);
        }
        let head = self.sign()?;
        if head.timestamp_ms < until_ms.min(now) {
            return self.sign_fresh();
        }
        Ok(head)
    }

    /// The head of `tree_size` leaves, or the newest for `None`.
    pub fn head(&self, tree_size: Option<u64>) -> Result<StoredTreeHead, LogError> {
        match self.store.tree_head(tree_size)? {
            Some(head) => Ok(head),
            None if tree_size.is_none() => Err(LogError::NoHead),
            None => Err(LogError::OutOfRange(format!(
                "no signed tree head has size {}",
                tree_size.unwrap_or(0)
            ))),
        }
    }

    /// The audit path of leaf `index` in the tree of `tree_size` leaves.
    pub fn inclusion(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(tree_size)?;
        Ok(proto_merkle::inclusion_proof(
            &LogNodes(self.store.as_ref()),
            index,
            tree_size,
        )?)
    }

    /// The consistency proof from the tree of `old_size` leaves to that of `new_size`.
    pub fn consistency(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(new_size)?;
        if old_size == 0 {
            return Ok(Vec::new());
        }
        Ok(proto_merkle::consistency_proof(
            &LogNodes(self.store.as_ref()),
            old_size,
            new_size,
        )?)
    }

    fn check_size(&self, tree_size: u64) -> Result<(), LogError> {
        let size = self.store.log_size()?;
        if tree_size > size {
            return Err(LogError::OutOfRange(format!(
                "the log holds {size} leaves, not {tree_size}"
            )));
        }
        Ok(())
    }
}

impl LogKeeper {
    /// A detached signature over a report's exact bytes, by the log key.
    pub fn sign_report(&self, report: &[u8]) -> proto_seal::DetachedSignature {
        proto_seal::sign_report(report, &self.signer)
    }
}
