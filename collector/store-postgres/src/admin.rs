//! The administrative writes: enrolment, re-binding, revocation, decommissioning and landmarks'
//! measurements (each its own transaction with its log leaves, run by the writer), and
//! enrolment tokens and signed tree heads (single statements on a pooled connection: they
//! append nothing to the log).

use collector_store::{
    AgentRecord, EnrollToken, Gpu, HostChange, HostId, SiteId, StoreError, StoredCosignature,
    StoredTreeHead, TokenError,
};
use proto_evidence::LogEntry;
use proto_merkle::Frontier;

use crate::codec::{get, get_gpus, int, inventory_hash, param};
use crate::log::{self, Append, Leaf};
use crate::pool::{Conn, Db};
use crate::writer::AdminOp;

/// A key is enrolled once: a known one (revoked or not) inserts nothing.
const INSERT_AGENT: &str = "INSERT INTO agents (key_id, public_key, host_id, site_id, country,
         identity, enrolled_at_ms, revoked_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (key_id) DO NOTHING";
/// The inventory of a host without GPUs, there from the first enrolment on.
const INSERT_EMPTY_INVENTORY: &str = "INSERT INTO inventories (hash, uuids, serials,
         catalogue_ids, tpps, counted, hardware, hardware_at_ms)
     VALUES ($1, '{}', '{}', '{}', '{}', '{}', '{}', '{}')
     ON CONFLICT (hash) DO NOTHING";
/// A new host's state before its first attestation; an existing host inserts nothing.
const INSERT_HOST: &str = "INSERT INTO host_state (host_id, site_id, country, key_id,
         last_sequence, last_digest, last_issued_at_ms, last_received_at_ms, tpp, devices,
         inventory_id, decommissioned_at_ms)
     SELECT $1::text, $2::text, $3::text, $4::bytea, 0, $5::bytea, 0, 0, 0, 0, i.id, NULL
     FROM inventories i WHERE i.hash = $6
     ON CONFLICT (host_id) DO NOTHING";
const REVOKE_OTHERS: &str = "UPDATE agents SET revoked_at_ms = $3
     WHERE host_id = $1 AND key_id <> $2 AND revoked_at_ms IS NULL";
/// A re-bound host: nothing attested under its new key, at its new site; the issue and receipt
/// times of its last link are kept.
const RESET_HOST: &str = "UPDATE host_state SET site_id = $2, country = $3, key_id = $4,
         last_sequence = 0, last_digest = $5, tpp = 0, devices = 0,
         inventory_id = (SELECT i.id FROM inventories i WHERE i.hash = $6),
         decommissioned_at_ms = NULL
     WHERE host_id = $1";
const DELETE_GPUS: &str = "DELETE FROM gpus WHERE host_id = $1";
const REVOKE: &str = "UPDATE agents SET revoked_at_ms = $2
     WHERE key_id = $1 AND revoked_at_ms IS NULL";
/// The host in service to decommission, with its GPUs; its row locked until the commit.
const IN_SERVICE: &str = "SELECT i.uuids, i.serials, i.catalogue_ids, i.tpps, i.counted,
         i.hardware, i.hardware_at_ms
     FROM host_state h JOIN inventories i ON i.id = h.inventory_id
     WHERE h.host_id = $1 AND h.decommissioned_at_ms IS NULL
     FOR UPDATE OF h";
const INSERT_INVENTORY: &str = "INSERT INTO inventories (hash, uuids, serials, catalogue_ids,
         tpps, counted, hardware, hardware_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (hash) DO NOTHING";
/// It counts nothing from then on; its GPUs are kept as reported, none counted.
const DECOMMISSION: &str = "UPDATE host_state SET decommissioned_at_ms = $2, tpp = 0,
         devices = 0, inventory_id = (SELECT i.id FROM inventories i WHERE i.hash = $3)
     WHERE host_id = $1
     RETURNING site_id, country";
const RELEASE_GPUS: &str = "UPDATE gpus SET counted = false WHERE host_id = $1";
const INSERT_CHANGE: &str = "INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp,
         devices, kind, hardware_tpp)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const PUT_TOKEN: &str = "INSERT INTO enroll_tokens (token_hash, site_id, created_at_ms,
         expires_at_ms, used_at_ms, rebind_host)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (token_hash) DO UPDATE SET site_id = excluded.site_id,
         created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms,
         used_at_ms = excluded.used_at_ms, rebind_host = excluded.rebind_host";
/// One statement checks and spends: the row lock makes it atomic against every other
/// connection, in this process or another replica.
const SPEND_TOKEN: &str = "UPDATE enroll_tokens SET used_at_ms = $2
     WHERE token_hash = $1 AND used_at_ms IS NULL AND $2 < expires_at_ms
     RETURNING site_id, created_at_ms, expires_at_ms, rebind_host";
const TOKEN_STATE: &str = "SELECT used_at_ms FROM enroll_tokens WHERE token_hash = $1";
const PUT_TREE_HEAD: &str = "INSERT INTO tree_heads (tree_size, root, timestamp_ms, envelope)
     VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING";

/// The digest of a host that attested nothing (yet, or since its re-binding).
const NO_DIGEST: [u8; 32] = [0; 32];

/// Runs `op` in one transaction that holds the log's lock and appends its leaves; returns the
/// index of the first leaf it appended (`None` when it changed nothing) and the frontier after
/// it. An op that fails leaves nothing.
pub(crate) async fn logged(
    conn: &mut Conn,
    log_lock: i64,
    cached: Option<Frontier>,
    op: &AdminOp,
) -> Result<(Option<u64>, Frontier), StoreError> {
    conn.client().batch_execute("BEGIN").await.db()?;
    let result = logged_in_transaction(conn, log_lock, cached, op).await;
    match result {
        Ok(done) => {
            conn.client().batch_execute("COMMIT").await.db()?;
            Ok(done)
        }
        Err(error) => {
            // The error is the answer; a failed rollback means the connection is gone.
            let _ = conn.client().batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

async fn logged_in_transaction(
    conn: &mut Conn,
    log_lock: i64,
    cached: Option<Frontier>,
    op: &AdminOp,
) -> Result<(Option<u64>, Frontier), StoreError> {
    conn.execute(log::LOCK, &[&log_lock]).await?;
    let size: i64 = match conn.query_opt(log::SIZE, &[]).await? {
        Some(row) => get(&row, 0)?,
        None => return Err(StoreError::Corrupt("log_state has no row".to_owned())),
    };
    let size = u64::try_from(size)
        .map_err(|_| StoreError::Corrupt(format!("the log's size is {size}")))?;
    let frontier = match cached {
        Some(cached) if cached.size() == size => cached,
        _ => log::restore(conn, size).await?,
    };
    let mut append = Append::new(frontier);
    let first = append.frontier().size();
    match op {
        AdminOp::PutAgent(agent) => {
            put_agent(conn, &mut append, agent).await?;
        }
        AdminOp::Rebind(agent, change) => {
            rebind_host(conn, &mut append, agent, change.as_ref()).await?;
        }
        AdminOp::Revoke(key_id, at_ms) => {
            if conn
                .execute(REVOKE, &[&&key_id.0.as_bytes()[..], at_ms])
                .await?
                == 1
            {
                append.push(Leaf::revocation(key_id, *at_ms)?, Some(key_id), None);
            }
        }
        AdminOp::Decommission(host_id, at_ms) => {
            decommission(conn, &mut append, host_id, *at_ms).await?;
        }
        AdminOp::Measurement(host_id, leaf) => {
            append.push(leaf.clone(), None, Some(host_id));
        }
    }
    // Every op that changes something appends a leaf; one that appended none changed nothing.
    let appended = (append.frontier().size() > first).then_some(first);
    let columns = append.columns()?;
    for (sql, params) in columns.statements() {
        conn.execute(sql, &params).await?;
    }
    Ok((appended, append.frontier().clone()))
}

/// Inserts the agent; `AlreadyEnrolled` when its key is known (revoked or not).
async fn insert_agent(conn: &mut Conn, agent: &AgentRecord) -> Result<(), StoreError> {
    let inserted = conn
        .execute(
            INSERT_AGENT,
            &[
                &&agent.key_id.0.as_bytes()[..],
                &&agent.public_key[..],
                &agent.host_id.0,
                &agent.site_id.0,
                &agent.country,
                &agent.identity,
                &agent.enrolled_at_ms,
                &agent.revoked_at_ms,
            ],
        )
        .await?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::AlreadyEnrolled {
            key_id: agent.key_id,
        })
    }
}

/// Inserts the agent, then runs `sql` (`INSERT_HOST` or `RESET_HOST`) to put its host in the
/// state of "nothing attested" under its key, with the empty GPU list (its inventory row
/// created if missing); answers how many host rows `sql` wrote.
async fn bind_host(conn: &mut Conn, sql: &str, agent: &AgentRecord) -> Result<u64, StoreError> {
    insert_agent(conn, agent).await?;
    let empty = inventory_hash(&[]);
    conn.execute(INSERT_EMPTY_INVENTORY, &[&&empty[..]]).await?;
    conn.execute(
        sql,
        &[
            &agent.host_id.0,
            &agent.site_id.0,
            &agent.country,
            &&agent.key_id.0.as_bytes()[..],
            &&NO_DIGEST[..],
            &&empty[..],
        ],
    )
    .await
}

/// A new key for a new host: the agent, the host's first state, the enrolment leaf (and the
/// revocation's, for an agent enrolled revoked).
async fn put_agent(
    conn: &mut Conn,
    append: &mut Append,
    agent: &AgentRecord,
) -> Result<(), StoreError> {
    let inserted = bind_host(conn, INSERT_HOST, agent).await?;
    if inserted != 1 {
        // The host exists: the transaction is rolled back, the agent with it.
        return Err(StoreError::AlreadyEnrolled {
            key_id: agent.key_id,
        });
    }
    append.push(
        Leaf::enrolment(agent)?,
        Some(&agent.key_id),
        Some(&agent.host_id.0),
    );
    if let Some(at_ms) = agent.revoked_at_ms {
        append.push(
            Leaf::revocation(&agent.key_id, at_ms)?,
            Some(&agent.key_id),
            Some(&agent.host_id.0),
        );
    }
    Ok(())
}

/// An existing host bound to a new key: the agent, the host's earlier keys revoked, its state
/// reset, its GPUs released, the ledger's change and the re-binding leaf.
async fn rebind_host(
    conn: &mut Conn,
    append: &mut Append,
    agent: &AgentRecord,
    change: Option<&HostChange>,
) -> Result<(), StoreError> {
    let reset = bind_host(conn, RESET_HOST, agent).await?;
    if reset != 1 {
        return Err(StoreError::Corrupt(format!(
            "host {} has no state to re-bind",
            agent.host_id
        )));
    }
    conn.execute(
        REVOKE_OTHERS,
        &[
            &agent.host_id.0,
            &&agent.key_id.0.as_bytes()[..],
            &agent.enrolled_at_ms,
        ],
    )
    .await?;
    conn.execute(DELETE_GPUS, &[&agent.host_id.0]).await?;
    if let Some(change) = change {
        insert_change(conn, change, "rebound").await?;
    }
    append.push(
        Leaf::rebinding(agent)?,
        Some(&agent.key_id),
        Some(&agent.host_id.0),
    );
    Ok(())
}

async fn insert_change(conn: &mut Conn, change: &HostChange, kind: &str) -> Result<(), StoreError> {
    conn.execute(
        INSERT_CHANGE,
        &[
            &change.at_ms,
            &change.host_id.0,
            &change.site_id.0,
            &change.country,
            &int("tpp", change.tpp)?,
            &i64::from(change.devices),
            &kind,
            &int("hardware tpp", change.hardware_tpp)?,
        ],
    )
    .await?;
    Ok(())
}

/// Decommissions a host in service; `false` when it is unknown or decommissioned already.
async fn decommission(
    conn: &mut Conn,
    append: &mut Append,
    host_id: &str,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let Some(row) = conn.query_opt(IN_SERVICE, &[&host_id]).await? else {
        return Ok(false);
    };
    let mut gpus = get_gpus(&row, 0)?;
    for gpu in &mut gpus {
        gpu.counted = false;
    }
    let released = inventory_hash(&gpus);
    insert_inventory(conn, &released, &gpus).await?;
    let Some(row) = conn
        .query_opt(DECOMMISSION, &[&host_id, &at_ms, &&released[..]])
        .await?
    else {
        return Err(StoreError::Corrupt(format!(
            "host {host_id} vanished while decommissioned"
        )));
    };
    let (site_id, country): (String, String) = (get(&row, 0)?, get(&row, 1)?);
    conn.execute(RELEASE_GPUS, &[&host_id]).await?;
    let entry = LogEntry::HostDecommissioned {
        at_ms,
        host_id: host_id.to_owned(),
    };
    append.push(Leaf::new(&entry)?, None, Some(host_id));
    let change = HostChange {
        at_ms,
        host_id: HostId(host_id.to_owned()),
        site_id: SiteId(site_id),
        country,
        tpp: 0,
        devices: 0,
        decommissioned: true,
        hardware_tpp: 0,
    };
    insert_change(conn, &change, "decommissioned").await?;
    Ok(true)
}

/// Stores the inventory of `gpus` under `hash` unless it is there.
async fn insert_inventory(
    conn: &mut Conn,
    hash: &[u8; 32],
    gpus: &[Gpu],
) -> Result<(), StoreError> {
    let uuids: Vec<&str> = gpus.iter().map(|gpu| gpu.uuid.as_str()).collect();
    let serials: Vec<&str> = gpus.iter().map(|gpu| gpu.serial.as_str()).collect();
    let catalogue_ids: Vec<&str> = gpus.iter().map(|gpu| gpu.catalogue_id.as_str()).collect();
    let tpps = gpus
        .iter()
        .map(|gpu| int("gpu tpp", gpu.tpp))
        .collect::<Result<Vec<i64>, _>>()?;
    let counted: Vec<bool> = gpus.iter().map(|gpu| gpu.counted).collect();
    let hardware: Vec<&str> = gpus.iter().map(|gpu| gpu.hardware.as_str()).collect();
    let hardware_at_ms: Vec<i64> = gpus.iter().map(|gpu| gpu.hardware_at_ms).collect();
    conn.execute(
        INSERT_INVENTORY,
        &[
            &&hash[..],
            &uuids,
            &serials,
            &catalogue_ids,
            &tpps,
            &counted,
            &hardware,
            &hardware_at_ms,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn put_token(conn: &mut Conn, token: &EnrollToken) -> Result<(), StoreError> {
    conn.execute(
        PUT_TOKEN,
        &[
            &&token.token_hash[..],
            &token.site_id.0,
            &token.created_at_ms,
            &token.expires_at_ms,
            &token.used_at_ms,
            &token.rebind_host.as_ref().map(|host| &host.0),
        ],
    )
    .await?;
    Ok(())
}

/// Spends a token: only one caller, on any replica, ever gets `Ok` for a hash.
pub(crate) async fn token(
    conn: &mut Conn,
    token_hash: &[u8; 32],
) -> Result<Option<EnrollToken>, StoreError> {
    let bytes: &[u8] = token_hash;
    let row = conn
        .query_opt(
            "SELECT site_id, created_at_ms, expires_at_ms, used_at_ms, rebind_host
             FROM enroll_tokens WHERE token_hash = $1",
            &[param(&bytes)],
        )
        .await?;
    row.map(|row| {
        Ok(EnrollToken {
            token_hash: *token_hash,
            site_id: SiteId(get(&row, 0)?),
            created_at_ms: get(&row, 1)?,
            expires_at_ms: get(&row, 2)?,
            used_at_ms: get(&row, 3)?,
            rebind_host: get::<Option<String>>(&row, 4)?.map(HostId),
        })
    })
    .transpose()
}

pub(crate) async fn use_token(
    conn: &mut Conn,
    token_hash: &[u8; 32],
    now_ms: i64,
) -> Result<EnrollToken, TokenError> {
    let bytes: &[u8] = token_hash;
    let hash = param(&bytes);
    if let Some(row) = conn.query_opt(SPEND_TOKEN, &[hash, &now_ms]).await? {
        return Ok(EnrollToken {
            token_hash: *token_hash,
            site_id: SiteId(get(&row, 0)?),
            created_at_ms: get(&row, 1)?,
            expires_at_ms: get(&row, 2)?,
            used_at_ms: Some(now_ms),
            rebind_host: get::<Option<String>>(&row, 3)?.map(HostId),
        });
    }
    // Not spent: say why. A token spent meanwhile by another caller reads as used.
    match conn.query_opt(TOKEN_STATE, &[hash]).await? {
        None => Err(TokenError::Unknown),
        Some(row) => match get::<Option<i64>>(&row, 0)? {
            Some(_) => Err(TokenError::AlreadyUsed),
            None => Err(TokenError::Expired),
        },
    }
}

pub(crate) async fn put_cosignature(
    conn: &mut Conn,
    cosignature: &StoredCosignature,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cosignatures (tree_size, witness, line, received_at_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tree_size, witness) DO UPDATE SET line = excluded.line,
             received_at_ms = excluded.received_at_ms",
        &[
            &int("tree_size", cosignature.tree_size)?,
            &cosignature.witness,
            &cosignature.line,
            &cosignature.received_at_ms,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn put_tree_head(
    conn: &mut Conn,
    head: &StoredTreeHead,
) -> Result<(), StoreError> {
    conn.execute(
        PUT_TREE_HEAD,
        &[
            &int("tree_size", head.tree_size)?,
            &&head.root[..],
            &head.timestamp_ms,
            &head.envelope,
        ],
    )
    .await?;
    Ok(())
}
