//! The transparency log, signed heads and the history that replays past distributions.

use proto_evidence::{LogEntry, Sha256};
use proto_merkle::{MemoryTree, leaf_hash};

use super::fixture::{agent, attestation, batch, forked, key};
use super::{Failure, ensure, ensure_eq};
use crate::{
    AttestationStore, HostChange, HostId, LogNodes as Nodes, SiteId, StoreError, StoredCosignature,
    StoredTreeHead,
};

type Outcome = Result<(), Failure>;

/// Every leaf, decoded, with the tree they make.
pub(super) fn leaves(store: &dyn AttestationStore) -> Result<(Vec<LogEntry>, MemoryTree), Failure> {
    let records = store.log_records(0, usize::MAX)?;
    let mut tree = MemoryTree::new();
    let mut entries = Vec::new();
    for (position, record) in records.iter().enumerate() {
        ensure_eq!(record.log_index, position as u64);
        let entry = LogEntry::decode(&record.entry)
            .map_err(|e| Failure::new(format!("leaf {position}: {e}")))?;
        ensure_eq!(record.at_ms, entry.at_ms());
        if let LogEntry::Attestation { envelope, .. } = &entry {
            let stored = record
                .envelope
                .as_deref()
                .ok_or_else(|| Failure::new(format!("leaf {position} has no envelope")))?;
            ensure_eq!(*envelope, Sha256::of(stored));
        } else {
            ensure!(
                record.envelope.is_none(),
                "leaf {position} is no attestation"
            );
        }
        tree.push(leaf_hash(&record.entry));
        entries.push(entry);
    }
    Ok((entries, tree))
}

pub(super) fn every_write_is_logged_in_order(store: &dyn AttestationStore) -> Outcome {
    ensure_eq!(store.log_size()?, 0);
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    store.commit_blocking(batch(vec![
        attestation(1, 1, "host-a", 10_000),
        attestation(2, 1, "host-b", 10_001),
    ]))?;
    // A repeat is not logged twice.
    store.commit_blocking(batch(vec![attestation(1, 1, "host-a", 10_000)]))?;
    ensure!(store.revoke_agent(&key(2), 11_000)?, "revocation");
    ensure!(store.decommission("host-a", 12_000)?, "decommissioning");

    ensure_eq!(store.log_size()?, 6);
    let (entries, tree) = leaves(store)?;
    let kinds: Vec<&str> = entries.iter().map(LogEntry::kind).collect();
    ensure_eq!(
        kinds,
        vec![
            "key_enrolled",
            "key_enrolled",
            "attestation",
            "attestation",
            "key_revoked",
            "host_decommissioned"
        ]
    );
    let LogEntry::KeyEnrolled {
        public_key,
        host_id,
        country,
        ..
    } = &entries[0]
    else {
        return Err(Failure::new("leaf 0 is not an enrolment"));
    };
    ensure_eq!(*public_key, agent(1, "host-a").public_key);
    ensure_eq!(host_id.as_str(), "host-a");
    ensure_eq!(country.as_str(), "DE");

    // The stored nodes give the same root and the same proofs as the leaves themselves.
    for size in 1..=6 {
        ensure_eq!(
            proto_merkle::root(&Nodes(store), size)?,
            tree_root(&tree, size)
        );
    }
    let stored = store.attestations(i64::MIN, i64::MAX, None, 10)?;
    let indexes: Vec<Option<u64>> = stored.iter().map(|a| a.log_index).collect();
    ensure_eq!(indexes, vec![Some(2), Some(3)]);
    Ok(())
}

fn tree_root(tree: &MemoryTree, size: u64) -> [u8; 32] {
    proto_merkle::root(tree, size).unwrap_or_default()
}

impl<E: std::fmt::Display> From<proto_merkle::ProofError<E>> for Failure {
    fn from(error: proto_merkle::ProofError<E>) -> Self {
        Failure::new(format!("merkle: {error}"))
    }
}

pub(super) fn failed_batches_leave_no_hole(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.commit_blocking(batch(vec![attestation(1, 1, "host-a", 1_000)]))?;
    // Unknown key: the batch fails, nothing is logged.
    let failed = store.commit_blocking(batch(vec![
        attestation(1, 2, "host-a", 2_000),
        attestation(9, 1, "host-z", 2_000),
    ]));
    ensure!(failed.is_err(), "a batch with an unknown key must fail");
    // A fork: fails too.
    let mut fork = attestation(1, 1, "host-a", 1_000);
    fork.digest = forked(fork.digest);
    ensure!(
        store.commit_blocking(batch(vec![fork])).is_err(),
        "a fork must fail"
    );
    store.commit_blocking(batch(vec![attestation(1, 2, "host-a", 3_000)]))?;
    ensure_eq!(store.log_size()?, 3);
    let (_, tree) = leaves(store)?;
    ensure_eq!(proto_merkle::root(&Nodes(store), 3)?, tree_root(&tree, 3));
    Ok(())
}

pub(super) fn concurrent_commits_keep_one_sequence(store: &dyn AttestationStore) -> Outcome {
    for n in 0..8 {
        store.put_agent(&agent(n, &format!("host-{n}")))?;
    }
    let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u8)
            .map(|n| {
                scope.spawn(move || {
                    for sequence in 1..=20 {
                        let host = format!("host-{n}");
                        let at = 1_000 * sequence as i64 + i64::from(n);
                        store.commit_blocking(batch(vec![attestation(n, sequence, &host, at)]))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(StoreError::Closed)))
            .collect()
    });
    for result in results {
        result?;
    }
    ensure_eq!(store.log_size()?, 8 + 160);
    let (_, tree) = leaves(store)?;
    ensure_eq!(proto_merkle::root(&Nodes(store), 168)?, tree.root());
    Ok(())
}

pub(super) fn tree_heads_by_size_and_time(store: &dyn AttestationStore) -> Outcome {
    let head = |size: u64, at: i64| StoredTreeHead {
        tree_size: size,
        root: [size as u8; 32],
        timestamp_ms: at,
        envelope: vec![size as u8; 80],
    };
    ensure_eq!(store.tree_head(None)?, None);
    store.put_tree_head(&head(3, 1_000))?;
    store.put_tree_head(&head(7, 2_000))?;
    store.put_tree_head(&head(9, 3_000))?;
    // The same size again keeps the first.
    store.put_tree_head(&StoredTreeHead {
        timestamp_ms: 9_999,
        ..head(7, 0)
    })?;
    ensure_eq!(store.tree_head(None)?, Some(head(9, 3_000)));
    ensure_eq!(store.tree_head(Some(7))?, Some(head(7, 2_000)));
    ensure_eq!(store.tree_head(Some(8))?, None);
    ensure_eq!(
        store.tree_heads(1_000, 3_000)?,
        vec![head(3, 1_000), head(7, 2_000)]
    );
    ensure_eq!(store.tree_head_before(2_000)?, Some(head(3, 1_000)));
    ensure_eq!(store.tree_head_before(1_000)?, None);
    Ok(())
}

/// Cosignatures are kept per checkpoint size and witness; a witness's newer one replaces its
/// older one of the same size.
pub(super) fn cosignatures_by_size_and_witness(store: &dyn AttestationStore) -> Outcome {
    let cosignature = |size: u64, witness: &str, at: i64| StoredCosignature {
        tree_size: size,
        witness: witness.into(),
        line: format!("\u{2014} {witness} AAAA{at}"),
        received_at_ms: at,
    };
    ensure_eq!(store.cosignatures(7)?, Vec::new());
    store.put_cosignature(&cosignature(7, "w2.example", 1_000))?;
    store.put_cosignature(&cosignature(7, "w1.example", 1_100))?;
    store.put_cosignature(&cosignature(9, "w1.example", 2_000))?;
    store.put_cosignature(&cosignature(7, "w2.example", 1_500))?;
    ensure_eq!(
        store.cosignatures(7)?,
        vec![
            cosignature(7, "w1.example", 1_100),
            cosignature(7, "w2.example", 1_500)
        ]
    );
    ensure_eq!(
        store.cosignatures(9)?,
        vec![cosignature(9, "w1.example", 2_000)]
    );
    ensure_eq!(store.cosignatures(u64::MAX)?, Vec::new());
    // Heads of sizes 7 and 9 are cosigned, 8 is not.
    let head = |size: u64, at: i64| StoredTreeHead {
        tree_size: size,
        root: [size as u8; 32],
        timestamp_ms: at,
        envelope: vec![size as u8; 80],
    };
    ensure_eq!(store.cosigned_head(None)?, None);
    store.put_tree_head(&head(7, 1_000))?;
    store.put_tree_head(&head(8, 2_000))?;
    store.put_tree_head(&head(9, 3_000))?;
    ensure_eq!(store.cosigned_head(None)?, Some(head(9, 3_000)));
    ensure_eq!(store.cosigned_head(Some(0))?, Some(head(7, 1_000)));
    ensure_eq!(store.cosigned_head(Some(1_001))?, Some(head(9, 3_000)));
    ensure_eq!(store.cosigned_head(Some(3_001))?, None);
    Ok(())
}

/// The history is the ledger's changes, in commit order, at the ledger's instants; links that
/// change nothing leave no entry.
pub(super) fn history_keeps_changes_only(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    store.commit_blocking(batch(vec![attestation(1, 1, "host-a", 1_000)]))?;
    // The same inventory again: the ledger reports no change.
    let mut same = batch(vec![attestation(1, 2, "host-a", 2_000)]);
    same.hosts[0].change = None;
    store.commit_blocking(same)?;
    let mut smaller = attestation(1, 3, "host-a", 3_000);
    smaller.gpus.pop();
    smaller.devices = 7;
    smaller.tpp -= 63_328;
    store.commit_blocking(batch(vec![smaller]))?;
    store.commit_blocking(batch(vec![attestation(2, 1, "host-b", 3_500)]))?;
    ensure!(store.decommission("host-b", 4_000)?, "decommissioning");

    let change =
        |at_ms: i64, host: &str, tpp: u64, devices: u32, decommissioned: bool| HostChange {
            at_ms,
            host_id: HostId(host.to_owned()),
            site_id: SiteId(format!("site-{host}")),
            country: "DE".to_owned(),
            tpp,
            devices,
            decommissioned,
            hardware_tpp: 0,
        };
    let all = store.host_changes(i64::MAX)?;
    ensure_eq!(
        all,
        vec![
            change(1_000, "host-a", 8 * 63_328, 8, false),
            change(3_000, "host-a", 7 * 63_328, 7, false),
            change(3_500, "host-b", 8 * 63_328, 8, false),
            change(4_000, "host-b", 0, 0, true),
        ]
    );
    ensure_eq!(store.host_changes(3_500)?, all[..2].to_vec());

    let latest = store.latest_attestations(3_000)?;
    let found: Vec<(String, u64)> = latest
        .iter()
        .map(|a| (a.host_id.0.clone(), a.sequence))
        .collect();
    ensure_eq!(found, vec![("host-a".to_owned(), 2)]);
    ensure!(
        latest[0].log_index.is_some(),
        "latest attestations carry their index"
    );
    ensure_eq!(
        store.last_received(4_000)?,
        vec![("host-a".to_owned(), 3_000), ("host-b".to_owned(), 3_500)]
    );
    Ok(())
}

pub(super) fn key_records_before_an_index(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.commit_blocking(batch(vec![attestation(1, 1, "host-a", 1_000)]))?;
    store.put_agent(&agent(2, "host-b"))?;
    ensure!(store.revoke_agent(&key(1), 2_000)?, "revocation");
    let all: Vec<u64> = store
        .key_records(u64::MAX)?
        .iter()
        .map(|r| r.log_index)
        .collect();
    ensure_eq!(all, vec![0, 2, 3]);
    let early: Vec<u64> = store.key_records(2)?.iter().map(|r| r.log_index).collect();
    ensure_eq!(early, vec![0]);
    ensure_eq!(store.log_records(1, 2)?.len(), 2);
    ensure_eq!(store.log_records(1, 2)?[0].log_index, 1);
    Ok(())
}
