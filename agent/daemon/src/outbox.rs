//! The uplink's outbox: the journal, shared by the attestation loop (record) and the uplink
//! (read, acknowledge, set aside, head).

use std::sync::{Mutex, MutexGuard, PoisonError};

use agent_spool::{Journal, JournalError};
use agent_uplink::{Outbox, RejectReason};

/// The journal behind a lock.
#[derive(Debug)]
pub struct JournalOutbox {
    journal: Mutex<Journal>,
}

impl JournalOutbox {
    pub fn new(journal: Journal) -> Self {
        Self {
            journal: Mutex::new(journal),
        }
    }

    /// The journal, for one operation. Hold it only for blocking work off the executor.
    pub fn lock(&self) -> MutexGuard<'_, Journal> {
        // A panic while holding the lock leaves the journal's files consistent (every change
        // is a rename, and the head moves last); keep using it.
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries and bytes held.
    pub fn depth(&self) -> (usize, u64) {
        let journal = self.lock();
        (journal.spool().len(), journal.spool().bytes())
    }
}

impl Outbox for JournalOutbox {
    type Error = JournalError;

    fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        self.lock().pending_after(after, limit)
    }

    fn acknowledged(&self, sequence: u64) -> Result<(), JournalError> {
        self.lock().acknowledged(sequence).map(|_| ())
    }

    fn refused(
        &self,
        sequence: u64,
        reason: Option<RejectReason>,
        detail: &str,
    ) -> Result<(), JournalError> {
        tracing::error!(
            sequence,
            reason = reason.map_or("unspecified", RejectReason::as_str),
            detail,
            "attestation refused by the collector; moved to the spool's rejected folder"
        );
        self.lock().refused(sequence).map(|_| ())
    }

    fn head(&self) -> (u64, Vec<u8>) {
        match self.lock().head() {
            Some(head) => (head.sequence, head.digest.0.as_bytes().to_vec()),
            None => (0, Vec::new()),
        }
    }
}
