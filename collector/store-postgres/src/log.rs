//! The transparency log as transactions append to it: the leaves and completed subtree nodes
//! one transaction adds (`Append`), their columns for the multi-row inserts, and rebuilding the
//! frontier from stored nodes when another replica appended since this one last did.

use std::collections::HashMap;

use collector_store::{AgentRecord, KeyId, StoreError};
use proto_evidence::{LogEntry, Sha256};
use proto_merkle::{Frontier, NodeSource, leaf_hash};
use tokio_postgres::types::ToSql;

use crate::codec::{get, get_32, int, param};
use crate::pool::Conn;

/// Takes the log's lock until the transaction ends. Every appending transaction takes it before
/// it reads the log's size, so appends from every replica form one sequence.
pub(crate) const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
pub(crate) const SIZE: &str = "SELECT size FROM log_state";
const SET_SIZE: &str = "UPDATE log_state SET size = $1";
const INSERT_ENTRIES: &str = "INSERT INTO log_entries (log_index, at_ms, kind, key_id, host_id, entry)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bytea[], $5::text[], $6::bytea[])";
const INSERT_NODES: &str = "INSERT INTO log_nodes (level, idx, hash)
     SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[])";
const NODES_AT: &str = "SELECT n.level, n.idx, n.hash FROM log_nodes n
     JOIN unnest($1::integer[], $2::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx";

/// A log entry, encoded: what a transaction appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leaf {
    at_ms: i64,
    kind: &'static str,
    bytes: Vec<u8>,
}

impl Leaf {
    pub(crate) fn new(entry: &LogEntry) -> Result<Self, StoreError> {
        let bytes = entry
            .encode()
            .map_err(|error| StoreError::Corrupt(format!("log entry not encodable: {error}")))?;
        Ok(Self {
            at_ms: entry.at_ms(),
            kind: entry.kind(),
            bytes,
        })
    }

    /// The leaf of a stored attestation.
    pub(crate) fn attestation(received_at_ms: i64, envelope: &[u8]) -> Result<Self, StoreError> {
        Self::new(&LogEntry::Attestation {
            received_at_ms,
            envelope: Sha256::of(envelope),
        })
    }

    /// The leaf of an enrolment.
    pub(crate) fn enrolment(agent: &AgentRecord) -> Result<Self, StoreError> {
        Self::new(&LogEntry::KeyEnrolled {
            at_ms: agent.enrolled_at_ms,
            public_key: agent.public_key,
            host_id: agent.host_id.0.clone(),
            site_id: agent.site_id.0.clone(),
            country: agent.country.clone(),
        })
    }

    /// The leaf of a re-binding: the host bound to the agent's key, at its site.
    pub(crate) fn rebinding(agent: &AgentRecord) -> Result<Self, StoreError> {
        Self::new(&LogEntry::HostRebound {
            at_ms: agent.enrolled_at_ms,
            public_key: agent.public_key,
            host_id: agent.host_id.0.clone(),
            site_id: agent.site_id.0.clone(),
            country: agent.country.clone(),
        })
    }

    /// The leaf of a revocation.
    pub(crate) fn revocation(key_id: &KeyId, at_ms: i64) -> Result<Self, StoreError> {
        Self::new(&LogEntry::KeyRevoked {
            at_ms,
            key_id: *key_id,
        })
    }
}

/// One stored leaf row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    index: u64,
    leaf: Leaf,
    key_id: Option<KeyId>,
    host_id: Option<String>,
}

/// What one transaction appends to the log, starting from the frontier it read.
#[derive(Debug, Clone)]
pub(crate) struct Append {
    frontier: Frontier,
    entries: Vec<Entry>,
    nodes: Vec<(u32, u64, [u8; 32])>,
}

impl Append {
    pub(crate) fn new(frontier: Frontier) -> Self {
        Self {
            frontier,
            entries: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// Appends a leaf; returns its index.
    pub(crate) fn push(
        &mut self,
        leaf: Leaf,
        key_id: Option<&KeyId>,
        host_id: Option<&str>,
    ) -> u64 {
        let index = self.frontier.size();
        self.nodes
            .extend(self.frontier.push(leaf_hash(&leaf.bytes)));
        self.entries.push(Entry {
            index,
            leaf,
            key_id: key_id.copied(),
            host_id: host_id.map(str::to_owned),
        });
        index
    }

    /// The frontier after this transaction's leaves: what the writer keeps once it committed.
    pub(crate) fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The statements that store the leaves, the nodes and the new size, with their
    /// parameters; empty when nothing was appended.
    pub(crate) fn columns(&self) -> Result<Columns<'_>, StoreError> {
        let mut columns = Columns {
            index: Vec::with_capacity(self.entries.len()),
            at_ms: Vec::with_capacity(self.entries.len()),
            kind: Vec::with_capacity(self.entries.len()),
            key_id: Vec::with_capacity(self.entries.len()),
            host_id: Vec::with_capacity(self.entries.len()),
            entry: Vec::with_capacity(self.entries.len()),
            level: Vec::with_capacity(self.nodes.len()),
            idx: Vec::with_capacity(self.nodes.len()),
            hash: Vec::with_capacity(self.nodes.len()),
            size: int("log size", self.frontier.size())?,
            empty: self.entries.is_empty(),
        };
        for entry in &self.entries {
            columns.index.push(int("log_index", entry.index)?);
            columns.at_ms.push(entry.leaf.at_ms);
            columns.kind.push(entry.leaf.kind);
            columns
                .key_id
                .push(entry.key_id.as_ref().map(|key| &key.0.as_bytes()[..]));
            columns.host_id.push(entry.host_id.as_deref());
            columns.entry.push(&entry.leaf.bytes);
        }
        for (level, idx, hash) in &self.nodes {
            columns
                .level
                .push(i32::try_from(*level).map_err(|_| StoreError::OutOfRange {
                    field: "log node level",
                    value: u64::from(*level),
                })?);
            columns.idx.push(int("log node", *idx)?);
            columns.hash.push(&hash[..]);
        }
        Ok(columns)
    }
}

/// An `Append` as statement parameters.
#[derive(Debug)]
pub(crate) struct Columns<'a> {
    index: Vec<i64>,
    at_ms: Vec<i64>,
    kind: Vec<&'static str>,
    key_id: Vec<Option<&'a [u8]>>,
    host_id: Vec<Option<&'a str>>,
    entry: Vec<&'a [u8]>,
    level: Vec<i32>,
    idx: Vec<i64>,
    hash: Vec<&'a [u8]>,
    size: i64,
    empty: bool,
}

impl Columns<'_> {
    /// (SQL, parameters) of each statement to run, in order.
    pub(crate) fn statements(&self) -> Vec<(&'static str, Vec<&(dyn ToSql + Sync)>)> {
        if self.empty {
            return Vec::new();
        }
        vec![
            (
                INSERT_ENTRIES,
                vec![
                    param(&self.index),
                    param(&self.at_ms),
                    param(&self.kind),
                    param(&self.key_id),
                    param(&self.host_id),
                    param(&self.entry),
                ],
            ),
            (
                INSERT_NODES,
                vec![param(&self.level), param(&self.idx), param(&self.hash)],
            ),
            (SET_SIZE, vec![param(&self.size)]),
        ]
    }
}

/// The complete subtrees that make up a tree of `size` leaves, largest first: one per set bit,
/// which is what `Frontier::restore` asks for.
fn frontier_nodes(size: u64) -> Vec<(u32, u64)> {
    let mut nodes = Vec::with_capacity(size.count_ones() as usize);
    let mut offset = 0u64;
    for level in (0..u64::BITS).rev() {
        if size >> level & 1 == 1 {
            nodes.push((level, offset >> level));
            offset += 1 << level;
        }
    }
    nodes
}

/// Nodes fetched ahead, served to `Frontier::restore`.
struct Fetched(HashMap<(u32, u64), [u8; 32]>);

impl NodeSource for Fetched {
    type Error = StoreError;

    fn node(&self, level: u32, index: u64) -> Result<[u8; 32], StoreError> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or_else(|| StoreError::Corrupt(format!("log node ({level}, {index}) is missing")))
    }
}

/// The frontier of the stored log of `size` leaves, read with one query.
pub(crate) async fn restore(conn: &mut Conn, size: u64) -> Result<Frontier, StoreError> {
    let wanted = frontier_nodes(size);
    let levels: Vec<i32> = wanted.iter().map(|&(level, _)| level as i32).collect();
    let indexes = wanted
        .iter()
        .map(|&(_, index)| int("log node", index))
        .collect::<Result<Vec<i64>, _>>()?;
    let rows = conn.query(NODES_AT, &[&levels, &indexes]).await?;
    let mut fetched = HashMap::with_capacity(rows.len());
    for row in &rows {
        let level: i32 = get(row, 0)?;
        let index: i64 = get(row, 1)?;
        let (Ok(level), Ok(index)) = (u32::try_from(level), u64::try_from(index)) else {
            return Err(StoreError::Corrupt(format!(
                "log node ({level}, {index}) is out of range"
            )));
        };
        fetched.insert((level, index), get_32(row, 2, "log node hash")?);
    }
    Frontier::restore(&Fetched(fetched), size).map_err(|error| match error {
        proto_merkle::ProofError::Source(error) => error,
        other => StoreError::Corrupt(format!("the log cannot be restored: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use proto_merkle::MemoryTree;

    use super::*;

    #[test]
    fn the_fetched_nodes_are_exactly_what_restore_reads() {
        for size in [0u64, 1, 2, 3, 5, 8, 13, 64, 100, 1023] {
            let leaves: Vec<[u8; 32]> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let mut frontier = Frontier::new();
            let mut stored = HashMap::new();
            for leaf in &leaves {
                for (level, index, hash) in frontier.push(*leaf) {
                    stored.insert((level, index), hash);
                }
            }
            let fetched: HashMap<_, _> = frontier_nodes(size)
                .into_iter()
                .map(|node| (node, stored[&node]))
                .collect();
            let restored = Frontier::restore(&Fetched(fetched), size).unwrap();
            assert_eq!(restored, frontier, "size {size}");
            assert_eq!(restored.root(), MemoryTree::from_leaves(leaves).root());
        }
        assert_eq!(frontier_nodes(u64::MAX).len(), 64);
    }

    #[test]
    fn appends_continue_the_frontier_and_list_every_node() {
        let mut append = Append::new(Frontier::new());
        let leaf = |n: i64| Leaf::attestation(n, &n.to_be_bytes()).unwrap();
        assert_eq!(append.push(leaf(1), None, None), 0);
        assert_eq!(
            append.push(
                leaf(2),
                Some(&KeyId(Sha256::from_bytes([7; 32]))),
                Some("host-a")
            ),
            1
        );
        assert_eq!(append.push(leaf(3), None, None), 2);
        // Leaves 0, 1, 2 and the node over 0..2.
        assert_eq!(append.nodes.len(), 4);
        let columns = append.columns().unwrap();
        assert_eq!(columns.index, vec![0, 1, 2]);
        assert_eq!(columns.size, 3);
        assert_eq!(columns.level, vec![0, 0, 1, 0]);
        assert_eq!(columns.statements().len(), 3);
        assert!(
            Append::new(Frontier::new())
                .columns()
                .unwrap()
                .statements()
                .is_empty()
        );
    }
}
