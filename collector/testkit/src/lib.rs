//! Test support for the collector: an in-process collector over real mutual TLS on a real
//! SQLite store with a development PKI (`Harness`), agents enrolled in it with their own keys
//! and client certificates, and an agent stream that sends signed attestations and reads the
//! collector's answers. Used by the server's attack tests and veuctl's audit tests. `relay`:
//! a TCP delay line that stands in for distance in the location tests.
//!
//! Invariant: test-only (a dev-dependency); nothing here is a shortcut around the services: the
//! collector is the real one, reached only through its gRPC services.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations
)]

pub mod differential;
pub mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use collector_app::log::LogKeeper;
use collector_app::metrics::Metrics;
use collector_app::nonce::NonceIssuer;
use collector_app::{Collector, Rules};
use collector_client::{Channel, ClientTls, Connection, Credential};
use collector_core::SiteRegistry;
use collector_pki::{Ca, Role};
use collector_server::TlsFiles;
use collector_store::{AgentRecord, AttestationStore};
use collector_store_sqlite::{SqliteOptions, SqliteStore};
use proto_accounting::{Catalogue, Policy};
use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceRecord, EvidenceSource, HostId, SiteId, Totals,
};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as FromAgent;
use proto_wire::v1::agent_stream_client::AgentStreamClient;
pub use proto_wire::v1::collector_message::Message as ToAgent;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

pub use relay::{DelayRelay, one_way_for_km};

/// Seed of the collector's log key in the harness.
pub const LOG_SEED: [u8; 32] = [77; 32];

/// This machine's clock, in Unix milliseconds.
pub use veu_daemon_kit::now_unix_ms as now_ms;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub pki: std::path::PathBuf,
    pub ca: Ca,
    pub store: Arc<SqliteStore>,
    pub collector: Arc<Collector>,
    pub stop: CancellationToken,
    /// The collector's log keeper (signs heads, builds reports).
    pub log: Arc<LogKeeper>,
    clock: fn() -> i64,
    /// The roots GPU reports must chain to (`None`: NVIDIA's).
    gpu_trust: Option<proto_gpu_evidence::Trust>,
    /// The round-trip-time landmarks the collector trusts.
    landmarks: proto_location::Landmarks,
}

/// One enrolled agent: signing key, TLS credential, host and site.
pub struct Agent {
    pub signer: Ed25519Signer,
    pub cert: String,
    pub key: String,
    pub host: String,
    pub site: String,
}

impl Harness {
    pub async fn start(policy_file: &str) -> Self {
        Self::start_with_clock(policy_file, now_ms).await
    }

    /// `start`, with the collector reading time from `clock` (Unix ms).
    pub async fn start_with_clock(policy_file: &str, clock: fn() -> i64) -> Self {
        Self::start_with(
            policy_file,
            clock,
            None,
            collector_server::Limits::default(),
            proto_location::Landmarks::default(),
        )
        .await
    }

    /// `start`, with GPU hardware reports judged against `trust` (a test device CA's root).
    pub async fn start_with_gpu_trust(policy_file: &str, trust: proto_gpu_evidence::Trust) -> Self {
        Self::start_with(
            policy_file,
            now_ms,
            Some(trust),
            collector_server::Limits::default(),
            proto_location::Landmarks::default(),
        )
        .await
    }

    /// `start`, with the collector serving within `limits`.
    pub async fn start_with_limits(policy_file: &str, limits: collector_server::Limits) -> Self {
        Self::start_with(
            policy_file,
            now_ms,
            None,
            limits,
            proto_location::Landmarks::default(),
        )
        .await
    }

    /// `start`, with the collector trusting `landmarks`' round-trip measurements.
    pub async fn start_with_landmarks(
        policy_file: &str,
        landmarks: proto_location::Landmarks,
    ) -> Self {
        Self::start_with(
            policy_file,
            now_ms,
            None,
            collector_server::Limits::default(),
            landmarks,
        )
        .await
    }

    async fn start_with(
        policy_file: &str,
        clock: fn() -> i64,
        gpu_trust: Option<proto_gpu_evidence::Trust>,
        limits: collector_server::Limits,
        landmarks: proto_location::Landmarks,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        collector_pki::init(&pki, &["127.0.0.1".to_owned()], SystemTime::now()).unwrap();
        let ca = Ca::load(&pki).unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("collector.db"), SqliteOptions::default()).unwrap(),
        );
        let collector = Arc::new(open_collector(
            &store,
            policy_file,
            clock,
            gpu_trust.clone(),
            &landmarks,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = TlsFiles {
            certificate_pem: std::fs::read(pki.join("server.pem")).unwrap(),
            key_pem: std::fs::read(pki.join("server.key")).unwrap(),
            client_ca_pem: std::fs::read(pki.join("ca.pem")).unwrap(),
        };
        let stop = CancellationToken::new();
        let log = Arc::new(
            LogKeeper::new(
                Arc::clone(&store) as Arc<dyn AttestationStore>,
                Ed25519Signer::from_seed(&LOG_SEED).unwrap(),
                None,
                clock,
            )
            .unwrap(),
        );
        let log_keeper = Arc::clone(&log);
        tokio::spawn(collector_server::serve(
            listener,
            tls,
            Arc::clone(&collector),
            log,
            Some(Arc::new(Ca::load(&pki).unwrap())),
            Duration::from_secs(300),
            limits,
            stop.clone(),
        ));
        Harness {
            dir,
            addr,
            pki,
            ca,
            store,
            collector,
            stop,
            log: log_keeper,
            clock,
            gpu_trust,
            landmarks,
        }
    }

    /// A collector opened afresh on this harness's store, as a restart would open it: its
    /// books are loaded from what the store persisted.
    pub fn reopen(&self, policy_file: &str) -> Collector {
        open_collector(
            &self.store,
            policy_file,
            self.clock,
            self.gpu_trust.clone(),
            &self.landmarks,
        )
    }

    /// A channel with a client certificate of `role` named `name`.
    pub async fn channel_as(&self, role: Role, name: &str) -> Channel {
        let credential = self.ca.issue_client(role, name, SystemTime::now()).unwrap();
        self.channel(&credential.cert_pem, &credential.key_pem)
            .await
    }

    /// A channel without a client certificate (what an enrolling host has).
    pub async fn anonymous_channel(&self) -> Channel {
        self.connect(None).await
    }

    /// Enrolls an agent directly in the store, with a certificate from the test CA.
    pub fn enroll(&self, host: &str, site: &str, seed: u8) -> Agent {
        let signer = Ed25519Signer::from_seed(&[seed; 32]).unwrap();
        let credential = self
            .ca
            .issue_client(Role::Agent, host, SystemTime::now())
            .unwrap();
        let record = AgentRecord {
            key_id: signer.key_id(),
            public_key: *signer.public_key().as_bytes(),
            host_id: HostId(host.to_owned()),
            site_id: SiteId(site.to_owned()),
            country: if site.starts_with("us") { "US" } else { "MY" }.to_owned(),
            identity: format!("urn:veu:agent:{host}"),
            enrolled_at_ms: self.collector.now_ms(),
            revoked_at_ms: None,
        };
        self.collector.enrol(&record, false).unwrap();
        Agent {
            signer,
            cert: credential.cert_pem,
            key: credential.key_pem,
            host: host.to_owned(),
            site: site.to_owned(),
        }
    }

    pub async fn channel(&self, cert: &str, key: &str) -> Channel {
        self.connect(Some(Credential::from_pem(cert, key))).await
    }

    /// The collector's endpoint over TLS pinned to its test CA and name, without a connect
    /// timeout of its own.
    async fn connect(&self, identity: Option<Credential>) -> Channel {
        let tls = ClientTls {
            ca_pem: std::fs::read(self.pki.join("ca.pem")).unwrap(),
            server_name: "127.0.0.1".to_owned(),
            identity,
        };
        Connection::new(format!("https://{}", self.addr), tls)
            .connect_timeout(None)
            .connect()
            .await
            .unwrap()
    }

    /// Every refusal's reason, sorted, once per refusal (a row of repeats counts as many):
    /// the open windows of repeated refusals are stored first.
    pub fn reasons(&self) -> Vec<String> {
        let pending = self.collector.drain_refusals();
        if !pending.is_empty() {
            self.store
                .commit_blocking(collector_store::Batch {
                    rejections: pending,
                    ..Default::default()
                })
                .unwrap();
        }
        let mut reasons: Vec<String> = self
            .store
            .rejections(10_000)
            .unwrap()
            .into_iter()
            .flat_map(|r| std::iter::repeat_n(r.reason, r.count as usize))
            .collect();
        reasons.sort();
        reasons
    }
}

/// The harness's collector on `store`, with the test sites (us-va-1 in the US, my-1 in
/// Malaysia) and `policy_file` from deploy/policies.
fn open_collector(
    store: &Arc<SqliteStore>,
    policy_file: &str,
    clock: fn() -> i64,
    gpu_trust: Option<proto_gpu_evidence::Trust>,
    landmarks: &proto_location::Landmarks,
) -> Collector {
    // A file of deploy/policies, or (holding a line break) a policy's whole text.
    let policy_toml = if policy_file.contains('\n') {
        policy_file.to_owned()
    } else {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/policies")
                .join(policy_file),
        )
        .unwrap()
    };
    let rules = Rules {
        catalogue: Catalogue::builtin().unwrap(),
        policy: Policy::from_toml(&policy_toml).unwrap(),
        policy_toml,
        catalogue_toml: proto_accounting::catalogue::BUILTIN_TOML.to_owned(),
        sites: SiteRegistry::from_toml(
            "[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\nlatitude = 39.0438\nlongitude = -77.4874\n\
             [[site]]\nid = \"my-1\"\ncountry = \"MY\"\n",
        )
        .unwrap(),
        max_future_skew_ms: 300_000,
        max_backlog_ms: 30 * 86_400_000,
    };
    let collector = Collector::open(
        Arc::clone(store) as Arc<dyn AttestationStore>,
        rules,
        NonceIssuer::new(&[42; 32], 300_000),
        Arc::new(Metrics::new()),
        180_000,
        clock,
    )
    .unwrap();
    let collector = match gpu_trust {
        Some(trust) => collector.with_gpu_trust(trust),
        None => collector,
    };
    collector.with_landmarks(landmarks.clone()).unwrap()
}

/// GPU `index` of `host`: an H100 SXM with a UUID and serial of its own.
pub fn h100(host: &str, index: usize) -> DeviceRecord {
    DeviceRecord {
        index: u32::try_from(index).unwrap(),
        uuid: format!("GPU-{host}-{index}"),
        serial: format!("SN-{host}-{index}"),
        name: "NVIDIA H100 80GB HBM3".into(),
        pci_device_id: 0x2330_10de,
        architecture: "Hopper".into(),
        catalogue_id: "H100-SXM5-80GB".into(),
        tpp: 15840,
        ..DeviceRecord::default()
    }
}

/// Eight H100s of `host`.
pub fn devices(host: &str) -> Vec<DeviceRecord> {
    (0..8).map(|index| h100(host, index)).collect()
}

/// A statement of `signer`'s key for `host` at `site`: simulated evidence listing `devices`.
#[allow(clippy::too_many_arguments)]
pub fn statement(
    signer: &Ed25519Signer,
    host: &str,
    site: &str,
    sequence: u64,
    previous: ChainDigest,
    issued_at_ms: i64,
    nonce: &[u8],
    devices: Vec<DeviceRecord>,
) -> AttestationPayload {
    AttestationPayload {
        key_id: signer.key_id(),
        host_id: HostId(host.to_owned()),
        site_id: SiteId(site.to_owned()),
        sequence,
        previous_digest: previous,
        issued_at_unix_ms: issued_at_ms,
        collector_nonce: nonce.to_vec(),
        totals: Totals::of(&devices).unwrap(),
        devices,
        catalogue_digest: String::new(),
        policy_digest: String::new(),
        agent_version: "test".into(),
        source: EvidenceSource::Simulated,
        driver_version: String::new(),
    }
}

/// `agent`'s link `sequence`, issued now, with its eight GPUs.
pub fn payload(
    agent: &Agent,
    sequence: u64,
    previous: ChainDigest,
    nonce: &[u8],
) -> AttestationPayload {
    statement(
        &agent.signer,
        &agent.host,
        &agent.site,
        sequence,
        previous,
        now_ms(),
        nonce,
        devices(&agent.host),
    )
}

/// The hello an agent sends first: `host`, for `signer`'s key, with no chain behind it.
pub fn hello(signer: &Ed25519Signer, host: &str, agent_version: &str) -> v1::AgentMessage {
    v1::AgentMessage {
        message: Some(FromAgent::Hello(v1::Hello {
            protocol_version: 1,
            key_id: signer.key_id().0.as_bytes().to_vec(),
            host_id: host.to_owned(),
            agent_version: agent_version.to_owned(),
            last_sequence: 0,
            last_digest: Vec::new(),
        })),
    }
}

/// Opens one agent stream on `channel` as `host` for `signer`'s key and, once challenged,
/// sends `envelope`: the collector's answer. That is its refusal when it answers the hello with
/// anything but a challenge, else its answer to the attestation (which must come within 10 s);
/// `None` when the stream ends without one.
pub async fn submit_once(
    channel: Channel,
    signer: &Ed25519Signer,
    host: &str,
    agent_version: &str,
    envelope: &proto_evidence::Envelope,
) -> Result<Option<ToAgent>, tonic::Status> {
    let (sender, receiver) = mpsc::channel(4);
    sender
        .send(hello(signer, host, agent_version))
        .await
        .expect("the stream's sender is open before the call");
    let mut inbound = AgentStreamClient::new(channel)
        .attest(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    match inbound.message().await?.and_then(|m| m.message) {
        Some(ToAgent::Challenge(_)) => {}
        other => return Ok(other),
    }
    if sender.send(attestation(envelope)).await.is_err() {
        return Ok(None);
    }
    let answer = tokio::time::timeout(Duration::from_secs(10), inbound.message())
        .await
        .expect("an answer within 10 s")?;
    Ok(answer.and_then(|m| m.message))
}

pub fn attestation(envelope: &proto_evidence::Envelope) -> v1::AgentMessage {
    v1::AgentMessage {
        message: Some(FromAgent::Attestation(v1::SignedAttestation {
            envelope: Some(proto_seal::envelope_to_wire(envelope)),
        })),
    }
}

/// One open agent stream.
pub struct Stream {
    pub sender: mpsc::Sender<v1::AgentMessage>,
    pub inbound: tonic::Streaming<v1::CollectorMessage>,
    pub nonce: Vec<u8>,
}

impl Stream {
    pub async fn open(
        harness: &Harness,
        agent: &Agent,
        tls_of: &Agent,
    ) -> Result<Self, tonic::Status> {
        let channel = harness.channel(&tls_of.cert, &tls_of.key).await;
        let (sender, receiver) = mpsc::channel(64);
        sender
            .send(hello(&agent.signer, &agent.host, "test"))
            .await
            .unwrap();
        let mut inbound = AgentStreamClient::new(channel)
            .attest(ReceiverStream::new(receiver))
            .await?
            .into_inner();
        let nonce = match inbound.message().await? {
            Some(v1::CollectorMessage {
                message: Some(ToAgent::Challenge(c)),
            }) => c.nonce,
            Some(other) => return Err(tonic::Status::aborted(format!("{other:?}"))),
            None => return Err(tonic::Status::aborted("closed")),
        };
        Ok(Stream {
            sender,
            inbound,
            nonce,
        })
    }

    /// Sends one envelope and returns the collector's answer.
    pub async fn send(&mut self, envelope: &proto_evidence::Envelope) -> ToAgent {
        self.sender.send(attestation(envelope)).await.unwrap();
        self.next().await
    }

    pub async fn next(&mut self) -> ToAgent {
        let message = tokio::time::timeout(Duration::from_secs(10), self.inbound.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        message.message.unwrap()
    }
}

pub fn reject_reason(answer: &ToAgent) -> v1::RejectReason {
    match answer {
        ToAgent::Reject(reject) => v1::RejectReason::try_from(reject.reason).unwrap(),
        other => panic!("expected a reject, got {other:?}"),
    }
}

pub fn acked(answer: &ToAgent) -> u64 {
    match answer {
        ToAgent::Ack(ack) => ack.sequence,
        other => panic!("expected an ack, got {other:?}"),
    }
}

/// An agent and where its chain stands.
pub struct Chain {
    pub agent: Agent,
    /// The last sequence acknowledged, 0 before the first.
    pub sequence: u64,
    pub previous: ChainDigest,
}

impl Chain {
    /// A chain that has not started.
    pub fn new(agent: Agent) -> Self {
        Self {
            agent,
            sequence: 0,
            previous: ChainDigest::GENESIS,
        }
    }
}

impl Harness {
    /// Streams `count` more real signed attestations of `chain`'s agent, waiting for each ack.
    pub async fn attest(&self, chain: &mut Chain, count: u64) {
        let mut stream = Stream::open(self, &chain.agent, &chain.agent)
            .await
            .unwrap();
        for _ in 0..count {
            let sequence = chain.sequence + 1;
            let envelope = proto_seal::seal(
                &payload(&chain.agent, sequence, chain.previous, &stream.nonce),
                &chain.agent.signer,
            )
            .unwrap();
            assert_eq!(acked(&stream.send(&envelope).await), sequence);
            chain.sequence = sequence;
            chain.previous = envelope.chain_digest();
        }
    }
}
