//! The probe listener: accepts agents' connections, measures each in its own task (at most
//! `max_sessions` at once; a connection beyond them is closed at once), and hands every signed
//! statement to a bounded queue without waiting: when the queue is full the statement is
//! dropped with a log line, so a slow collector never holds a session open.

use std::net::SocketAddr;
use std::sync::Arc;

use proto_evidence::{KeyId, Measurement, SignedMeasurement};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::session::{Identity, Limits, SessionError, measure};

/// Serves agents on `listener` until `shutdown`; each statement goes to `sink`. Sessions in
/// flight at shutdown are ended.
pub async fn serve(
    listener: TcpListener,
    identity: Arc<Identity>,
    limits: Limits,
    sink: mpsc::Sender<SignedMeasurement>,
    shutdown: CancellationToken,
) {
    let sessions = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(limits.max_sessions.max(1)));
    loop {
        let Some((stream, peer)) = veu_daemon_kit::listen::accept(&listener, &shutdown).await
        else {
            break;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                %peer,
                max_sessions = limits.max_sessions,
                "too many sessions at once: connection closed"
            );
            drop(stream);
            continue;
        };
        let identity = Arc::clone(&identity);
        let sink = sink.clone();
        let shutdown = shutdown.clone();
        sessions.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = session(stream, peer, &identity, &limits, &sink) => {}
            }
            drop(permit);
        });
    }
    sessions.close();
    sessions.wait().await;
}

async fn session(
    mut stream: TcpStream,
    peer: SocketAddr,
    identity: &Identity,
    limits: &Limits,
    sink: &mpsc::Sender<SignedMeasurement>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let result = measure(&mut stream, identity, limits).await;
    // Closing politely lets the agent read the last frame; a peer gone already is no matter.
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    let signed = match result {
        Ok(signed) => signed,
        // Scanners and other strangers: not worth more than a debug line.
        Err(
            error @ (SessionError::HelloTimeout(_)
            | SessionError::NotAProbe(_)
            | SessionError::Io(_)),
        ) => {
            tracing::debug!(%peer, %error, "session ended without a measurement");
            return;
        }
        Err(error) => {
            tracing::info!(%peer, %error, "session ended without a measurement");
            return;
        }
    };
    if let Ok(measurement) = Measurement::decode(&signed.statement) {
        tracing::info!(
            %peer,
            host = %measurement.host,
            agent_key = %KeyId::of_public_key(&measurement.agent_key),
            min_rtt_us = measurement.min_rtt_us,
            rounds = measurement.rounds,
            "measured"
        );
    }
    match sink.try_send(signed) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(%peer, "the submission queue is full: measurement dropped");
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::warn!(%peer, "the submitter has stopped: measurement dropped");
        }
    }
}
