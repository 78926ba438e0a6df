//! The one place the collector's own failures become gRPC statuses: a store that failed is
//! `UNAVAILABLE` (the caller may retry; nothing changed), a blocking task that did not finish
//! is `INTERNAL`, the log's own errors their codes. Refusals that are answers (a rule said
//! no) are mapped beside the rule that refuses them.

use collector_store::StoreError;
use tonic::Status;

use crate::ingest::IngestError;
use crate::log::LogError;

/// A store failure: nothing was changed, the caller may retry.
pub(crate) fn store(error: StoreError) -> Status {
    Status::unavailable(format!("store: {error}"))
}

/// A blocking task (the store's, verification) that panicked or was cancelled.
pub(crate) fn task(error: tokio::task::JoinError) -> Status {
    Status::internal(format!("a blocking task did not finish: {error}"))
}

/// The log's failures.
pub(crate) fn log(error: LogError) -> Status {
    match error {
        LogError::Store(error) => store(error),
        LogError::OutOfRange(message) => Status::out_of_range(message),
        LogError::NoHead => Status::not_found("no tree head has been signed yet"),
        LogError::Origin(message) => Status::internal(message),
    }
}

/// A batch not ingested, or books that could not be loaded again.
pub(crate) fn ingest(error: IngestError) -> Status {
    match error {
        IngestError::Store(error) => store(error),
        IngestError::Task { .. } => Status::unavailable(error.to_string()),
    }
}

/// Runs `work` on the store off the executor: its failure and the task's as statuses.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &std::sync::Arc<dyn collector_store::AttestationStore>,
    work: impl FnOnce(&dyn collector_store::AttestationStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Status> {
    let store = std::sync::Arc::clone(store);
    tokio::task::spawn_blocking(move || work(store.as_ref()))
        .await
        .map_err(task)?
        .map_err(self::store)
}
