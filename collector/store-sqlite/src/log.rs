//! The writer's side of the transparency log: appending a leaf stores its entry bytes, its
//! leaf hash and every subtree node the append completed, inside the caller's transaction.
//!
//! The frontier (the right edge of the tree) lives in memory with the writer; a transaction
//! that rolls back must put back the frontier it started from (`mark` / `reset`).

use proto_evidence::{LogEntry, Sha256};
use proto_merkle::{Frontier, NodeSource, leaf_hash};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::Db;
use crate::codec::{int, sha256};
use collector_store::{AgentRecord, KeyId, StoreError};

/// The log as the writer appends to it.
#[derive(Debug)]
pub(crate) struct Log {
    frontier: Frontier,
}

/// Reads complete subtree nodes on one connection.
struct Nodes<'a>(&'a Connection);

impl NodeSource for Nodes<'_> {
    type Error = StoreError;

    fn node(&self, level: u32, index: u64) -> Result<[u8; 32], StoreError> {
        crate::read::log_node(self.0, level, index)?
            .ok_or_else(|| StoreError::Corrupt(format!("log node ({level}, {index}) is missing")))
    }
}

impl Log {
    /// Rebuilds the frontier from the stored nodes; with `adopt` (the database was just
    /// upgraded from schema version 1) first appends what version 1 stored outside the log:
    /// enrolments, then attestations in storage order.
    pub(crate) fn open(conn: &mut Connection, adopt: bool) -> Result<Self, StoreError> {
        let size = crate::read::log_size(conn)?;
        let frontier = Frontier::restore(&Nodes(conn), size).map_err(|error| match error {
            proto_merkle::ProofError::Source(error) => error,
            other => StoreError::Corrupt(format!("the log cannot be restored: {other}")),
        })?;
        let mut log = Self { frontier };
        if adopt {
            log.adopt_unlogged(conn)?;
        }
        Ok(log)
    }

    /// Leaves in the log.
    pub(crate) fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The frontier to go back to if the transaction about to start rolls back.
    pub(crate) fn mark(&self) -> Frontier {
        self.frontier.clone()
    }

    /// Goes back to a marked frontier (the transaction that appended after it rolled back).
    pub(crate) fn reset(&mut self, mark: Frontier) {
        self.frontier = mark;
    }

    /// Appends one entry at index `size()` (`attestation`: the row id of the attestation it
    /// logs); returns that index.
    pub(crate) fn append(
        &mut self,
        conn: &Connection,
        entry: &LogEntry,
        key_id: Option<&KeyId>,
        host_id: Option<&str>,
        attestation: Option<i64>,
    ) -> Result<u64, StoreError> {
        let bytes = entry
            .encode()
            .map_err(|error| StoreError::Corrupt(format!("log entry not encodable: {error}")))?;
        let index = self.frontier.size();
        conn.prepare_cached(
            "INSERT INTO log_entries (log_index, at_ms, kind, key_id, host_id, attestation_id,
                 entry)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .db()?
        .execute(params![
            int("log_index", index)?,
            entry.at_ms(),
            entry.kind(),
            key_id.map(|key| key.0.as_bytes()),
            host_id,
            attestation,
            bytes
        ])
        .db()?;
        let mut insert = conn
            .prepare_cached("INSERT INTO log_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
            .db()?;
        // Leaves (level 0) are not stored twice: their hash is the entry's.
        for (level, node, hash) in self.frontier.push(leaf_hash(&bytes)) {
            if level == 0 {
                continue;
            }
            insert
                .execute(params![level, int("log node", node)?, hash])
                .db()?;
        }
        Ok(index)
    }

    /// The entry of an enrolment.
    pub(crate) fn enrolment(agent: &AgentRecord) -> LogEntry {
        LogEntry::KeyEnrolled {
            at_ms: agent.enrolled_at_ms,
            public_key: agent.public_key,
            host_id: agent.host_id.0.clone(),
            site_id: agent.site_id.0.clone(),
            country: agent.country.clone(),
        }
    }

    /// The entry of a re-binding.
    pub(crate) fn rebinding(agent: &AgentRecord) -> LogEntry {
        LogEntry::HostRebound {
            at_ms: agent.enrolled_at_ms,
            public_key: agent.public_key,
            host_id: agent.host_id.0.clone(),
            site_id: agent.site_id.0.clone(),
            country: agent.country.clone(),
        }
    }

    /// The entry of a stored attestation.
    pub(crate) fn attestation(received_at_ms: i64, envelope: &[u8]) -> LogEntry {
        LogEntry::Attestation {
            received_at_ms,
            envelope: Sha256::of(envelope),
        }
    }

    /// The entry of a revocation.
    pub(crate) fn revocation(key_id: &KeyId, at_ms: i64) -> LogEntry {
        LogEntry::KeyRevoked {
            at_ms,
            key_id: *key_id,
        }
    }

    fn adopt_unlogged(&mut self, conn: &mut Connection) -> Result<(), StoreError> {
        let mark = self.mark();
        let result = self.adopt_unlogged_in_tx(conn);
        if result.is_err() {
            self.reset(mark);
        }
        result
    }

    fn adopt_unlogged_in_tx(&mut self, conn: &mut Connection) -> Result<(), StoreError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let unlogged_agents = tx
            .prepare(
                "SELECT key_id FROM agents a WHERE NOT EXISTS (
                     SELECT 1 FROM log_entries e WHERE e.kind = 'key_enrolled' AND e.key_id = a.key_id)
                 ORDER BY enrolled_at_ms, key_id",
            )
            .db()?
            .query_map([], |row| row.get::<_, Vec<u8>>(0))
            .db()?
            .collect::<Result<Vec<_>, _>>()
            .db()?;
        for key_id in unlogged_agents {
            let key_id = KeyId(sha256(&key_id, "key_id")?);
            if let Some(agent) = crate::read::agent(&tx, &key_id)? {
                self.append(
                    &tx,
                    &Self::enrolment(&agent),
                    Some(&key_id),
                    Some(&agent.host_id.0),
                    None,
                )?;
            }
        }
        // Row ids first (one scan), then each row: the envelopes are not all held at once.
        let unlogged: Vec<i64> = tx
            .prepare("SELECT id FROM attestations WHERE log_index IS NULL ORDER BY id")
            .db()?
            .query_map([], |row| row.get(0))
            .db()?
            .collect::<Result<Vec<_>, _>>()
            .db()?;
        for id in unlogged {
            let (received_at_ms, envelope): (i64, Vec<u8>) = tx
                .prepare_cached("SELECT received_at_ms, envelope FROM attestations WHERE id = ?1")
                .db()?
                .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
                .db()?;
            let entry = Self::attestation(received_at_ms, &envelope);
            let index = self.append(&tx, &entry, None, None, Some(id))?;
            tx.prepare_cached("UPDATE attestations SET log_index = ?2 WHERE id = ?1")
                .db()?
                .execute(params![id, int("log_index", index)?])
                .db()?;
        }
        tx.commit().db()
    }
}
