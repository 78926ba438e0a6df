//! Measurement admission: round-trip-time landmarks deliver the measurements they signed.
//! Each is checked — the signature with the registered landmark's key, the
//! agent's answer inside it, then the location book's rule (`LocationBook::check`) — and only
//! then appended to the transparency log and entered in the book (docs/location.md).

use std::sync::Arc;

use collector_core::MeasurementRefusal;
use collector_store::{Event, HostId, StoreError};
use proto_evidence::Measurement;
use proto_location::{Landmarks, Verdict};
use proto_seal::MeasurementError;

use crate::ingest::Collector;

/// Kind of the event stored when a host's measurements come to contradict its declared place.
pub const LOCATION_INCONSISTENT_EVENT: &str = "location_inconsistent";

/// Why a delivered measurement was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Not a signed measurement, or its signatures do not verify.
    #[error(transparent)]
    Invalid(#[from] MeasurementError),
    /// The location book's rule refuses it.
    #[error(transparent)]
    Refused(#[from] MeasurementRefusal),
    /// The store did not append it; nothing changed.
    #[error("the measurement was not stored: {0}")]
    Store(#[from] StoreError),
    /// The collector failed before storing it; nothing changed.
    #[error("the measurement was not stored: {0}")]
    Failed(String),
}

impl SubmitError {
    /// Stable reason code for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(MeasurementError::Malformed(_)) => "measurement_malformed",
            Self::Invalid(MeasurementError::BadSignature) => "landmark_bad_signature",
            Self::Invalid(MeasurementError::BadAnswer) => "agent_bad_answer",
            Self::Invalid(MeasurementError::UnknownLandmark(_)) => "landmark_not_enrolled",
            Self::Refused(refusal) => refusal.code(),
            Self::Store(_) | Self::Failed(_) => "store_failed",
        }
    }
}

/// What an admitted measurement did.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// Its leaf in the log.
    pub log_index: u64,
    /// The host's verdict after it.
    pub verdict: Verdict,
}

/// Opens a delivered measurement with the landmarks the collector trusts
/// (`proto_seal::open_delivered`, which the offline verifier uses too).
pub fn open(bytes: &[u8], landmarks: &Landmarks) -> Result<Measurement, SubmitError> {
    proto_seal::open_delivered(bytes, |id| landmarks.get(id).map(|l| l.public_key)).map_err(
        |error| match error {
            MeasurementError::UnknownLandmark(id) => MeasurementRefusal::UnknownLandmark(id).into(),
            other => other.into(),
        },
    )
}

impl Collector {
    /// Admits a measurement `presenter` (the landmark's certificate name) delivered: opened,
    /// checked by the book's rule, appended to the log, then entered in the book. Submissions
    /// are admitted one at a time, so two copies of one measurement can never both be logged.
    pub async fn submit_measurement(
        &self,
        presenter: &str,
        bytes: Vec<u8>,
    ) -> Result<Admitted, SubmitError> {
        let measurement = open(&bytes, self.landmarks())?;
        let _one_at_a_time = self.measurement_lock().lock().await;
        let now = self.now_ms();
        {
            let state = self.state();
            state.locations.check(
                &measurement,
                Some(presenter),
                self.landmarks(),
                &state.ledger,
                now,
            )?;
        }
        let store = Arc::clone(&self.store);
        let host = measurement.host.clone();
        let log_index =
            tokio::task::spawn_blocking(move || store.append_measurement(&host, now, &bytes))
                .await
                .map_err(|e| SubmitError::Failed(format!("append task failed: {e}")))??;
        let (before, after) = {
            let mut state = self.state();
            let record = state.ledger.host(&measurement.host).cloned();
            let host = measurement.host.clone();
            let before = record.as_ref().map(|r| {
                state
                    .locations
                    .locate(&host, r, &state.ledger, &self.rules.sites, now)
                    .verdict
            });
            state.locations.accept(measurement.clone());
            let after = record.as_ref().map(|r| {
                state
                    .locations
                    .locate(&host, r, &state.ledger, &self.rules.sites, now)
            });
            (before, after)
        };
        let verdict = after.as_ref().map_or(Verdict::Unmeasured, |l| l.verdict);
        if verdict == Verdict::Inconsistent && before != Some(Verdict::Inconsistent) {
            let detail = after.map_or_else(String::new, |l| l.explain());
            tracing::warn!(host = %measurement.host, landmark = %measurement.landmark, %detail,
                "a host's round trips contradict its declared place");
            let event = Event {
                at_ms: now,
                kind: LOCATION_INCONSISTENT_EVENT.into(),
                host_id: Some(HostId(measurement.host.clone())),
                key_id: Some(measurement.agent_key_id()),
                detail,
                value: i64::try_from(log_index).ok(),
            };
            let batch = collector_store::Batch {
                events: vec![event],
                ..collector_store::Batch::default()
            };
            if let Err(error) = self.store.commit(batch).await {
                tracing::error!(%error, "cannot store the location_inconsistent event");
            }
        }
        // The location metrics follow on the daemon's next sweep: summing every host here
        // would cost each submission as much as the whole fleet.
        Ok(Admitted { log_index, verdict })
    }
}
