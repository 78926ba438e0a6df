//! What a store's writer did since it was opened: counters every implementation keeps the
//! same way, read as `WriterStats` (metrics, tests of group commit).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{CommitReceipt, StoreError};

/// What the writer did, counted since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct WriterStats {
    /// Group commits run: each is one transaction (one fsync) for all its batches.
    pub groups: u64,
    /// Groups in which a batch failed, so their batches ran again each on its own.
    pub isolated_groups: u64,
    /// Batches that went through the groups.
    pub batches: u64,
    /// Batches answered with an error.
    pub failed_batches: u64,
    /// Attestations newly stored.
    pub stored: u64,
    /// Attestations that were idempotent repeats.
    pub repeated: u64,
}

/// The writer's counters, shared by the store and its writer (every implementation's).
#[derive(Debug, Default)]
pub struct WriterCounters {
    groups: AtomicU64,
    isolated_groups: AtomicU64,
    batches: AtomicU64,
    failed_batches: AtomicU64,
    stored: AtomicU64,
    repeated: AtomicU64,
}

impl WriterCounters {
    /// The counts so far.
    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            groups: self.groups.load(Ordering::Relaxed),
            isolated_groups: self.isolated_groups.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            repeated: self.repeated.load(Ordering::Relaxed),
        }
    }

    /// Counts one group commit: its batches' outcomes and whether it had to be isolated.
    pub fn record(&self, outcomes: &[Result<CommitReceipt, StoreError>], isolated: bool) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        if isolated {
            self.isolated_groups.fetch_add(1, Ordering::Relaxed);
        }
        for outcome in outcomes {
            self.batches.fetch_add(1, Ordering::Relaxed);
            match outcome {
                Ok(receipt) => {
                    self.stored
                        .fetch_add(receipt.stored as u64, Ordering::Relaxed);
                    self.repeated
                        .fetch_add(receipt.repeated as u64, Ordering::Relaxed);
                }
                Err(_) => {
                    self.failed_batches.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
