//! The collector's storage port: `AttestationStore`, the model it keeps, the ledger's books as
//! a store keeps them (`ledger`: host updates made from the ledger's decisions, and the ledger
//! restored from them), and `conformance`, the behaviour every implementation must show. What
//! every implementation does the same way lives here too: the writer's queue and group
//! gathering (`queue`), and the passage of u64 values through signed columns (`integer`).
//! The implementations are `collector-store-sqlite` (embedded) and `collector-store-postgres`.
//!
//! Invariant: no storage engine here (no SQL, no database client). A commit that returned `Ok`
//! is durable and holds the whole batch; a batch that failed left nothing behind. A stored
//! (key, sequence) never changes its digest, so a chain can never be forked in storage. Stores
//! decide nothing about hosts: they persist what the ledger decided.

pub mod conformance;
mod error;
pub mod integer;
pub mod ledger;
mod model;
pub mod park;
pub mod queue;
mod stats;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use error::{BackendError, StoreError, TokenError};
pub use model::{
    AcceptedAttestation, AgentRecord, Batch, ChainDigest, CommitReceipt, Cursor, EnrollToken,
    Event, Gpu, HostChange, HostId, HostState, HostUpdate, KeyId, LogRecord, Rejection, SiteId,
    StoredCosignature, StoredHead, StoredTreeHead,
};
pub use stats::{WriterCounters, WriterStats};

/// Where the collector keeps what it accepted, refused and administers.
///
/// Every method may block on disk or on the writer, so async callers use `commit` (a future)
/// or run the others on a blocking thread. Time ranges are half-open, `[from_ms, to_ms)`.
pub trait AttestationStore: Send + Sync + 'static {
    /// Stores the whole batch in one transaction; the future resolves only after the commit is
    /// durable. The store decides nothing about hosts: each `HostUpdate` (the ledger's effect)
    /// is persisted as it is, and its change appended after those already stored. A (key,
    /// sequence) already stored with the same digest is an idempotent repeat (counted in the
    /// receipt); with a different digest the batch fails with `Conflict`, and with a key never
    /// enrolled with `UnknownKey`: then nothing of the batch is stored. Events and rejections
    /// are always appended. Batches are stored, and their log leaves appended, in the order
    /// `commit` was called (the order the ledger applied them). A future dropped before it
    /// resolved may or may not have stored its batch.
    fn commit(&self, batch: Batch) -> CommitFuture;

    /// `commit` for threads that may block.
    fn commit_blocking(&self, batch: Batch) -> Result<CommitReceipt, StoreError> {
        self.commit(batch).wait()
    }

    /// Enrols a key for a new host: the agent, the host's first state (nothing attested yet)
    /// and the `KeyEnrolled` log leaf. A key that is or was enrolled, or a host that exists,
    /// fails with `AlreadyEnrolled` and changes nothing.
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError>;

    /// Re-binds an existing host to a new key (an administrator moved or re-keyed it): the
    /// agent, every earlier unrevoked key of the host revoked at `enrolled_at_ms`, the host's
    /// state reset to "nothing attested" at the new site, its GPUs released, `change` (the
    /// ledger's, when the host counted before) appended, and the `HostRebound` log leaf. A key
    /// that is or was enrolled fails with `AlreadyEnrolled`; a host without state fails with
    /// `Corrupt`.
    fn rebind_host(
        &self,
        agent: &AgentRecord,
        change: Option<&HostChange>,
    ) -> Result<(), StoreError>;

    /// Revokes a key; `true` when it was enrolled and not yet revoked.
    fn revoke_agent(&self, key_id: &KeyId, at_ms: i64) -> Result<bool, StoreError>;

    /// Every enrolled key, revoked ones included, ordered by key id.
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;

    fn agent(&self, key_id: &KeyId) -> Result<Option<AgentRecord>, StoreError>;

    /// The highest stored sequence per key, its digest and its issue time, ordered by key id:
    /// where each chain continues after a restart.
    fn chain_heads(&self) -> Result<Vec<StoredHead>, StoreError>;

    /// The highest stored sequence of one key and its digest: where a chain continues when
    /// another replica stored its latest links.
    fn chain_head(&self, key_id: &KeyId) -> Result<Option<(u64, ChainDigest)>, StoreError>;

    /// Every enrolled host, decommissioned ones included, ordered by host id.
    fn host_states(&self) -> Result<Vec<HostState>, StoreError>;

    /// Marks a host decommissioned (the ledger's decision: it counts nothing from `at_ms` on,
    /// its GPUs are released); `true` when it was known and in service. The caller records the
    /// matching event (the store does not know who signed it).
    fn decommission(&self, host_id: &str, at_ms: i64) -> Result<bool, StoreError>;

    fn stored_digest(
        &self,
        key_id: &KeyId,
        sequence: u64,
    ) -> Result<Option<ChainDigest>, StoreError>;

    /// Attestations received in `[from_ms, to_ms)`, ordered by (received_at_ms, key_id,
    /// sequence), starting strictly after `after`; at most `limit`.
    fn attestations(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<AcceptedAttestation>, StoreError>;

    /// One host's attestations received in `[from_ms, to_ms)`, in the same order; at most
    /// `limit`.
    fn host_history(
        &self,
        host_id: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<AcceptedAttestation>, StoreError>;

    /// (host_id, GPU) of every host's current state, ordered by host and by position in its
    /// attestation: the ledger's GPU claims, restored at start-up.
    fn host_gpus(&self) -> Result<Vec<(String, Gpu)>, StoreError>;

    /// The newest rejections first; at most `limit`.
    fn rejections(&self, limit: usize) -> Result<Vec<Rejection>, StoreError>;

    /// How many rejections each reason code ever had, ordered by reason.
    fn rejection_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// How many rejections each reason code had in `[from_ms, to_ms)`, ordered by reason.
    fn rejections_by_reason(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// Events at or after `since_ms`, oldest first (in commit order within one instant); at
    /// most `limit`.
    fn events(&self, since_ms: i64, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// Stores a new token; storing a known hash again replaces it.
    fn put_token(&self, token: &EnrollToken) -> Result<(), StoreError>;

    /// A token as stored, spent or not, without spending it (to refuse an enrolment before its
    /// token is spent).
    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<EnrollToken>, StoreError>;

    /// Atomically spends a token: only one caller ever gets `Ok` for a hash. Expired means
    /// `now_ms >= expires_at_ms`.
    fn use_token(&self, token_hash: &[u8; 32], now_ms: i64) -> Result<EnrollToken, TokenError>;

    /// The database's size on disk in bytes, for the storage-per-host-month figure.
    fn size_bytes(&self) -> Result<u64, StoreError>;

    // The transparency log. Every stored attestation, enrolment, re-binding, revocation and
    // decommissioning is appended as a `proto_evidence::LogEntry` leaf in the same transaction
    // that stores it, so the log and the tables never disagree; a landmark's measurement is a
    // leaf of its own (`append_measurement`).

    /// Appends the leaf `LogEntry::Measurement { received_at_ms: at_ms, measurement }` (a
    /// landmark's signed statement about `host_id`, `SignedMeasurement::encode` bytes, which
    /// the store keeps without reading them) and returns its log index, once it is durable.
    /// Bytes longer than `MAX_SIGNED_MEASUREMENT_BYTES` fail with `OutOfRange` and append
    /// nothing.
    fn append_measurement(
        &self,
        host_id: &str,
        at_ms: i64,
        measurement: &[u8],
    ) -> Result<u64, StoreError>;

    /// Every measurement leaf received at or after `since_ms`, in log order: what the
    /// collector rebuilds its location book from at start.
    fn measurements(&self, since_ms: i64) -> Result<Vec<LogRecord>, StoreError>;

    /// Leaves in the log.
    fn log_size(&self) -> Result<u64, StoreError>;

    /// The hash of the complete subtree (level, index), if the log holds it yet.
    fn log_node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>, StoreError>;

    /// Leaves from `from_index` on, in log order; at most `limit`.
    fn log_records(&self, from_index: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError>;

    /// Every key enrolment, re-binding, key revocation and host decommissioning leaf below
    /// `before_index`, in log order: the administrative history an evidence export carries
    /// (neither attestations nor measurements).
    fn key_records(&self, before_index: u64) -> Result<Vec<LogRecord>, StoreError>;

    /// Each host's newest attestation received before `before_ms`, with its log index,
    /// ordered by host.
    fn latest_attestations(&self, before_ms: i64) -> Result<Vec<AcceptedAttestation>, StoreError>;

    /// Keeps a signed tree head; storing the same size again keeps the first.
    fn put_tree_head(&self, head: &StoredTreeHead) -> Result<(), StoreError>;

    /// The head of exactly `tree_size` leaves, or the largest one for `None`.
    fn tree_head(&self, tree_size: Option<u64>) -> Result<Option<StoredTreeHead>, StoreError>;

    /// Heads signed in `[from_ms, to_ms)`, oldest first.
    fn tree_heads(&self, from_ms: i64, to_ms: i64) -> Result<Vec<StoredTreeHead>, StoreError>;

    /// The newest head signed before `before_ms`.
    fn tree_head_before(&self, before_ms: i64) -> Result<Option<StoredTreeHead>, StoreError>;

    /// Keeps a witness's cosignature on the checkpoint of `tree_size` leaves; the same
    /// witness's cosignature of that size again replaces it (a later time, same checkpoint).
    fn put_cosignature(&self, cosignature: &StoredCosignature) -> Result<(), StoreError>;

    /// The cosignatures kept on the checkpoint of `tree_size` leaves, by witness name.
    fn cosignatures(&self, tree_size: u64) -> Result<Vec<StoredCosignature>, StoreError>;

    /// The first head signed at or after `from_ms` that some witness cosigned (`None`: the
    /// newest such head of the whole log, whenever it was signed).
    fn cosigned_head(&self, from_ms: Option<i64>) -> Result<Option<StoredTreeHead>, StoreError>;

    /// Host state changes at instants before `to_ms`, oldest first (commit order within one
    /// instant): the history a past distribution or a monthly report replays.
    fn host_changes(&self, to_ms: i64) -> Result<Vec<HostChange>, StoreError>;

    /// Each host's newest receipt time before `before_ms`, ordered by host: who was stale then.
    fn last_received(&self, before_ms: i64) -> Result<Vec<(String, i64)>, StoreError>;

    /// Whether this handle leads the log: the one that signs tree heads. At most one handle per
    /// database leads at a time, and keeps leading while it lives; when it dies another handle
    /// takes over on its next call. An embedded store has a single writer process, which
    /// always leads.
    fn lead_log(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// The log entry of a measurement received at `at_ms`; `OutOfRange` when `measurement` is
/// longer than a leaf holds (`MAX_SIGNED_MEASUREMENT_BYTES`). Stores build the leaf of
/// `append_measurement` with this, so an oversized statement is refused before anything is
/// written.
pub fn measurement_entry(
    at_ms: i64,
    measurement: &[u8],
) -> Result<proto_evidence::LogEntry, StoreError> {
    if measurement.len() > proto_evidence::location::MAX_SIGNED_MEASUREMENT_BYTES {
        return Err(StoreError::OutOfRange {
            field: "measurement bytes",
            value: measurement.len() as u64,
        });
    }
    Ok(proto_evidence::LogEntry::Measurement {
        received_at_ms: at_ms,
        measurement: measurement.to_vec(),
    })
}

/// A store's log nodes as a `proto_merkle::NodeSource`: roots and proofs read O(log n) rows.
#[derive(Clone, Copy)]
pub struct LogNodes<'a>(pub &'a dyn AttestationStore);

impl proto_merkle::NodeSource for LogNodes<'_> {
    type Error = StoreError;

    fn node(&self, level: u32, index: u64) -> Result<[u8; 32], StoreError> {
        self.0
            .log_node(level, index)?
            .ok_or_else(|| StoreError::Corrupt(format!("log node ({level}, {index}) is missing")))
    }
}

impl fmt::Debug for LogNodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogNodes")
    }
}

/// The pending result of `AttestationStore::commit`: `.await` it, or `.wait()` on a thread that
/// may block.
#[must_use = "a commit is only known durable once its future resolved to Ok"]
pub struct CommitFuture {
    inner: Pin<Box<dyn Future<Output = Result<CommitReceipt, StoreError>> + Send + 'static>>,
}

impl CommitFuture {
    /// Wraps an implementation's future.
    pub fn new(
        future: impl Future<Output = Result<CommitReceipt, StoreError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }

    /// A commit that is already decided.
    pub fn ready(result: Result<CommitReceipt, StoreError>) -> Self {
        Self::new(std::future::ready(result))
    }

    /// Blocks the calling thread until the commit is decided; needs no async runtime.
    pub fn wait(self) -> Result<CommitReceipt, StoreError> {
        park::block_on(self)
    }
}

impl Future for CommitFuture {
    type Output = Result<CommitReceipt, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for CommitFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommitFuture").finish_non_exhaustive()
    }
}
