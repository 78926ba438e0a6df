//! The agent's uplink: one long-lived gRPC stream to the collector over mutual TLS (rustls with
//! ring). It sends `Hello`, replays the spool in order, streams new attestations, answers
//! challenges, removes acknowledged entries, and reconnects with exponential backoff and
//! jitter. Retryable and fatal errors are told apart in one place (`retry::classify`). It also
//! answers landmarks' round-trip probes (`probe_landmark`, plain TCP out to a landmark).
//!
//! Invariant: generated protobuf types stay in `wire`; an entry leaves the outbox only on the
//! collector's ack (or its definitive reject).

mod enroll;
mod probe;
mod retry;
mod session;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proto_seal::Ed25519Signer;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub use enroll::{EnrollError, Enrolled, Enrollment, Renewal, enroll, renew};
pub use probe::{ProbeError, ProbeOutcome, probe_landmark};
pub use proto_evidence::RejectReason;
pub use retry::{Backoff, Disposition, classify_reject, classify_status};

/// Where the collector is and how to prove who we are.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// `https://collector.example:7443`.
    pub endpoint: String,
    /// The name the collector's certificate must carry.
    pub server_name: String,
    /// PEM of the CA that signs the collector's certificate.
    pub ca_pem: Vec<u8>,
    /// PEM of this agent's client certificate chain.
    pub certificate_pem: Vec<u8>,
    /// PEM of this agent's TLS private key (not the signing key).
    pub key_pem: Vec<u8>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// What the agent says in `Hello`.
    pub hello: Hello,
}

/// The agent's introduction on every stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Host id.
    pub host_id: String,
    /// This agent's version.
    pub agent_version: String,
}

/// TLS files that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A PEM file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The endpoint URL or TLS material was refused.
    #[error("invalid collector endpoint {endpoint}: {message}")]
    Endpoint {
        /// The URL.
        endpoint: String,
        /// Why.
        message: String,
    },
}

/// Reads a PEM file for the uplink.
pub fn read_pem(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The agent's store of signed attestations, as the uplink sees it. Implemented over the
/// durable spool by the daemon, and in memory by tests.
pub trait Outbox: Send + Sync + 'static {
    /// Why an operation failed; its message names what and where (a file's path).
    type Error: std::error::Error + Send + 'static;
    /// Up to `limit` entries with a sequence above `after`, in order:
    /// `(sequence, encoded envelope)`.
    fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, Self::Error>;
    /// The collector stored everything up to `sequence`.
    fn acknowledged(&self, sequence: u64) -> Result<(), Self::Error>;
    /// The collector refused `sequence` for good; keep it aside, stop sending it. `reason` is
    /// `None` when the collector gave none this agent knows.
    fn refused(
        &self,
        sequence: u64,
        reason: Option<RejectReason>,
        detail: &str,
    ) -> Result<(), Self::Error>;
    /// The highest sequence signed so far and its chain digest, for `Hello`.
    fn head(&self) -> (u64, Vec<u8>);
}

/// What the uplink tells the rest of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A stream is up.
    Connected,
    /// The collector sent a fresh nonce: the next attestation should carry it.
    Challenge(Vec<u8>),
    /// Entries up to this sequence are stored by the collector.
    Acknowledged(u64),
    /// An entry was refused for good.
    Refused {
        /// Its sequence.
        sequence: u64,
        /// Why, when the collector said in a code this agent knows.
        reason: Option<RejectReason>,
    },
    /// The stream ended; the uplink retries after `retry_in`.
    Disconnected {
        /// The cause.
        cause: String,
        /// The backoff chosen.
        retry_in: Duration,
    },
}

/// Why the uplink gave up: retrying cannot help, the operator must act.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// The collector's endpoint or TLS material cannot make a channel (checked at start-up, so
    /// only a configuration changed under a running agent reaches this).
    #[error("the collector cannot be reached as configured: {0}")]
    Config(#[from] ConfigError),
    /// The collector refused an attestation for a reason no retry can change: the key is
    /// unknown, revoked or bound to another identity, or the agent speaks another protocol.
    #[error(
        "the collector refuses this agent: attestation {sequence} rejected ({}): {detail}",
        reason.as_str()
    )]
    Rejected {
        /// The attestation.
        sequence: u64,
        /// The collector's reason.
        reason: RejectReason,
        /// Its words.
        detail: String,
    },
    /// The collector ended the stream with a status no retry can change (unauthenticated,
    /// permission denied, unimplemented).
    #[error("the collector refuses this agent: {code:?}: {message}")]
    Refused {
        /// The gRPC status code.
        code: tonic::Code,
        /// The collector's message.
        message: String,
    },
}

/// What the uplink needs from the daemon.
#[derive(Debug)]
pub struct Deps<O> {
    /// The spool.
    pub outbox: Arc<O>,
    /// Signs challenge responses.
    pub signer: Arc<Ed25519Signer>,
    /// Notified whenever a new entry was added to the outbox.
    pub new_entry: Arc<Notify>,
    /// Events for the daemon (bounded: the uplink waits when the daemon lags).
    pub events: mpsc::Sender<Event>,
}

/// Runs until `shutdown` is cancelled or the collector refuses the agent for good.
pub async fn run<O: Outbox>(
    config: UplinkConfig,
    deps: Deps<O>,
    shutdown: CancellationToken,
) -> Result<(), Fatal> {
    let endpoint = endpoint(&config)?;
    let mut backoff = config.backoff.start();
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            outcome = session::run(&endpoint, &config, &deps, &shutdown) => outcome,
        };
        let cause = match outcome {
            session::Outcome::Shutdown => return Ok(()),
            session::Outcome::Fatal(fatal) => return Err(fatal),
            session::Outcome::Retry { cause, healthy } => {
                if healthy {
                    backoff = config.backoff.start();
                }
                cause
            }
        };
        let retry_in = backoff.next_delay(random_u32());
        tracing::warn!(%cause, retry_in_ms = retry_in.as_millis() as u64, "collector stream ended; reconnecting");
        let _ = deps
            .events
            .send(Event::Disconnected { cause, retry_in })
            .await;
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(retry_in) => {}
        }
    }
}

/// The configured endpoint with mTLS and the collector's name pinned.
pub fn endpoint(config: &UplinkConfig) -> Result<Endpoint, ConfigError> {
    let invalid = |message: String| ConfigError::Endpoint {
        endpoint: config.endpoint.clone(),
        message,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&config.ca_pem))
        .identity(Identity::from_pem(&config.certificate_pem, &config.key_pem))
        .domain_name(config.server_name.clone());
    Channel::from_shared(config.endpoint.clone())
        .map_err(|error| invalid(error.to_string()))?
        .tls_config(tls)
        .map_err(|error| invalid(error.to_string()))
        .map(|endpoint| {
            endpoint
                .connect_timeout(config.connect_timeout)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(20))
                .keep_alive_while_idle(true)
        })
}

/// A random `u32` for jitter, from the standard library's randomly keyed hasher.
pub fn random_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}
