//! Agents that hold their streams open as a fleet does between attestations: each attests once
//! on connecting, then once every `interval` at its own phase, answers challenges, and when the
//! collector goes away spools the attestation due meanwhile, reconnects with the agent's own
//! backoff (`agent_uplink::retry::Backoff`) and replays everything unacknowledged, in order.
//! An entry leaves an agent's outbox only on an ack or a reject, as on a real agent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use agent_uplink::Backoff;
use proto_evidence::Envelope;
use proto_wire::v1::agent_message::Message as Outgoing;
use proto_wire::v1::agent_stream_client::AgentStreamClient;
use proto_wire::v1::collector_message::Message as Incoming;
use proto_wire::{MAX_MESSAGE_BYTES, v1};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::enroll::EnrolledAgent;
use crate::stats::Counters;
use crate::stream::{StreamError, reason_code};
use crate::transport::Target;

/// How long the collector may take to answer hello with its first challenge.
const FIRST_CHALLENGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages queued for the outgoing stream beyond the outbox being replayed.
const OUTGOING_BUFFER: usize = 8;

/// How a held fleet behaves.
#[derive(Debug, Clone, Copy)]
pub struct HoldPlan {
    /// Between two attestations of one agent (a real agent's default is 60 s).
    pub interval: Duration,
    /// Reconnect delays after a failed or lost stream.
    pub backoff: Backoff,
}

/// What a held fleet has done so far, shared by its agents.
#[derive(Debug, Default)]
pub struct HoldCounters {
    /// `sent`: distinct attestations sealed into an outbox (a replay is not counted again);
    /// `acked`, `rejected`: distinct attestations answered; `streams`: agents connected now
    /// (the collector answered their hello with a challenge).
    pub counts: Counters,
    /// Streams that reached their first challenge, since the start.
    pub opened: AtomicU64,
    /// Established streams that ended (the collector went away or closed them).
    pub lost: AtomicU64,
    /// Attestations sent again on a new stream because the previous one ended unanswered.
    pub replayed: AtomicU64,
    /// Connection attempts that failed before the first challenge.
    pub failed_attempts: AtomicU64,
}

impl HoldCounters {
    /// Attestations sealed and not yet answered, over the whole fleet.
    pub fn pending(&self) -> u64 {
        let (sent, acked, rejected, _) = self.counts.snapshot();
        sent.saturating_sub(acked + rejected)
    }

    /// Agents connected now.
    pub fn connected(&self) -> u64 {
        self.counts.streams.load(Ordering::Relaxed)
    }

    /// Streams opened so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// A fleet holding its streams until [`HeldFleet::stop`].
#[derive(Debug)]
pub struct HeldFleet {
    /// The fleet's counts.
    pub counters: Arc<HoldCounters>,
    tasks: JoinSet<Option<String>>,
    shutdown: CancellationToken,
    attesting: Arc<AtomicBool>,
}

impl HeldFleet {
    /// Starts one task per agent on the current runtime.
    pub fn start(target: &Target, agents: Vec<EnrolledAgent>, plan: HoldPlan) -> Self {
        let counters = Arc::new(HoldCounters::default());
        let shutdown = CancellationToken::new();
        let target = Arc::new(target.clone());
        let attesting = Arc::new(AtomicBool::new(true));
        let mut tasks = JoinSet::new();
        for agent in agents {
            let held = Held {
                agent,
                outbox: VecDeque::new(),
                nonce: None,
                next_attestation: Instant::now(),
                streams: 0,
                plan,
                counters: Arc::clone(&counters),
                attesting: Arc::clone(&attesting),
            };
            tasks.spawn(hold(held, Arc::clone(&target), shutdown.clone()));
        }
        Self {
            counters,
            tasks,
            shutdown,
            attesting,
        }
    }

    /// Agents stop making attestations (they keep their streams and still take answers), so
    /// that the counts settle and can be compared with the collector's.
    pub fn stop_attesting(&self) {
        self.attesting.store(false, Ordering::Relaxed);
    }

    /// Agents whose task ended with an error (a refusal), with the first reasons.
    pub async fn stop(mut self) -> (usize, Vec<String>) {
        self.shutdown.cancel();
        let mut failed = 0;
        let mut errors = Vec::new();
        while let Some(joined) = self.tasks.join_next().await {
            let error = match joined {
                Ok(error) => error,
                Err(error) => Some(format!("an agent task failed: {error}")),
            };
            if let Some(error) = error {
                failed += 1;
                if errors.len() < 10 {
                    errors.push(error);
                }
            }
        }
        (failed, errors)
    }
}

/// One agent: its outbox survives every stream, like a real agent's spool.
struct Held {
    agent: EnrolledAgent,
    /// Sealed and unanswered, oldest first.
    outbox: VecDeque<(u64, Envelope)>,
    /// The latest nonce the collector issued to this agent.
    nonce: Option<Vec<u8>>,
    next_attestation: Instant,
    /// Streams this agent has opened.
    streams: u64,
    plan: HoldPlan,
    counters: Arc<HoldCounters>,
    /// Cleared by [`HeldFleet::stop_attesting`].
    attesting: Arc<AtomicBool>,
}

/// How a stream ended.
enum Ended {
    /// The run is over.
    Shutdown,
    /// Never reached the first challenge.
    NotConnected,
    /// An established stream was lost.
    Lost,
    /// The collector refuses this agent: retrying cannot help.
    Refused(StreamError),
}

async fn hold(mut held: Held, target: Arc<Target>, shutdown: CancellationToken) -> Option<String> {
    let plan = held.plan;
    let mut backoff = plan.backoff.start();
    loop {
        match held.stream(&target, &shutdown).await {
            Ended::Shutdown => return None,
            Ended::Refused(error) => {
                return Some(format!(
                    "agent {} ({}): {error}",
                    held.agent.index, held.agent.host_id
                ));
            }
            Ended::Lost => {
                held.counters.lost.fetch_add(1, Ordering::Relaxed);
                backoff = plan.backoff.start();
                // The attestation due while the collector is away goes to the spool now, so
                // that every reconnect has something to replay.
                if let Err(error) = held.seal() {
                    return Some(format!("agent {}: {error}", held.agent.index));
                }
            }
            Ended::NotConnected => {
                held.counters
                    .failed_attempts
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let delay = backoff.next_delay(crate::random_u64() as u32);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return None,
        }
    }
}

impl Held {
    /// Seals the next attestation into the outbox with the latest nonce.
    fn seal(&mut self) -> Result<(), StreamError> {
        let Some(nonce) = &self.nonce else {
            return Ok(());
        };
        if !self.attesting.load(Ordering::Relaxed) {
            return Ok(());
        }
        let envelope = self.agent.attestor.next(nonce)?;
        self.outbox
            .push_back((self.agent.attestor.sequence(), envelope));
        self.counters.counts.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn stream(&mut self, target: &Target, shutdown: &CancellationToken) -> Ended {
        let Ok(channel) = target.connect(Some(&self.agent.tls)).await else {
            return Ended::NotConnected;
        };
        let mut client = AgentStreamClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (sender, receiver) = mpsc::channel(self.outbox.len() + OUTGOING_BUFFER);
        if sender.try_send(self.hello()).is_err() {
            return Ended::NotConnected;
        }
        let Ok(response) = client.attest(ReceiverStream::new(receiver)).await else {
            return Ended::NotConnected;
        };
        let mut inbound = response.into_inner();
        let first = match tokio::time::timeout(FIRST_CHALLENGE_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(first))) => first,
            _ => return Ended::NotConnected,
        };
        let nonce = match first.message {
            Some(Incoming::Challenge(challenge)) => challenge.nonce,
            Some(Incoming::Reject(reject)) => {
                return Ended::Refused(StreamError::Refused {
                    reason: reason_code(reject.reason),
                    detail: reject.detail,
                });
            }
            _ => {
                return Ended::Refused(StreamError::Protocol(
                    "the first answer to hello was not a challenge",
                ));
            }
        };
        let counters = Arc::clone(&self.counters);
        let _connected = Connected::new(&counters);
        let replay = self.streams > 0;
        self.streams += 1;
        if self.nonce.is_none() {
            // A new agent attests as soon as it is connected, then at its own phase.
            self.nonce = Some(nonce.clone());
            if let Err(error) = self.seal() {
                return Ended::Refused(error);
            }
            let phase = crate::random_u64() % self.plan.interval.as_millis().max(1) as u64;
            self.next_attestation = Instant::now() + Duration::from_millis(phase);
        }
        self.nonce = Some(nonce.clone());
        // The channel has room for the challenge response and the whole outbox.
        let _ = sender.try_send(self.challenge_response(&nonce));
        for (_, envelope) in &self.outbox {
            let _ = sender.try_send(attestation(envelope));
        }
        if replay {
            counters
                .replayed
                .fetch_add(self.outbox.len() as u64, Ordering::Relaxed);
        }
        counters.opened.fetch_add(1, Ordering::Relaxed);

        let tick = tokio::time::sleep_until(self.next_attestation);
        tokio::pin!(tick);
        loop {
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => match self.answer(message) {
                        Ok(Some(fresh)) => {
                            if sender.send(self.challenge_response(&fresh)).await.is_err() {
                                return Ended::Lost;
                            }
                            self.nonce = Some(fresh);
                        }
                        Ok(None) => {}
                        Err(error) => return Ended::Refused(error),
                    },
                    Ok(None) | Err(_) => return Ended::Lost,
                },
                () = &mut tick => {
                    self.next_attestation += self.plan.interval;
                    tick.as_mut().reset(self.next_attestation);
                    let queued = self.outbox.len();
                    if let Err(error) = self.seal() {
                        return Ended::Refused(error);
                    }
                    if self.outbox.len() == queued {
                        continue;
                    }
                    let Some((_, envelope)) = self.outbox.back() else { continue };
                    if sender.send(attestation(envelope)).await.is_err() {
                        return Ended::Lost;
                    }
                }
                () = shutdown.cancelled() => return Ended::Shutdown,
            }
        }
    }

    /// Books an ack or a reject; returns a fresh nonce when the collector sent one.
    fn answer(&mut self, message: v1::CollectorMessage) -> Result<Option<Vec<u8>>, StreamError> {
        let counts = &self.counters.counts;
        match message.message {
            Some(Incoming::Challenge(challenge)) => return Ok(Some(challenge.nonce)),
            Some(Incoming::Ack(ack)) => {
                while self
                    .outbox
                    .front()
                    .is_some_and(|(sequence, _)| *sequence <= ack.sequence)
                {
                    self.outbox.pop_front();
                    counts.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Incoming::Reject(reject)) if reject.sequence == 0 => {
                return Err(StreamError::Refused {
                    reason: reason_code(reject.reason),
                    detail: reject.detail,
                });
            }
            Some(Incoming::Reject(reject)) => {
                while let Some(&(sequence, _)) = self.outbox.front() {
                    if sequence > reject.sequence {
                        break;
                    }
                    self.outbox.pop_front();
                    if sequence == reject.sequence {
                        counts.reject(&reason_code(reject.reason));
                    } else {
                        counts.acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            None => return Err(StreamError::Protocol("an empty message")),
        }
        Ok(None)
    }

    fn hello(&self) -> v1::AgentMessage {
        crate::stream::hello(&self.agent)
    }

    fn challenge_response(&self, nonce: &[u8]) -> v1::AgentMessage {
        crate::stream::challenge_response(&self.agent, nonce)
    }
}

fn attestation(envelope: &Envelope) -> v1::AgentMessage {
    v1::AgentMessage {
        message: Some(Outgoing::Attestation(v1::SignedAttestation {
            envelope: Some(proto_seal::envelope_to_wire(envelope)),
        })),
    }
}

/// Counts a connected agent for as long as its stream lives.
struct Connected<'a>(&'a HoldCounters);

impl<'a> Connected<'a> {
    fn new(counters: &'a HoldCounters) -> Self {
        counters.counts.streams.fetch_add(1, Ordering::Relaxed);
        Self(counters)
    }
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0.counts.streams.fetch_sub(1, Ordering::Relaxed);
    }
}
