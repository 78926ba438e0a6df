//! The administrative writes: enrolment, revocation and decommissioning (each its own
//! transaction with its log leaves, run by the writer), and enrolment tokens and signed tree
//! heads (single statements on a pooled connection: they append nothing to the log).

use collector_store::{EnrollToken, StoreError, StoredTreeHead, TokenError};
use proto_evidence::LogEntry;
use proto_merkle::Frontier;

use crate::codec::{get, int, param};
use crate::log::{self, Append, Leaf};
use crate::pool::{Conn, Db};
use crate::writer::AdminOp;

const PUT_AGENT: &str = "INSERT INTO agents (key_id, public_key, host_id, site_id, country,
         identity, enrolled_at_ms, revoked_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (key_id) DO UPDATE SET host_id = excluded.host_id,
         site_id = excluded.site_id, country = excluded.country, identity = excluded.identity,
         enrolled_at_ms = excluded.enrolled_at_ms,
         revoked_at_ms = coalesce(agents.revoked_at_ms, excluded.revoked_at_ms)";
const REVOKE: &str = "UPDATE agents SET revoked_at_ms = $2
     WHERE key_id = $1 AND revoked_at_ms IS NULL";
const DECOMMISSION: &str = "UPDATE host_state SET decommissioned_at_ms = $2
     WHERE host_id = $1 AND decommissioned_at_ms IS NULL
     RETURNING site_id, country, tpp, devices";
const DECOMMISSIONED: &str = "INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp,
         devices, kind)
     VALUES ($1, $2, $3, $4, $5, $6, 'decommissioned')";
const PUT_TOKEN: &str = "INSERT INTO enroll_tokens (token_hash, site_id, created_at_ms,
         expires_at_ms, used_at_ms)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (token_hash) DO UPDATE SET site_id = excluded.site_id,
         created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms,
         used_at_ms = excluded.used_at_ms";
/// One statement checks and spends: the row lock makes it atomic against every other
/// connection, in this process or another replica.
const SPEND_TOKEN: &str = "UPDATE enroll_tokens SET used_at_ms = $2
     WHERE token_hash = $1 AND used_at_ms IS NULL AND $2 < expires_at_ms
     RETURNING site_id, created_at_ms, expires_at_ms";
const TOKEN_STATE: &str = "SELECT used_at_ms FROM enroll_tokens WHERE token_hash = $1";
const PUT_TREE_HEAD: &str = "INSERT INTO tree_heads (tree_size, root, timestamp_ms, envelope)
     VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING";

/// Runs `op` in one transaction that holds the log's lock and appends its leaves; returns
/// whether it changed anything and the frontier after it.
pub(crate) async fn logged(
    conn: &mut Conn,
    log_lock: i64,
    cached: Option<Frontier>,
    op: &AdminOp,
) -> Result<(bool, Frontier), StoreError> {
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
) -> Result<(bool, Frontier), StoreError> {
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
    let changed = match op {
        AdminOp::PutAgent(agent) => {
            // The public key is left as first enrolled: the key id is its hash, so a different
            // key under the same id is impossible for an honest caller.
            conn.execute(
                PUT_AGENT,
                &[
                    &&agent.key_id[..],
                    &&agent.public_key[..],
                    &agent.host_id,
                    &agent.site_id,
                    &agent.country,
                    &agent.identity,
                    &agent.enrolled_at_ms,
                    &agent.revoked_at_ms,
                ],
            )
            .await?;
            append.push(
                Leaf::enrolment(agent)?,
                Some(&agent.key_id),
                Some(&agent.host_id),
            );
            if let Some(at_ms) = agent.revoked_at_ms {
                append.push(
                    Leaf::revocation(&agent.key_id, at_ms)?,
                    Some(&agent.key_id),
                    Some(&agent.host_id),
                );
            }
            true
        }
        AdminOp::Revoke(key_id, at_ms) => {
            let changed = conn.execute(REVOKE, &[&&key_id[..], at_ms]).await? == 1;
            if changed {
                append.push(Leaf::revocation(key_id, *at_ms)?, Some(key_id), None);
            }
            changed
        }
        AdminOp::Decommission(host_id, at_ms) => {
            let row = conn.query_opt(DECOMMISSION, &[host_id, at_ms]).await?;
            if let Some(row) = &row {
                let entry = LogEntry::HostDecommissioned {
                    at_ms: *at_ms,
                    host_id: host_id.clone(),
                };
                append.push(Leaf::new(&entry)?, None, Some(host_id));
                let (site_id, country, tpp, devices): (String, String, i64, i64) =
                    (get(row, 0)?, get(row, 1)?, get(row, 2)?, get(row, 3)?);
                conn.execute(
                    DECOMMISSIONED,
                    &[at_ms, host_id, &site_id, &country, &tpp, &devices],
                )
                .await?;
            }
            row.is_some()
        }
    };
    let columns = append.columns()?;
    for (sql, params) in columns.statements() {
        conn.execute(sql, &params).await?;
    }
    Ok((changed, append.frontier().clone()))
}

pub(crate) async fn put_token(conn: &mut Conn, token: &EnrollToken) -> Result<(), StoreError> {
    conn.execute(
        PUT_TOKEN,
        &[
            &&token.token_hash[..],
            &token.site_id,
            &token.created_at_ms,
            &token.expires_at_ms,
            &token.used_at_ms,
        ],
    )
    .await?;
    Ok(())
}

/// Spends a token: only one caller, on any replica, ever gets `Ok` for a hash.
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
            site_id: get(&row, 0)?,
            created_at_ms: get(&row, 1)?,
            expires_at_ms: get(&row, 2)?,
            used_at_ms: Some(now_ms),
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
