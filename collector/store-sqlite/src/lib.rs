//! `SqliteStore`: the collector's embedded store, the `collector_store::AttestationStore` port
//! on one SQLite file.
//!
//! One writer thread owns the only write connection; commits reach it over a queue, in the
//! order `commit` was called, and are group-committed (see `writer`). Reads use a small pool of
//! separate connections, which WAL mode lets run beside the writer.
//!
//! Invariant: only SQL lives here. What the store keeps is decided by the collector's ledger
//! (`collector_core::ledger`) and the port's model; this crate persists it, and its conformance
//! is the port's suite (`collector_store::conformance`).

mod apply;
mod codec;
mod log;
mod read;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use collector_store::park::block_on;
use collector_store::queue::{self, Queue};
use collector_store::{
    AcceptedAttestation, AgentRecord, AttestationStore, Batch, ChainDigest, CommitFuture, Cursor,
    EnrollToken, Event, Gpu, HostChange, HostState, KeyId, LogRecord, Rejection, StoreError,
    StoredCosignature, StoredTreeHead, TokenError, WriterCounters, WriterStats,
};
use log::Log;
use read::Readers;
use writer::WriteOp;

/// How hard a commit works to be durable before it is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Synchronous {
    /// `synchronous = FULL`: each commit fsyncs the WAL before it is acknowledged, so an
    /// acknowledged attestation survives SIGKILL and power loss (as far as the disk honours
    /// fsync).
    #[default]
    Full,
    /// `synchronous = NORMAL`: the WAL is fsynced only at checkpoints. An acknowledged
    /// attestation survives a crash of the process, but a power loss or kernel crash may lose
    /// the most recent commits (never corrupt the database).
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Page size of new databases (see `configure`).
const PAGE_SIZE: i64 = 16 * 1024;

/// Settings of `SqliteStore::open`; `Default` is what the collector should run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another connection (another process on
    /// the same file, a checkpoint) before failing.
    pub busy_timeout: Duration,
    /// The most attestations the writer puts in one transaction (a batch is never split; an
    /// empty batch counts as one).
    pub max_group_attestations: usize,
    /// Read connections kept open between reads (more are opened while reads overlap).
    pub read_connections: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_group_attestations: 1_000,
            read_connections: 4,
        }
    }
}

/// The embedded store: one SQLite file (plus its `-wal` and `-shm`), one writer thread.
///
/// Dropping it finishes every commit already queued, answers later ones with `Closed`, and
/// joins the writer; it blocks for that long. Open one store per file: two would each run a
/// writer and contend for the file's lock.
pub struct SqliteStore {
    path: PathBuf,
    /// Dropped before the readers: the writer finishes what is queued first.
    queue: Queue<WriteOp>,
    readers: Readers,
    counters: Arc<WriterCounters>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies the pending migrations and
    /// starts the writer.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).db()?;
        configure(&conn, &options)?;
        let found = schema::migrate(&mut conn)?;
        let log = Log::open(&mut conn, found == 1)?;
        let readers = Readers::new(path, options.busy_timeout, options.read_connections);
        // Fail here rather than at the first read if readers cannot connect.
        readers.with(|_| Ok(()))?;
        let (sender, jobs) = queue::channel();
        let counters = Arc::new(WriterCounters::default());
        let writer = writer::spawn(
            conn,
            log,
            jobs,
            options.max_group_attestations.max(1),
            Arc::clone(&counters),
        )
        .map_err(StoreError::backend)?;
        Ok(Self {
            path: path.to_path_buf(),
            queue: Queue::new(sender, writer),
            readers,
            counters,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer has done so far (for metrics, and for tests of group commit).
    pub fn stats(&self) -> WriterStats {
        self.counters.snapshot()
    }

    /// The schema version this build writes.
    pub fn schema_version() -> u32 {
        schema::known_version()
    }

    /// Runs `op` on the writer's connection, in queue order with the commits.
    fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Connection, &mut Log) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.write(Box::new(move |conn, log| {
            // A caller that stopped waiting does not need the answer.
            let _ = reply.send(op(conn, log));
        }))?;
        block_on(answer).map_err(|_| StoreError::Closed)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AttestationStore for SqliteStore {
    fn commit(&self, batch: Batch) -> CommitFuture {
        self.queue.commit(batch)
    }

    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        let agent = agent.clone();
        self.write(move |conn, log| apply::put_agent(conn, log, &agent))?
    }

    fn rebind_host(
        &self,
        agent: &AgentRecord,
        change: Option<&HostChange>,
    ) -> Result<(), StoreError> {
        let (agent, change) = (agent.clone(), change.cloned());
        self.write(move |conn, log| apply::rebind_host(conn, log, &agent, change.as_ref()))?
    }

    fn revoke_agent(&self, key_id: &KeyId, at_ms: i64) -> Result<bool, StoreError> {
        let key_id = *key_id;
        self.write(move |conn, log| apply::revoke_agent(conn, log, &key_id, at_ms))?
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.readers.with(read::agents)
    }

    fn agent(&self, key_id: &KeyId) -> Result<Option<AgentRecord>, StoreError> {
        self.readers.with(|conn| read::agent(conn, key_id))
    }

    fn chain_heads(&self) -> Result<Vec<collector_store::StoredHead>, StoreError> {
        self.readers.with(read::chain_heads)
    }

    fn chain_head(&self, key_id: &KeyId) -> Result<Option<(u64, ChainDigest)>, StoreError> {
        self.readers.with(|conn| read::chain_head(conn, key_id))
    }

    fn host_states(&self) -> Result<Vec<HostState>, StoreError> {
        self.readers.with(read::host_states)
    }

    fn decommission(&self, host_id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let host_id = host_id.to_owned();
        self.write(move |conn, log| apply::decommission(conn, log, &host_id, at_ms))?
    }

    fn stored_digest(
        &self,
        key_id: &KeyId,
        sequence: u64,
    ) -> Result<Option<ChainDigest>, StoreError> {
        self.readers
            .with(|conn| read::stored_digest(conn, key_id, sequence))
    }

    fn attestations(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<AcceptedAttestation>, StoreError> {
        self.readers
            .with(|conn| read::attestations(conn, from_ms, to_ms, after, limit))
    }

    fn host_history(
        &self,
        host_id: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<AcceptedAttestation>, StoreError> {
        self.readers
            .with(|conn| read::host_history(conn, host_id, from_ms, to_ms, limit))
    }

    fn host_gpus(&self) -> Result<Vec<(String, Gpu)>, StoreError> {
        self.readers.with(read::host_gpus)
    }

    fn rejections(&self, limit: usize) -> Result<Vec<Rejection>, StoreError> {
        self.readers.with(|conn| read::rejections(conn, limit))
    }

    fn rejection_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.readers.with(read::rejection_counts)
    }

    fn rejections_by_reason(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.readers
            .with(|conn| read::rejections_by_reason(conn, from_ms, to_ms))
    }

    fn events(&self, since_ms: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.readers
            .with(|conn| read::events(conn, since_ms, limit))
    }

    fn put_token(&self, token: &EnrollToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.write(move |conn, _| apply::put_token(conn, &token))?
    }

    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<EnrollToken>, StoreError> {
        self.readers.with(|conn| read::token(conn, token_hash))
    }

    fn use_token(&self, token_hash: &[u8; 32], now_ms: i64) -> Result<EnrollToken, TokenError> {
        let token_hash = *token_hash;
        self.write(move |conn, _| apply::use_token(conn, &token_hash, now_ms))?
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.readers.with(read::size_bytes)
    }

    fn log_size(&self) -> Result<u64, StoreError> {
        self.readers.with(read::log_size)
    }

    fn log_node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>, StoreError> {
        self.readers.with(|conn| read::log_node(conn, level, index))
    }

    fn log_records(&self, from_index: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        self.readers
            .with(|conn| read::log_records(conn, from_index, limit))
    }

    fn key_records(&self, before_index: u64) -> Result<Vec<LogRecord>, StoreError> {
        self.readers
            .with(|conn| read::key_records(conn, before_index))
    }

    fn append_measurement(
        &self,
        host_id: &str,
        at_ms: i64,
        measurement: &[u8],
    ) -> Result<u64, StoreError> {
        let entry = collector_store::measurement_entry(at_ms, measurement)?;
        let host_id = host_id.to_owned();
        self.write(move |conn, log| apply::append_measurement(conn, log, &host_id, &entry))?
    }

    fn measurements(&self, since_ms: i64) -> Result<Vec<LogRecord>, StoreError> {
        self.readers.with(|conn| read::measurements(conn, since_ms))
    }

    fn latest_attestations(&self, before_ms: i64) -> Result<Vec<AcceptedAttestation>, StoreError> {
        self.readers
            .with(|conn| read::latest_attestations(conn, before_ms))
    }

    fn put_tree_head(&self, head: &StoredTreeHead) -> Result<(), StoreError> {
        let head = head.clone();
        self.write(move |conn, _| apply::put_tree_head(conn, &head))?
    }

    fn put_cosignature(&self, cosignature: &StoredCosignature) -> Result<(), StoreError> {
        let cosignature = cosignature.clone();
        self.write(move |conn, _| apply::put_cosignature(conn, &cosignature))?
    }

    fn cosignatures(&self, tree_size: u64) -> Result<Vec<StoredCosignature>, StoreError> {
        self.readers
            .with(|conn| read::cosignatures(conn, tree_size))
    }

    fn cosigned_head(&self, from_ms: Option<i64>) -> Result<Option<StoredTreeHead>, StoreError> {
        self.readers.with(|conn| read::cosigned_head(conn, from_ms))
    }

    fn tree_head(&self, tree_size: Option<u64>) -> Result<Option<StoredTreeHead>, StoreError> {
        self.readers.with(|conn| read::tree_head(conn, tree_size))
    }

    fn tree_heads(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StoredTreeHead>, StoreError> {
        self.readers
            .with(|conn| read::tree_heads(conn, from_ms, to_ms))
    }

    fn tree_head_before(&self, before_ms: i64) -> Result<Option<StoredTreeHead>, StoreError> {
        self.readers
            .with(|conn| read::tree_head_before(conn, before_ms))
    }

    fn host_changes(&self, to_ms: i64) -> Result<Vec<HostChange>, StoreError> {
        self.readers.with(|conn| read::host_changes(conn, to_ms))
    }

    fn last_received(&self, before_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.readers
            .with(|conn| read::last_received(conn, before_ms))
    }
}

/// The write connection's settings; WAL and the synchronous level are what make an
/// acknowledged commit durable, so failing to set them fails the open.
fn configure(conn: &Connection, options: &SqliteOptions) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout).db()?;
    // Only takes effect while the file is empty (WAL mode fixes it afterwards). A table row is
    // kept whole on one page when it fits, so with 4 KiB pages a 2.5 KiB envelope row takes a
    // page alone and wastes a third of the file; 16 KiB pages hold several.
    conn.pragma_update(None, "page_size", PAGE_SIZE).db()?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::backend(io::Error::other(format!(
            "the database cannot use WAL mode (journal_mode is {mode})"
        ))));
    }
    conn.pragma_update(None, "synchronous", options.synchronous.pragma())
        .db()?;
    conn.pragma_update(None, "foreign_keys", true).db()?;
    // Truncate the WAL after checkpoints that find it larger, so one burst does not keep its
    // size on disk forever.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .db()?;
    // Savepoints (the writer's slow path) journal every page they touch; in memory that is a
    // copy, in a temporary file a write system call per page.
    conn.pragma_update(None, "temp_store", "MEMORY").db()?;
    // 64 MiB of page cache: the indexes by host and by key take a page per attestation in a
    // group, and re-reading them from the OS on every transaction is measurable.
    conn.pragma_update(None, "cache_size", -64 * 1024).db()?;
    // Room for every statement of the commit path, so none is re-prepared per attestation.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Turns the engine's errors into the port's, at the seam.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(StoreError::backend)
    }
}
