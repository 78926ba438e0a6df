//! The agent stream: hello, challenge, then attestations in batches, each answered by an ack
//! (after its commit) or a reject with its reason.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use collector_app::ingest::{Collector, Outcome};
use collector_core::Reason;
use collector_pki::Role;
use collector_store::{Batch, Rejection};
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as FromAgent;
use proto_wire::v1::agent_stream_server::AgentStream;
use proto_wire::v1::collector_message::Message as ToAgent;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::{identity, wire};

/// Attestations ingested together at most.
const MAX_BATCH: usize = 256;

/// How long an agent has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// The service.
#[derive(Debug, Clone)]
pub struct AgentStreamService {
    collector: Arc<Collector>,
    challenge_every: Duration,
}

impl AgentStreamService {
    /// A service over `collector`, sending a fresh challenge every `challenge_every`.
    pub fn new(collector: Arc<Collector>, challenge_every: Duration) -> Self {
        Self {
            collector,
            challenge_every,
        }
    }
}

type Outgoing = Pin<Box<dyn Stream<Item = Result<v1::CollectorMessage, Status>> + Send>>;

/// What a session queues for its agent, boxed: the channel allocates its slots 32 at a time
/// when it is made, and a pointer is 8 bytes where the message with its status is a few
/// hundred, for every connected agent.
type Queued = Box<Result<v1::CollectorMessage, Status>>;

#[tonic::async_trait]
impl AgentStream for AgentStreamService {
    type AttestStream = Outgoing;

    async fn attest(
        &self,
        request: Request<Streaming<v1::AgentMessage>>,
    ) -> Result<Response<Self::AttestStream>, Status> {
        // Only refusals of the caller go to the audit trail: accepted streams and rejected
        // attestations have their own events and are counted.
        let peer = identity::require(&request, Role::Agent).inspect_err(|status| {
            crate::audit_trail::record(
                &crate::audit_trail::caller(&request),
                "open attestation stream",
                "its host's attestations",
                &crate::audit_trail::Outcome::of_status(status),
            );
        })?;
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(MAX_BATCH);
        let session = Session {
            collector: Arc::clone(&self.collector),
            peer: peer.to_string(),
            sender,
            challenge_every: self.challenge_every,
        };
        tokio::spawn(session.run(inbound));
        Ok(Response::new(Box::pin(
            ReceiverStream::new(receiver).map(|queued| *queued),
        )))
    }
}

struct Session {
    collector: Arc<Collector>,
    peer: String,
    sender: mpsc::Sender<Queued>,
    challenge_every: Duration,
}

impl Session {
    async fn run(self, mut inbound: Streaming<v1::AgentMessage>) {
        self.collector.metrics.streams.inc();
        let result = self.serve(&mut inbound).await;
        self.collector.metrics.streams.dec();
        if let Err(status) = result {
            tracing::info!(peer = self.peer, %status, "agent stream ended");
            let _ = self.sender.send(Box::new(Err(status))).await;
        }
    }

    async fn serve(&self, inbound: &mut Streaming<v1::AgentMessage>) -> Result<(), Status> {
        // Hello first: names the key, which must be this identity's.
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(v1::AgentMessage {
                message: Some(FromAgent::Hello(hello)),
            }))) => hello,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(status)) => return Err(status),
            _ => {
                return self
                    .refuse(Reason::ProtocolViolation, "the first message must be hello")
                    .await;
            }
        };
        let Some(key) =
            proto_evidence::Sha256::from_slice(&hello.key_id).map(proto_evidence::KeyId)
        else {
            return self
                .refuse(Reason::Malformed, "hello.key_id must be 32 bytes")
                .await;
        };
        let Some(agent) = self.collector.agent(&key).await else {
            return self
                .refuse(Reason::UnknownKey, &format!("key {key} is not enrolled"))
                .await;
        };
        if self.collector.is_revoked(&key) {
            return self
                .refuse(Reason::RevokedKey, &format!("key {key} is revoked"))
                .await;
        }
        if agent.binding.identity != self.peer {
            let detail = format!(
                "key {key} is bound to {}, not {}",
                agent.binding.identity, self.peer
            );
            return self.refuse(Reason::KeyIdentityMismatch, &detail).await;
        }
        tracing::info!(
            peer = self.peer,
            host = agent.binding.host_id,
            last_sequence = hello.last_sequence,
            "agent connected"
        );

        let mut nonce = self.challenge(&key).await?;
        let mut ticker = tokio::time::interval(self.challenge_every);
        ticker.reset();
        loop {
            tokio::select! {
                _ = ticker.tick() => nonce = self.challenge(&key).await?,
                message = inbound.message() => {
                    let Some(first) = message? else { return Ok(()) };
                    // Take what else has already arrived, up to a batch.
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match tokio::time::timeout(Duration::ZERO, inbound.message()).await {
                            Ok(Ok(Some(next))) => batch.push(next),
                            Ok(Ok(None)) | Err(_) => break,
                            Ok(Err(status)) => return Err(status),
                        }
                    }
                    // Boxed: an idle session's task then holds no room for the ingest's state.
                    Box::pin(self.handle(&key, &nonce, batch)).await?;
                }
            }
        }
    }

    async fn handle(
        &self,
        key: &proto_evidence::KeyId,
        nonce: &[u8],
        batch: Vec<v1::AgentMessage>,
    ) -> Result<(), Status> {
        let mut attestations = Vec::with_capacity(batch.len());
        for message in batch {
            match message.message {
                Some(FromAgent::Attestation(attestation)) => {
                    attestations.push(wire::attestation(attestation));
                }
                Some(FromAgent::ChallengeResponse(response)) => {
                    let agent = self.collector.agent(key).await;
                    let checked = response
                        .envelope
                        .ok_or_else(|| "challenge response without an envelope".to_owned())
                        .and_then(|e| proto_seal::envelope_from_wire(e).map_err(|e| e.to_string()))
                        .and_then(|e| match &agent {
                            Some(agent) => {
                                proto_seal::check_challenge_response(&e, &agent.public_key, nonce)
                                    .map_err(|e| e.to_string())
                            }
                            None => Err("key is no longer enrolled".into()),
                        });
                    if let Err(detail) = checked {
                        return self
                            .refuse(
                                Reason::BadSignature,
                                &format!("challenge response: {detail}"),
                            )
                            .await;
                    }
                }
                Some(FromAgent::Hello(_)) | None => {
                    return self
                        .refuse(Reason::ProtocolViolation, "hello may only open the stream")
                        .await;
                }
            }
        }
        if attestations.is_empty() {
            return Ok(());
        }
        let outcomes = self
            .collector
            .ingest(&self.peer, attestations)
            .await
            .map_err(crate::status::ingest)?;
        for outcome in outcomes {
            let message = match outcome {
                Outcome::Ack { sequence, digest } => ToAgent::Ack(v1::Ack {
                    sequence,
                    digest: digest.to_vec(),
                }),
                Outcome::Reject {
                    sequence,
                    reason,
                    detail,
                } => ToAgent::Reject(v1::Reject {
                    sequence,
                    reason: wire::reject_reason(reason),
                    detail,
                }),
            };
            self.send(message).await?;
        }
        Ok(())
    }

    async fn challenge(&self, key: &proto_evidence::KeyId) -> Result<Vec<u8>, Status> {
        let now = self.collector.now_ms();
        let nonce = self.collector.nonces.issue(key, now);
        self.send(ToAgent::Challenge(v1::Challenge {
            nonce: nonce.clone(),
            issued_at_unix_ms: now,
            valid_for_seconds: u32::try_from(self.collector.nonces.valid_for_ms() / 1000)
                .unwrap_or(u32::MAX),
        }))
        .await?;
        Ok(nonce)
    }

    async fn send(&self, message: ToAgent) -> Result<(), Status> {
        self.sender
            .send(Box::new(Ok(v1::CollectorMessage {
                message: Some(message),
            })))
            .await
            .map_err(|_| Status::cancelled("the agent went away"))
    }

    /// Records and sends a stream-level refusal, then ends the stream.
    async fn refuse(&self, reason: Reason, detail: &str) -> Result<(), Status> {
        self.collector.metrics.rejected(reason);
        tracing::warn!(
            peer = self.peer,
            reason = reason.as_str(),
            detail,
            "agent stream refused"
        );
        let now = self.collector.now_ms();
        let record = Rejection {
            at_ms: now,
            reason: reason.as_str().to_owned(),
            key_id: None,
            host_id: None,
            sequence: None,
            peer: self.peer.clone(),
            detail: detail.to_owned(),
            count: 1,
        };
        let rejections = self.collector.refusal_rows(vec![record]);
        if !rejections.is_empty() {
            let batch = Batch {
                rejections,
                ..Batch::default()
            };
            if let Err(error) = self.collector.store.commit(batch).await {
                tracing::error!(%error, "cannot record a rejection");
            }
        }
        self.send(ToAgent::Reject(v1::Reject {
            sequence: 0,
            reason: wire::reject_reason(reason),
            detail: detail.to_owned(),
        }))
        .await?;
        Ok(())
    }
}
