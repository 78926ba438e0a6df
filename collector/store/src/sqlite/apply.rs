//! The statements the writer runs: storing a batch (inside the writer's savepoint) and the
//! administrative writes (each its own transaction).

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use proto_evidence::LogEntry;

use super::Db;
use super::codec::{encode_gpus, int};
use super::log::Log;
use crate::{
    AcceptedAttestation, AgentRecord, Batch, CommitReceipt, EnrollToken, Event, KeyId, Rejection,
    StoreError, StoredTreeHead, TokenError,
};

/// Stores one batch on `conn`, which the caller has inside a savepoint: on any error the caller
/// rolls back whatever this had written.
/// Its attestations are appended to `log`; the caller resets the log's frontier if it rolls
/// back.
pub(crate) fn batch(
    conn: &Connection,
    log: &mut Log,
    batch: &Batch,
) -> Result<CommitReceipt, StoreError> {
    let mut receipt = CommitReceipt::default();
    for attestation in &batch.attestations {
        if store_attestation(conn, log, attestation)? {
            receipt.stored += 1;
        } else {
            receipt.repeated += 1;
        }
    }
    for event in &batch.events {
        store_event(conn, event)?;
    }
    for rejection in &batch.rejections {
        store_rejection(conn, rejection)?;
    }
    Ok(receipt)
}

/// The host-state row an attestation is compared with.
struct Current {
    key_id: KeyId,
    site_id: String,
    country: String,
    tpp: i64,
    devices: u32,
    last_sequence: i64,
    last_issued_at_ms: i64,
    decommissioned_at_ms: Option<i64>,
    inventory_id: i64,
    gpus: Vec<u8>,
}

/// Stores one attestation; `Ok(false)` for an idempotent repeat.
fn store_attestation(
    conn: &Connection,
    log: &mut Log,
    a: &AcceptedAttestation,
) -> Result<bool, StoreError> {
    let sequence = int("sequence", a.sequence)?;
    let tpp = int("tpp", a.tpp)?;
    let gap_before = int("gap_before", a.gap_before)?;
    let gpus = encode_gpus(&a.gpus)?;

    let current = conn
        .prepare_cached(
            // A subquery, not a join: with a join SQLite marks the statement to be re-prepared
            // whenever its parameter is re-bound, which the statement cache does on every use.
            "SELECT h.key_id, h.last_sequence, h.last_issued_at_ms, h.decommissioned_at_ms,
                    h.inventory_id, (SELECT gpus FROM inventories WHERE id = h.inventory_id),
                    h.site_id, h.country, h.tpp, h.devices
             FROM host_state h WHERE h.host_id = ?1",
        )
        .db()?
        .query_row([&a.host_id], |row| {
            Ok(Current {
                key_id: row.get(0)?,
                last_sequence: row.get(1)?,
                last_issued_at_ms: row.get(2)?,
                decommissioned_at_ms: row.get(3)?,
                inventory_id: row.get(4)?,
                gpus: row.get(5)?,
                site_id: row.get(6)?,
                country: row.get(7)?,
                tpp: row.get(8)?,
                devices: row.get(9)?,
            })
        })
        .optional()
        .db()?;
    // A host's inventory rarely changes: reusing the current row's id saves two statements.
    let inventory_id = match &current {
        Some(current) if current.gpus == gpus => current.inventory_id,
        _ => inventory(conn, &gpus)?,
    };

    let inserted = conn
        .prepare_cached(
            "INSERT INTO attestations (key_id, sequence, digest, previous_digest, host_id,
                 site_id, country, issued_at_ms, received_at_ms, tpp, devices, simulated,
                 gap_before, fresh, inventory_id, envelope, log_index)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (key_id, sequence) DO NOTHING",
        )
        .db()?
        .execute(params![
            a.key_id,
            sequence,
            a.digest,
            a.previous_digest,
            a.host_id,
            a.site_id,
            a.country,
            a.issued_at_ms,
            a.received_at_ms,
            tpp,
            a.devices,
            a.simulated,
            gap_before,
            a.fresh,
            inventory_id,
            a.envelope,
            int("log_index", log.size())?,
        ])
        .map_err(|error| match error.sqlite_error_code() {
            // The only foreign key that can fail here is the agent's: the inventory was
            // just read or written.
            Some(ErrorCode::ConstraintViolation)
                if error.sqlite_error().map(|e| e.extended_code)
                    == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) =>
            {
                StoreError::UnknownKey {
                    key_id: a.key_id,
                    sequence: a.sequence,
                }
            }
            _ => StoreError::backend(error),
        })?;
    if inserted == 0 {
        let stored: [u8; 32] = conn
            .prepare_cached("SELECT digest FROM attestations WHERE key_id = ?1 AND sequence = ?2")
            .db()?
            .query_row(params![a.key_id, sequence], |row| row.get(0))
            .db()?;
        return if stored == a.digest {
            Ok(false)
        } else {
            Err(StoreError::Conflict {
                key_id: a.key_id,
                sequence: a.sequence,
            })
        };
    }

    let row = conn.last_insert_rowid();
    log.append(
        conn,
        &Log::attestation(a.received_at_ms, &a.envelope),
        None,
        None,
        Some(row),
    )?;

    conn.prepare_cached(
        "INSERT INTO chain_heads (key_id, sequence, digest) VALUES (?1, ?2, ?3)
         ON CONFLICT (key_id) DO UPDATE SET sequence = excluded.sequence, digest = excluded.digest
         WHERE excluded.sequence > chain_heads.sequence",
    )
    .db()?
    .execute(params![a.key_id, sequence, a.digest])
    .db()?;

    let decommissioned_at_ms = match &current {
        None => None,
        Some(current) if !is_newer(current, a, sequence) => return Ok(true),
        // A host that attests after its decommissioning is in service again; an attestation
        // issued before it (a late replay) does not undo it.
        Some(current) => current
            .decommissioned_at_ms
            .filter(|&at| a.issued_at_ms <= at),
    };
    conn.prepare_cached(
        "INSERT INTO host_state (host_id, site_id, country, key_id, last_sequence, last_digest,
             last_issued_at_ms, last_received_at_ms, tpp, devices, inventory_id,
             decommissioned_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (host_id) DO UPDATE SET site_id = excluded.site_id,
             country = excluded.country, key_id = excluded.key_id,
             last_sequence = excluded.last_sequence, last_digest = excluded.last_digest,
             last_issued_at_ms = excluded.last_issued_at_ms,
             last_received_at_ms = excluded.last_received_at_ms, tpp = excluded.tpp,
             devices = excluded.devices, inventory_id = excluded.inventory_id,
             decommissioned_at_ms = excluded.decommissioned_at_ms",
    )
    .db()?
    .execute(params![
        a.host_id,
        a.site_id,
        a.country,
        a.key_id,
        sequence,
        a.digest,
        a.issued_at_ms,
        a.received_at_ms,
        tpp,
        a.devices,
        inventory_id,
        decommissioned_at_ms,
    ])
    .db()?;
    if current.as_ref().map(|c| c.inventory_id) != Some(inventory_id) {
        replace_gpus(conn, a)?;
    }
    let changed = match &current {
        None => true,
        // Still decommissioned (a replay issued before it): no change in what counts.
        Some(_) if decommissioned_at_ms.is_some() => false,
        Some(current) => {
            current.decommissioned_at_ms.is_some()
                || current.site_id != a.site_id
                || current.country != a.country
                || current.tpp != tpp
                || current.devices != a.devices
        }
    };
    if changed {
        host_change(conn, a.issued_at_ms, &a.host_id, "attested")?;
    }
    Ok(true)
}

/// Records the host's state (as `host_state` now holds it) from `at_ms` on.
fn host_change(conn: &Connection, at_ms: i64, host_id: &str, kind: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp, devices, kind)
         SELECT ?1, host_id, site_id, country, tpp, devices, ?3 FROM host_state
         WHERE host_id = ?2",
    )
    .db()?
    .execute(params![at_ms, host_id, kind])
    .db()?;
    Ok(())
}

/// Whether `a` should become its host's state: the next link of the same chain, or another
/// key's attestation issued no earlier (a re-enrolled host).
fn is_newer(current: &Current, a: &AcceptedAttestation, sequence: i64) -> bool {
    if current.key_id == a.key_id {
        sequence > current.last_sequence
    } else {
        a.issued_at_ms >= current.last_issued_at_ms
    }
}

/// The id of the inventory row holding `gpus`, created if new.
fn inventory(conn: &Connection, gpus: &[u8]) -> Result<i64, StoreError> {
    conn.prepare_cached("INSERT INTO inventories (gpus) VALUES (?1) ON CONFLICT (gpus) DO NOTHING")
        .db()?
        .execute([gpus])
        .db()?;
    conn.prepare_cached("SELECT id FROM inventories WHERE gpus = ?1")
        .db()?
        .query_row([gpus], |row| row.get(0))
        .db()
}

fn replace_gpus(conn: &Connection, a: &AcceptedAttestation) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM gpus WHERE host_id = ?1")
        .db()?
        .execute([&a.host_id])
        .db()?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO gpus (host_id, position, uuid, serial, catalogue_id, tpp)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .db()?;
    for (position, gpu) in a.gpus.iter().enumerate() {
        let position = int("gpu position", position as u64)?;
        insert
            .execute(params![
                a.host_id,
                position,
                gpu.uuid,
                gpu.serial,
                gpu.catalogue_id,
                int("gpu tpp", gpu.tpp)?,
            ])
            .db()?;
    }
    Ok(())
}

fn store_event(conn: &Connection, event: &Event) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (at_ms, kind, host_id, key_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db()?
    .execute(params![
        event.at_ms,
        event.kind,
        event.host_id,
        event.key_id,
        event.detail
    ])
    .db()?;
    Ok(())
}

fn store_rejection(conn: &Connection, rejection: &Rejection) -> Result<(), StoreError> {
    let sequence = rejection
        .sequence
        .map(|s| int("rejection sequence", s))
        .transpose()?;
    conn.prepare_cached(
        "INSERT INTO rejections (at_ms, reason, key_id, host_id, sequence, peer, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![
        rejection.at_ms,
        rejection.reason,
        rejection.key_id,
        rejection.host_id,
        sequence,
        rejection.peer,
        rejection.detail,
    ])
    .db()?;
    conn.prepare_cached(
        "INSERT INTO rejection_counts (reason, count) VALUES (?1, 1)
         ON CONFLICT (reason) DO UPDATE SET count = count + 1",
    )
    .db()?
    .execute([&rejection.reason])
    .db()?;
    Ok(())
}

/// Runs `write` in one IMMEDIATE transaction with the log: on any failure nothing is stored
/// and the log's frontier is put back.
fn logged<T>(
    conn: &mut Connection,
    log: &mut Log,
    write: impl FnOnce(&Connection, &mut Log) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mark = log.mark();
    let result = (|| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let value = write(&tx, log)?;
        tx.commit().db()?;
        Ok(value)
    })();
    if result.is_err() {
        log.reset(mark);
    }
    result
}

pub(crate) fn put_agent(
    conn: &mut Connection,
    log: &mut Log,
    agent: &AgentRecord,
) -> Result<(), StoreError> {
    logged(conn, log, |conn, log| {
        // The public key is left as first enrolled: the key id is its hash, so a different
        // key under the same id is impossible for an honest caller.
        conn.prepare_cached(
            "INSERT INTO agents (key_id, public_key, host_id, site_id, identity, enrolled_at_ms,
                 revoked_at_ms, country)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (key_id) DO UPDATE SET host_id = excluded.host_id,
                 site_id = excluded.site_id, identity = excluded.identity,
                 enrolled_at_ms = excluded.enrolled_at_ms, country = excluded.country,
                 revoked_at_ms = coalesce(agents.revoked_at_ms, excluded.revoked_at_ms)",
        )
        .db()?
        .execute(params![
            agent.key_id,
            agent.public_key,
            agent.host_id,
            agent.site_id,
            agent.identity,
            agent.enrolled_at_ms,
            agent.revoked_at_ms,
            agent.country,
        ])
        .db()?;
        log.append(
            conn,
            &Log::enrolment(agent),
            Some(&agent.key_id),
            Some(&agent.host_id),
            None,
        )?;
        if let Some(at_ms) = agent.revoked_at_ms {
            log.append(
                conn,
                &Log::revocation(&agent.key_id, at_ms),
                Some(&agent.key_id),
                Some(&agent.host_id),
                None,
            )?;
        }
        Ok(())
    })
}

pub(crate) fn revoke_agent(
    conn: &mut Connection,
    log: &mut Log,
    key_id: &KeyId,
    at_ms: i64,
) -> Result<bool, StoreError> {
    logged(conn, log, |conn, log| {
        let changed = conn
            .prepare_cached(
                "UPDATE agents SET revoked_at_ms = ?2
                 WHERE key_id = ?1 AND revoked_at_ms IS NULL",
            )
            .db()?
            .execute(params![key_id, at_ms])
            .db()?;
        if changed == 1 {
            log.append(
                conn,
                &Log::revocation(key_id, at_ms),
                Some(key_id),
                None,
                None,
            )?;
        }
        Ok(changed == 1)
    })
}

pub(crate) fn decommission(
    conn: &mut Connection,
    log: &mut Log,
    host_id: &str,
    at_ms: i64,
) -> Result<bool, StoreError> {
    logged(conn, log, |conn, log| {
        let changed = conn
            .prepare_cached(
                "UPDATE host_state SET decommissioned_at_ms = ?2
                 WHERE host_id = ?1 AND decommissioned_at_ms IS NULL",
            )
            .db()?
            .execute(params![host_id, at_ms])
            .db()?;
        if changed == 1 {
            let entry = LogEntry::HostDecommissioned {
                at_ms,
                host_id: host_id.to_owned(),
            };
            log.append(conn, &entry, None, Some(host_id), None)?;
            host_change(conn, at_ms, host_id, "decommissioned")?;
        }
        Ok(changed == 1)
    })
}

pub(crate) fn put_tree_head(
    conn: &mut Connection,
    head: &StoredTreeHead,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO tree_heads (tree_size, root, timestamp_ms, envelope) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tree_size) DO NOTHING",
    )
    .db()?
    .execute(params![
        int("tree_size", head.tree_size)?,
        head.root,
        head.timestamp_ms,
        head.envelope
    ])
    .db()?;
    Ok(())
}

pub(crate) fn put_token(conn: &mut Connection, token: &EnrollToken) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO enroll_tokens (token_hash, site_id, created_at_ms, expires_at_ms, used_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (token_hash) DO UPDATE SET site_id = excluded.site_id,
             created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms,
             used_at_ms = excluded.used_at_ms",
    )
    .db()?
    .execute(params![
        token.token_hash,
        token.site_id,
        token.created_at_ms,
        token.expires_at_ms,
        token.used_at_ms,
    ])
    .db()?;
    Ok(())
}

/// Checks and marks the token in one transaction; the single writer makes that atomic even
/// against other processes (IMMEDIATE holds the write lock from the read on).
pub(crate) fn use_token(
    conn: &mut Connection,
    token_hash: &[u8; 32],
    now_ms: i64,
) -> Result<EnrollToken, TokenError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let token = tx
        .prepare_cached(
            "SELECT token_hash, site_id, created_at_ms, expires_at_ms, used_at_ms
             FROM enroll_tokens WHERE token_hash = ?1",
        )
        .db()?
        .query_row([token_hash], |row| {
            Ok(EnrollToken {
                token_hash: row.get(0)?,
                site_id: row.get(1)?,
                created_at_ms: row.get(2)?,
                expires_at_ms: row.get(3)?,
                used_at_ms: row.get(4)?,
            })
        })
        .optional()
        .db()?;
    let Some(mut token) = token else {
        return Err(TokenError::Unknown);
    };
    if token.used_at_ms.is_some() {
        return Err(TokenError::AlreadyUsed);
    }
    if now_ms >= token.expires_at_ms {
        return Err(TokenError::Expired);
    }
    tx.prepare_cached("UPDATE enroll_tokens SET used_at_ms = ?2 WHERE token_hash = ?1")
        .db()?
        .execute(params![token_hash, now_ms])
        .db()?;
    tx.commit().db()?;
    token.used_at_ms = Some(now_ms);
    Ok(token)
}
