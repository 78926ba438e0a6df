//! The store's two error families: `StoreError` for every operation, `TokenError` for spending
//! an enrolment token (whose refusals are answers, not failures).

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::model::KeyId;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The (key, sequence) is already stored with another digest: a fork of the chain. Nothing
    /// of the batch that carried it was stored.
    #[error(
        "attestation {sequence} of key {} is already stored with a different digest",
        .key_id
    )]
    Conflict { key_id: KeyId, sequence: u64 },
    /// An attestation names a key that was never enrolled (`put_agent`). Nothing of the batch
    /// was stored.
    #[error("attestation {sequence} names key {}, which is not enrolled", .key_id)]
    UnknownKey { key_id: KeyId, sequence: u64 },
    /// An enrolment names a key that is already enrolled (or was, and is revoked), or a host
    /// that already exists: the ledger refuses both, and the store never overwrites either.
    #[error("key {} or its host is already enrolled", .key_id)]
    AlreadyEnrolled { key_id: KeyId },
    /// A value does not fit the store's integer columns (signed 64-bit).
    #[error("{field} = {value} is out of the storable range")]
    OutOfRange { field: &'static str, value: u64 },
    /// The database was written by a newer build; opening it could corrupt it.
    #[error("database schema version {found} is newer than this build knows ({known})")]
    SchemaTooNew { found: u32, known: u32 },
    /// Stored data cannot be read back into the model.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store was shut down (or its writer stopped) before the operation could complete;
    /// the operation may or may not have taken effect only if it had reached the writer.
    #[error("the store is closed")]
    Closed,
    /// The storage engine failed (I/O, disk full, locking, SQL).
    #[error("storage backend failed: {0}")]
    Backend(#[source] BackendError),
}

impl StoreError {
    /// Wraps an engine's error; the store's implementations call this at their seam.
    pub fn backend(error: impl Error + Send + Sync + 'static) -> Self {
        Self::Backend(BackendError(Arc::new(error)))
    }
}

/// An engine's error, shared so that every waiter of a failed group commit gets the same one.
#[derive(Debug, Clone)]
pub struct BackendError(Arc<dyn Error + Send + Sync>);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

/// Why an enrolment token could not be spent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("unknown enrolment token")]
    Unknown,
    /// `now_ms` was at or past the token's `expires_at_ms`; the token stays unused.
    #[error("enrolment token expired")]
    Expired,
    #[error("enrolment token was already used")]
    AlreadyUsed,
    #[error(transparent)]
    Store(#[from] StoreError),
}
