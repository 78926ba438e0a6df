//! Reads, on pooled connections. Each statement sees every transaction committed before it
//! started (READ COMMITTED), in this process or another replica.

use collector_store::integer;
use collector_store::{
    AcceptedAttestation, AgentRecord, ChainDigest, Cursor, Event, Gpu, HostChange, HostId,
    HostState, KeyId, LogRecord, Rejection, SiteId, StoreError, StoredCosignature, StoredHead,
    StoredTreeHead,
};
use tokio_postgres::Row;

use crate::codec::{
    INVENTORY_COLUMNS, get, get_32, get_digest, get_gpus, get_key_id, get_key_id_opt, get_u32,
    get_u64, uint,
};
use crate::pool::Conn;

const ATTESTATION_COLUMNS: &str = "a.key_id, a.sequence, a.digest, a.previous_digest, a.host_id,
    a.site_id, a.country, a.issued_at_ms, a.received_at_ms, a.tpp, a.devices, a.simulated,
    a.gap_before, a.fresh, a.envelope, a.log_index";

const AGENT_COLUMNS: &str =
    "key_id, public_key, host_id, site_id, identity, enrolled_at_ms, revoked_at_ms, country";

pub(crate) async fn agents(conn: &mut Conn) -> Result<Vec<AgentRecord>, StoreError> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY key_id");
    collect(conn.query(&sql, &[]).await?, agent_row)
}

pub(crate) async fn agent(
    conn: &mut Conn,
    key_id: &KeyId,
) -> Result<Option<AgentRecord>, StoreError> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE key_id = $1");
    conn.query_opt(&sql, &[&&key_id.0.as_bytes()[..]])
        .await?
        .as_ref()
        .map(agent_row)
        .transpose()
}

pub(crate) async fn chain_heads(conn: &mut Conn) -> Result<Vec<StoredHead>, StoreError> {
    // The head's link is always stored: both rows are written in one transaction.
    let rows = conn
        .query(
            "SELECT c.key_id, c.sequence, c.digest, a.issued_at_ms
             FROM chain_heads c
             JOIN attestations a ON a.key_id = c.key_id AND a.sequence = c.sequence
             ORDER BY c.key_id",
            &[],
        )
        .await?;
    collect(rows, |row| {
        Ok(StoredHead {
            key_id: get_key_id(row, 0, "key_id")?,
            sequence: get_u64(row, 1, "sequence")?,
            digest: get_digest(row, 2, "digest")?,
            issued_at_ms: get(row, 3)?,
        })
    })
}

pub(crate) async fn host_states(conn: &mut Conn) -> Result<Vec<HostState>, StoreError> {
    let rows = conn
        .query(
            "SELECT host_id, site_id, country, key_id, last_sequence, last_digest,
                    last_issued_at_ms, last_received_at_ms, tpp, devices, decommissioned_at_ms
             FROM host_state ORDER BY host_id",
            &[],
        )
        .await?;
    collect(rows, |row| {
        Ok(HostState {
            host_id: HostId(get(row, 0)?),
            site_id: SiteId(get(row, 1)?),
            country: get(row, 2)?,
            key_id: get_key_id(row, 3, "key_id")?,
            last_sequence: get_u64(row, 4, "last_sequence")?,
            last_digest: get_digest(row, 5, "last_digest")?,
            last_issued_at_ms: get(row, 6)?,
            last_received_at_ms: get(row, 7)?,
            tpp: get_u64(row, 8, "tpp")?,
            devices: get_u32(row, 9, "devices")?,
            decommissioned_at_ms: get(row, 10)?,
        })
    })
}

pub(crate) async fn chain_head(
    conn: &mut Conn,
    key_id: &KeyId,
) -> Result<Option<(u64, ChainDigest)>, StoreError> {
    let Some(row) = conn
        .query_opt(
            "SELECT sequence, digest FROM chain_heads WHERE key_id = $1",
            &[&&key_id.0.as_bytes()[..]],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        get_u64(&row, 0, "sequence")?,
        get_digest(&row, 1, "digest")?,
    )))
}

pub(crate) async fn stored_digest(
    conn: &mut Conn,
    key_id: &KeyId,
    sequence: u64,
) -> Result<Option<ChainDigest>, StoreError> {
    // Nothing above i64::MAX can have been stored.
    let Ok(sequence) = i64::try_from(sequence) else {
        return Ok(None);
    };
    conn.query_opt(
        "SELECT digest FROM attestations WHERE key_id = $1 AND sequence = $2",
        &[&&key_id.0.as_bytes()[..], &sequence],
    )
    .await?
    .map(|row| get_digest(&row, 0, "digest"))
    .transpose()
}

pub(crate) async fn attestations(
    conn: &mut Conn,
    from_ms: i64,
    to_ms: i64,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<AcceptedAttestation>, StoreError> {
    let limit = integer::limit(limit);
    let Some((at_ms, key_id, sequence)) = after.map(integer::cursor) else {
        let sql = format!(
            "SELECT {ATTESTATION_COLUMNS}, {INVENTORY_COLUMNS}
             FROM attestations a JOIN inventories i ON i.id = a.inventory_id
             WHERE a.received_at_ms >= $1 AND a.received_at_ms < $2
             ORDER BY a.received_at_ms, a.key_id, a.sequence LIMIT $3"
        );
        return collect(
            conn.query(&sql, &[&from_ms, &to_ms, &limit]).await?,
            attestation_row,
        );
    };
    // The row comparison walks the (received_at_ms, key_id, sequence) index from the cursor
    // on, so a page costs its own size whatever the page number.
    let sql = format!(
        "SELECT {ATTESTATION_COLUMNS}, {INVENTORY_COLUMNS}
         FROM attestations a JOIN inventories i ON i.id = a.inventory_id
         WHERE a.received_at_ms >= $1 AND a.received_at_ms < $2
           AND (a.received_at_ms, a.key_id, a.sequence) > ($3, $4, $5)
         ORDER BY a.received_at_ms, a.key_id, a.sequence LIMIT $6"
    );
    let rows = conn
        .query(
            &sql,
            &[
                &from_ms,
                &to_ms,
                &at_ms,
                &&key_id.0.as_bytes()[..],
                &sequence,
                &limit,
            ],
        )
        .await?;
    collect(rows, attestation_row)
}

pub(crate) async fn host_history(
    conn: &mut Conn,
    host_id: &str,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<AcceptedAttestation>, StoreError> {
    let sql = format!(
        "SELECT {ATTESTATION_COLUMNS}, {INVENTORY_COLUMNS}
         FROM attestations a JOIN inventories i ON i.id = a.inventory_id
         WHERE a.host_id = $1 AND a.received_at_ms >= $2 AND a.received_at_ms < $3
         ORDER BY a.received_at_ms, a.key_id, a.sequence LIMIT $4"
    );
    let rows = conn
        .query(&sql, &[&host_id, &from_ms, &to_ms, &integer::limit(limit)])
        .await?;
    collect(rows, attestation_row)
}

pub(crate) async fn host_gpus(conn: &mut Conn) -> Result<Vec<(String, Gpu)>, StoreError> {
    let rows = conn
        .query(
            "SELECT host_id, uuid, serial, catalogue_id, tpp, counted, hardware, hardware_at_ms
             FROM gpus ORDER BY host_id, position",
            &[],
        )
        .await?;
    collect(rows, |row| {
        Ok((
            get(row, 0)?,
            Gpu {
                uuid: get(row, 1)?,
                serial: get(row, 2)?,
                catalogue_id: get(row, 3)?,
                tpp: get_u64(row, 4, "gpu tpp")?,
                counted: get(row, 5)?,
                hardware: get(row, 6)?,
                hardware_at_ms: get(row, 7)?,
            },
        ))
    })
}

pub(crate) async fn rejections(
    conn: &mut Conn,
    limit: usize,
) -> Result<Vec<Rejection>, StoreError> {
    let rows = conn
        .query(
            "SELECT at_ms, reason, key_id, host_id, sequence, peer, detail, count
             FROM rejections ORDER BY at_ms DESC, id DESC LIMIT $1",
            &[&integer::limit(limit)],
        )
        .await?;
    collect(rows, |row| {
        Ok(Rejection {
            at_ms: get(row, 0)?,
            reason: get(row, 1)?,
            key_id: get_key_id_opt(row, 2, "key_id")?,
            host_id: get::<Option<String>>(row, 3)?.map(HostId),
            sequence: get::<Option<i64>>(row, 4)?
                .map(|s| uint("rejection sequence", s))
                .transpose()?,
            peer: get(row, 5)?,
            detail: get(row, 6)?,
            count: get_u64(row, 7, "rejection count")?,
        })
    })
}

pub(crate) async fn rejection_counts(conn: &mut Conn) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = conn
        .query(
            "SELECT reason, count FROM rejection_counts ORDER BY reason",
            &[],
        )
        .await?;
    collect(rows, |row| Ok((get(row, 0)?, get_u64(row, 1, "count")?)))
}

pub(crate) async fn rejections_by_reason(
    conn: &mut Conn,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = conn
        .query(
            "SELECT reason, sum(count)::bigint FROM rejections WHERE at_ms >= $1 AND at_ms < $2
             GROUP BY reason ORDER BY reason",
            &[&from_ms, &to_ms],
        )
        .await?;
    collect(rows, |row| Ok((get(row, 0)?, get_u64(row, 1, "count")?)))
}

pub(crate) async fn events(
    conn: &mut Conn,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let rows = conn
        .query(
            "SELECT at_ms, kind, host_id, key_id, detail, value
             FROM events WHERE at_ms >= $1 ORDER BY at_ms, id LIMIT $2",
            &[&since_ms, &integer::limit(limit)],
        )
        .await?;
    collect(rows, |row| {
        Ok(Event {
            at_ms: get(row, 0)?,
            kind: get(row, 1)?,
            host_id: get::<Option<String>>(row, 2)?.map(HostId),
            key_id: get_key_id_opt(row, 3, "key_id")?,
            detail: get(row, 4)?,
            value: get(row, 5)?,
        })
    })
}

/// Every table of the store's schema with its indexes and TOAST data, as the server
/// allocated them.
pub(crate) async fn size_bytes(conn: &mut Conn) -> Result<u64, StoreError> {
    let row = conn
        .query_opt(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')",
            &[],
        )
        .await?;
    match row {
        Some(row) => get_u64(&row, 0, "size"),
        None => Ok(0),
    }
}

pub(crate) async fn log_size(conn: &mut Conn) -> Result<u64, StoreError> {
    match conn.query_opt("SELECT size FROM log_state", &[]).await? {
        Some(row) => get_u64(&row, 0, "log size"),
        None => Err(StoreError::Corrupt("log_state has no row".to_owned())),
    }
}

pub(crate) async fn log_node(
    conn: &mut Conn,
    level: u32,
    index: u64,
) -> Result<Option<[u8; 32]>, StoreError> {
    // Nothing above these ranges can have been stored.
    let (Ok(level), Ok(index)) = (i32::try_from(level), i64::try_from(index)) else {
        return Ok(None);
    };
    conn.query_opt(
        "SELECT hash FROM log_nodes WHERE level = $1 AND idx = $2",
        &[&level, &index],
    )
    .await?
    .map(|row| get_32(&row, 0, "log node"))
    .transpose()
}

const LOG_COLUMNS: &str = "e.log_index, e.at_ms, e.entry, a.envelope";

pub(crate) async fn log_records(
    conn: &mut Conn,
    from_index: u64,
    limit: usize,
) -> Result<Vec<LogRecord>, StoreError> {
    let from_index = integer::bound(from_index);
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM log_entries e
         LEFT JOIN attestations a ON a.log_index = e.log_index
         WHERE e.log_index >= $1 ORDER BY e.log_index LIMIT $2"
    );
    let rows = conn
        .query(&sql, &[&from_index, &integer::limit(limit)])
        .await?;
    collect(rows, log_row)
}

pub(crate) async fn key_records(
    conn: &mut Conn,
    before_index: u64,
) -> Result<Vec<LogRecord>, StoreError> {
    let before_index = integer::bound(before_index);
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM log_entries e
         LEFT JOIN attestations a ON a.log_index = e.log_index
         WHERE e.kind <> 'attestation' AND e.kind <> 'measurement' AND e.log_index < $1
         ORDER BY e.log_index"
    );
    collect(conn.query(&sql, &[&before_index]).await?, log_row)
}

pub(crate) async fn measurements(
    conn: &mut Conn,
    since_ms: i64,
) -> Result<Vec<LogRecord>, StoreError> {
    // log_entries_measurements holds these leaves alone, by time.
    let rows = conn
        .query(
            "SELECT e.log_index, e.at_ms, e.entry, NULL::bytea FROM log_entries e
             WHERE e.kind = 'measurement' AND e.at_ms >= $1
             ORDER BY e.log_index",
            &[&since_ms],
        )
        .await?;
    collect(rows, log_row)
}

pub(crate) async fn latest_attestations(
    conn: &mut Conn,
    before_ms: i64,
) -> Result<Vec<AcceptedAttestation>, StoreError> {
    // One index probe per host (attestations_by_host), never a scan of the history.
    let sql = format!(
        "SELECT {ATTESTATION_COLUMNS}, {INVENTORY_COLUMNS}
         FROM host_state h
         CROSS JOIN LATERAL (
             SELECT b.* FROM attestations b
             WHERE b.host_id = h.host_id AND b.received_at_ms < $1
             ORDER BY b.received_at_ms DESC, b.key_id DESC, b.sequence DESC LIMIT 1) a
         JOIN inventories i ON i.id = a.inventory_id
         ORDER BY h.host_id"
    );
    collect(conn.query(&sql, &[&before_ms]).await?, attestation_row)
}

const HEAD_COLUMNS: &str = "tree_size, root, timestamp_ms, envelope";

pub(crate) async fn tree_head(
    conn: &mut Conn,
    tree_size: Option<u64>,
) -> Result<Option<StoredTreeHead>, StoreError> {
    let row = match tree_size {
        Some(size) => {
            let Ok(size) = i64::try_from(size) else {
                return Ok(None);
            };
            let sql = format!("SELECT {HEAD_COLUMNS} FROM tree_heads WHERE tree_size = $1");
            conn.query_opt(&sql, &[&size]).await?
        }
        None => {
            let sql =
                format!("SELECT {HEAD_COLUMNS} FROM tree_heads ORDER BY tree_size DESC LIMIT 1");
            conn.query_opt(&sql, &[]).await?
        }
    };
    row.as_ref().map(head_row).transpose()
}

pub(crate) async fn tree_heads(
    conn: &mut Conn,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<StoredTreeHead>, StoreError> {
    let sql = format!(
        "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE timestamp_ms >= $1 AND timestamp_ms < $2
         ORDER BY timestamp_ms, tree_size"
    );
    collect(conn.query(&sql, &[&from_ms, &to_ms]).await?, head_row)
}

pub(crate) async fn tree_head_before(
    conn: &mut Conn,
    before_ms: i64,
) -> Result<Option<StoredTreeHead>, StoreError> {
    let sql = format!(
        "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE timestamp_ms < $1
         ORDER BY timestamp_ms DESC, tree_size DESC LIMIT 1"
    );
    conn.query_opt(&sql, &[&before_ms])
        .await?
        .as_ref()
        .map(head_row)
        .transpose()
}

pub(crate) async fn host_changes(
    conn: &mut Conn,
    to_ms: i64,
) -> Result<Vec<HostChange>, StoreError> {
    let rows = conn
        .query(
            "SELECT at_ms, host_id, site_id, country, tpp, devices, kind, hardware_tpp
             FROM host_changes WHERE at_ms < $1 ORDER BY at_ms, id",
            &[&to_ms],
        )
        .await?;
    collect(rows, |row| {
        let kind: &str = get(row, 6)?;
        Ok(HostChange {
            at_ms: get(row, 0)?,
            host_id: HostId(get(row, 1)?),
            site_id: SiteId(get(row, 2)?),
            country: get(row, 3)?,
            tpp: get_u64(row, 4, "tpp")?,
            devices: get_u32(row, 5, "devices")?,
            // attested, or one of: decommissioned, rebound, stopped.
            decommissioned: kind != "attested",
            hardware_tpp: get_u64(row, 7, "hardware tpp")?,
        })
    })
}

pub(crate) async fn last_received(
    conn: &mut Conn,
    before_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = conn
        .query(
            "SELECT h.host_id, l.at_ms FROM host_state h
             CROSS JOIN LATERAL (SELECT max(a.received_at_ms) AS at_ms FROM attestations a
                                 WHERE a.host_id = h.host_id AND a.received_at_ms < $1) l
             WHERE l.at_ms IS NOT NULL
             ORDER BY h.host_id",
            &[&before_ms],
        )
        .await?;
    collect(rows, |row| Ok((get(row, 0)?, get(row, 1)?)))
}

fn log_row(row: &Row) -> Result<LogRecord, StoreError> {
    Ok(LogRecord {
        log_index: get_u64(row, 0, "log_index")?,
        at_ms: get(row, 1)?,
        entry: get(row, 2)?,
        envelope: get(row, 3)?,
    })
}

pub(crate) async fn cosignatures(
    conn: &mut Conn,
    tree_size: u64,
) -> Result<Vec<StoredCosignature>, StoreError> {
    let Ok(size) = i64::try_from(tree_size) else {
        return Ok(Vec::new());
    };
    conn.query(
        "SELECT tree_size, witness, line, received_at_ms FROM cosignatures
         WHERE tree_size = $1 ORDER BY witness",
        &[&size],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(StoredCosignature {
            tree_size: get_u64(row, 0, "tree_size")?,
            witness: get(row, 1)?,
            line: get(row, 2)?,
            received_at_ms: get(row, 3)?,
        })
    })
    .collect()
}

pub(crate) async fn cosigned_head(
    conn: &mut Conn,
    from_ms: Option<i64>,
) -> Result<Option<StoredTreeHead>, StoreError> {
    let cosigned = "tree_size IN (SELECT tree_size FROM cosignatures)";
    let row = match from_ms {
        Some(from) => {
            let sql = format!(
                "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE {cosigned} AND timestamp_ms >= $1
                 ORDER BY timestamp_ms, tree_size LIMIT 1"
            );
            conn.query_opt(&sql, &[&from]).await?
        }
        None => {
            let sql = format!(
                "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE {cosigned} ORDER BY tree_size DESC LIMIT 1"
            );
            conn.query_opt(&sql, &[]).await?
        }
    };
    row.as_ref().map(head_row).transpose()
}

fn head_row(row: &Row) -> Result<StoredTreeHead, StoreError> {
    Ok(StoredTreeHead {
        tree_size: get_u64(row, 0, "tree_size")?,
        root: get_32(row, 1, "root")?,
        timestamp_ms: get(row, 2)?,
        envelope: get(row, 3)?,
    })
}

fn agent_row(row: &Row) -> Result<AgentRecord, StoreError> {
    Ok(AgentRecord {
        key_id: get_key_id(row, 0, "key_id")?,
        public_key: get_32(row, 1, "public_key")?,
        host_id: HostId(get(row, 2)?),
        site_id: SiteId(get(row, 3)?),
        identity: get(row, 4)?,
        enrolled_at_ms: get(row, 5)?,
        revoked_at_ms: get(row, 6)?,
        country: get(row, 7)?,
    })
}

fn attestation_row(row: &Row) -> Result<AcceptedAttestation, StoreError> {
    Ok(AcceptedAttestation {
        key_id: get_key_id(row, 0, "key_id")?,
        sequence: get_u64(row, 1, "sequence")?,
        digest: get_digest(row, 2, "digest")?,
        previous_digest: get_digest(row, 3, "previous_digest")?,
        host_id: HostId(get(row, 4)?),
        site_id: SiteId(get(row, 5)?),
        country: get(row, 6)?,
        issued_at_ms: get(row, 7)?,
        received_at_ms: get(row, 8)?,
        tpp: get_u64(row, 9, "tpp")?,
        devices: get_u32(row, 10, "devices")?,
        simulated: get(row, 11)?,
        gap_before: get_u64(row, 12, "gap_before")?,
        fresh: get(row, 13)?,
        envelope: get(row, 14)?,
        log_index: Some(get_u64(row, 15, "log_index")?),
        gpus: get_gpus(row, 16)?,
    })
}

/// Maps every row, stopping at the first failure.
fn collect<T>(
    rows: Vec<Row>,
    map: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(map).collect()
}
