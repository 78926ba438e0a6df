//! One connected stream: hello, replay, new entries, challenges, acks and rejects.

use std::collections::VecDeque;
use std::sync::Arc;

use proto_wire::v1::agent_stream_client::AgentStreamClient;
use proto_wire::{MAX_MESSAGE_BYTES, v1};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;
use veu_daemon_kit::error_chain;

use crate::RejectReason;
use crate::retry::{Disposition, classify_reject, classify_status};
use crate::wire::{self, FromCollector};
use crate::{Deps, Event, Fatal, Outbox, UplinkConfig};

/// Entries read from the outbox at a time, so a long backlog is streamed, not loaded whole.
const READ_BATCH: usize = 64;

/// Messages queued in the outgoing stream.
const STREAM_BUFFER: usize = 32;

/// How a session ended.
pub(crate) enum Outcome {
    Shutdown,
    Fatal(Fatal),
    Retry {
        cause: String,
        /// The session got at least one ack: the collector works, restart the backoff.
        healthy: bool,
    },
}

pub(crate) async fn run<O: Outbox>(
    endpoint: &Endpoint,
    config: &UplinkConfig,
    deps: &Deps<O>,
    shutdown: &CancellationToken,
) -> Outcome {
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => {
            return Outcome::Retry {
                cause: format!(
                    "cannot connect to {}: {}",
                    config.endpoint,
                    error_chain(&error)
                ),
                healthy: false,
            };
        }
    };
    let mut client = AgentStreamClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);

    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let outbox = Arc::clone(&deps.outbox);
    let head = blocking(move || Ok::<_, std::convert::Infallible>(outbox.head()))
        .await
        .unwrap_or((0, Vec::new()));
    let key_id = deps.signer.key_id();
    let hello = wire::hello(
        &config.hello.host_id,
        &config.hello.agent_version,
        key_id.0.as_bytes(),
        head,
    );
    if sender.send(hello).await.is_err() {
        return retry("the outgoing stream closed before hello", false);
    }
    let mut inbound = match client.attest(ReceiverStream::new(receiver)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return from_status(&status, false),
    };
    tracing::info!(endpoint = %config.endpoint, "connected to the collector");
    let _ = deps.events.send(Event::Connected).await;

    let mut session = Session {
        deps,
        control: VecDeque::new(),
        backlog: VecDeque::new(),
        sent_up_to: 0,
        outbox_drained: false,
        healthy: false,
    };
    loop {
        if session.backlog.is_empty()
            && !session.outbox_drained
            && let Err(cause) = session.refill().await
        {
            return retry(&cause, session.healthy);
        }
        let ready_to_send = !session.control.is_empty() || !session.backlog.is_empty();
        tokio::select! {
            () = shutdown.cancelled() => return Outcome::Shutdown,
            message = inbound.message() => match message {
                Ok(Some(message)) => {
                    if let Some(outcome) = session.handle(message).await {
                        return outcome;
                    }
                }
                Ok(None) => return retry("the collector closed the stream", session.healthy),
                Err(status) => return from_status(&status, session.healthy),
            },
            () = deps.new_entry.notified(), if !ready_to_send => {
                session.outbox_drained = false;
            }
            permit = sender.reserve(), if ready_to_send => match permit {
                Ok(permit) => permit.send(session.next_message()),
                Err(_) => return retry("the outgoing stream closed", session.healthy),
            },
        }
    }
}

struct Session<'a, O> {
    deps: &'a Deps<O>,
    /// Challenge responses, sent before any attestation.
    control: VecDeque<v1::AgentMessage>,
    /// Attestations read from the outbox and not yet sent.
    backlog: VecDeque<v1::AgentMessage>,
    sent_up_to: u64,
    outbox_drained: bool,
    healthy: bool,
}

impl<O: Outbox> Session<'_, O> {
    async fn refill(&mut self) -> Result<(), String> {
        let outbox = Arc::clone(&self.deps.outbox);
        let after = self.sent_up_to;
        let batch = blocking(move || outbox.pending_after(after, READ_BATCH))
            .await
            .map_err(|error| format!("cannot read the spool: {error}"))?;
        // A short batch means everything pending is in hand; a full one, that more may follow.
        self.outbox_drained = batch.len() < READ_BATCH;
        for (sequence, bytes) in batch {
            self.sent_up_to = sequence;
            match wire::attestation(&bytes) {
                Ok(message) => self.backlog.push_back(message),
                Err(error) => {
                    // Only a damaged spool entry can fail here; it would never be accepted.
                    tracing::error!(sequence, %error, "spool entry is not an envelope; setting it aside");
                    let outbox = Arc::clone(&self.deps.outbox);
                    let _ = blocking(move || {
                        outbox.refused(
                            sequence,
                            Some(RejectReason::Malformed),
                            "undecodable spool entry",
                        )
                    })
                    .await;
                }
            }
        }
        Ok(())
    }

    fn next_message(&mut self) -> v1::AgentMessage {
        self.control
            .pop_front()
            .or_else(|| self.backlog.pop_front())
            .unwrap_or_default()
    }

    /// Handles one collector message; `Some` ends the session.
    async fn handle(&mut self, message: v1::CollectorMessage) -> Option<Outcome> {
        let message = match wire::from_collector(message) {
            Ok(message) => message,
            Err(error) => return Some(retry(&error.to_string(), self.healthy)),
        };
        match message {
            FromCollector::Challenge(nonce) => {
                let response = proto_seal::answer_challenge(&nonce, &self.deps.signer);
                self.control.push_back(wire::challenge_response(&response));
                let _ = self.deps.events.send(Event::Challenge(nonce)).await;
            }
            FromCollector::Ack(sequence) => {
                self.healthy = true;
                let outbox = Arc::clone(&self.deps.outbox);
                if let Err(error) = blocking(move || outbox.acknowledged(sequence)).await {
                    // The entry stays spooled and is sent again after a reconnect; the
                    // collector acknowledges a stored (key, sequence) idempotently.
                    tracing::error!(sequence, %error, "cannot remove an acknowledged entry from the spool");
                }
                let _ = self.deps.events.send(Event::Acknowledged(sequence)).await;
            }
            FromCollector::Reject {
                sequence,
                reason,
                detail,
            } => match (classify_reject(reason), reason) {
                (Disposition::Fatal, Some(reason)) => {
                    return Some(Outcome::Fatal(Fatal::Rejected {
                        sequence,
                        reason,
                        detail,
                    }));
                }
                (Disposition::SetAside, _) => {
                    tracing::error!(sequence, reason = reason.map_or("unspecified", RejectReason::as_str), %detail, "the collector refused an attestation; it is kept in the spool's rejected folder");
                    let outbox = Arc::clone(&self.deps.outbox);
                    let detail_owned = detail.clone();
                    if let Err(error) =
                        blocking(move || outbox.refused(sequence, reason, &detail_owned)).await
                    {
                        tracing::error!(sequence, %error, "cannot set a refused entry aside");
                    }
                    let _ = self
                        .deps
                        .events
                        .send(Event::Refused { sequence, reason })
                        .await;
                }
                // A reason this agent does not know is never fatal.
                (Disposition::Retry | Disposition::Fatal, _) => {
                    return Some(retry(
                        &format!("attestation {sequence} rejected: {detail}"),
                        self.healthy,
                    ));
                }
            },
        }
        None
    }
}

fn retry(cause: &str, healthy: bool) -> Outcome {
    Outcome::Retry {
        cause: cause.to_owned(),
        healthy,
    }
}

fn from_status(status: &tonic::Status, healthy: bool) -> Outcome {
    match classify_status(status.code()) {
        Disposition::Fatal => Outcome::Fatal(Fatal::Refused {
            code: status.code(),
            message: status.message().to_owned(),
        }),
        Disposition::Retry | Disposition::SetAside => retry(
            &format!("{:?}: {}", status.code(), status.message()),
            healthy,
        ),
    }
}

/// Runs spool I/O off the executor.
async fn blocking<T: Send + 'static, E: std::error::Error + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(error) => Err(format!("spool task failed: {error}")),
    }
}
