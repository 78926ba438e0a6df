//! Reads, on connections of their own: WAL mode lets them run while the writer commits, and
//! each statement sees every transaction committed before it started.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row, Statement, params};

use crate::Db;
use crate::codec::{decode_gpus, digest_at, key_id_at, key_id_opt_at, uint};
use collector_store::integer;
use collector_store::{
    AcceptedAttestation, AgentRecord, ChainDigest, Cursor, EnrollToken, Event, Gpu, HostChange,
    HostId, HostState, KeyId, LogRecord, Rejection, SiteId, StoreError, StoredCosignature,
    StoredHead, StoredTreeHead,
};

/// A few idle read connections, reused; more are opened while reads overlap.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    keep: usize,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path, busy_timeout: Duration, keep: usize) -> Self {
        Self {
            path: path.to_path_buf(),
            busy_timeout,
            keep,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection (or a new one), then keeps the connection for reuse.
    pub(crate) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A poisoned pool only means a reader panicked while holding the lock; the connections
        // in it are still whole.
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> Result<Connection, StoreError> {
        // Not CREATE: the writer made the file, and a reader must never make an empty one.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags).db()?;
        conn.busy_timeout(self.busy_timeout).db()?;
        // Writes belong to the writer thread alone.
        conn.pragma_update(None, "query_only", true).db()?;
        Ok(conn)
    }
}

const ATTESTATION_COLUMNS: &str = "a.key_id, a.sequence, a.digest, a.previous_digest, a.host_id,
    a.site_id, a.country, a.issued_at_ms, a.received_at_ms, a.tpp, a.devices, a.simulated,
    a.gap_before, a.fresh, a.envelope, i.gpus, a.log_index";

const AGENT_COLUMNS: &str =
    "key_id, public_key, host_id, site_id, identity, enrolled_at_ms, revoked_at_ms, country";

pub(crate) fn agents(conn: &Connection) -> Result<Vec<AgentRecord>, StoreError> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY key_id");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    collect(&mut stmt, [], agent_row)
}

pub(crate) fn agent(conn: &Connection, key_id: &KeyId) -> Result<Option<AgentRecord>, StoreError> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE key_id = ?1");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let found = collect(&mut stmt, [key_id.0.as_bytes()], agent_row)?;
    Ok(found.into_iter().next())
}

pub(crate) fn chain_heads(conn: &Connection) -> Result<Vec<StoredHead>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.key_id, c.sequence, c.digest,
                    (SELECT a.issued_at_ms FROM attestations a
                     WHERE a.key_id = c.key_id AND a.sequence = c.sequence)
             FROM chain_heads c ORDER BY c.key_id",
        )
        .db()?;
    collect(&mut stmt, [], |row| {
        Ok(StoredHead {
            key_id: key_id_at(row, 0, "key_id")?,
            sequence: u64_at(row, 1, "sequence")?,
            digest: digest_at(row, 2, "digest")?,
            issued_at_ms: row.get(3).db()?,
        })
    })
}

pub(crate) fn chain_head(
    conn: &Connection,
    key_id: &KeyId,
) -> Result<Option<(u64, ChainDigest)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT sequence, digest FROM chain_heads WHERE key_id = ?1")
        .db()?;
    let found = collect(&mut stmt, [key_id.0.as_bytes()], |row| {
        Ok((u64_at(row, 0, "sequence")?, digest_at(row, 1, "digest")?))
    })?;
    Ok(found.into_iter().next())
}

pub(crate) fn token(
    conn: &Connection,
    token_hash: &[u8; 32],
) -> Result<Option<EnrollToken>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT token_hash, site_id, created_at_ms, expires_at_ms, used_at_ms, rebind_host
             FROM enroll_tokens WHERE token_hash = ?1",
        )
        .db()?;
    let found = collect(&mut stmt, [token_hash], |row| {
        Ok(EnrollToken {
            token_hash: row.get(0).db()?,
            site_id: SiteId(row.get(1).db()?),
            created_at_ms: row.get(2).db()?,
            expires_at_ms: row.get(3).db()?,
            used_at_ms: row.get(4).db()?,
            rebind_host: row.get::<_, Option<String>>(5).db()?.map(HostId),
        })
    })?;
    Ok(found.into_iter().next())
}

pub(crate) fn host_states(conn: &Connection) -> Result<Vec<HostState>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT host_id, site_id, country, key_id, last_sequence, last_digest,
                    last_issued_at_ms, last_received_at_ms, tpp, devices, decommissioned_at_ms
             FROM host_state ORDER BY host_id",
        )
        .db()?;
    collect(&mut stmt, [], |row| {
        Ok(HostState {
            host_id: HostId(row.get(0).db()?),
            site_id: SiteId(row.get(1).db()?),
            country: row.get(2).db()?,
            key_id: key_id_at(row, 3, "key_id")?,
            last_sequence: u64_at(row, 4, "last_sequence")?,
            last_digest: digest_at(row, 5, "last_digest")?,
            last_issued_at_ms: row.get(6).db()?,
            last_received_at_ms: row.get(7).db()?,
            tpp: u64_at(row, 8, "tpp")?,
            devices: row.get(9).db()?,
            decommissioned_at_ms: row.get(10).db()?,
        })
    })
}

pub(crate) fn stored_digest(
    conn: &Connection,
    key_id: &KeyId,
    sequence: u64,
) -> Result<Option<ChainDigest>, StoreError> {
    // Nothing above i64::MAX can have been stored.
    let Ok(sequence) = i64::try_from(sequence) else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached("SELECT digest FROM attestations WHERE key_id = ?1 AND sequence = ?2")
        .db()?;
    let found = collect(&mut stmt, params![key_id.0.as_bytes(), sequence], |row| {
        digest_at(row, 0, "digest")
    })?;
    Ok(found.into_iter().next())
}

pub(crate) fn attestations(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<AcceptedAttestation>, StoreError> {
    let limit = integer::limit(limit);
    let Some((at_ms, key_id, sequence)) = after.map(integer::cursor) else {
        let sql = format!(
            "SELECT {ATTESTATION_COLUMNS}
             FROM attestations a JOIN inventories i ON i.id = a.inventory_id
             WHERE a.received_at_ms >= ?1 AND a.received_at_ms < ?2
             ORDER BY a.received_at_ms, a.key_id, a.sequence LIMIT ?3"
        );
        let mut stmt = conn.prepare_cached(&sql).db()?;
        return collect(&mut stmt, params![from_ms, to_ms, limit], attestation_row);
    };
    // The row-value comparison walks the (received_at_ms, key_id, sequence) index from the
    // cursor on, so a page costs its own size whatever the page number.
    let sql = format!(
        "SELECT {ATTESTATION_COLUMNS}
         FROM attestations a JOIN inventories i ON i.id = a.inventory_id
         WHERE a.received_at_ms >= ?1 AND a.received_at_ms < ?2
           AND (a.received_at_ms, a.key_id, a.sequence) > (?3, ?4, ?5)
         ORDER BY a.received_at_ms, a.key_id, a.sequence LIMIT ?6"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    collect(
        &mut stmt,
        params![from_ms, to_ms, at_ms, key_id.0.as_bytes(), sequence, limit],
        attestation_row,
    )
}

pub(crate) fn host_history(
    conn: &Connection,
    host_id: &str,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<AcceptedAttestation>, StoreError> {
    let sql = format!(
        "SELECT {ATTESTATION_COLUMNS}
         FROM attestations a JOIN inventories i ON i.id = a.inventory_id
         WHERE a.host_id = ?1 AND a.received_at_ms >= ?2 AND a.received_at_ms < ?3
         ORDER BY a.received_at_ms, a.key_id, a.sequence LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    collect(
        &mut stmt,
        params![host_id, from_ms, to_ms, integer::limit(limit)],
        attestation_row,
    )
}

pub(crate) fn host_gpus(conn: &Connection) -> Result<Vec<(String, Gpu)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT host_id, uuid, serial, catalogue_id, tpp, counted, hardware, hardware_at_ms
             FROM gpus ORDER BY host_id, position",
        )
        .db()?;
    collect(&mut stmt, [], |row| {
        Ok((
            row.get(0).db()?,
            Gpu {
                uuid: row.get(1).db()?,
                serial: row.get(2).db()?,
                catalogue_id: row.get(3).db()?,
                tpp: u64_at(row, 4, "gpu tpp")?,
                counted: row.get(5).db()?,
                hardware: row.get(6).db()?,
                hardware_at_ms: row.get(7).db()?,
            },
        ))
    })
}

pub(crate) fn rejections(conn: &Connection, limit: usize) -> Result<Vec<Rejection>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at_ms, reason, key_id, host_id, sequence, peer, detail, count
             FROM rejections ORDER BY at_ms DESC, id DESC LIMIT ?1",
        )
        .db()?;
    collect(&mut stmt, [integer::limit(limit)], |row| {
        Ok(Rejection {
            at_ms: row.get(0).db()?,
            reason: row.get(1).db()?,
            key_id: key_id_opt_at(row, 2, "key_id")?,
            host_id: row.get::<_, Option<String>>(3).db()?.map(HostId),
            sequence: row
                .get::<_, Option<i64>>(4)
                .db()?
                .map(|s| uint("rejection sequence", s))
                .transpose()?,
            peer: row.get(5).db()?,
            detail: row.get(6).db()?,
            count: u64_at(row, 7, "rejection count")?,
        })
    })
}

pub(crate) fn rejection_counts(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT reason, count FROM rejection_counts ORDER BY reason")
        .db()?;
    collect(&mut stmt, [], |row| {
        Ok((row.get(0).db()?, u64_at(row, 1, "count")?))
    })
}

pub(crate) fn events(
    conn: &Connection,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at_ms, kind, host_id, key_id, detail, value
             FROM events WHERE at_ms >= ?1 ORDER BY at_ms, id LIMIT ?2",
        )
        .db()?;
    collect(&mut stmt, params![since_ms, integer::limit(limit)], |row| {
        Ok(Event {
            at_ms: row.get(0).db()?,
            kind: row.get(1).db()?,
            host_id: row.get::<_, Option<String>>(2).db()?.map(HostId),
            key_id: key_id_opt_at(row, 3, "key_id")?,
            detail: row.get(4).db()?,
            value: row.get(5).db()?,
        })
    })
}

/// The main database file's pages (the WAL is folded into it at checkpoints and kept below
/// `journal_size_limit`).
pub(crate) fn size_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .db()?;
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .db()?;
    Ok(uint("page_count", pages)?.saturating_mul(uint("page_size", page_size)?))
}

pub(crate) fn log_size(conn: &Connection) -> Result<u64, StoreError> {
    let next: i64 = conn
        .prepare_cached("SELECT coalesce(max(log_index) + 1, 0) FROM log_entries")
        .db()?
        .query_row([], |row| row.get(0))
        .db()?;
    uint("log size", next)
}

pub(crate) fn log_node(
    conn: &Connection,
    level: u32,
    index: u64,
) -> Result<Option<[u8; 32]>, StoreError> {
    // Nothing above i64::MAX can have been stored.
    let Ok(index) = i64::try_from(index) else {
        return Ok(None);
    };
    if level == 0 {
        // A leaf's hash is its entry's, which is not stored twice.
        let entry: Option<Vec<u8>> = conn
            .prepare_cached("SELECT entry FROM log_entries WHERE log_index = ?1")
            .db()?
            .query_row([index], |row| row.get(0))
            .optional()
            .db()?;
        return Ok(entry.map(|entry| proto_merkle::leaf_hash(&entry)));
    }
    conn.prepare_cached("SELECT hash FROM log_nodes WHERE level = ?1 AND idx = ?2")
        .db()?
        .query_row(params![level, index], |row| row.get(0))
        .optional()
        .db()
}

const LOG_COLUMNS: &str = "e.log_index, e.at_ms, e.entry, a.envelope";

pub(crate) fn log_records(
    conn: &Connection,
    from_index: u64,
    limit: usize,
) -> Result<Vec<LogRecord>, StoreError> {
    let from_index = integer::bound(from_index);
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM log_entries e
         LEFT JOIN attestations a ON a.id = e.attestation_id
         WHERE e.log_index >= ?1 ORDER BY e.log_index LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    collect(
        &mut stmt,
        params![from_index, integer::limit(limit)],
        log_row,
    )
}

pub(crate) fn key_records(
    conn: &Connection,
    before_index: u64,
) -> Result<Vec<LogRecord>, StoreError> {
    let before_index = integer::bound(before_index);
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM log_entries e
         LEFT JOIN attestations a ON a.id = e.attestation_id
         WHERE e.kind <> 'attestation' AND e.kind <> 'measurement' AND e.log_index < ?1
         ORDER BY e.log_index"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    collect(&mut stmt, [before_index], log_row)
}

/// The measurement leaves since an instant, read through `log_entries_measurements` (which
/// holds those leaves alone, by time), never a scan of the log. Named: without statistics the
/// planner would rather scan the whole log in index order than sort a few rows.
pub(crate) const MEASUREMENTS: &str = "SELECT e.log_index, e.at_ms, e.entry, NULL
     FROM log_entries AS e INDEXED BY log_entries_measurements
     WHERE e.kind = 'measurement' AND e.at_ms >= ?1
     ORDER BY e.log_index";

pub(crate) fn measurements(conn: &Connection, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(MEASUREMENTS).db()?;
    collect(&mut stmt, [since_ms], log_row)
}

pub(crate) fn latest_attestations(
    conn: &Connection,
    before_ms: i64,
) -> Result<Vec<AcceptedAttestation>, StoreError> {
    // One index seek per host (attestations_by_host), never a scan of the history.
    let sql = format!(
        "SELECT {ATTESTATION_COLUMNS}
         FROM host_state h
         JOIN attestations a ON a.id = (
             SELECT b.id FROM attestations b
             WHERE b.host_id = h.host_id AND b.received_at_ms < ?1
             ORDER BY b.received_at_ms DESC, b.key_id DESC, b.sequence DESC LIMIT 1)
         JOIN inventories i ON i.id = a.inventory_id
         ORDER BY h.host_id"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    collect(&mut stmt, [before_ms], attestation_row)
}

const HEAD_COLUMNS: &str = "tree_size, root, timestamp_ms, envelope";

pub(crate) fn tree_head(
    conn: &Connection,
    tree_size: Option<u64>,
) -> Result<Option<StoredTreeHead>, StoreError> {
    let found = match tree_size {
        Some(size) => {
            let Ok(size) = i64::try_from(size) else {
                return Ok(None);
            };
            let sql = format!("SELECT {HEAD_COLUMNS} FROM tree_heads WHERE tree_size = ?1");
            collect(&mut *conn.prepare_cached(&sql).db()?, [size], head_row)?
        }
        None => {
            let sql =
                format!("SELECT {HEAD_COLUMNS} FROM tree_heads ORDER BY tree_size DESC LIMIT 1");
            collect(&mut *conn.prepare_cached(&sql).db()?, [], head_row)?
        }
    };
    Ok(found.into_iter().next())
}

pub(crate) fn tree_heads(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<StoredTreeHead>, StoreError> {
    let sql = format!(
        "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2
         ORDER BY timestamp_ms, tree_size"
    );
    collect(
        &mut *conn.prepare_cached(&sql).db()?,
        [from_ms, to_ms],
        head_row,
    )
}

pub(crate) fn tree_head_before(
    conn: &Connection,
    before_ms: i64,
) -> Result<Option<StoredTreeHead>, StoreError> {
    let sql = format!(
        "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE timestamp_ms < ?1
         ORDER BY timestamp_ms DESC, tree_size DESC LIMIT 1"
    );
    let found = collect(&mut *conn.prepare_cached(&sql).db()?, [before_ms], head_row)?;
    Ok(found.into_iter().next())
}

pub(crate) fn host_changes(conn: &Connection, to_ms: i64) -> Result<Vec<HostChange>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at_ms, host_id, site_id, country, tpp, devices, kind, hardware_tpp
             FROM host_changes WHERE at_ms < ?1 ORDER BY at_ms, id",
        )
        .db()?;
    collect(&mut stmt, [to_ms], |row| {
        let kind: String = row.get(6).db()?;
        Ok(HostChange {
            at_ms: row.get(0).db()?,
            host_id: HostId(row.get(1).db()?),
            site_id: SiteId(row.get(2).db()?),
            country: row.get(3).db()?,
            tpp: u64_at(row, 4, "tpp")?,
            devices: row.get(5).db()?,
            decommissioned: kind != "attested",
            hardware_tpp: u64_at(row, 7, "hardware tpp")?,
        })
    })
}

pub(crate) fn last_received(
    conn: &Connection,
    before_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT h.host_id, (SELECT max(a.received_at_ms) FROM attestations a
                                WHERE a.host_id = h.host_id AND a.received_at_ms < ?1)
             FROM host_state h ORDER BY h.host_id",
        )
        .db()?;
    let rows = collect(&mut stmt, [before_ms], |row| {
        Ok((
            row.get::<_, String>(0).db()?,
            row.get::<_, Option<i64>>(1).db()?,
        ))
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(host, at)| at.map(|at| (host, at)))
        .collect())
}

pub(crate) fn rejections_by_reason(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT reason, sum(count) FROM rejections WHERE at_ms >= ?1 AND at_ms < ?2
             GROUP BY reason ORDER BY reason",
        )
        .db()?;
    collect(&mut stmt, [from_ms, to_ms], |row| {
        Ok((row.get(0).db()?, u64_at(row, 1, "count")?))
    })
}

fn log_row(row: &Row<'_>) -> Result<LogRecord, StoreError> {
    Ok(LogRecord {
        log_index: u64_at(row, 0, "log_index")?,
        at_ms: row.get(1).db()?,
        entry: row.get(2).db()?,
        envelope: row.get(3).db()?,
    })
}

pub(crate) fn cosignatures(
    conn: &Connection,
    tree_size: u64,
) -> Result<Vec<StoredCosignature>, StoreError> {
    let Ok(size) = i64::try_from(tree_size) else {
        return Ok(Vec::new());
    };
    collect(
        &mut *conn
            .prepare_cached(
                "SELECT tree_size, witness, line, received_at_ms FROM cosignatures
                 WHERE tree_size = ?1 ORDER BY witness",
            )
            .db()?,
        [size],
        |row| {
            Ok(StoredCosignature {
                tree_size: u64_at(row, 0, "tree_size")?,
                witness: row.get(1).db()?,
                line: row.get(2).db()?,
                received_at_ms: row.get(3).db()?,
            })
        },
    )
}

pub(crate) fn cosigned_head(
    conn: &Connection,
    from_ms: Option<i64>,
) -> Result<Option<StoredTreeHead>, StoreError> {
    let cosigned = "tree_size IN (SELECT tree_size FROM cosignatures)";
    let found = match from_ms {
        Some(from) => {
            let sql = format!(
                "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE {cosigned} AND timestamp_ms >= ?1
                 ORDER BY timestamp_ms, tree_size LIMIT 1"
            );
            collect(&mut *conn.prepare_cached(&sql).db()?, [from], head_row)?
        }
        None => {
            let sql = format!(
                "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE {cosigned} ORDER BY tree_size DESC LIMIT 1"
            );
            collect(&mut *conn.prepare_cached(&sql).db()?, [], head_row)?
        }
    };
    Ok(found.into_iter().next())
}

fn head_row(row: &Row<'_>) -> Result<StoredTreeHead, StoreError> {
    Ok(StoredTreeHead {
        tree_size: u64_at(row, 0, "tree_size")?,
        root: row.get(1).db()?,
        timestamp_ms: row.get(2).db()?,
        envelope: row.get(3).db()?,
    })
}

fn agent_row(row: &Row<'_>) -> Result<AgentRecord, StoreError> {
    Ok(AgentRecord {
        key_id: key_id_at(row, 0, "key_id")?,
        public_key: row.get(1).db()?,
        host_id: HostId(row.get(2).db()?),
        site_id: SiteId(row.get(3).db()?),
        identity: row.get(4).db()?,
        enrolled_at_ms: row.get(5).db()?,
        revoked_at_ms: row.get(6).db()?,
        country: row.get(7).db()?,
    })
}

fn attestation_row(row: &Row<'_>) -> Result<AcceptedAttestation, StoreError> {
    let gpus: Vec<u8> = row.get(15).db()?;
    Ok(AcceptedAttestation {
        key_id: key_id_at(row, 0, "key_id")?,
        sequence: u64_at(row, 1, "sequence")?,
        digest: digest_at(row, 2, "digest")?,
        previous_digest: digest_at(row, 3, "previous_digest")?,
        host_id: HostId(row.get(4).db()?),
        site_id: SiteId(row.get(5).db()?),
        country: row.get(6).db()?,
        issued_at_ms: row.get(7).db()?,
        received_at_ms: row.get(8).db()?,
        tpp: u64_at(row, 9, "tpp")?,
        devices: row.get(10).db()?,
        simulated: row.get(11).db()?,
        gap_before: u64_at(row, 12, "gap_before")?,
        fresh: row.get(13).db()?,
        envelope: row.get(14).db()?,
        gpus: decode_gpus(&gpus)?,
        log_index: row
            .get::<_, Option<i64>>(16)
            .db()?
            .map(|index| uint("log_index", index))
            .transpose()?,
    })
}

fn u64_at(row: &Row<'_>, index: usize, field: &str) -> Result<u64, StoreError> {
    uint(field, row.get(index).db()?)
}

/// Runs `stmt` and maps every row, stopping at the first failure.
fn collect<T>(
    stmt: &mut Statement<'_>,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = stmt.query(params).db()?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().db()? {
        found.push(map(row)?);
    }
    Ok(found)
}
