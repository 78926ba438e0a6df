//! A collector killed with SIGKILL under load loses no acknowledged attestation: agents stream
//! continuously, the collector process is killed at varying moments and restarted, agents
//! resend what was not acknowledged, and at the end every acknowledged (key, sequence) is in
//! the database with an unbroken chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collector_store::AttestationStore;
use collector_store_sqlite::{SqliteOptions, SqliteStore};
use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceRecord, EvidenceSource, HostId, SiteId, Totals,
};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as FromAgent;
use proto_wire::v1::collector_message::Message as ToAgent;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use veu_daemon_kit::now_unix_ms as now_ms;
use veu_daemon_kit::testing::{self, free_port, promtool_accepts, scrape};

fn collector_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_veu-collector"))
}

struct Server {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn setup(dir: &Path) -> Self {
        let status = Command::new(collector_bin())
            .args(["pki", "init", "--server-name", "127.0.0.1", "--dir"])
            .arg(dir.join("pki"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(
            dir.join("sites.toml"),
            "[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\n[[site]]\nid = \"de-fra-1\"\ncountry = \"DE\"\n",
        )
        .unwrap();
        let port = free_port();
        let policy = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/policies/uveu-2025-us-simulated.toml");
        std::fs::write(
            dir.join("collector.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nsites = \"sites.toml\"\n\
                 [tls]\ncertificate = \"pki/server.pem\"\nkey = \"pki/server.key\"\nclient_ca = \"pki/ca.pem\"\n\
                 [enrollment]\nca_dir = \"pki\"\n[rules]\npolicy = \"{}\"\n[log]\nlevel = \"warn\"\n",
                policy.display()
            ),
        )
        .unwrap();
        Server {
            dir: dir.to_path_buf(),
            port,
            child: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("collector.log"))
            .unwrap();
        let child = Command::new(collector_bin())
            .args(["run", "--config"])
            .arg(self.dir.join("collector.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Wait until it accepts connections.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the collector did not start: {}",
            std::fs::read_to_string(self.dir.join("collector.log")).unwrap_or_default()
        );
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join("pki").join(name)).unwrap()
    }

    fn target(&self) -> Target {
        Target {
            port: self.port,
            ca: self.pem("ca.pem"),
        }
    }
}

/// Where agents connect.
#[derive(Clone)]
struct Target {
    port: u16,
    ca: Vec<u8>,
}

impl Target {
    async fn channel(&self, cert: &[u8], key: &[u8]) -> Result<Channel, tonic::transport::Error> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(cert, key))
            .domain_name("127.0.0.1");
        Channel::from_shared(format!("https://127.0.0.1:{}", self.port))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A simulated agent that behaves like the real one: unacknowledged attestations are kept and
/// resent in order after a reconnect.
struct Agent {
    signer: Ed25519Signer,
    host: String,
    cert: String,
    key: String,
    next: u64,
    previous: ChainDigest,
    unacked: VecDeque<(u64, proto_evidence::Envelope)>,
}

impl Agent {
    fn seal_next(&mut self, nonce: &[u8]) {
        let devices: Vec<DeviceRecord> = (0..8)
            .map(|index| DeviceRecord {
                index,
                uuid: format!("GPU-{}-{index}", self.host),
                name: "NVIDIA H100 80GB HBM3".into(),
                pci_device_id: 0x2330_10de,
                architecture: "Hopper".into(),
                catalogue_id: "H100-SXM5-80GB".into(),
                tpp: 15840,
                ..DeviceRecord::default()
            })
            .collect();
        let payload = AttestationPayload {
            key_id: self.signer.key_id(),
            host_id: HostId(self.host.clone()),
            site_id: SiteId("us-va-1".into()),
            sequence: self.next,
            previous_digest: self.previous,
            issued_at_unix_ms: now_ms(),
            collector_nonce: nonce.to_vec(),
            totals: Totals::of(&devices).unwrap(),
            devices,
            catalogue_digest: String::new(),
            policy_digest: String::new(),
            agent_version: "test".into(),
            source: EvidenceSource::Simulated,
            driver_version: String::new(),
        };
        let envelope = proto_seal::seal(&payload, &self.signer).unwrap();
        self.previous = envelope.chain_digest();
        self.unacked.push_back((self.next, envelope));
        self.next += 1;
    }

    /// Streams until the connection breaks; returns the sequences acknowledged.
    async fn session(&mut self, server: &Target, acked: &Mutex<Vec<u64>>) {
        let Ok(channel) = server
            .channel(self.cert.as_bytes(), self.key.as_bytes())
            .await
        else {
            return;
        };
        let (sender, receiver) = mpsc::channel(64);
        let hello = v1::Hello {
            protocol_version: 1,
            key_id: self.signer.key_id().0.as_bytes().to_vec(),
            host_id: self.host.clone(),
            ..v1::Hello::default()
        };
        sender
            .send(v1::AgentMessage {
                message: Some(FromAgent::Hello(hello)),
            })
            .await
            .unwrap();
        let Ok(response) = v1::agent_stream_client::AgentStreamClient::new(channel)
            .attest(ReceiverStream::new(receiver))
            .await
        else {
            return;
        };
        let mut inbound = response.into_inner();
        let nonce = match inbound.message().await {
            Ok(Some(v1::CollectorMessage {
                message: Some(ToAgent::Challenge(c)),
            })) => c.nonce,
            _ => return,
        };
        // Resend what was not acknowledged, in order, then keep a window of new ones in flight.
        let mut in_flight = 0usize;
        for (_, envelope) in &self.unacked {
            let message = v1::AgentMessage {
                message: Some(FromAgent::Attestation(v1::SignedAttestation {
                    envelope: Some(proto_seal::envelope_to_wire(envelope)),
                })),
            };
            if sender.send(message).await.is_err() {
                return;
            }
            in_flight += 1;
        }
        loop {
            while in_flight < 8 {
                self.seal_next(&nonce);
                let envelope = &self.unacked.back().unwrap().1;
                let message = v1::AgentMessage {
                    message: Some(FromAgent::Attestation(v1::SignedAttestation {
                        envelope: Some(proto_seal::envelope_to_wire(envelope)),
                    })),
                };
                if sender.send(message).await.is_err() {
                    return;
                }
                in_flight += 1;
            }
            match inbound.message().await {
                Ok(Some(v1::CollectorMessage {
                    message: Some(ToAgent::Ack(ack)),
                })) => {
                    in_flight = in_flight.saturating_sub(1);
                    while self
                        .unacked
                        .front()
                        .is_some_and(|(s, _)| *s <= ack.sequence)
                    {
                        self.unacked.pop_front();
                    }
                    acked.lock().unwrap().push(ack.sequence);
                }
                Ok(Some(v1::CollectorMessage {
                    message: Some(ToAgent::Reject(reject)),
                })) => {
                    panic!(
                        "{} sequence {} rejected: {}",
                        self.host, reject.sequence, reject.detail
                    )
                }
                Ok(Some(_)) => {}
                _ => return,
            }
        }
    }
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_attestation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::setup(dir.path());
    server.start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Enroll four agents through the real token and enrollment path.
    let mut agents: Vec<Agent> = runtime.block_on(async {
        let admin = server
            .target()
            .channel(&server.pem("admin.pem"), &server.pem("admin.key"))
            .await
            .unwrap();
        let mut admin = v1::admin_client::AdminClient::new(admin);
        let mut agents = Vec::new();
        for n in 0..4u8 {
            let token = admin
                .create_enroll_token(v1::CreateEnrollTokenRequest {
                    site_id: "us-va-1".into(),
                    valid_for_seconds: 600,
                    rebind_host: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .token;
            let signer = Ed25519Signer::from_seed(&[n + 1; 32]).unwrap();
            let enrolled = agent_uplink::enroll(&agent_uplink::Enrollment {
                endpoint: format!("https://127.0.0.1:{}", server.port),
                server_name: "127.0.0.1".into(),
                ca_pem: server.pem("ca.pem"),
                token,
                signing_public_key: *signer.public_key().as_bytes(),
                host_id: format!("gpu-{n}"),
            })
            .await
            .unwrap();
            agents.push(Agent {
                signer,
                host: enrolled.host_id,
                cert: enrolled.certificate_pem,
                key: enrolled.key_pem,
                next: 1,
                previous: ChainDigest::GENESIS,
                unacked: VecDeque::new(),
            });
        }
        agents
    });

    let acked: Vec<Arc<Mutex<Vec<u64>>>> = (0..agents.len())
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    for round in 0..6u64 {
        // Stream for a while, then kill the collector mid-stream.
        let run_for = Duration::from_millis(400 + round * 150);
        let target = server.target();
        let sessions: Vec<_> = agents
            .drain(..)
            .zip(acked.iter().cloned())
            .map(|(mut agent, acked)| {
                let target = target.clone();
                runtime.spawn(async move {
                    let _ = tokio::time::timeout(run_for, agent.session(&target, &acked)).await;
                    agent
                })
            })
            .collect();
        agents = runtime.block_on(async {
            let mut back = Vec::new();
            for session in sessions {
                back.push(session.await.unwrap());
            }
            back
        });
        server.kill();
        server.start();
    }
    server.kill();

    // Every acknowledged attestation is stored, and every chain is unbroken.
    let store = SqliteStore::open(
        &dir.path().join("state/collector.db"),
        SqliteOptions::default(),
    )
    .unwrap();
    let mut total = 0;
    for (agent, acked) in agents.iter().zip(&acked) {
        let acked = acked.lock().unwrap();
        assert!(!acked.is_empty(), "{} made progress", agent.host);
        let key = agent.signer.key_id();
        for sequence in acked.iter() {
            assert!(
                store.stored_digest(&key, *sequence).unwrap().is_some(),
                "{} sequence {sequence} was acknowledged but is not stored",
                agent.host
            );
        }
        let history = store
            .host_history(&agent.host, 0, i64::MAX, 100_000)
            .unwrap();
        let mut sequences: Vec<u64> = history.iter().map(|a| a.sequence).collect();
        sequences.sort_unstable();
        let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
        assert_eq!(
            sequences, expected,
            "{}: no gaps, no duplicates",
            agent.host
        );
        total += acked.len();
    }
    assert!(total > 40, "enough load: {total} acknowledged");
}

/// A witness's cosignature key, as `veu-witness keygen` prints it.
const WITNESS_KEY: &str =
    "witness.regulator.example/veu+290ccebb+BHv+RNh7Avou2kHn9/9kjdtSo4IV0Uo/WccvBj/D4AqZ";

#[test]
#[ignore = "needs promtool (apt-get install prometheus); .ci/run runs it with --ignored"]
fn promtool_accepts_the_collector_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::setup(dir.path());
    let metrics_port = free_port();
    let config = dir.path().join("collector.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    // A witness nobody answers for: its series exist from the start.
    let witness_port = free_port();
    std::fs::write(
        &config,
        format!(
            "{text}[[audit.witnesses]]\nurl = \"http://127.0.0.1:{witness_port}\"\nkey = \"{WITNESS_KEY}\"\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
        ),
    )
    .unwrap();
    server.start();
    let body = scrape(metrics_port);
    assert!(
        body.contains("veu_collector_rejections_total{reason=\"bad_signature\"} 0"),
        "{body}"
    );
    for line in [
        // Nothing is counted yet: no compute, never compliant.
        "veu_collector_compliant{view=\"last_known\"} 0",
        "veu_collector_verdict{view=\"last_known\",verdict=\"no_compute\"} 1",
        "veu_collector_tier1_share_percent{view=\"last_known\"} 0.0",
        "veu_collector_home_share_percent{country=\"US\",view=\"verified\"} 0.0",
        "veu_collector_share_limit_percent{rule=\"tier1_min_share\"} 75.0",
        "veu_collector_share_limit_percent{rule=\"tier2_country_max_share\"} 7.0",
        "veu_collector_rule_violations{rule=\"tier2_country_max_share\",view=\"last_known\"} 0",
        "veu_collector_witness_submissions_total{witness=\"witness.regulator.example/veu\",outcome=\"cosigned\"} 0",
        "veu_collector_witness_cosigned_tree_size{witness=\"witness.regulator.example/veu\"} 0",
    ] {
        assert!(body.lines().any(|l| l == line), "missing {line}:\n{body}");
    }
    // Conventions: build info with the commit, process metrics, the served certificate's
    // expiry (the development PKI's server certificate, valid for months).
    assert!(
        body.lines()
            .any(|l| l.starts_with("veu_collector_build_info{version=\"")
                && l.contains("commit=\"")
                && l.ends_with("} 1")),
        "{body}"
    );
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            body.contains(&format!("\n{family} ")),
            "missing {family}:\n{body}"
        );
    }
    let expiry: i64 = body
        .lines()
        .find_map(|l| l.strip_prefix("veu_collector_server_certificate_expiry_timestamp_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(expiry > now + 14 * 86_400, "{expiry}");
    promtool_accepts(&body);

    // /healthz and /readyz answer 200 while the collector serves; SIGHUP changes nothing.
    assert!(get(metrics_port, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(get(metrics_port, "/readyz").starts_with("HTTP/1.1 200"));
    testing::signal(server.child.as_ref().unwrap().id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "SIGHUP stopped the collector"
    );
    assert!(get(metrics_port, "/readyz").starts_with("HTTP/1.1 200"));
}

/// The whole response to `GET path`.
fn get(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
