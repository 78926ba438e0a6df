//! The uplink's outbox over the durable spool.

use std::sync::Mutex;

use agent_spool::{Entry, Spool};
use agent_uplink::{Outbox, RejectReason};
use proto_evidence::ChainHead;

/// The spool, shared by the attestation loop (push) and the uplink (read, ack, set aside).
#[derive(Debug)]
pub struct SpoolOutbox {
    spool: Mutex<Spool>,
    head: Mutex<Option<ChainHead>>,
}

impl SpoolOutbox {
    pub fn new(spool: Spool, head: Option<ChainHead>) -> Self {
        Self {
            spool: Mutex::new(spool),
            head: Mutex::new(head),
        }
    }

    /// Durably spools a signed attestation.
    pub fn push(&self, entry: &Entry, head: ChainHead) -> Result<agent_spool::Pushed, String> {
        let pushed = self.lock().push(entry).map_err(|e| e.to_string())?;
        *self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(head);
        Ok(pushed)
    }

    /// Entries and bytes held.
    pub fn depth(&self) -> (usize, u64) {
        let spool = self.lock();
        (spool.len(), spool.bytes())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        // A panic while holding the lock leaves the spool's files consistent (every change is
        // a rename); keep using it.
        self.spool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Outbox for SpoolOutbox {
    fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let spool = self.lock();
        let sequences: Vec<u64> = spool
            .pending()
            .map(|pending| pending.sequence)
            .filter(|sequence| *sequence > after)
            .take(limit)
            .collect();
        sequences
            .into_iter()
            .map(|sequence| {
                spool
                    .read(sequence)
                    .map(|entry| (sequence, entry.bytes))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn acknowledged(&self, sequence: u64) -> Result<(), String> {
        self.lock()
            .ack(sequence)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn refused(&self, sequence: u64, reason: RejectReason, detail: &str) -> Result<(), String> {
        tracing::error!(
            sequence,
            ?reason,
            detail,
            "attestation refused by the collector; moved to the spool's rejected folder"
        );
        self.lock()
            .set_aside(sequence)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn head(&self) -> (u64, Vec<u8>) {
        match *self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some(head) => (head.sequence, head.digest.0.as_bytes().to_vec()),
            None => (0, Vec::new()),
        }
    }
}
