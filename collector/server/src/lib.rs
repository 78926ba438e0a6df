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
pub mod connections;
pub mod enrollment;
mod export;
pub mod health;
pub mod identity;
pub mod landmark;
mod report;
mod status;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use collector_app::Collector;
use collector_app::log::LogKeeper;
use proto_wire::MAX_MESSAGE_BYTES;
use proto_wire::health::health_server::HealthServer;
use proto_wire::v1::admin_server::AdminServer;
use proto_wire::v1::agent_stream_server::AgentStreamServer;
use proto_wire::v1::audit_server::AuditServer;
use proto_wire::v1::enrollment_server::EnrollmentServer;
use proto_wire::v1::landmark_server::LandmarkServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

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

/// What bounds the work strangers can cause: connections and enrollment.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Connections, handshakes, first requests and HTTP/2 streams.
    pub connections: connections::Limits,
    /// Unauthenticated enrollment calls.
    pub enrollment: enrollment::Limits,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The TLS material does not make a server configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
}

/// Serves every service on `listener` until `shutdown`, within `limits`.
#[allow(clippy::too_many_arguments)] // each is one of the server's independent inputs
pub async fn serve(
    listener: TcpListener,
    tls: TlsFiles,
    collector: Arc<Collector>,
    log: Arc<LogKeeper>,
    ca: Option<Arc<collector_pki::Ca>>,
    challenge_every: Duration,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(&tls)?));
    let gate = connections::Gate::new(limits.connections.clone(), Arc::clone(&collector.metrics));
    let incoming = connections::accept(listener, acceptor, Arc::clone(&gate), shutdown.clone());
    let streams = limits.connections.max_concurrent_streams.max(1);
    let (reflection_v1, reflection_v1alpha) = reflection();
    Server::builder()
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(streams)
        .concurrency_limit_per_connection(streams as usize)
        // Streams a peer opens and resets at once (the "rapid reset" pattern) end the
        // connection past this many.
        .http2_max_pending_accept_reset_streams(Some(streams as usize))
        .http2_max_header_list_size(16 * 1024)
        .layer(tonic::service::InterceptorLayer::new(
            move |request: tonic::Request<()>| {
                if let Some(peer) = request.remote_addr() {
                    gate.served(peer);
                }
                Ok(request)
            },
        ))
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
            limits.enrollment,
        )))
        .add_service(AdminServer::new(admin::AdminService::new(Arc::clone(
            &collector,
        ))))
        .add_service(AuditServer::new(audit::AuditService::new(
            Arc::clone(&collector),
            log,
        )))
        .add_service(
            LandmarkServer::new(landmark::LandmarkService::new(Arc::clone(&collector)))
                .max_decoding_message_size(16 * 1024),
        )
        .add_service(HealthServer::new(health::HealthService))
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(
            ReceiverStream::new(incoming).map(Ok::<_, std::io::Error>),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

/// The TLS server configuration: ring, HTTP/2 by ALPN, and client certificates verified
/// when presented and required by every service but enrollment, which is how an agent
/// gets its first certificate.
fn server_config(tls: &TlsFiles) -> Result<rustls::ServerConfig, ServeError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| ServeError::Tls(format!("{what}: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&tls.client_ca_pem) {
        let certificate = certificate.map_err(|e| fail("client CA", &e))?;
        roots.add(certificate).map_err(|e| fail("client CA", &e))?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .allow_unauthenticated()
            .build()
            .map_err(|e| fail("client CA", &e))?;
    let chain = CertificateDer::pem_slice_iter(&tls.certificate_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("server certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| fail("server key", &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("protocol versions", &e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| fail("server certificate and key", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Bytes one stream may have in flight towards the collector before it reads them: an agent's
/// pipelined window of 64 attestations of 2 KiB fits (hyper's default of 1 MiB per stream let
/// one agent make the collector buffer four times that).
const STREAM_WINDOW_BYTES: u32 = 256 * 1024;

/// Bytes all streams of one connection may have in flight.
const CONNECTION_WINDOW_BYTES: u32 = 1024 * 1024;

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
