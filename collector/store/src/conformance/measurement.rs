//! Landmarks' measurements: log leaves of their own, appended among the others, read back by
//! time in log order, and kept out of the administrative history.

use proto_evidence::LogEntry;
use proto_evidence::location::MAX_SIGNED_MEASUREMENT_BYTES;
use proto_merkle::{inclusion_proof, leaf_hash, verify_inclusion};

use super::fixture::{agent, attestation, batch, measurement};
use super::log::leaves;
use super::{Failure, Opener, ensure, ensure_eq};
use crate::{AttestationStore, LogNodes as Nodes, LogRecord, StoreError, StoredTreeHead};

type Outcome = Result<(), Failure>;

/// Landmark `n`'s encoded measurement of `host`.
fn signed(n: u8, host: &str, measured_at_ms: i64) -> Result<Vec<u8>, Failure> {
    measurement(n, host, measured_at_ms)
        .map_err(|error| Failure::new(format!("the measurement fixture: {error}")))
}

/// The record a measurement leaf must read back as: the exact entry bytes, no envelope.
fn record(log_index: u64, at_ms: i64, measurement: &[u8]) -> Result<LogRecord, Failure> {
    let entry = LogEntry::Measurement {
        received_at_ms: at_ms,
        measurement: measurement.to_vec(),
    }
    .encode()
    .map_err(|error| Failure::new(format!("leaf {log_index}: {error}")))?;
    Ok(LogRecord {
        log_index,
        at_ms,
        entry,
        envelope: None,
    })
}

/// Checks that `record`'s leaf is included in the tree of `size` leaves whose root is `root`,
/// with the audit path the store's nodes give.
fn included(
    store: &dyn AttestationStore,
    record: &LogRecord,
    size: u64,
    root: &[u8; 32],
) -> Outcome {
    let proof = inclusion_proof(&Nodes(store), record.log_index, size)?;
    verify_inclusion(
        &leaf_hash(&record.entry),
        record.log_index,
        size,
        &proof,
        root,
    )
    .map_err(|error| {
        Failure::new(format!(
            "leaf {} in the tree of {size}: {error}",
            record.log_index
        ))
    })
}

fn indexes(records: &[LogRecord]) -> Vec<u64> {
    records.iter().map(|record| record.log_index).collect()
}

pub(super) fn measurements_are_logged_leaves(store: &dyn AttestationStore) -> Outcome {
    let first = signed(1, "host-a", 1_400)?;
    let second = signed(2, "host-b", 2_900)?;
    // Received last but stamped earlier (another replica's clock): log order still rules.
    let late = signed(1, "host-a", 2_400)?;

    store.put_agent(&agent(1, "host-a"))?;
    ensure_eq!(store.append_measurement("host-a", 1_500, &first)?, 1);
    ensure_eq!(store.log_size()?, 2);
    store.commit_blocking(batch(vec![attestation(1, 1, "host-a", 2_000)]))?;
    store.put_agent(&agent(2, "host-b"))?;
    ensure_eq!(store.append_measurement("host-b", 3_000, &second)?, 4);
    ensure_eq!(store.log_size()?, 5);
    store.commit_blocking(batch(vec![attestation(1, 2, "host-a", 4_000)]))?;
    ensure_eq!(store.append_measurement("host-a", 2_500, &late)?, 6);
    ensure_eq!(store.log_size()?, 7);

    let (entries, tree) = leaves(store)?;
    let kinds: Vec<&str> = entries.iter().map(LogEntry::kind).collect();
    ensure_eq!(
        kinds,
        vec![
            "key_enrolled",
            "measurement",
            "attestation",
            "key_enrolled",
            "measurement",
            "attestation",
            "measurement",
        ]
    );
    ensure_eq!(
        entries[4],
        LogEntry::Measurement {
            received_at_ms: 3_000,
            measurement: second.clone(),
        }
    );
    let wanted = vec![
        record(1, 1_500, &first)?,
        record(4, 3_000, &second)?,
        record(6, 2_500, &late)?,
    ];
    ensure_eq!(store.log_records(1, 1)?, vec![wanted[0].clone()]);
    ensure_eq!(store.log_records(4, 1)?, vec![wanted[1].clone()]);
    ensure_eq!(store.log_records(6, 10)?, vec![wanted[2].clone()]);

    // The stored nodes make the leaves' tree; each measurement's inclusion verifies against
    // the root of the head signed over them, and of an earlier size.
    ensure_eq!(proto_merkle::root(&Nodes(store), 7)?, tree.root());
    store.put_tree_head(&StoredTreeHead {
        tree_size: 7,
        root: tree.root(),
        timestamp_ms: 5_000,
        envelope: vec![7; 80],
    })?;
    let head = store
        .tree_head(None)?
        .ok_or_else(|| Failure::new("the head just stored is missing"))?;
    for measured in &wanted {
        included(store, measured, head.tree_size, &head.root)?;
    }
    let earlier = proto_merkle::root(&Nodes(store), 5)?;
    included(store, &wanted[1], 5, &earlier)?;

    // Since an instant, in log order (not time order).
    ensure_eq!(store.measurements(i64::MIN)?, wanted);
    ensure_eq!(store.measurements(1_500)?, wanted);
    ensure_eq!(store.measurements(1_501)?, wanted[1..].to_vec());
    ensure_eq!(store.measurements(2_501)?, vec![wanted[1].clone()]);
    ensure_eq!(store.measurements(3_001)?, Vec::new());

    // The administrative history holds the enrolments only.
    ensure_eq!(indexes(&store.key_records(u64::MAX)?), vec![0, 3]);
    ensure_eq!(indexes(&store.key_records(4)?), vec![0, 3]);

    // A statement longer than a leaf holds is refused and appends nothing; the longest fits.
    let refused = store.append_measurement("host-a", 6_000, &[0; MAX_SIGNED_MEASUREMENT_BYTES + 1]);
    ensure!(
        matches!(refused, Err(StoreError::OutOfRange { .. })),
        "an oversized measurement must be refused: {refused:?}"
    );
    ensure_eq!(store.log_size()?, 7);
    let longest = vec![0xa5; MAX_SIGNED_MEASUREMENT_BYTES];
    ensure_eq!(store.append_measurement("host-b", 6_000, &longest)?, 7);
    ensure_eq!(
        store.measurements(6_000)?,
        vec![record(7, 6_000, &longest)?]
    );
    Ok(())
}

/// Measurement leaves read back the same from a store opened again on the same database, and
/// the log goes on after them.
pub(super) fn measurements_survive_reopening(open: &Opener) -> Outcome {
    let first = signed(1, "host-a", 900)?;
    let second = signed(1, "host-a", 2_900)?;

    let store = open();
    store.put_agent(&agent(1, "host-a"))?;
    ensure_eq!(store.append_measurement("host-a", 1_000, &first)?, 1);
    store.commit_blocking(batch(vec![attestation(1, 1, "host-a", 2_000)]))?;
    let measured = store.measurements(0)?;
    ensure_eq!(measured, vec![record(1, 1_000, &first)?]);
    let records = store.log_records(0, usize::MAX)?;
    let root = proto_merkle::root(&Nodes(store.as_ref()), 3)?;
    drop(store);

    let store = open();
    ensure_eq!(store.log_size()?, 3);
    ensure_eq!(store.measurements(0)?, measured);
    ensure_eq!(store.log_records(0, usize::MAX)?, records);
    ensure_eq!(proto_merkle::root(&Nodes(store.as_ref()), 3)?, root);
    ensure_eq!(indexes(&store.key_records(u64::MAX)?), vec![0]);

    ensure_eq!(store.append_measurement("host-a", 3_000, &second)?, 3);
    let (_, tree) = leaves(store.as_ref())?;
    ensure_eq!(proto_merkle::root(&Nodes(store.as_ref()), 4)?, tree.root());
    included(store.as_ref(), &measured[0], 4, &tree.root())?;
    ensure_eq!(store.measurements(1_001)?, vec![record(3, 3_000, &second)?]);
    Ok(())
}
