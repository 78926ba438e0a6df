//! The collector's gRPC services over mutual TLS (tonic, rustls with ring): the agent stream
//! (verify, admit, store, acknowledge), enrollment, admin, health and server reflection.
//! Identities and roles come from client certificates: an agent can only submit, an admin
//! manages, an auditor reads.
//!
//! Invariant: an attestation is acknowledged only after the store committed it; generated
//! types stay at this boundary.

pub mod admin;
pub mod agent_stream;
pub mod audit;
pub mod audit_trail;
pub mod enrollment;
mod export;
pub mod health;
pub mod identity;
pub mod ingest;
pub mod log;
pub mod metrics;
pub mod nonce;
pub mod report;
mod wire;
pub mod witnesses;

use std::sync::Arc;
use std::time::Duration;

use proto_wire::MAX_MESSAGE_BYTES;
use proto_wire::health::health_server::HealthServer;
use proto_wire::v1::admin_server::AdminServer;
use proto_wire::v1::agent_stream_server::AgentStreamServer;
use proto_wire::v1::audit_server::AuditServer;
use proto_wire::v1::enrollment_server::EnrollmentServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

pub use ingest::{Collector, Outcome, Rules};

/// TLS material of the server.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain, PEM.
    pub certificate_pem: Vec<u8>,
    /// Its private key, PEM.
    pub key_pem: Vec<u8>,
    /// CA that signs client certificates, PEM.
    pub client_ca_pem: Vec<u8>,
}

/// Serves every service on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: TlsFiles,
    collector: Arc<Collector>,
    log: Arc<log::LogKeeper>,
    ca: Option<Arc<collector_pki::Ca>>,
    challenge_every: Duration,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    // Client certificates are verified when presented and required by every service but
    // enrollment, which is how an agent gets its first certificate.
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&tls.certificate_pem, &tls.key_pem))
        .client_ca_root(Certificate::from_pem(&tls.client_ca_pem))
        .client_auth_optional(true);
    let (reflection_v1, reflection_v1alpha) = reflection();
    http2_settings(Server::builder().tls_config(tls)?)
        .add_service(
            AgentStreamServer::new(agent_stream::AgentStreamService::new(
                Arc::clone(&collector),
                challenge_every,
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(EnrollmentServer::new(enrollment::EnrollmentService::new(
            Arc::clone(&collector),
            ca,
        )))
        .add_service(AdminServer::new(admin::AdminService::new(Arc::clone(
            &collector,
        ))))
        .add_service(AuditServer::new(audit::AuditService::new(
            Arc::clone(&collector),
            log,
        )))
        .add_service(HealthServer::new(health::HealthService))
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await
}

/// Dead-peer detection: a PING every 30 s on every connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// Bytes one stream may have in flight towards the collector before it reads them: an agent's
/// pipelined window of 64 attestations of 2 KiB fits (hyper's default of 1 MiB per stream let
/// one agent make the collector buffer four times that).
const STREAM_WINDOW_BYTES: u32 = 256 * 1024;

/// Bytes all streams of one connection may have in flight.
const CONNECTION_WINDOW_BYTES: u32 = 1024 * 1024;

/// Streams one connection may have open at once: an agent needs one, `veuctl` a few; each
/// costs the collector a session and its buffers (hyper's default allows 200).
const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// The HTTP/2 settings of every connection, in one place. None of them allocates per idle
/// connection: they bound what one connection may make the collector hold.
fn http2_settings(builder: Server) -> Server {
    builder
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
}

/// Server reflection (`grpcurl list`, `describe`) over the contract's file descriptors, v1
/// and v1alpha (older clients). The descriptors are public (the `.proto` files are in the
/// repository); a caller still needs TLS, and for anything but enrollment a client
/// certificate, to call a service. The descriptors are compiled in, so a failure here is a
/// build defect: logged, and the collector serves without reflection.
fn reflection() -> (
    Option<
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
    >,
    Option<
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    >,
) {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto_wire::FILE_DESCRIPTOR_SET)
    };
    let log = |error: tonic_reflection::server::Error| {
        tracing::error!(%error, "server reflection is off: the compiled-in descriptors do not load");
    };
    (
        builder().build_v1().map_err(log).ok(),
        builder().build_v1alpha().map_err(log).ok(),
    )
}
