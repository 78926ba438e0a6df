//! The one place the collector's own failures become gRPC statuses: a store that failed is
//! `UNAVAILABLE` (the caller may retry; nothing changed), a blocking task that did not finish
//! is `INTERNAL`, the log's own errors their codes, and what the application refused (an
//! administrative change, an enrolment, a renewal, a report, a distribution, an export, a
//! measurement) the code of its refusal. Refusals of the stream's own protocol are answered
//! on the stream, beside the rule that refuses them.

use collector_app::distribution::DistributionError;
use collector_app::enrollment::{EnrolmentError, RenewalError};
use collector_app::export::ExportError;
use collector_app::ingest::{AdminError, IngestError};
use collector_app::landmark::SubmitError;
use collector_app::log::LogError;
use collector_app::report::ReportError;
use collector_core::MeasurementRefusal;
use collector_store::StoreError;
use tonic::Status;

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

/// An administrative change the books refused (an enrolment that collides, a change the
/// ledger refuses) or the store failed.
pub(crate) fn admin(error: AdminError) -> Status {
    match error {
        AdminError::Enrol(refusal) => Status::already_exists(refusal.to_string()),
        AdminError::Refused(refusal) => Status::failed_precondition(refusal.to_string()),
        AdminError::Store(error) => store(error),
        AdminError::Unsettled(error) => ingest(error),
    }
}

/// An enrolment refused or failed.
pub(crate) fn enrolment(error: EnrolmentError) -> Status {
    let message = error.to_string();
    match error {
        EnrolmentError::NoCa | EnrolmentError::SiteGone(_) => Status::failed_precondition(message),
        EnrolmentError::Key(_) | EnrolmentError::Certificate(_) | EnrolmentError::HostId { .. } => {
            Status::invalid_argument(message)
        }
        EnrolmentError::Refused { .. } => Status::already_exists(message),
        EnrolmentError::Token(_) => Status::permission_denied(message),
        EnrolmentError::Store(error) => store(error),
        EnrolmentError::Task(error) => task(error),
        EnrolmentError::Admin(error) => admin(error),
    }
}

/// A certificate renewal refused.
pub(crate) fn renewal(error: RenewalError) -> Status {
    let message = error.to_string();
    match error {
        RenewalError::Key(_) | RenewalError::Certificate(_) => Status::invalid_argument(message),
        RenewalError::Refused(_) => Status::permission_denied(message),
    }
}

/// A report not built: a month that is not one or has not started, the store or the log, or
/// stored data that makes no report.
pub(crate) fn report(error: ReportError) -> Status {
    match error {
        ReportError::Month(message) => Status::invalid_argument(message),
        error @ ReportError::NotStarted { .. } => Status::failed_precondition(error.to_string()),
        ReportError::Store(error) => store(error),
        ReportError::Log(error) => log(error),
        ReportError::Data(message) => Status::data_loss(message),
    }
}

/// A distribution not replayed.
pub(crate) fn distribution(error: DistributionError) -> Status {
    match error {
        DistributionError::Store(error) => store(error),
        DistributionError::Data(message) => Status::data_loss(message),
        DistributionError::Overflow => Status::out_of_range(error.to_string()),
        DistributionError::Location(error) => report(error),
    }
}

/// An export stopped: the store or the log failed, a leaf is missing, or the item could not
/// be sent (its own status).
pub(crate) fn export(error: ExportError<Status>) -> Status {
    match error {
        ExportError::Store(error) => store(error),
        ExportError::Log(error) => log(error),
        ExportError::Missing(_) => Status::data_loss(error.to_string()),
        ExportError::Sink(status) => status,
    }
}

/// A delivered measurement not admitted.
pub(crate) fn submit(error: SubmitError) -> Status {
    let message = error.to_string();
    match error {
        SubmitError::Invalid(_) => Status::invalid_argument(message),
        SubmitError::Refused(
            MeasurementRefusal::UnknownLandmark(_) | MeasurementRefusal::WrongLandmark { .. },
        ) => Status::permission_denied(message),
        SubmitError::Refused(
            MeasurementRefusal::MovedLandmark { .. } | MeasurementRefusal::Skewed { .. },
        ) => Status::invalid_argument(message),
        SubmitError::Refused(
            MeasurementRefusal::UnknownHost(_) | MeasurementRefusal::NotHostKey { .. },
        ) => Status::failed_precondition(message),
        SubmitError::Refused(MeasurementRefusal::Replayed { .. }) => {
            Status::already_exists(message)
        }
        SubmitError::Store(_) | SubmitError::Failed(_) => Status::unavailable(message),
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
