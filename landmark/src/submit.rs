//! Delivering signed statements to the collector's `veu.v1.Landmark/Submit` over mutual TLS
//! (rustls with ring; the client certificate names `urn:veu:landmark:<id>`). One task takes
//! statements from the bounded queue in order; a transient failure is retried with backoff, a
//! definitive refusal drops the statement with a log line. Retryable and definitive are told
//! apart here only ([`classify`]).

use std::time::Duration;

use proto_evidence::SignedMeasurement;
use proto_wire::v1;
use proto_wire::v1::landmark_client::LandmarkClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
pub use veu_daemon_kit::backoff::Backoff;

use crate::config::{Collector, Tls};

/// Statements waiting for the submitter, at most.
pub const QUEUE: usize = 1024;

/// Attempts per statement before it is given up.
pub const MAX_ATTEMPTS: u32 = 12;

/// The delays between attempts: doubling from a second up to a minute (no jitter: one
/// landmark, one collector).
pub const BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(60),
};

/// What to do after a failed submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Try the same statement again after a backoff.
    Retry,
    /// The collector refuses it for good: drop it.
    Drop,
}

/// Classifies a failed call's status.
pub fn classify(code: tonic::Code) -> Disposition {
    use tonic::Code;
    match code {
        // Network trouble, restarts, overload, deadlines; internal errors of a collector being
        // fixed. (A failed connection comes back as Unavailable.)
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Cancelled
        | Code::Unknown
        | Code::Internal => Disposition::Retry,
        // Invalid, unknown landmark, stale, replayed, not permitted: the same bytes would be
        // refused again.
        _ => Disposition::Drop,
    }
}

/// Why the collector endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("invalid collector endpoint {endpoint}: {message}")]
pub struct EndpointError {
    /// The URL.
    pub endpoint: String,
    /// Why.
    pub message: String,
}

/// The collector's endpoint with mutual TLS and its name pinned.
pub fn endpoint(collector: &Collector, tls: &Tls) -> Result<Endpoint, EndpointError> {
    let invalid = |message: String| EndpointError {
        endpoint: collector.endpoint.clone(),
        message,
    };
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
        .identity(Identity::from_pem(&tls.certificate_pem, &tls.key_pem))
        .domain_name(collector.server_name.clone());
    Channel::from_shared(collector.endpoint.clone())
        .map_err(|error| invalid(error.to_string()))?
        .tls_config(config)
        .map_err(|error| invalid(error.to_string()))
        .map(|endpoint| {
            endpoint
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
        })
}

/// Submits every statement from `queue` over `channel` until `shutdown` or the queue closes.
/// At shutdown, the statement in flight and those still queued get one more attempt each,
/// within [`DRAIN`]; what is left then is counted in a log line and dropped.
pub async fn run(
    channel: Channel,
    mut queue: mpsc::Receiver<SignedMeasurement>,
    backoff: Backoff,
    shutdown: CancellationToken,
) {
    let mut client = LandmarkClient::new(channel);
    let mut interrupted = None;
    'statements: loop {
        // Biased: once shutdown is asked for, nothing new starts; what is queued goes to the
        // drain below, so a statement is never both interrupted and submitted.
        let signed = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = queue.recv() => match next {
                Some(signed) => signed,
                None => return,
            },
        };
        let Some(bytes) = encoded(&signed) else {
            continue;
        };
        let mut delay = backoff.initial;
        for attempt in 1..=MAX_ATTEMPTS {
            let status = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    interrupted = Some(bytes);
                    break 'statements;
                }
                result = submit_once(&mut client, &bytes) => match result {
                    Ok(()) => break,
                    Err(status) => status,
                },
            };
            match classify(status.code()) {
                Disposition::Drop => {
                    tracing::error!(
                        code = ?status.code(),
                        message = status.message(),
                        "the collector refused a measurement: dropped"
                    );
                    break;
                }
                Disposition::Retry if attempt == MAX_ATTEMPTS => {
                    tracing::error!(
                        code = ?status.code(),
                        message = status.message(),
                        attempts = attempt,
                        "cannot submit a measurement: given up"
                    );
                }
                Disposition::Retry => {
                    tracing::warn!(
                        code = ?status.code(),
                        message = status.message(),
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot submit a measurement: retrying"
                    );
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => {
                            interrupted = Some(bytes);
                            break 'statements;
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(backoff.max);
                }
            }
        }
    }
    queue.close();
    let mut left: Vec<Vec<u8>> = interrupted.into_iter().collect();
    while let Ok(signed) = queue.try_recv() {
        left.extend(encoded(&signed));
    }
    let total = left.len();
    let mut submitted = 0usize;
    let drain = async {
        for bytes in &left {
            if submit_once(&mut client, bytes).await.is_ok() {
                submitted += 1;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN, drain).await;
    if submitted < total {
        tracing::warn!(
            measurements = total - submitted,
            "stopping with measurements not submitted"
        );
    }
}

/// How long the statements left at shutdown may take to submit.
pub const DRAIN: Duration = Duration::from_secs(5);

/// One call; an accepted statement is logged with the collector's verdict.
async fn submit_once(
    client: &mut LandmarkClient<Channel>,
    bytes: &[u8],
) -> Result<(), tonic::Status> {
    let request = v1::SubmitMeasurementRequest {
        measurement: bytes.to_vec(),
    };
    let response = client.submit(request).await?.into_inner();
    tracing::info!(
        log_index = response.log_index,
        verdict = %response.verdict,
        "measurement accepted by the collector"
    );
    Ok(())
}

fn encoded(signed: &SignedMeasurement) -> Option<Vec<u8>> {
    signed
        .encode()
        .map_err(|error| {
            tracing::error!(%error, "a signed measurement does not encode: dropped");
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_retry_refusals_drop() {
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::DeadlineExceeded,
            tonic::Code::ResourceExhausted,
            tonic::Code::Internal,
        ] {
            assert_eq!(classify(code), Disposition::Retry, "{code:?}");
        }
        for code in [
            tonic::Code::InvalidArgument,
            tonic::Code::PermissionDenied,
            tonic::Code::Unauthenticated,
            tonic::Code::FailedPrecondition,
            tonic::Code::AlreadyExists,
            tonic::Code::NotFound,
            tonic::Code::Unimplemented,
        ] {
            assert_eq!(classify(code), Disposition::Drop, "{code:?}");
        }
    }
}
