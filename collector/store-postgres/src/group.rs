//! One group commit as one transaction: three round trips whatever the group's size.
//!
//! 1. BEGIN, the log's lock, the log's size, and what the decision needs (enrolled keys,
//!    stored digests of the group's (key, sequence) pairs, the inventories of the group's
//!    hosts), pipelined.
//! 2. The decision (`Plan`) in memory, then every write as one multi-row statement per table,
//!    pipelined.
//! 3. COMMIT, once every statement succeeded and wrote the rows it should have.

use std::collections::{BTreeSet, HashSet};

use collector_store::{Batch, CommitReceipt, KeyId, StoreError};
use proto_merkle::Frontier;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::codec::{get, get_32, get_digest, get_key_id, int, param};
use crate::log::{self, Append};
use crate::pipeline::{self, Step};
use crate::plan::{Known, Plan, Prepared};
use crate::pool::{Conn, Db};

/// Why a group's transaction failed.
#[derive(Debug)]
pub(crate) enum GroupError {
    /// A statement refused the data (SQLSTATE class 22 or 23, or a row not written as
    /// decided): running each batch alone finds the batch that caused it.
    Alone(StoreError),
    /// The connection or the server failed: every batch of the group gets the error.
    Fail(StoreError),
}

impl From<StoreError> for GroupError {
    fn from(error: StoreError) -> Self {
        Self::Fail(error)
    }
}

/// Each batch's outcome, and the log's frontier after the commit.
pub(crate) type Outcomes = (Vec<Result<CommitReceipt, StoreError>>, Frontier);

const BEGIN: &str = "BEGIN";
const AGENTS: &str = "SELECT key_id FROM agents WHERE key_id = ANY($1::bytea[])";
const STORED: &str = "SELECT a.key_id, a.sequence, a.digest FROM attestations a
     JOIN unnest($1::bytea[], $2::bigint[]) AS u(key_id, sequence)
       ON a.key_id = u.key_id AND a.sequence = u.sequence";
const HOSTS: &str = "SELECT h.host_id, i.hash
     FROM host_state h JOIN inventories i ON i.id = h.inventory_id
     WHERE h.host_id = ANY($1::text[])";

const INSERT_INVENTORIES: &str = "INSERT INTO inventories (hash, uuids, serials, catalogue_ids, tpps,
         counted, hardware, hardware_at_ms)
     SELECT h.hash,
         coalesce(array_agg(g.uuid ORDER BY g.position) FILTER (WHERE g.position IS NOT NULL), '{}'),
         coalesce(array_agg(g.serial ORDER BY g.position) FILTER (WHERE g.position IS NOT NULL), '{}'),
         coalesce(array_agg(g.catalogue_id ORDER BY g.position)
             FILTER (WHERE g.position IS NOT NULL), '{}'),
         coalesce(array_agg(g.tpp ORDER BY g.position) FILTER (WHERE g.position IS NOT NULL), '{}'),
         coalesce(array_agg(g.counted ORDER BY g.position)
             FILTER (WHERE g.position IS NOT NULL), '{}'),
         coalesce(array_agg(g.hardware ORDER BY g.position)
             FILTER (WHERE g.position IS NOT NULL), '{}'),
         coalesce(array_agg(g.hardware_at_ms ORDER BY g.position)
             FILTER (WHERE g.position IS NOT NULL), '{}')
     FROM unnest($1::bytea[]) AS h(hash)
     LEFT JOIN unnest($2::bytea[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::bigint[],
             $8::boolean[], $9::text[], $10::bigint[])
         AS g(hash, position, uuid, serial, catalogue_id, tpp, counted, hardware, hardware_at_ms)
         ON g.hash = h.hash
     GROUP BY h.hash
     ON CONFLICT (hash) DO NOTHING";
const INSERT_ATTESTATIONS: &str = "INSERT INTO attestations (key_id, sequence, digest,
         previous_digest, host_id, site_id, country, issued_at_ms, received_at_ms, tpp, devices,
         simulated, gap_before, fresh, inventory_id, envelope, log_index)
     SELECT u.key_id, u.sequence, u.digest, u.previous_digest, u.host_id, u.site_id, u.country,
         u.issued_at_ms, u.received_at_ms, u.tpp, u.devices, u.simulated, u.gap_before, u.fresh,
         i.id, u.envelope, u.log_index
     FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[], $5::text[], $6::text[],
             $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::boolean[],
             $13::bigint[], $14::boolean[], $15::bytea[], $16::bytea[], $17::bigint[])
         AS u(key_id, sequence, digest, previous_digest, host_id, site_id, country, issued_at_ms,
             received_at_ms, tpp, devices, simulated, gap_before, fresh, inventory, envelope,
             log_index)
     JOIN inventories i ON i.hash = u.inventory";
const UPSERT_CHAIN_HEADS: &str = "INSERT INTO chain_heads (key_id, sequence, digest)
     SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[])
     ON CONFLICT (key_id) DO UPDATE SET sequence = excluded.sequence, digest = excluded.digest
     WHERE excluded.sequence > chain_heads.sequence";
/// The ledger's state of each updated host, as it is.
const UPSERT_HOSTS: &str = "INSERT INTO host_state AS h (host_id, site_id, country, key_id,
         last_sequence, last_digest, last_issued_at_ms, last_received_at_ms, tpp, devices,
         inventory_id, decommissioned_at_ms)
     SELECT u.host_id, u.site_id, u.country, u.key_id, u.last_sequence, u.last_digest,
         u.last_issued_at_ms, u.last_received_at_ms, u.tpp, u.devices, i.id,
         u.decommissioned_at_ms
     FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bigint[], $6::bytea[],
             $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bytea[], $12::bigint[])
         AS u(host_id, site_id, country, key_id, last_sequence, last_digest, last_issued_at_ms,
             last_received_at_ms, tpp, devices, inventory, decommissioned_at_ms)
     JOIN inventories i ON i.hash = u.inventory
     ON CONFLICT (host_id) DO UPDATE SET site_id = excluded.site_id,
         country = excluded.country, key_id = excluded.key_id,
         last_sequence = excluded.last_sequence, last_digest = excluded.last_digest,
         last_issued_at_ms = excluded.last_issued_at_ms,
         last_received_at_ms = excluded.last_received_at_ms, tpp = excluded.tpp,
         devices = excluded.devices, inventory_id = excluded.inventory_id,
         decommissioned_at_ms = excluded.decommissioned_at_ms";
const DELETE_GPUS: &str = "DELETE FROM gpus WHERE host_id = ANY($1::text[])";
const INSERT_GPUS: &str = "INSERT INTO gpus (host_id, position, uuid, serial, catalogue_id, tpp,
         counted, hardware, hardware_at_ms)
     SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[],
         $6::bigint[], $7::boolean[], $8::text[], $9::bigint[])";
const INSERT_CHANGES: &str = "INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp,
         devices, kind, hardware_tpp)
     SELECT u.at_ms, u.host_id, u.site_id, u.country, u.tpp, u.devices, u.kind, u.hardware_tpp
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
             $7::text[], $8::bigint[])
         WITH ORDINALITY AS u(at_ms, host_id, site_id, country, tpp, devices, kind, hardware_tpp,
             n)
     ORDER BY u.n";
const INSERT_EVENTS: &str = "INSERT INTO events (at_ms, kind, host_id, key_id, detail, value)
     SELECT u.at_ms, u.kind, u.host_id, u.key_id, u.detail, u.value
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::bigint[])
         WITH ORDINALITY AS u(at_ms, kind, host_id, key_id, detail, value, n)
     ORDER BY u.n";
const INSERT_REJECTIONS: &str = "INSERT INTO rejections (at_ms, reason, key_id, host_id, sequence,
         peer, detail, count)
     SELECT u.at_ms, u.reason, u.key_id, u.host_id, u.sequence, u.peer, u.detail, u.count
     FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::text[],
             $7::text[], $8::bigint[])
         WITH ORDINALITY AS u(at_ms, reason, key_id, host_id, sequence, peer, detail, count, n)
     ORDER BY u.n";
const UPSERT_REJECTION_COUNTS: &str = "INSERT INTO rejection_counts (reason, count)
     SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (reason) DO UPDATE SET count = rejection_counts.count + excluded.count";

/// Stores `batches` in one transaction on `conn`. `cached` is the frontier this writer last
/// committed, reused when no other writer appended since.
pub(crate) async fn commit(
    conn: &mut Conn,
    log_lock: i64,
    cached: Option<Frontier>,
    batches: &[&Batch],
) -> Result<Outcomes, GroupError> {
    // Hashing and conversions first: the lock is then held for the decision and the writes.
    let prepared: Vec<Prepared<'_>> = batches.iter().map(|batch| Prepared::new(batch)).collect();
    let result = run(conn, log_lock, cached, batches, &prepared).await;
    if result.is_err() {
        // The error is the answer; a failed rollback means the connection is gone, and the
        // server rolls back on its own then.
        let _ = conn.client().batch_execute("ROLLBACK").await;
    }
    result
}

async fn run(
    conn: &mut Conn,
    log_lock: i64,
    cached: Option<Frontier>,
    batches: &[&Batch],
    prepared: &[Prepared<'_>],
) -> Result<Outcomes, GroupError> {
    let (known, size) = read_known(conn, log_lock, batches).await?;
    let frontier = match (size, cached) {
        (None, cached) => cached.unwrap_or_default(),
        (Some(size), Some(cached)) if cached.size() == size => cached,
        (Some(size), _) => log::restore(conn, size).await?,
    };
    let mut plan = Plan::new(known, Append::new(frontier));
    let outcomes: Vec<_> = prepared.iter().map(|batch| plan.add(batch)).collect();

    let columns = Columns::new(&plan).map_err(GroupError::Alone)?;
    let log_columns = plan.log.columns().map_err(GroupError::Alone)?;
    let mut statements = columns.statements();
    statements.extend(
        log_columns
            .statements()
            .into_iter()
            .map(|(sql, params)| (sql, params, None)),
    );
    let mut prepared = Vec::with_capacity(statements.len());
    for (sql, _, _) in &statements {
        prepared.push(conn.statement(sql).await?);
    }
    let client = conn.client();
    let steps: Vec<Step<'_, u64>> = statements
        .iter()
        .zip(&prepared)
        .map(|((_, params, _), statement)| pipeline::execute(client, statement, params.clone()))
        .collect();
    let results = pipeline::in_order(steps).await;
    for ((sql, _, expected), result) in statements.iter().zip(results) {
        let written = result.map_err(classify)?;
        if let Some(expected) = expected
            && written != *expected
        {
            return Err(GroupError::Alone(StoreError::Corrupt(format!(
                "wrote {written} rows instead of {expected} with: {}",
                sql.lines().next().unwrap_or_default()
            ))));
        }
    }
    client.batch_execute("COMMIT").await.db()?;
    Ok((outcomes, plan.log.frontier().clone()))
}

/// BEGIN, and when the group holds attestations or host updates: the lock, the log's size and
/// what the plan needs, in one round trip. The size is `None` for a group without either,
/// which appends nothing, writes no host and takes no lock.
async fn read_known(
    conn: &mut Conn,
    log_lock: i64,
    batches: &[&Batch],
) -> Result<(Known, Option<u64>), GroupError> {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut seen_keys: HashSet<&KeyId> = HashSet::new();
    let mut pair_keys: Vec<&[u8]> = Vec::new();
    let mut pair_sequences: Vec<i64> = Vec::new();
    let mut hosts: BTreeSet<&str> = BTreeSet::new();
    for a in batches.iter().flat_map(|batch| &batch.attestations) {
        if seen_keys.insert(&a.key_id) {
            keys.push(a.key_id.0.as_bytes());
        }
        // A sequence out of range fails its batch in the plan; nothing stored can match it.
        if let Ok(sequence) = i64::try_from(a.sequence) {
            pair_keys.push(a.key_id.0.as_bytes());
            pair_sequences.push(sequence);
        }
        hosts.insert(&a.host_id.0);
    }
    for update in batches.iter().flat_map(|batch| &batch.hosts) {
        hosts.insert(&update.state.host_id.0);
    }
    let hosts: Vec<&str> = hosts.into_iter().collect();
    // Host states are written under the log's lock too, so that every replica's writes to
    // them are serialized and the inventories read here are the latest.
    let locks = !hosts.is_empty();

    let begin = conn.statement(BEGIN).await?;
    let lock = conn.statement(log::LOCK).await?;
    let size = conn.statement(log::SIZE).await?;
    let agents = conn.statement(AGENTS).await?;
    let stored = conn.statement(STORED).await?;
    let host_rows = conn.statement(HOSTS).await?;
    let lock_params = [param(&log_lock)];
    let agent_params = [param(&keys)];
    let stored_params = [param(&pair_keys), param(&pair_sequences)];
    let host_params = [param(&hosts)];
    let client = conn.client();
    let mut steps: Vec<Step<'_, Vec<Row>>> = vec![Box::pin(client.query(&begin, &[]))];
    if locks {
        steps.push(Box::pin(client.query(&lock, &lock_params)));
        steps.push(Box::pin(client.query(&size, &[])));
        steps.push(Box::pin(client.query(&agents, &agent_params)));
        steps.push(Box::pin(client.query(&stored, &stored_params)));
        steps.push(Box::pin(client.query(&host_rows, &host_params)));
    }
    let mut results = Vec::with_capacity(steps.len());
    for result in pipeline::in_order(steps).await {
        // A host id PostgreSQL refuses (a NUL character) fails already here.
        results.push(result.map_err(classify)?);
    }
    let mut known = Known::default();
    let [_begin, _lock, size_rows, agent_rows, stored_rows, host_rows] = &results[..] else {
        return Ok((known, None));
    };
    let size: i64 = match size_rows.first() {
        Some(row) => get(row, 0)?,
        None => return Err(StoreError::Corrupt("log_state has no row".to_owned()).into()),
    };
    let size = u64::try_from(size)
        .map_err(|_| StoreError::Corrupt(format!("the log's size is {size}")))?;
    for row in agent_rows {
        known.agents.insert(get_key_id(row, 0, "key_id")?);
    }
    for row in stored_rows {
        known.digests.insert(
            (get_key_id(row, 0, "key_id")?, get(row, 1)?),
            get_digest(row, 2, "digest")?,
        );
    }
    for row in host_rows {
        known
            .inventories
            .insert(get(row, 0)?, get_32(row, 1, "inventory hash")?);
    }
    Ok((known, Some(size)))
}

/// Server errors about the data can be isolated to a batch; anything else fails the group.
fn classify(error: tokio_postgres::Error) -> GroupError {
    let about_data = error
        .code()
        .is_some_and(|code| matches!(code.code().get(..2), Some("22" | "23")));
    if about_data {
        GroupError::Alone(StoreError::backend(error))
    } else {
        GroupError::Fail(StoreError::backend(error))
    }
}

/// A statement's SQL, parameters, and the rows it must write (when that is known).
type Statement<'a> = (&'static str, Vec<&'a (dyn ToSql + Sync)>, Option<u64>);

/// A plan as statement parameters: one array per column.
#[derive(Debug, Default)]
struct Columns<'a> {
    inventory_hash: Vec<&'a [u8]>,
    inventory_gpu_hash: Vec<&'a [u8]>,
    inventory_position: Vec<i32>,
    inventory_uuid: Vec<&'a str>,
    inventory_serial: Vec<&'a str>,
    inventory_catalogue_id: Vec<&'a str>,
    inventory_tpp: Vec<i64>,
    inventory_counted: Vec<bool>,
    inventory_hardware: Vec<&'a str>,
    inventory_hardware_at_ms: Vec<i64>,

    key_id: Vec<&'a [u8]>,
    sequence: Vec<i64>,
    digest: Vec<&'a [u8]>,
    previous_digest: Vec<&'a [u8]>,
    host_id: Vec<&'a str>,
    site_id: Vec<&'a str>,
    country: Vec<&'a str>,
    issued_at_ms: Vec<i64>,
    received_at_ms: Vec<i64>,
    tpp: Vec<i64>,
    devices: Vec<i64>,
    simulated: Vec<bool>,
    gap_before: Vec<i64>,
    fresh: Vec<bool>,
    inventory: Vec<&'a [u8]>,
    envelope: Vec<&'a [u8]>,
    log_index: Vec<i64>,

    head_key_id: Vec<&'a [u8]>,
    head_sequence: Vec<i64>,
    head_digest: Vec<&'a [u8]>,

    state_host_id: Vec<&'a str>,
    state_site_id: Vec<&'a str>,
    state_country: Vec<&'a str>,
    state_key_id: Vec<&'a [u8]>,
    state_sequence: Vec<i64>,
    state_digest: Vec<&'a [u8]>,
    state_issued_at_ms: Vec<i64>,
    state_received_at_ms: Vec<i64>,
    state_tpp: Vec<i64>,
    state_devices: Vec<i64>,
    state_inventory: Vec<&'a [u8]>,
    state_decommissioned_at_ms: Vec<Option<i64>>,

    replaced_hosts: Vec<&'a str>,
    gpu_host_id: Vec<&'a str>,
    gpu_position: Vec<i32>,
    gpu_uuid: Vec<&'a str>,
    gpu_serial: Vec<&'a str>,
    gpu_catalogue_id: Vec<&'a str>,
    gpu_tpp: Vec<i64>,
    gpu_counted: Vec<bool>,
    gpu_hardware: Vec<&'a str>,
    gpu_hardware_at_ms: Vec<i64>,

    change_at_ms: Vec<i64>,
    change_host_id: Vec<&'a str>,
    change_site_id: Vec<&'a str>,
    change_country: Vec<&'a str>,
    change_tpp: Vec<i64>,
    change_devices: Vec<i64>,
    change_kind: Vec<&'static str>,
    change_hardware_tpp: Vec<i64>,

    event_at_ms: Vec<i64>,
    event_kind: Vec<&'a str>,
    event_host_id: Vec<Option<&'a str>>,
    event_key_id: Vec<Option<&'a [u8]>>,
    event_detail: Vec<&'a str>,
    event_value: Vec<Option<i64>>,

    rejection_at_ms: Vec<i64>,
    rejection_reason: Vec<&'a str>,
    rejection_key_id: Vec<Option<&'a [u8]>>,
    rejection_host_id: Vec<Option<&'a str>>,
    rejection_sequence: Vec<Option<i64>>,
    rejection_peer: Vec<&'a str>,
    rejection_detail: Vec<&'a str>,
    rejection_count: Vec<i64>,

    count_reason: Vec<&'a str>,
    count_added: Vec<i64>,
}

fn position(index: usize) -> Result<i32, StoreError> {
    i32::try_from(index).map_err(|_| StoreError::OutOfRange {
        field: "gpu position",
        value: index as u64,
    })
}

impl<'a> Columns<'a> {
    fn new(plan: &'a Plan<'_>) -> Result<Self, StoreError> {
        let mut c = Self::default();
        for (hash, gpus, tpps) in &plan.inventories {
            c.inventory_hash.push(hash);
            for (index, (gpu, tpp)) in gpus.iter().zip(tpps).enumerate() {
                c.inventory_gpu_hash.push(hash);
                c.inventory_position.push(position(index)?);
                c.inventory_uuid.push(&gpu.uuid);
                c.inventory_serial.push(&gpu.serial);
                c.inventory_catalogue_id.push(&gpu.catalogue_id);
                c.inventory_tpp.push(*tpp);
                c.inventory_counted.push(gpu.counted);
                c.inventory_hardware.push(&gpu.hardware);
                c.inventory_hardware_at_ms.push(gpu.hardware_at_ms);
            }
        }
        for new in &plan.attestations {
            let a = new.a;
            c.key_id.push(a.key_id.0.as_bytes());
            c.sequence.push(new.sequence);
            c.digest.push(a.digest.0.as_bytes());
            c.previous_digest.push(a.previous_digest.0.as_bytes());
            c.host_id.push(&a.host_id.0);
            c.site_id.push(&a.site_id.0);
            c.country.push(&a.country);
            c.issued_at_ms.push(a.issued_at_ms);
            c.received_at_ms.push(a.received_at_ms);
            c.tpp.push(new.tpp);
            c.devices.push(i64::from(a.devices));
            c.simulated.push(a.simulated);
            c.gap_before.push(new.gap_before);
            c.fresh.push(a.fresh);
            c.inventory.push(&new.inventory);
            c.envelope.push(&a.envelope);
            c.log_index.push(int("log_index", new.log_index)?);
        }
        for (key_id, (sequence, digest)) in &plan.chain_heads {
            c.head_key_id.push(key_id.0.as_bytes());
            c.head_sequence.push(*sequence);
            c.head_digest.push(digest.0.as_bytes());
        }
        for moved in plan.hosts() {
            let host = moved.host;
            let state = host.state;
            c.state_host_id.push(&state.host_id.0);
            c.state_site_id.push(&state.site_id.0);
            c.state_country.push(&state.country);
            c.state_key_id.push(state.key_id.0.as_bytes());
            c.state_sequence.push(host.last_sequence);
            c.state_digest.push(state.last_digest.0.as_bytes());
            c.state_issued_at_ms.push(state.last_issued_at_ms);
            c.state_received_at_ms.push(state.last_received_at_ms);
            c.state_tpp.push(host.tpp);
            c.state_devices.push(host.devices);
            c.state_inventory.push(&host.inventory);
            c.state_decommissioned_at_ms
                .push(state.decommissioned_at_ms);
            if moved.replaced {
                c.replaced_hosts.push(&state.host_id.0);
                for (index, (gpu, tpp)) in host.gpus.iter().zip(&host.gpu_tpps).enumerate() {
                    c.gpu_host_id.push(&state.host_id.0);
                    c.gpu_position.push(position(index)?);
                    c.gpu_uuid.push(&gpu.uuid);
                    c.gpu_serial.push(&gpu.serial);
                    c.gpu_catalogue_id.push(&gpu.catalogue_id);
                    c.gpu_tpp.push(*tpp);
                    c.gpu_counted.push(gpu.counted);
                    c.gpu_hardware.push(&gpu.hardware);
                    c.gpu_hardware_at_ms.push(gpu.hardware_at_ms);
                }
            }
        }
        for change in &plan.changes {
            c.change_at_ms.push(change.at_ms);
            c.change_host_id.push(change.host_id);
            c.change_site_id.push(change.site_id);
            c.change_country.push(change.country);
            c.change_tpp.push(change.tpp);
            c.change_devices.push(change.devices);
            c.change_kind.push(change.kind);
            c.change_hardware_tpp.push(change.hardware_tpp);
        }
        for event in &plan.events {
            c.event_at_ms.push(event.at_ms);
            c.event_kind.push(&event.kind);
            c.event_host_id
                .push(event.host_id.as_ref().map(|host| host.0.as_str()));
            c.event_key_id
                .push(event.key_id.as_ref().map(|key| &key.0.as_bytes()[..]));
            c.event_detail.push(&event.detail);
            c.event_value.push(event.value);
        }
        for (rejection, sequence) in &plan.rejections {
            c.rejection_at_ms.push(rejection.at_ms);
            c.rejection_reason.push(&rejection.reason);
            c.rejection_key_id
                .push(rejection.key_id.as_ref().map(|key| &key.0.as_bytes()[..]));
            c.rejection_host_id
                .push(rejection.host_id.as_ref().map(|host| host.0.as_str()));
            c.rejection_sequence.push(*sequence);
            c.rejection_peer.push(&rejection.peer);
            c.rejection_detail.push(&rejection.detail);
            // Checked against i64 when the batch was planned.
            c.rejection_count
                .push(i64::try_from(rejection.count.max(1)).unwrap_or(i64::MAX));
        }
        for (reason, count) in &plan.rejection_counts {
            c.count_reason.push(reason);
            c.count_added.push(*count);
        }
        Ok(c)
    }

    /// The statements to run, in order (inventories before the rows that refer to them,
    /// host states before their GPUs), skipping those with nothing to write.
    fn statements(&self) -> Vec<Statement<'_>> {
        let mut statements = Vec::new();
        let rows = |values: usize| Some(values as u64);
        if !self.inventory_hash.is_empty() {
            statements.push((
                INSERT_INVENTORIES,
                vec![
                    param(&self.inventory_hash),
                    param(&self.inventory_gpu_hash),
                    param(&self.inventory_position),
                    param(&self.inventory_uuid),
                    param(&self.inventory_serial),
                    param(&self.inventory_catalogue_id),
                    param(&self.inventory_tpp),
                    param(&self.inventory_counted),
                    param(&self.inventory_hardware),
                    param(&self.inventory_hardware_at_ms),
                ],
                // Inventories another host reported first are there already.
                None,
            ));
        }
        if !self.key_id.is_empty() {
            statements.push((
                INSERT_ATTESTATIONS,
                vec![
                    param(&self.key_id),
                    param(&self.sequence),
                    param(&self.digest),
                    param(&self.previous_digest),
                    param(&self.host_id),
                    param(&self.site_id),
                    param(&self.country),
                    param(&self.issued_at_ms),
                    param(&self.received_at_ms),
                    param(&self.tpp),
                    param(&self.devices),
                    param(&self.simulated),
                    param(&self.gap_before),
                    param(&self.fresh),
                    param(&self.inventory),
                    param(&self.envelope),
                    param(&self.log_index),
                ],
                rows(self.key_id.len()),
            ));
            statements.push((
                UPSERT_CHAIN_HEADS,
                vec![
                    param(&self.head_key_id),
                    param(&self.head_sequence),
                    param(&self.head_digest),
                ],
                // A head already higher than the group's stays.
                None,
            ));
        }
        if !self.state_host_id.is_empty() {
            statements.push((
                UPSERT_HOSTS,
                vec![
                    param(&self.state_host_id),
                    param(&self.state_site_id),
                    param(&self.state_country),
                    param(&self.state_key_id),
                    param(&self.state_sequence),
                    param(&self.state_digest),
                    param(&self.state_issued_at_ms),
                    param(&self.state_received_at_ms),
                    param(&self.state_tpp),
                    param(&self.state_devices),
                    param(&self.state_inventory),
                    param(&self.state_decommissioned_at_ms),
                ],
                rows(self.state_host_id.len()),
            ));
        }
        if !self.replaced_hosts.is_empty() {
            statements.push((DELETE_GPUS, vec![param(&self.replaced_hosts)], None));
            statements.push((
                INSERT_GPUS,
                vec![
                    param(&self.gpu_host_id),
                    param(&self.gpu_position),
                    param(&self.gpu_uuid),
                    param(&self.gpu_serial),
                    param(&self.gpu_catalogue_id),
                    param(&self.gpu_tpp),
                    param(&self.gpu_counted),
                    param(&self.gpu_hardware),
                    param(&self.gpu_hardware_at_ms),
                ],
                rows(self.gpu_host_id.len()),
            ));
        }
        if !self.change_at_ms.is_empty() {
            statements.push((
                INSERT_CHANGES,
                vec![
                    param(&self.change_at_ms),
                    param(&self.change_host_id),
                    param(&self.change_site_id),
                    param(&self.change_country),
                    param(&self.change_tpp),
                    param(&self.change_devices),
                    param(&self.change_kind),
                    param(&self.change_hardware_tpp),
                ],
                rows(self.change_at_ms.len()),
            ));
        }
        if !self.event_at_ms.is_empty() {
            statements.push((
                INSERT_EVENTS,
                vec![
                    param(&self.event_at_ms),
                    param(&self.event_kind),
                    param(&self.event_host_id),
                    param(&self.event_key_id),
                    param(&self.event_detail),
                    param(&self.event_value),
                ],
                rows(self.event_at_ms.len()),
            ));
        }
        if !self.rejection_at_ms.is_empty() {
            statements.push((
                INSERT_REJECTIONS,
                vec![
                    param(&self.rejection_at_ms),
                    param(&self.rejection_reason),
                    param(&self.rejection_key_id),
                    param(&self.rejection_host_id),
                    param(&self.rejection_sequence),
                    param(&self.rejection_peer),
                    param(&self.rejection_detail),
                    param(&self.rejection_count),
                ],
                rows(self.rejection_at_ms.len()),
            ));
            statements.push((
                UPSERT_REJECTION_COUNTS,
                vec![param(&self.count_reason), param(&self.count_added)],
                rows(self.count_reason.len()),
            ));
        }
        statements
    }
}
