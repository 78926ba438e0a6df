//! The witness over plain HTTP/1.1 (hyper): `POST /add-checkpoint`, `GET /` (what this
//! witness is) and `GET /<origin hash>/checkpoint` (the monitoring path).
//!
//! Bounded everywhere: connections (a semaphore, taken before accepting), header and body read
//! deadlines, body size, connection lifetime. A failing request, even a panicking one, ends
//! alone; the accept loop never does until shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use proto_note::{SIZE_CONTENT_TYPE, format_cosignatures, format_size_body};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::witness::{Refusal, Witness};

const TEXT: &str = "text/plain; charset=utf-8";

/// The bounds of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body read; larger ones get 413.
    pub max_body_bytes: usize,
    /// Deadline for a request's headers, and separately for its body.
    pub read_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// A connection is closed (gracefully) after this long, busy or idle.
    pub connection_lifetime: Duration,
    /// How long open connections may finish after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            read_timeout: Duration::from_secs(10),
            max_connections: 256,
            connection_lifetime: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves `witness` on `listener` until `shutdown`, then lets open connections finish within
/// the grace period.
pub async fn serve(
    listener: TcpListener,
    witness: Arc<Witness>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let Some((stream, peer)) = veu_daemon_kit::listen::accept(&listener, &shutdown).await
        else {
            break;
        };
        let witness = Arc::clone(&witness);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            serve_connection(stream, witness, limits, shutdown).await;
            tracing::debug!(%peer, "connection closed");
            drop(permit);
        });
    }
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period are dropped");
    }
}

async fn serve_connection(
    stream: TcpStream,
    witness: Arc<Witness>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let service = service_fn(move |request| {
        let witness = Arc::clone(&witness);
        async move { Ok::<_, Infallible>(respond(request, witness, limits).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(16 * 1024);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            return;
        }
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(limits.connection_lifetime) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.shutdown_grace, connection).await;
}

async fn respond(
    request: Request<Incoming>,
    witness: Arc<Witness>,
    limits: Limits,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    match path.as_str() {
        "/add-checkpoint" if method == Method::POST => {
            add_checkpoint(request, witness, limits).await
        }
        "/add-checkpoint" => not_allowed("POST"),
        "/" if method == Method::GET => text(StatusCode::OK, describe(&witness)),
        "/" => not_allowed("GET"),
        _ => match monitored_origin_hash(&path) {
            Some(hash) if method == Method::GET => match witness.checkpoint_by_origin_hash(hash) {
                Some(note) => text(StatusCode::OK, note),
                None => text(
                    StatusCode::NOT_FOUND,
                    "this witness has cosigned no checkpoint of that log\n".to_owned(),
                ),
            },
            Some(_) => not_allowed("GET"),
            None => text(
                StatusCode::NOT_FOUND,
                "no such resource: this witness serves POST /add-checkpoint, GET / and \
                 GET /<origin hash>/checkpoint\n"
                    .to_owned(),
            ),
        },
    }
}

async fn add_checkpoint(
    request: Request<Incoming>,
    witness: Arc<Witness>,
    limits: Limits,
) -> Response<Full<Bytes>> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return too_large(limits);
    }
    let body = Limited::new(request.into_body(), limits.max_body_bytes).collect();
    let body = match tokio::time::timeout(limits.read_timeout, body).await {
        Err(_elapsed) => {
            tracing::info!(
                reason = "the body did not arrive in time",
                "add-checkpoint refused"
            );
            return text(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {:?}\n",
                    limits.read_timeout
                ),
            );
        }
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(limits);
        }
        Ok(Err(error)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {error}\n"),
            );
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    // Verification and fsync block: off the executor.
    match tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await {
        Ok(Ok(cosigned)) => {
            tracing::info!(
                origin = %cosigned.origin,
                size = cosigned.size,
                old_size = cosigned.old_size,
                "cosigned a checkpoint"
            );
            text(StatusCode::OK, format_cosignatures(&cosigned.cosignatures))
        }
        Ok(Err(refusal)) => refused(&refusal),
        Err(error) => {
            tracing::error!(%error, "add-checkpoint failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error\n".to_owned(),
            )
        }
    }
}

/// The answer to a refusal, logged: the 409 body is the witness's size, as the protocol says;
/// other bodies say why in a sentence.
fn refused(refusal: &Refusal) -> Response<Full<Bytes>> {
    let status =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let origin = refusal.origin().unwrap_or("-");
    if status.is_server_error() {
        tracing::error!(origin, reason = %refusal, "add-checkpoint failed");
        return text(status, "internal error\n".to_owned());
    }
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        // A checkpoint signed by the log that does not extend what was cosigned: a broken
        // proof at best, the log showing two histories at worst.
        tracing::warn!(origin, status = status.as_u16(), reason = %refusal, "add-checkpoint refused");
    } else {
        tracing::info!(origin, status = status.as_u16(), reason = %refusal, "add-checkpoint refused");
    }
    match refusal {
        Refusal::Conflict { witness_size, .. } => {
            let mut response = text(status, format_size_body(*witness_size));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(SIZE_CONTENT_TYPE));
            response
        }
        refusal => text(status, format!("{refusal}\n")),
    }
}

/// `GET /`: the witness's verifier key and what it follows.
fn describe(witness: &Witness) -> String {
    let mut out = format!(
        "veu-witness: a C2SP tlog-witness (cosignature/v1)\nverifier key: {}\n",
        witness.verifier_key()
    );
    for (origin, size) in witness.sizes() {
        out.push_str(&format!("log {origin} latest cosigned size {size}\n"));
    }
    out
}

/// `/<64 lowercase hex digits>/checkpoint`.
fn monitored_origin_hash(path: &str) -> Option<&str> {
    let hash = path.strip_prefix('/')?.strip_suffix("/checkpoint")?;
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (hash.len() == 64 && hash.bytes().all(lower_hex)).then_some(hash)
}

fn too_large(limits: Limits) -> Response<Full<Bytes>> {
    tracing::info!(
        reason = "body over the limit",
        limit = limits.max_body_bytes,
        "add-checkpoint refused"
    );
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is over the {}-byte limit\n",
            limits.max_body_bytes
        ),
    )
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this resource takes {allow}\n"),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT));
    response
}
