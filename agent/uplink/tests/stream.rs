//! The uplink against an in-process collector over real mutual TLS: replay in order, acks,
//! challenges, reconnects, rejects, and a collector with the wrong name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_uplink::{Backoff, Deps, Event, Hello, Outbox, RejectReason, UplinkConfig};
use proto_evidence::{AttestationPayload, ChainDigest, EvidenceSource, HostId, SiteId, Totals};
use proto_seal::{Ed25519Signer, PublicKey};
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as FromAgent;
use proto_wire::v1::agent_stream_server::{AgentStream, AgentStreamServer};
use proto_wire::v1::collector_message::Message as ToAgent;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::sync::{Notify, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

/// A development PKI made fresh for each test.
struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki(server_name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "veu test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca_cert.pem(),
        server: leaf(vec![server_name.to_owned()], server_name),
        client: leaf(vec!["agent-0001".to_owned()], "agent-0001"),
    }
}

/// What the test collector does and saw.
#[derive(Default)]
struct Script {
    /// Close the stream after this many acks (once).
    close_after_acks: Option<usize>,
    /// Reject these sequences with this reason.
    reject: BTreeMap<u64, v1::RejectReason>,
    /// Every verified attestation's sequence, in arrival order, across streams.
    received: Vec<u64>,
    hellos: Vec<v1::Hello>,
    challenge_answers: usize,
    acks: usize,
}

#[derive(Clone)]
struct Collector {
    key: PublicKey,
    script: Arc<Mutex<Script>>,
}

type Outgoing = Pin<Box<dyn Stream<Item = Result<v1::CollectorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentStream for Collector {
    type AttestStream = Outgoing;

    async fn attest(
        &self,
        request: Request<Streaming<v1::AgentMessage>>,
    ) -> Result<Response<Self::AttestStream>, Status> {
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(64);
        let collector = self.clone();
        tokio::spawn(async move {
            let nonce = b"nonce-0123456789".to_vec();
            let challenge = v1::CollectorMessage {
                message: Some(ToAgent::Challenge(v1::Challenge {
                    nonce: nonce.clone(),
                    issued_at_unix_ms: 0,
                    valid_for_seconds: 300,
                })),
            };
            let _ = sender.send(Ok(challenge)).await;
            while let Ok(Some(message)) = inbound.message().await {
                let reply = match message.message {
                    Some(FromAgent::Hello(hello)) => {
                        collector.script.lock().unwrap().hellos.push(hello);
                        continue;
                    }
                    Some(FromAgent::ChallengeResponse(response)) => {
                        let envelope =
                            proto_seal::decode_envelope(&prost_bytes(&response.envelope.unwrap()))
                                .unwrap();
                        proto_seal::check_challenge_response(&envelope, &collector.key, &nonce)
                            .unwrap();
                        collector.script.lock().unwrap().challenge_answers += 1;
                        continue;
                    }
                    Some(FromAgent::Attestation(attestation)) => {
                        let envelope = proto_seal::decode_envelope(&prost_bytes(
                            &attestation.envelope.unwrap(),
                        ))
                        .unwrap();
                        let verified = proto_seal::open(envelope, &collector.key).unwrap();
                        let sequence = verified.payload().sequence;
                        let mut script = collector.script.lock().unwrap();
                        if let Some(reason) = script.reject.get(&sequence) {
                            ToAgent::Reject(v1::Reject {
                                sequence,
                                reason: (*reason).into(),
                                detail: "scripted".into(),
                            })
                        } else {
                            script.received.push(sequence);
                            script.acks += 1;
                            if script.close_after_acks == Some(script.acks) {
                                script.close_after_acks = None;
                                let _ = sender.try_send(Ok(ack(sequence)));
                                return; // drops the sender: the stream ends
                            }
                            ToAgent::Ack(v1::Ack {
                                sequence,
                                digest: Vec::new(),
                            })
                        }
                    }
                    None => continue,
                };
                if sender
                    .send(Ok(v1::CollectorMessage {
                        message: Some(reply),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

fn ack(sequence: u64) -> v1::CollectorMessage {
    v1::CollectorMessage {
        message: Some(ToAgent::Ack(v1::Ack {
            sequence,
            digest: Vec::new(),
        })),
    }
}

fn prost_bytes(envelope: &v1::Envelope) -> Vec<u8> {
    use prost::Message;
    envelope.encode_to_vec()
}

async fn serve(addr: SocketAddr, pki: &Pki, collector: Collector, stop: CancellationToken) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
        .client_ca_root(Certificate::from_pem(&pki.ca_pem));
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(AgentStreamServer::new(collector))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned());
    tokio::spawn(server);
}

/// An in-memory outbox holding sealed attestations.
struct MemoryOutbox {
    entries: Mutex<BTreeMap<u64, Vec<u8>>>,
    refused: Mutex<Vec<(u64, Option<RejectReason>)>>,
}

impl Outbox for MemoryOutbox {
    type Error = std::convert::Infallible;
    fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, Self::Error> {
        let entries = self.entries.lock().unwrap();
        Ok(entries
            .range(after + 1..)
            .take(limit)
            .map(|(s, b)| (*s, b.clone()))
            .collect())
    }
    fn acknowledged(&self, sequence: u64) -> Result<(), Self::Error> {
        self.entries.lock().unwrap().retain(|s, _| *s > sequence);
        Ok(())
    }
    fn refused(
        &self,
        sequence: u64,
        reason: Option<RejectReason>,
        _detail: &str,
    ) -> Result<(), Self::Error> {
        self.entries.lock().unwrap().remove(&sequence);
        self.refused.lock().unwrap().push((sequence, reason));
        Ok(())
    }
    fn head(&self) -> (u64, Vec<u8>) {
        (0, Vec::new())
    }
}

fn sealed(signer: &Ed25519Signer, sequence: u64) -> Vec<u8> {
    let payload = AttestationPayload {
        key_id: signer.key_id(),
        host_id: HostId("agent-0001".into()),
        site_id: SiteId("us-va-1".into()),
        sequence,
        previous_digest: ChainDigest::GENESIS,
        issued_at_unix_ms: 1_764_000_000_000 + sequence as i64,
        collector_nonce: Vec::new(),
        devices: Vec::new(),
        totals: Totals::default(),
        catalogue_digest: String::new(),
        policy_digest: String::new(),
        agent_version: "test".into(),
        source: EvidenceSource::Simulated,
        driver_version: String::new(),
    };
    proto_seal::encode_envelope(&proto_seal::seal(&payload, signer).unwrap())
}

struct Harness {
    addr: SocketAddr,
    pki: Pki,
    signer: Arc<Ed25519Signer>,
    outbox: Arc<MemoryOutbox>,
    new_entry: Arc<Notify>,
    script: Arc<Mutex<Script>>,
    stop_server: CancellationToken,
}

impl Harness {
    fn new(entries: u64) -> Self {
        let signer = Arc::new(Ed25519Signer::from_seed(&[9; 32]).unwrap());
        let outbox = MemoryOutbox {
            entries: Mutex::new((1..=entries).map(|s| (s, sealed(&signer, s))).collect()),
            refused: Mutex::new(Vec::new()),
        };
        // Reserve a free port; the collector may start later on it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Harness {
            addr,
            pki: pki("collector.test"),
            signer,
            outbox: Arc::new(outbox),
            new_entry: Arc::new(Notify::new()),
            script: Arc::new(Mutex::new(Script::default())),
            stop_server: CancellationToken::new(),
        }
    }

    async fn start_collector(&self) {
        let collector = Collector {
            key: self.signer.public_key(),
            script: Arc::clone(&self.script),
        };
        serve(self.addr, &self.pki, collector, self.stop_server.clone()).await;
    }

    fn config(&self, server_name: &str) -> UplinkConfig {
        UplinkConfig {
            endpoint: format!("https://{}", self.addr),
            server_name: server_name.to_owned(),
            ca_pem: self.pki.ca_pem.clone().into_bytes(),
            certificate_pem: self.pki.client.0.clone().into_bytes(),
            key_pem: self.pki.client.1.clone().into_bytes(),
            connect_timeout: Duration::from_secs(2),
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            hello: Hello {
                host_id: "agent-0001".into(),
                agent_version: "test".into(),
            },
        }
    }

    fn start_uplink(
        &self,
        server_name: &str,
    ) -> (
        tokio::task::JoinHandle<Result<(), agent_uplink::Fatal>>,
        mpsc::Receiver<Event>,
        CancellationToken,
    ) {
        let (events, receiver) = mpsc::channel(256);
        let deps = Deps {
            outbox: Arc::clone(&self.outbox),
            signer: Arc::clone(&self.signer),
            new_entry: Arc::clone(&self.new_entry),
            events,
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(agent_uplink::run(
            self.config(server_name),
            deps,
            stop.clone(),
        ));
        (task, receiver, stop)
    }

    async fn wait_until(&self, what: &str, done: impl Fn(&Script, usize) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let pending = self.outbox.entries.lock().unwrap().len();
            if done(&self.script.lock().unwrap(), pending) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn replays_the_spool_in_order_and_answers_the_challenge() {
    let h = Harness::new(5);
    h.start_collector().await;
    let (task, mut events, stop) = h.start_uplink("collector.test");
    h.wait_until("5 acks", |s, pending| s.received.len() == 5 && pending == 0)
        .await;
    h.wait_until("the challenge answer", |s, _| s.challenge_answers == 1)
        .await;
    {
        let script = h.script.lock().unwrap();
        assert_eq!(script.received, [1, 2, 3, 4, 5]);
        assert_eq!(script.hellos.len(), 1);
        assert_eq!(script.hellos[0].host_id, "agent-0001");
        assert_eq!(
            script.hellos[0].key_id,
            h.signer.key_id().0.as_bytes().to_vec()
        );
    }
    // A new entry while connected is sent at once.
    h.outbox
        .entries
        .lock()
        .unwrap()
        .insert(6, sealed(&h.signer, 6));
    h.new_entry.notify_one();
    h.wait_until("the new entry", |s, pending| {
        s.received.len() == 6 && pending == 0
    })
    .await;

    // The uplink reports the last acknowledgement just after the collector counted it: read
    // events until all six are in (a loaded machine may take a moment), at most 10 s.
    let mut saw = (false, false, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while saw.2 < 6 {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            break;
        };
        match event {
            Event::Connected => saw.0 = true,
            Event::Challenge(nonce) => saw.1 = nonce == b"nonce-0123456789",
            Event::Acknowledged(_) => saw.2 += 1,
            _ => {}
        }
    }
    assert_eq!(saw, (true, true, 6));
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop_server.cancel();
}

#[tokio::test]
async fn reconnects_after_the_collector_drops_the_stream_and_loses_nothing() {
    let h = Harness::new(8);
    h.script.lock().unwrap().close_after_acks = Some(3);
    h.start_collector().await;
    let (task, mut events, stop) = h.start_uplink("collector.test");
    h.wait_until("all 8 acks", |s, pending| {
        pending == 0 && s.received.len() >= 8
    })
    .await;
    let (received, hellos) = {
        let script = h.script.lock().unwrap();
        (script.received.clone(), script.hellos.len())
    };
    let mut unique = received.clone();
    unique.dedup();
    assert_eq!(
        unique,
        [1, 2, 3, 4, 5, 6, 7, 8],
        "in order, nothing lost: {received:?}"
    );
    assert!(hellos >= 2, "a second stream was opened");
    let mut disconnected = false;
    while let Ok(event) = events.try_recv() {
        disconnected |= matches!(event, Event::Disconnected { .. });
    }
    assert!(disconnected);
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop_server.cancel();
}

#[tokio::test]
async fn waits_for_a_collector_that_is_down_then_delivers() {
    let h = Harness::new(3);
    let (task, mut events, stop) = h.start_uplink("collector.test");
    // Let it fail to connect a few times.
    let mut failures = 0;
    while failures < 2 {
        if let Some(Event::Disconnected { cause, .. }) = events.recv().await {
            assert!(cause.contains("cannot connect"), "{cause}");
            failures += 1;
        }
    }
    h.start_collector().await;
    h.wait_until("3 acks", |s, pending| s.received.len() == 3 && pending == 0)
        .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop_server.cancel();
}

#[tokio::test]
async fn a_collector_with_another_name_is_never_trusted() {
    let h = Harness::new(2);
    h.start_collector().await;
    let (task, mut events, stop) = h.start_uplink("impostor.test");
    match events.recv().await {
        Some(Event::Disconnected { cause, .. }) => {
            assert!(cause.contains("cannot connect"), "{cause}")
        }
        other => panic!("expected a failed connection, got {other:?}"),
    }
    assert!(h.script.lock().unwrap().received.is_empty());
    assert_eq!(
        h.outbox.entries.lock().unwrap().len(),
        2,
        "nothing leaves the spool"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    h.stop_server.cancel();
}

#[tokio::test]
async fn a_refused_entry_is_set_aside_and_a_revoked_key_stops_the_uplink() {
    let h = Harness::new(3);
    h.script
        .lock()
        .unwrap()
        .reject
        .insert(2, v1::RejectReason::BadSignature);
    h.start_collector().await;
    let (task, _events, stop) = h.start_uplink("collector.test");
    h.wait_until("1 and 3 acked", |s, pending| {
        s.received == [1, 3] && pending == 0
    })
    .await;
    assert_eq!(
        *h.outbox.refused.lock().unwrap(),
        [(2, Some(RejectReason::BadSignature))]
    );
    stop.cancel();
    task.await.unwrap().unwrap();

    h.script
        .lock()
        .unwrap()
        .reject
        .insert(4, v1::RejectReason::RevokedKey);
    h.outbox
        .entries
        .lock()
        .unwrap()
        .insert(4, sealed(&h.signer, 4));
    let (task, _events, _stop) = h.start_uplink("collector.test");
    let outcome = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let fatal = outcome.unwrap_err();
    assert!(
        matches!(
            fatal,
            agent_uplink::Fatal::Rejected {
                sequence: 4,
                reason: RejectReason::RevokedKey,
                ..
            }
        ),
        "{fatal:?}"
    );
    assert!(
        fatal
            .to_string()
            .starts_with("the collector refuses this agent: attestation 4 rejected (revoked_key)"),
        "{fatal}"
    );
    assert_eq!(
        h.outbox.entries.lock().unwrap().len(),
        1,
        "the revoked entry stays spooled"
    );
    h.stop_server.cancel();
}
