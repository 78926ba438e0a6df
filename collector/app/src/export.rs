//! Evidence export: everything an offline verifier needs for a range of receipt times, made in
//! an order a client can write as it arrives (summary, heads, consistency proof, files, then
//! leaves with their inclusion proofs in the end head).

use collector_store::{LogRecord, StoreError, StoredTreeHead};
use proto_merkle::Hash;

use crate::ingest::Collector;
use crate::log::{LogError, LogKeeper};

/// Leaves read from the store per page while exporting.
pub const PAGE: usize = 2_000;

/// One item of an export, in the order they are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// What the export holds: the range's heads and the leaves that follow.
    Summary {
        /// The tree size of the head before the range; 0 when there is none.
        start_tree_size: u64,
        /// The tree size of the head that covers the range.
        end_tree_size: u64,
        /// Leaves exported: every leaf from the log's first, so that an auditor replays the
        /// books with the collector's own ledger and gets exactly its state at the range's
        /// start (GPU ownership and chains included), not an approximation of it.
        leaves: u64,
    },
    /// A signed tree head: the start head (when there is one), then the end head.
    TreeHead(StoredTreeHead),
    /// The proof that the end head extends the start head.
    Consistency {
        /// The start head's size.
        first_tree_size: u64,
        /// The end head's size.
        second_tree_size: u64,
        /// The proof.
        proof: Vec<Hash>,
    },
    /// A file the verifier reads: policy, catalogue, checkpoint, landmarks, sites.
    File {
        /// Its name in the bundle.
        name: &'static str,
        /// Its text.
        content: String,
    },
    /// A leaf with its inclusion proof in the end head.
    Leaf {
        /// The leaf's record.
        record: LogRecord,
        /// The end head's size.
        tree_size: u64,
        /// The inclusion proof.
        audit_path: Vec<Hash>,
    },
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError<E> {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The log failed.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// A leaf below the end head is not stored.
    #[error("leaf {0} is missing")]
    Missing(u64),
    /// The sink refused an item (the client went away, or the item does not convert).
    #[error("{0}")]
    Sink(E),
}

/// Runs one export of the receipt times `from_ms` to `to_ms`, handing each item to `sink` as it
/// is made; an item the sink refuses stops the export.
pub fn run<E>(
    collector: &Collector,
    log: &LogKeeper,
    from_ms: i64,
    to_ms: i64,
    mut sink: impl FnMut(Item) -> Result<(), E>,
) -> Result<(), ExportError<E>> {
    let mut send = |item| sink(item).map_err(ExportError::Sink);
    let store = collector.store.as_ref();
    let start = store.tree_head_before(from_ms)?;
    let end = log.head_covering(to_ms, true)?;
    let start_size = start.as_ref().map_or(0, |h| h.tree_size);
    let end_size = end.tree_size;

    send(Item::Summary {
        start_tree_size: start_size,
        end_tree_size: end_size,
        leaves: end_size,
    })?;
    if let Some(start) = start {
        send(Item::TreeHead(start))?;
    }
    send(Item::TreeHead(end.clone()))?;
    if start_size > 0 {
        let proof = log.consistency(start_size, end_size)?;
        send(Item::Consistency {
            first_tree_size: start_size,
            second_tree_size: end_size,
            proof,
        })?;
    }
    // The end head as a checkpoint, with the cosignatures witnesses gave it so far.
    let checkpoint = log.checkpoint(&end)?.to_string();
    let landmarks = collector.landmarks().to_toml();
    let sites = collector.rules.sites.to_toml();
    for (name, content) in [
        ("policy.toml", &collector.rules.policy_toml),
        ("catalogue.toml", &collector.rules.catalogue_toml),
        ("checkpoint.txt", &checkpoint),
        ("landmarks.toml", &landmarks),
        ("sites.toml", &sites),
    ] {
        send(Item::File {
            name,
            content: content.clone(),
        })?;
    }

    let mut next = 0;
    while next < end_size {
        let page = store.log_records(next, PAGE)?;
        if page.is_empty() {
            return Err(ExportError::Missing(next));
        }
        for record in page {
            if record.log_index >= end_size {
                return Ok(());
            }
            next = record.log_index + 1;
            let audit_path = log.inclusion(record.log_index, end_size)?;
            send(Item::Leaf {
                record,
                tree_size: end_size,
                audit_path,
            })?;
        }
    }
    Ok(())
}
