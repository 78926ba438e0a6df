//! The statements the writer runs: storing a batch (inside the writer's savepoint) and the
//! administrative writes (each its own transaction).

use std::collections::HashMap;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use proto_evidence::LogEntry;

use crate::Db;
use crate::codec::{decode_gpus, encode_gpus, int, sha256};
use crate::log::Log;
use collector_store::{
    AcceptedAttestation, AgentRecord, Batch, ChainDigest, CommitReceipt, EnrollToken, Event, Gpu,
    HostChange, HostId, HostState, HostUpdate, KeyId, Rejection, SiteId, StoreError,
    StoredCosignature, StoredTreeHead, TokenError,
};

/// Stores one batch on `conn`, which the caller has inside a savepoint: on any error the caller
/// rolls back whatever this had written.
/// Its attestations are appended to `log`; the caller resets the log's frontier if it rolls
/// back. The hosts' updates are the ledger's decisions, persisted as they are.
pub(crate) fn batch(
    conn: &Connection,
    log: &mut Log,
    batch: &Batch,
) -> Result<CommitReceipt, StoreError> {
    let mut receipt = CommitReceipt::default();
    let mut inventories = Inventories::default();
    for attestation in &batch.attestations {
        if store_attestation(conn, log, &mut inventories, attestation)? {
            receipt.stored += 1;
        } else {
            receipt.repeated += 1;
        }
    }
    for update in &batch.hosts {
        store_host(conn, &mut inventories, update)?;
    }
    for event in &batch.events {
        store_event(conn, event)?;
    }
    for rejection in &batch.rejections {
        store_rejection(conn, rejection)?;
    }
    Ok(receipt)
}

/// Inventory ids resolved within one batch, and each host's current inventory: a host's
/// inventory rarely changes, so reusing its id saves two statements per attestation.
#[derive(Default)]
struct Inventories {
    ids: HashMap<Vec<u8>, i64>,
    current: HashMap<String, Option<i64>>,
}

impl Inventories {
    /// The id of `gpus` (encoded), created if new.
    fn id(&mut self, conn: &Connection, host: &str, gpus: Vec<u8>) -> Result<i64, StoreError> {
        if let Some(&id) = self.ids.get(&gpus) {
            return Ok(id);
        }
        let current = self.current(conn, host)?;
        let id = match current {
            Some((id, blob)) if blob == gpus => id,
            _ => inventory(conn, &gpus)?,
        };
        self.ids.insert(gpus, id);
        Ok(id)
    }

    /// The host's current inventory id and list, read once per batch.
    fn current(
        &mut self,
        conn: &Connection,
        host: &str,
    ) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let found: Option<(i64, Vec<u8>)> = conn
            .prepare_cached(
                // A subquery, not a join: with a join SQLite marks the statement to be
                // re-prepared whenever its parameter is re-bound.
                "SELECT h.inventory_id, (SELECT gpus FROM inventories WHERE id = h.inventory_id)
                 FROM host_state h WHERE h.host_id = ?1",
            )
            .db()?
            .query_row([host], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .db()?;
        self.current
            .insert(host.to_owned(), found.as_ref().map(|(id, _)| *id));
        if let Some((id, blob)) = &found {
            self.ids.entry(blob.clone()).or_insert(*id);
        }
        Ok(found)
    }

    /// The host's inventory id as of the last update in this batch (or as stored).
    fn held(&mut self, conn: &Connection, host: &str) -> Result<Option<i64>, StoreError> {
        if let Some(id) = self.current.get(host) {
            return Ok(*id);
        }
        Ok(self.current(conn, host)?.map(|(id, _)| id))
    }
}

/// Stores one attestation; `Ok(false)` for an idempotent repeat.
fn store_attestation(
    conn: &Connection,
    log: &mut Log,
    inventories: &mut Inventories,
    a: &AcceptedAttestation,
) -> Result<bool, StoreError> {
    let sequence = int("sequence", a.sequence)?;
    let tpp = int("tpp", a.tpp)?;
    let gap_before = int("gap_before", a.gap_before)?;
    let inventory_id = inventories.id(conn, &a.host_id.0, encode_gpus(&a.gpus)?)?;

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
            a.key_id.0.as_bytes(),
            sequence,
            a.digest.0.as_bytes(),
            a.previous_digest.0.as_bytes(),
            a.host_id.0,
            a.site_id.0,
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
        let stored: Vec<u8> = conn
            .prepare_cached("SELECT digest FROM attestations WHERE key_id = ?1 AND sequence = ?2")
            .db()?
            .query_row(params![a.key_id.0.as_bytes(), sequence], |row| row.get(0))
            .db()?;
        return if ChainDigest(sha256(&stored, "digest")?) == a.digest {
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
    .execute(params![
        a.key_id.0.as_bytes(),
        sequence,
        a.digest.0.as_bytes()
    ])
    .db()?;
    Ok(true)
}

/// Persists one host's state as the ledger left it, its GPUs when they changed, and its
/// change of what counts.
fn store_host(
    conn: &Connection,
    inventories: &mut Inventories,
    update: &HostUpdate,
) -> Result<(), StoreError> {
    let state = &update.state;
    let held = inventories.held(conn, &state.host_id.0)?;
    let inventory_id = inventories.id(conn, &state.host_id.0, encode_gpus(&update.gpus)?)?;
    write_host_state(conn, state, inventory_id)?;
    if held != Some(inventory_id) {
        replace_gpus(conn, &state.host_id.0, &update.gpus)?;
        inventories
            .current
            .insert(state.host_id.0.clone(), Some(inventory_id));
    }
    if let Some(change) = &update.change {
        host_change(
            conn,
            change,
            if change.decommissioned {
                "stopped"
            } else {
                "attested"
            },
        )?;
    }
    Ok(())
}

fn write_host_state(
    conn: &Connection,
    state: &HostState,
    inventory_id: i64,
) -> Result<(), StoreError> {
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
        state.host_id.0,
        state.site_id.0,
        state.country,
        state.key_id.0.as_bytes(),
        int("last_sequence", state.last_sequence)?,
        state.last_digest.0.as_bytes(),
        state.last_issued_at_ms,
        state.last_received_at_ms,
        int("tpp", state.tpp)?,
        state.devices,
        inventory_id,
        state.decommissioned_at_ms,
    ])
    .db()?;
    Ok(())
}

/// Appends a host change, in the ledger's order.
fn host_change(conn: &Connection, change: &HostChange, kind: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp, devices, kind,
             hardware_tpp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        change.at_ms,
        change.host_id.0,
        change.site_id.0,
        change.country,
        int("tpp", change.tpp)?,
        change.devices,
        kind,
        int("hardware tpp", change.hardware_tpp)?,
    ])
    .db()?;
    Ok(())
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

fn replace_gpus(conn: &Connection, host_id: &str, gpus: &[Gpu]) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM gpus WHERE host_id = ?1")
        .db()?
        .execute([host_id])
        .db()?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO gpus (host_id, position, uuid, serial, catalogue_id, tpp, counted,
                 hardware, hardware_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .db()?;
    for (position, gpu) in gpus.iter().enumerate() {
        let position = int("gpu position", position as u64)?;
        insert
            .execute(params![
                host_id,
                position,
                gpu.uuid,
                gpu.serial,
                gpu.catalogue_id,
                int("gpu tpp", gpu.tpp)?,
                gpu.counted,
                gpu.hardware,
                gpu.hardware_at_ms,
            ])
            .db()?;
    }
    Ok(())
}

fn store_event(conn: &Connection, event: &Event) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (at_ms, kind, host_id, key_id, detail, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![
        event.at_ms,
        event.kind,
        event.host_id.as_ref().map(|host| &host.0),
        event.key_id.as_ref().map(|key| key.0.as_bytes()),
        event.detail,
        event.value
    ])
    .db()?;
    Ok(())
}

fn store_rejection(conn: &Connection, rejection: &Rejection) -> Result<(), StoreError> {
    let sequence = rejection
        .sequence
        .map(|s| int("rejection sequence", s))
        .transpose()?;
    let count = int("rejection count", rejection.count.max(1))?;
    conn.prepare_cached(
        "INSERT INTO rejections (at_ms, reason, key_id, host_id, sequence, peer, detail, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        rejection.at_ms,
        rejection.reason,
        rejection.key_id.as_ref().map(|key| key.0.as_bytes()),
        rejection.host_id.as_ref().map(|host| &host.0),
        sequence,
        rejection.peer,
        rejection.detail,
        count,
    ])
    .db()?;
    conn.prepare_cached(
        "INSERT INTO rejection_counts (reason, count) VALUES (?1, ?2)
         ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
    )
    .db()?
    .execute(params![rejection.reason, count])
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
        if key_known(conn, &agent.key_id)? || host_known(conn, &agent.host_id.0)? {
            return Err(StoreError::AlreadyEnrolled {
                key_id: agent.key_id,
            });
        }
        insert_agent(conn, agent)?;
        let empty = inventory(conn, &encode_gpus(&[])?)?;
        write_host_state(conn, &HostState::enrolled(agent), empty)?;
        log.append(
            conn,
            &Log::enrolment(agent),
            Some(&agent.key_id),
            Some(&agent.host_id.0),
            None,
        )?;
        if let Some(at_ms) = agent.revoked_at_ms {
            log.append(
                conn,
                &Log::revocation(&agent.key_id, at_ms),
                Some(&agent.key_id),
                Some(&agent.host_id.0),
                None,
            )?;
        }
        Ok(())
    })
}

pub(crate) fn rebind_host(
    conn: &mut Connection,
    log: &mut Log,
    agent: &AgentRecord,
    change: Option<&HostChange>,
) -> Result<(), StoreError> {
    logged(conn, log, |conn, log| {
        if key_known(conn, &agent.key_id)? {
            return Err(StoreError::AlreadyEnrolled {
                key_id: agent.key_id,
            });
        }
        if !host_known(conn, &agent.host_id.0)? {
            return Err(StoreError::Corrupt(format!(
                "host {} has no state to re-bind",
                agent.host_id
            )));
        }
        insert_agent(conn, agent)?;
        conn.prepare_cached(
            "UPDATE agents SET revoked_at_ms = ?3
             WHERE host_id = ?1 AND key_id != ?2 AND revoked_at_ms IS NULL",
        )
        .db()?
        .execute(params![
            agent.host_id.0,
            agent.key_id.0.as_bytes(),
            agent.enrolled_at_ms
        ])
        .db()?;
        let empty = inventory(conn, &encode_gpus(&[])?)?;
        conn.prepare_cached(
            "UPDATE host_state SET site_id = ?2, country = ?3, key_id = ?4, last_sequence = 0,
                 last_digest = zeroblob(32), tpp = 0, devices = 0, inventory_id = ?5,
                 decommissioned_at_ms = NULL
             WHERE host_id = ?1",
        )
        .db()?
        .execute(params![
            agent.host_id.0,
            agent.site_id.0,
            agent.country,
            agent.key_id.0.as_bytes(),
            empty
        ])
        .db()?;
        conn.prepare_cached("DELETE FROM gpus WHERE host_id = ?1")
            .db()?
            .execute([&agent.host_id.0])
            .db()?;
        if let Some(change) = change {
            host_change(conn, change, "rebound")?;
        }
        log.append(
            conn,
            &Log::rebinding(agent),
            Some(&agent.key_id),
            Some(&agent.host_id.0),
            None,
        )?;
        Ok(())
    })
}

fn insert_agent(conn: &Connection, agent: &AgentRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO agents (key_id, public_key, host_id, site_id, identity, enrolled_at_ms,
             revoked_at_ms, country)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .db()?
    .execute(params![
        agent.key_id.0.as_bytes(),
        agent.public_key,
        agent.host_id.0,
        agent.site_id.0,
        agent.identity,
        agent.enrolled_at_ms,
        agent.revoked_at_ms,
        agent.country,
    ])
    .db()?;
    Ok(())
}

fn key_known(conn: &Connection, key_id: &KeyId) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM agents WHERE key_id = ?1")
        .db()?
        .query_row([key_id.0.as_bytes()], |_| Ok(()))
        .optional()
        .db()
        .map(|found| found.is_some())
}

fn host_known(conn: &Connection, host_id: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM host_state WHERE host_id = ?1")
        .db()?
        .query_row([host_id], |_| Ok(()))
        .optional()
        .db()
        .map(|found| found.is_some())
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
            .execute(params![key_id.0.as_bytes(), at_ms])
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
        let held: Option<Vec<u8>> = conn
            .prepare_cached(
                "SELECT (SELECT gpus FROM inventories WHERE id = h.inventory_id)
                 FROM host_state h WHERE h.host_id = ?1 AND h.decommissioned_at_ms IS NULL",
            )
            .db()?
            .query_row([host_id], |row| row.get(0))
            .optional()
            .db()?;
        let Some(held) = held else {
            return Ok(false);
        };
        // Its GPUs are released: kept as reported, none counted.
        let mut gpus = decode_gpus(&held)?;
        for gpu in &mut gpus {
            gpu.counted = false;
        }
        let released = inventory(conn, &encode_gpus(&gpus)?)?;
        conn.prepare_cached(
            "UPDATE host_state SET decommissioned_at_ms = ?2, tpp = 0, devices = 0,
                 inventory_id = ?3
             WHERE host_id = ?1",
        )
        .db()?
        .execute(params![host_id, at_ms, released])
        .db()?;
        replace_gpus(conn, host_id, &gpus)?;
        let entry = LogEntry::HostDecommissioned {
            at_ms,
            host_id: host_id.to_owned(),
        };
        log.append(conn, &entry, None, Some(host_id), None)?;
        conn.prepare_cached(
            "INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp, devices, kind)
             SELECT ?1, host_id, site_id, country, 0, 0, 'decommissioned' FROM host_state
             WHERE host_id = ?2",
        )
        .db()?
        .execute(params![at_ms, host_id])
        .db()?;
        Ok(true)
    })
}

/// Appends a measurement leaf (`entry`, from `collector_store::measurement_entry`) about
/// `host_id` in its own transaction; returns its index.
pub(crate) fn append_measurement(
    conn: &mut Connection,
    log: &mut Log,
    host_id: &str,
    entry: &LogEntry,
) -> Result<u64, StoreError> {
    logged(conn, log, |conn, log| {
        log.append(conn, entry, None, Some(host_id), None)
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

pub(crate) fn put_cosignature(
    conn: &mut Connection,
    cosignature: &StoredCosignature,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cosignatures (tree_size, witness, line, received_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tree_size, witness) DO UPDATE SET line = excluded.line,
             received_at_ms = excluded.received_at_ms",
    )
    .db()?
    .execute(params![
        int("tree_size", cosignature.tree_size)?,
        cosignature.witness,
        cosignature.line,
        cosignature.received_at_ms
    ])
    .db()?;
    Ok(())
}

pub(crate) fn put_token(conn: &mut Connection, token: &EnrollToken) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO enroll_tokens (token_hash, site_id, created_at_ms, expires_at_ms, used_at_ms,
             rebind_host)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (token_hash) DO UPDATE SET site_id = excluded.site_id,
             created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms,
             used_at_ms = excluded.used_at_ms, rebind_host = excluded.rebind_host",
    )
    .db()?
    .execute(params![
        token.token_hash,
        token.site_id.0,
        token.created_at_ms,
        token.expires_at_ms,
        token.used_at_ms,
        token.rebind_host.as_ref().map(|host| &host.0),
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
            "SELECT token_hash, site_id, created_at_ms, expires_at_ms, used_at_ms, rebind_host
             FROM enroll_tokens WHERE token_hash = ?1",
        )
        .db()?
        .query_row([token_hash], |row| {
            Ok(EnrollToken {
                token_hash: row.get(0)?,
                site_id: SiteId(row.get(1)?),
                created_at_ms: row.get(2)?,
                expires_at_ms: row.get(3)?,
                used_at_ms: row.get(4)?,
                rebind_host: row.get::<_, Option<String>>(5)?.map(HostId),
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
