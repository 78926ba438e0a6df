//! `PostgresStore`: the collector's `AttestationStore` on PostgreSQL, for several collector
//! replicas sharing one database.
//!
//! Invariant: the same as every store (a commit that returned `Ok` is durable and holds its
//! whole batch; a failed batch left nothing; a stored (key, sequence) never changes its digest),
//! plus one across processes: however many replicas append, the transparency log is one
//! unbroken sequence, because every transaction that appends leaves holds the log's advisory
//! lock from its first read of the log to its COMMIT.
//!
//! # Design
//!
//! The store owns one thread that runs a single-threaded tokio runtime: the trait's methods
//! are called from plain threads (tests, `spawn_blocking`) and from async tasks alike, so the
//! store cannot borrow its caller's runtime. Reads run on a small pool of connections; each
//! blocking method sends its work to the runtime and waits for the answer on a channel. The
//! pool is a `Vec` of idle clients behind a mutex and a semaphore (`pool.rs`, with a statement
//! cache per connection), about a hundred lines: `deadpool-postgres` would bring `deadpool`, its
//! runtime glue and its own configuration types for the same job, and nothing the store
//! needs beyond it.
//!
//! Writes follow `SqliteStore`: one writer task owns one connection, takes every commit queued
//! (up to `max_group_attestations`) and stores the group in one transaction. `commit` queues
//! its batch when it is called (the queue is unbounded), so batches reach the log in the order
//! the ledger applied them. The envelopes' leaf hashes and the inventories' hashes are computed
//! first, before the transaction; the group is then decided in memory before anything is
//! written (`plan.rs`): under the log lock the writer reads, in one pipelined round trip, which
//! keys are enrolled, which (key, sequence) pairs are stored with which digest, and the
//! inventory each of the group's hosts holds; a batch with a fork (`Conflict`) or a key never
//! enrolled (`UnknownKey`) is answered with its error and leaves nothing, while the others go
//! on. Host state is not decided here: each batch's `HostUpdate`s (the ledger's decisions) are
//! written as given, a host's last one in the group being its state, and their changes
//! appended in order. The writes are then a fixed set of multi-row statements (`unnest` over
//! arrays) sent as one pipeline, and a COMMIT. So the common path needs no SAVEPOINT at all;
//! if a statement fails anyway (a value PostgreSQL refuses, such as a NUL character in text),
//! the transaction is rolled back and the group's batches run again one transaction each, so
//! only the offending batch fails.
//!
//! # Several replicas
//!
//! Each transaction that appends log leaves first takes `pg_advisory_xact_lock` on a key
//! derived from the schema name, then reads the log's size from the one-row `log_state`. The
//! writer keeps the frontier (the log's right edge, O(log n) hashes) of the size it last wrote;
//! if another replica appended since, it rebuilds it from `log_nodes` with
//! `proto_merkle::Frontier::restore` (one query for O(log n) rows). It appends, writes the
//! entries and completed nodes, updates `log_state` and commits; the lock is released with the
//! transaction, so a rolled-back transaction leaves neither leaves nor a hole. Every write
//! that touches host state takes the same lock (group commits with attestations or host
//! updates, enrolments, re-bindings, decommissioning), so host-state writes of all replicas are
//! serialized too. Appends are therefore serialized across replicas: replicas scale signature
//! verification and connections, one group transaction at a time carries the writes (group
//! commit keeps that efficient). Migrations run at connect under a session advisory lock, so
//! replicas starting together apply each script once.
//!
//! # What it relies on from PostgreSQL
//!
//! Advisory locks (`pg_advisory_lock`, `pg_advisory_xact_lock`); `INSERT … ON CONFLICT` (DO
//! NOTHING and DO UPDATE … WHERE); transactional DDL (a migration script and its version
//! commit together or not at all); `bytea` for hashes, keys and the exact envelope bytes;
//! `unnest` over several arrays for multi-row statements; READ COMMITTED snapshots per
//! statement (a statement after the lock sees everything committed before it);
//! `pg_total_relation_size` for `size_bytes`; `COLLATE "C"` so text sorts by bytes, as the
//! model and SQLite do.
//!
//! PostgreSQL-compatible distributed databases lack some of these. CockroachDB has no advisory
//! locks (the functions exist as no-ops or are refused) and runs SERIALIZABLE only; YugabyteDB
//! has advisory locks only in recent versions and behind a flag. Both support `ON CONFLICT`,
//! `bytea` and arrays; CockroachDB runs DDL outside transactions in many cases. The store could
//! adapt by taking `SELECT … FROM log_state FOR UPDATE` as the log lock (a row lock both
//! support, and which serializes appenders the same way), by retrying a group on a
//! serialization failure (SQLSTATE 40001: the plan is recomputed from fresh reads, so a retry
//! is safe), and by running migrations from one job instead of at every replica's start.
//!
//! Connections must be sessions of their own: a pooler in transaction mode (PgBouncer's
//! `pool_mode = transaction`) would break the session advisory lock of migrations, the
//! prepared statements and the `search_path` sent at startup. Session pooling works.
//!
//! # TLS
//!
//! `sslmode` in the URL: `disable`; `prefer` (the default, as libpq: TLS when the server
//! offers it, not verified); `require` (TLS, not verified); `verify-full` (TLS, the server's
//! certificate chain checked against the CA file in `sslrootcert=` and its name against the
//! host). rustls with the ring provider, through a `MakeTlsConnect` of its own (`tls.rs`); no
//! OpenSSL, no aws-lc. Channel binding is not offered, so SCRAM runs without it.

mod admin;
mod codec;
mod group;
mod log;
mod pipeline;
mod plan;
mod pool;
mod read;
mod schema;
mod target;
mod tls;
mod writer;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;

use collector_store::{
    AcceptedAttestation, AgentRecord, AttestationStore, Batch, ChainDigest, CommitFuture, Cursor,
    EnrollToken, Event, Gpu, HostChange, HostState, KeyId, LogRecord, Rejection, StoreError,
    StoredCosignature, StoredTreeHead, TokenError, WriterStats,
};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use collector_store::WriterCounters as Counters;
use collector_store::queue::{self, Queue};
use pool::Pool;
pub use target::TargetError;
use writer::{Admin, AdminOp};

/// Settings of `PostgresStore::connect`; `Default` is what the collector should run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The schema the store's tables live in (created if missing), set as the connections'
    /// `search_path`; `None` keeps the server's default search path. Letters, digits and `_`,
    /// starting with a letter or `_`, at most 63 bytes.
    pub schema: Option<String>,
    /// The most attestations the writer puts in one transaction (a batch is never split; an
    /// empty batch counts as one).
    pub max_group_attestations: usize,
    /// The most read connections open at once (the writer has one more of its own).
    pub read_connections: usize,
    /// How long opening one connection may take, when the URL does not say
    /// (`connect_timeout=` in seconds).
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: None,
            max_group_attestations: 1_000,
            read_connections: 4,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The store on PostgreSQL. Several `PostgresStore`s (in one process or in several replicas)
/// may share one database and schema.
///
/// Dropping it finishes every commit already queued, answers later ones with `Closed`, and
/// stops its runtime thread; it blocks for that long.
pub struct PostgresStore {
    /// The writer's queue; its thread runs the store's runtime.
    queue: Queue<Admin>,
    runtime: Handle,
    pool: Arc<Pool>,
    counters: Arc<Counters>,
    schema: String,
    /// The session that holds the log's leadership lock, while this handle leads.
    leader: Arc<tokio::sync::Mutex<Option<pool::Conn>>>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db?sslmode=…`), applies
    /// the pending migrations and starts the writer.
    pub fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let target = target::Target::parse(url, &options).map_err(StoreError::backend)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::backend)?;
        let handle = runtime.handle().clone();
        let (sender, jobs) = queue::channel();
        let counters = Arc::new(Counters::default());
        let (ready, started) = std_mpsc::sync_channel(1);
        let thread = {
            let counters = Arc::clone(&counters);
            let max_group = options.max_group_attestations.max(1);
            let read_connections = options.read_connections.max(1);
            thread::Builder::new()
                .name("postgres-store".to_owned())
                .spawn(move || {
                    runtime.block_on(async move {
                        let setup = writer::Writer::start(target, max_group, counters).await;
                        let writer = match setup {
                            Ok(writer) => writer,
                            Err(error) => {
                                let _ = ready.send(Err(error));
                                return;
                            }
                        };
                        let pool = Arc::new(Pool::new(writer.connector(), read_connections));
                        // Fail at connect rather than at the first read if readers cannot
                        // connect.
                        if let Err(error) = pool.get().await {
                            let _ = ready.send(Err(error));
                            return;
                        }
                        let schema = writer.schema().to_owned();
                        if ready.send(Ok((pool, schema))).is_ok() {
                            writer.run(jobs).await;
                        }
                    });
                })
                .map_err(StoreError::backend)?
        };
        let (pool, schema) = match started.recv() {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(error);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(StoreError::Closed);
            }
        };
        Ok(Self {
            queue: Queue::new(sender, thread),
            runtime: handle,
            pool,
            counters,
            schema,
            leader: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// Checks a URL as `connect` reads it (and the CA file of `verify-full`) without
    /// connecting: for `check-config`.
    pub fn check_url(url: &str) -> Result<(), TargetError> {
        target::Target::parse(url, &PostgresOptions::default()).map(drop)
    }

    /// What the writer has done so far (for metrics, and for tests of group commit).
    pub fn stats(&self) -> WriterStats {
        self.counters.snapshot()
    }

    /// The schema the store's tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The schema version this build writes.
    pub fn schema_version() -> u32 {
        schema::known_version()
    }

    /// Runs `work` on the store's runtime and waits for its answer; blocking, but safe on any
    /// thread, a runtime's included (a wait there is slow, never a panic).
    fn block<T, F>(&self, work: impl FnOnce(Arc<Pool>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = std_mpsc::sync_channel(1);
        let future = work(Arc::clone(&self.pool));
        self.runtime.spawn(async move {
            let _ = reply.send(future.await);
        });
        // The runtime drops the task (and with it `reply`) when it stops: that is `Closed`.
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on a pooled connection.
    fn read<T, F>(
        &self,
        read: impl FnOnce(pool::Lease) -> F + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.block(|pool| async move { read(pool.get().await?).await })
    }

    /// Sends an administrative write to the writer, in queue order with the commits; answers
    /// the index of the first leaf it appended (`None`: it changed nothing).
    fn admin(&self, op: AdminOp) -> Result<Option<u64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.write(Admin { op, reply })?;
        self.block(|_| async move { answer.await.map_err(|_| StoreError::Closed)? })
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AttestationStore for PostgresStore {
    fn commit(&self, batch: Batch) -> CommitFuture {
        self.queue.commit(batch)
    }

    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.admin(AdminOp::PutAgent(agent.clone())).map(drop)
    }

    fn rebind_host(
        &self,
        agent: &AgentRecord,
        change: Option<&HostChange>,
    ) -> Result<(), StoreError> {
        self.admin(AdminOp::Rebind(agent.clone(), change.cloned()))
            .map(drop)
    }

    fn revoke_agent(&self, key_id: &KeyId, at_ms: i64) -> Result<bool, StoreError> {
        self.admin(AdminOp::Revoke(*key_id, at_ms))
            .map(|appended| appended.is_some())
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.read(|mut conn| async move { read::agents(&mut conn).await })
    }

    fn agent(&self, key_id: &KeyId) -> Result<Option<AgentRecord>, StoreError> {
        let key_id = *key_id;
        self.read(move |mut conn| async move { read::agent(&mut conn, &key_id).await })
    }

    fn chain_heads(&self) -> Result<Vec<collector_store::StoredHead>, StoreError> {
        self.read(|mut conn| async move { read::chain_heads(&mut conn).await })
    }

    fn host_states(&self) -> Result<Vec<HostState>, StoreError> {
        self.read(|mut conn| async move { read::host_states(&mut conn).await })
    }

    fn decommission(&self, host_id: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.admin(AdminOp::Decommission(host_id.to_owned(), at_ms))
            .map(|appended| appended.is_some())
    }

    fn chain_head(&self, key_id: &KeyId) -> Result<Option<(u64, ChainDigest)>, StoreError> {
        let key_id = *key_id;
        self.read(move |mut conn| async move { read::chain_head(&mut conn, &key_id).await })
    }

    fn stored_digest(
        &self,
        key_id: &KeyId,
        sequence: u64,
    ) -> Result<Option<ChainDigest>, StoreError> {
        let key_id = *key_id;
        self.read(
            move |mut conn| async move { read::stored_digest(&mut conn, &key_id, sequence).await },
        )
    }

    fn attestations(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<AcceptedAttestation>, StoreError> {
        self.read(move |mut conn| async move {
            read::attestations(&mut conn, from_ms, to_ms, after, limit).await
        })
    }

    fn host_history(
        &self,
        host_id: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<AcceptedAttestation>, StoreError> {
        let host_id = host_id.to_owned();
        self.read(move |mut conn| async move {
            read::host_history(&mut conn, &host_id, from_ms, to_ms, limit).await
        })
    }

    fn host_gpus(&self) -> Result<Vec<(String, Gpu)>, StoreError> {
        self.read(|mut conn| async move { read::host_gpus(&mut conn).await })
    }

    fn rejections(&self, limit: usize) -> Result<Vec<Rejection>, StoreError> {
        self.read(move |mut conn| async move { read::rejections(&mut conn, limit).await })
    }

    fn rejection_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|mut conn| async move { read::rejection_counts(&mut conn).await })
    }

    fn rejections_by_reason(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(move |mut conn| async move {
            read::rejections_by_reason(&mut conn, from_ms, to_ms).await
        })
    }

    fn events(&self, since_ms: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(move |mut conn| async move { read::events(&mut conn, since_ms, limit).await })
    }

    fn put_token(&self, token: &EnrollToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.read(move |mut conn| async move { admin::put_token(&mut conn, &token).await })
    }

    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<EnrollToken>, StoreError> {
        let token_hash = *token_hash;
        self.read(move |mut conn| async move { admin::token(&mut conn, &token_hash).await })
    }

    fn use_token(&self, token_hash: &[u8; 32], now_ms: i64) -> Result<EnrollToken, TokenError> {
        let token_hash = *token_hash;
        self.read(move |mut conn| async move {
            Ok(admin::use_token(&mut conn, &token_hash, now_ms).await)
        })?
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.read(|mut conn| async move { read::size_bytes(&mut conn).await })
    }

    fn log_size(&self) -> Result<u64, StoreError> {
        self.read(|mut conn| async move { read::log_size(&mut conn).await })
    }

    fn log_node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>, StoreError> {
        self.read(move |mut conn| async move { read::log_node(&mut conn, level, index).await })
    }

    fn log_records(&self, from_index: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        self.read(
            move |mut conn| async move { read::log_records(&mut conn, from_index, limit).await },
        )
    }

    fn key_records(&self, before_index: u64) -> Result<Vec<LogRecord>, StoreError> {
        self.read(move |mut conn| async move { read::key_records(&mut conn, before_index).await })
    }

    fn append_measurement(
        &self,
        host_id: &str,
        at_ms: i64,
        measurement: &[u8],
    ) -> Result<u64, StoreError> {
        let leaf = log::Leaf::new(&collector_store::measurement_entry(at_ms, measurement)?)?;
        self.admin(AdminOp::Measurement(host_id.to_owned(), leaf))?
            .ok_or_else(|| StoreError::Corrupt("the measurement appended no leaf".to_owned()))
    }

    fn measurements(&self, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
        self.read(move |mut conn| async move { read::measurements(&mut conn, since_ms).await })
    }

    fn latest_attestations(&self, before_ms: i64) -> Result<Vec<AcceptedAttestation>, StoreError> {
        self.read(
            move |mut conn| async move { read::latest_attestations(&mut conn, before_ms).await },
        )
    }

    fn put_tree_head(&self, head: &StoredTreeHead) -> Result<(), StoreError> {
        let head = head.clone();
        self.read(move |mut conn| async move { admin::put_tree_head(&mut conn, &head).await })
    }

    fn put_cosignature(&self, cosignature: &StoredCosignature) -> Result<(), StoreError> {
        let cosignature = cosignature.clone();
        self.read(
            move |mut conn| async move { admin::put_cosignature(&mut conn, &cosignature).await },
        )
    }

    fn cosignatures(&self, tree_size: u64) -> Result<Vec<StoredCosignature>, StoreError> {
        self.read(move |mut conn| async move { read::cosignatures(&mut conn, tree_size).await })
    }

    fn cosigned_head(&self, from_ms: Option<i64>) -> Result<Option<StoredTreeHead>, StoreError> {
        self.read(move |mut conn| async move { read::cosigned_head(&mut conn, from_ms).await })
    }

    fn tree_head(&self, tree_size: Option<u64>) -> Result<Option<StoredTreeHead>, StoreError> {
        self.read(move |mut conn| async move { read::tree_head(&mut conn, tree_size).await })
    }

    fn tree_heads(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StoredTreeHead>, StoreError> {
        self.read(move |mut conn| async move { read::tree_heads(&mut conn, from_ms, to_ms).await })
    }

    fn tree_head_before(&self, before_ms: i64) -> Result<Option<StoredTreeHead>, StoreError> {
        self.read(move |mut conn| async move { read::tree_head_before(&mut conn, before_ms).await })
    }

    fn host_changes(&self, to_ms: i64) -> Result<Vec<HostChange>, StoreError> {
        self.read(move |mut conn| async move { read::host_changes(&mut conn, to_ms).await })
    }

    fn last_received(&self, before_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(move |mut conn| async move { read::last_received(&mut conn, before_ms).await })
    }

    fn lead_log(&self) -> Result<bool, StoreError> {
        let leader = Arc::clone(&self.leader);
        let key = schema::lock_key("log-leader", &self.schema);
        self.block(|pool| async move {
            let mut held = leader.lock().await;
            // A session lock lives exactly as long as its connection: a replica that dies (or
            // loses the database) releases it, and the next replica to ask takes over.
            if held.as_ref().is_some_and(|conn| !conn.is_closed()) {
                return Ok(true);
            }
            *held = None;
            let mut conn = pool.connector().connect().await?;
            let row = conn
                .query_opt("SELECT pg_try_advisory_lock($1)", &[&key])
                .await?;
            let won = row.map(|r| r.get::<_, bool>(0)).unwrap_or(false);
            if won {
                *held = Some(conn);
            }
            Ok(won)
        })
    }
}
