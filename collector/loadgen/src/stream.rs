//! One simulated agent's stream: connect with its certificate, say hello, wait for the first
//! challenge, then send attestations back to back with a bounded number unanswered, each
//! carrying the latest nonce, and time each from send to ack.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use collector_client::ClientError;
use proto_seal::SealError;
use proto_wire::v1::agent_message::Message as Outgoing;
use proto_wire::v1::agent_stream_client::AgentStreamClient;
use proto_wire::v1::collector_message::Message as Incoming;
use proto_wire::{MAX_MESSAGE_BYTES, v1};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::attestor::AGENT_VERSION;
use crate::enroll::EnrolledAgent;
use crate::stats::{Counters, Histogram};
use crate::transport::Target;

/// Protocol version of `Hello`.
const PROTOCOL_VERSION: u32 = 1;

/// Messages queued for the outgoing stream beyond those the window allows.
const OUTGOING_BUFFER: usize = 16;

/// How long the collector may take to answer hello with its first challenge.
const FIRST_CHALLENGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Stands for "no deadline" (a year): far enough, and no overflow of `Instant`.
const NO_DEADLINE: Duration = Duration::from_secs(365 * 86_400);

/// How long the collector may stay silent while attestations are unanswered.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a fleet streams.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// Stop each agent after this many attestations.
    pub attestations_per_agent: Option<u64>,
    /// Stop sending this long after streaming starts (then wait for the answers).
    pub duration: Option<Duration>,
    /// Attestations per agent per second; 0 for as fast as the window allows.
    pub rate: f64,
    /// Attestations an agent may have unanswered.
    pub window: usize,
    /// Streams open at once; agents beyond it wait for a stream to finish.
    pub concurrency: usize,
    /// Seal this many attestations per agent before streaming starts (after the first
    /// challenge, so they carry a live nonce), so that a benchmark on one machine measures the
    /// collector, not the agents' signing, which runs on their own hosts.
    pub presign: u64,
}

/// A stream that failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// No connection.
    #[error(transparent)]
    Transport(#[from] ClientError),
    /// A gRPC error status.
    #[error("the collector ended the stream: {code:?}: {message}")]
    Status {
        /// The code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// The collector refused the stream itself (a reject without a sequence).
    #[error("the collector refused the stream ({reason}): {detail}")]
    Refused {
        /// Reason code.
        reason: String,
        /// In words.
        detail: String,
    },
    /// The stream closed early.
    #[error("the collector closed the stream with {outstanding} attestation(s) unanswered")]
    Closed {
        /// Attestations sent and not answered.
        outstanding: usize,
    },
    /// No answer for too long.
    #[error(
        "no answer from the collector for {seconds} s with {outstanding} attestation(s) unanswered"
    )]
    Silent {
        /// Attestations sent and not answered.
        outstanding: usize,
        /// How long.
        seconds: u64,
    },
    /// The collector said something out of order.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// An attestation could not be sealed.
    #[error("cannot seal an attestation: {0}")]
    Seal(#[from] SealError),
}

impl From<tonic::Status> for StreamError {
    fn from(status: tonic::Status) -> Self {
        Self::Status {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// What every agent of a run shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub target: Target,
    pub plan: StreamPlan,
    pub counters: Arc<Counters>,
    pub permits: Semaphore,
    /// When streaming started; `None` until the first wave is connected.
    pub start: watch::Receiver<Option<Instant>>,
    pub shutdown: CancellationToken,
}

/// One agent's result.
#[derive(Debug, Default)]
pub(crate) struct AgentOutcome {
    pub histogram: Histogram,
    pub last_answer: Option<Instant>,
    pub error: Option<String>,
}

/// Tells the coordinator an agent is connected, or will never be; exactly once.
#[derive(Debug)]
pub(crate) struct ReadyGuard(Option<mpsc::UnboundedSender<()>>);

impl ReadyGuard {
    pub fn new(sender: mpsc::UnboundedSender<()>) -> Self {
        Self(Some(sender))
    }

    fn ready(&mut self) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(());
        }
    }
}

impl Drop for ReadyGuard {
    fn drop(&mut self) {
        self.ready();
    }
}

/// Counts an open stream for as long as it lives.
struct OpenStream<'a>(&'a Counters);

impl<'a> OpenStream<'a> {
    fn new(counters: &'a Counters) -> Self {
        counters.streams.fetch_add(1, Ordering::Relaxed);
        Self(counters)
    }
}

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one agent to the end of the plan.
pub(crate) async fn run_agent(
    mut agent: EnrolledAgent,
    shared: Arc<Shared>,
    mut ready: ReadyGuard,
) -> AgentOutcome {
    let mut outcome = AgentOutcome::default();
    let Ok(_permit) = shared.permits.acquire().await else {
        outcome.error = Some(format!(
            "agent {}: the run ended before it could start",
            agent.index
        ));
        return outcome;
    };
    let result = Stream {
        agent: &mut agent,
        shared: &shared,
        histogram: &mut outcome.histogram,
        last_answer: &mut outcome.last_answer,
        in_flight: VecDeque::with_capacity(shared.plan.window),
    }
    .run(&mut ready)
    .await;
    if let Err(error) = result {
        outcome.error = Some(format!(
            "agent {} ({}): {error}",
            agent.index, agent.host_id
        ));
    }
    outcome
}

struct Stream<'a> {
    agent: &'a mut EnrolledAgent,
    shared: &'a Shared,
    histogram: &'a mut Histogram,
    last_answer: &'a mut Option<Instant>,
    /// Sequences sent and unanswered, with when they were sent.
    in_flight: VecDeque<(u64, Instant)>,
}

impl Stream<'_> {
    async fn run(mut self, ready: &mut ReadyGuard) -> Result<(), StreamError> {
        let shared = self.shared;
        let channel = shared.target.connect(Some(&self.agent.tls)).await?;
        let mut client = AgentStreamClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (sender, receiver) = mpsc::channel(OUTGOING_BUFFER);
        sender
            .send(self.hello())
            .await
            .map_err(|_| StreamError::Protocol("the outgoing stream closed before hello"))?;
        let mut inbound = client
            .attest(ReceiverStream::new(receiver))
            .await?
            .into_inner();

        // The first challenge says the collector accepted hello (key, identity, enrollment).
        let first = tokio::time::timeout(FIRST_CHALLENGE_TIMEOUT, inbound.message())
            .await
            .map_err(|_| StreamError::Silent {
                outstanding: 0,
                seconds: FIRST_CHALLENGE_TIMEOUT.as_secs(),
            })??;
        let mut nonce = match first.and_then(|m| m.message) {
            Some(Incoming::Challenge(challenge)) => challenge.nonce,
            Some(Incoming::Reject(reject)) => return Err(refused(&reject)),
            Some(Incoming::Ack(_)) => {
                return Err(StreamError::Protocol("an ack before any attestation"));
            }
            None => return Err(StreamError::Closed { outstanding: 0 }),
        };
        let mut control = Some(self.challenge_response(&nonce));
        let mut presigned = VecDeque::with_capacity(shared.plan.presign as usize);
        for _ in 0..shared.plan.presign {
            let envelope = self.agent.attestor.next(&nonce)?;
            presigned.push_back((self.agent.attestor.sequence(), envelope));
        }
        let _open = OpenStream::new(&shared.counters);
        ready.ready();

        let mut go = shared.start.clone();
        let start = tokio::select! {
            started = go.wait_for(Option::is_some) => started
                .ok()
                .and_then(|start| *start)
                .ok_or(StreamError::Protocol("the run ended before streaming started"))?,
            () = shared.shutdown.cancelled() => return Ok(()),
        };
        let plan = &shared.plan;
        let window = plan.window.max(1);
        let period = (plan.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.rate));
        let mut next_send = Instant::now();
        let mut sent = 0u64;
        let mut stopping = false;
        // Timers made once and re-armed: a new timer per message would cost as much as the
        // message itself at tens of thousands per second.
        let end = tokio::time::sleep_until(start + plan.duration.unwrap_or(NO_DEADLINE));
        let pacing = tokio::time::sleep_until(next_send);
        let silence = tokio::time::sleep(SILENCE_TIMEOUT);
        let cancelled = shared.shutdown.cancelled();
        tokio::pin!(end, pacing, silence, cancelled);
        loop {
            let now = Instant::now();
            stopping = stopping || plan.attestations_per_agent.is_some_and(|k| sent >= k);
            if stopping && self.in_flight.is_empty() && control.is_none() {
                return Ok(());
            }
            let paced = period.is_some() && now < next_send;
            let room = !stopping && self.in_flight.len() < window;
            tokio::select! {
                biased;
                message = inbound.message() => match message? {
                    Some(message) => {
                        silence.as_mut().reset(Instant::now() + SILENCE_TIMEOUT);
                        if let Some(fresh) = self.answer(message)? {
                            control = Some(self.challenge_response(&fresh));
                            nonce = fresh;
                        }
                    }
                    None => return Err(StreamError::Closed { outstanding: self.in_flight.len() }),
                },
                permit = sender.reserve(), if control.is_some() || (room && !paced) => {
                    let permit = permit.map_err(|_| StreamError::Closed { outstanding: self.in_flight.len() })?;
                    if let Some(message) = control.take() {
                        permit.send(message);
                    } else {
                        let (sequence, envelope) = match presigned.pop_front() {
                            Some(sealed) => sealed,
                            None => {
                                let envelope = self.agent.attestor.next(&nonce)?;
                                (self.agent.attestor.sequence(), envelope)
                            }
                        };
                        permit.send(v1::AgentMessage {
                            message: Some(Outgoing::Attestation(v1::SignedAttestation {
                                envelope: Some(proto_seal::envelope_to_wire(&envelope)),
                            })),
                        });
                        let sent_at = Instant::now();
                        if self.in_flight.is_empty() {
                            silence.as_mut().reset(sent_at + SILENCE_TIMEOUT);
                        }
                        self.in_flight.push_back((sequence, sent_at));
                        sent += 1;
                        shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                        if let Some(period) = period {
                            // Keep the rate; after a stall catch up by at most one period.
                            next_send += period;
                            if next_send + period < now {
                                next_send = now;
                            }
                            pacing.as_mut().reset(next_send);
                        }
                    }
                }
                () = &mut pacing, if room && paced => {}
                () = &mut end, if !stopping => stopping = true,
                () = &mut cancelled, if !stopping => stopping = true,
                () = &mut silence, if !self.in_flight.is_empty() => {
                    return Err(StreamError::Silent {
                        outstanding: self.in_flight.len(),
                        seconds: SILENCE_TIMEOUT.as_secs(),
                    });
                }
            }
        }
    }

    /// Books an ack or a reject; returns a fresh nonce when the collector sent one.
    fn answer(&mut self, message: v1::CollectorMessage) -> Result<Option<Vec<u8>>, StreamError> {
        let now = Instant::now();
        let counters = &self.shared.counters;
        match message.message {
            Some(Incoming::Challenge(challenge)) => return Ok(Some(challenge.nonce)),
            Some(Incoming::Ack(ack)) => {
                // Acks are cumulative: everything up to the sequence is stored.
                while let Some(&(sequence, sent)) = self.in_flight.front() {
                    if sequence > ack.sequence {
                        break;
                    }
                    self.in_flight.pop_front();
                    self.histogram.record(now - sent);
                    counters.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Incoming::Reject(reject)) if reject.sequence == 0 => return Err(refused(&reject)),
            Some(Incoming::Reject(reject)) => {
                while let Some(&(sequence, sent)) = self.in_flight.front() {
                    if sequence > reject.sequence {
                        break;
                    }
                    self.in_flight.pop_front();
                    if sequence == reject.sequence {
                        counters.reject(&reason_code(reject.reason));
                    } else {
                        self.histogram.record(now - sent);
                        counters.acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            None => return Err(StreamError::Protocol("an empty message")),
        }
        *self.last_answer = Some(now);
        Ok(None)
    }

    fn hello(&self) -> v1::AgentMessage {
        hello(self.agent)
    }

    fn challenge_response(&self, nonce: &[u8]) -> v1::AgentMessage {
        challenge_response(self.agent, nonce)
    }
}

/// An agent's hello: its key, host and chain head.
pub(crate) fn hello(agent: &EnrolledAgent) -> v1::AgentMessage {
    let attestor = &agent.attestor;
    let head = attestor.head_digest();
    v1::AgentMessage {
        message: Some(Outgoing::Hello(v1::Hello {
            protocol_version: PROTOCOL_VERSION,
            key_id: attestor.key_id().0.as_bytes().to_vec(),
            host_id: agent.host_id.clone(),
            agent_version: AGENT_VERSION.to_owned(),
            last_sequence: attestor.sequence(),
            last_digest: head.0.as_bytes().to_vec(),
        })),
    }
}

/// The signed answer to a challenge.
pub(crate) fn challenge_response(agent: &EnrolledAgent, nonce: &[u8]) -> v1::AgentMessage {
    let response = proto_seal::answer_challenge(nonce, agent.attestor.signer());
    v1::AgentMessage {
        message: Some(Outgoing::ChallengeResponse(v1::ChallengeResponse {
            envelope: Some(proto_seal::envelope_to_wire(&response)),
        })),
    }
}

fn refused(reject: &v1::Reject) -> StreamError {
    StreamError::Refused {
        reason: reason_code(reject.reason),
        detail: reject.detail.clone(),
    }
}

/// The collector's reason code of a wire reason: `REJECT_REASON_STALE_NONCE` → `stale_nonce`.
pub fn reason_code(reason: i32) -> String {
    match proto_seal::reject_reason_from_wire(reason) {
        Some(reason) => reason.as_str().to_owned(),
        None => format!("unknown_{reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_match_the_collectors() {
        assert_eq!(
            reason_code(v1::RejectReason::StaleNonce.into()),
            "stale_nonce"
        );
        assert_eq!(
            reason_code(v1::RejectReason::PreviousDigestMismatch.into()),
            "previous_digest_mismatch"
        );
        assert_eq!(reason_code(999), "unknown_999");
    }
}
