//! `veuctl audit` and `veuctl log` as processes against an in-process collector over mutual
//! TLS, with a development PKI, a real SQLite store and real signed attestations: past
//! distributions, hosts and history as an auditor sees them; tree heads, inclusion and
//! consistency checked against the pinned log key (and failing against any other); roles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collector_core::SiteRegistry;
use collector_pki::{Ca, Role};
use collector_server::log::LogKeeper;
use collector_server::metrics::Metrics;
use collector_server::nonce::NonceIssuer;
use collector_server::{Collector, Rules, TlsFiles};
use collector_store::{AgentRecord, AttestationStore, SqliteOptions, SqliteStore};
use proto_accounting::{Catalogue, Policy};
use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceRecord, EvidenceSource, HostId, SiteId, Totals,
};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as FromAgent;
use proto_wire::v1::agent_stream_client::AgentStreamClient;
use proto_wire::v1::collector_message::Message as ToAgent;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Seed of the collector's log key in these tests.
const LOG_SEED: [u8; 32] = [77; 32];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The collector's log public key, as its log.pub holds it.
fn log_key() -> String {
    hex(Ed25519Signer::from_seed(&LOG_SEED)
        .unwrap()
        .public_key()
        .as_bytes())
}

/// Some other key.
fn wrong_key() -> String {
    hex(Ed25519Signer::from_seed(&[78; 32])
        .unwrap()
        .public_key()
        .as_bytes())
}

struct Harness {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    pki: PathBuf,
    ca: Ca,
    store: Arc<SqliteStore>,
    collector: Arc<Collector>,
    stop: CancellationToken,
}

/// One enrolled agent and where its chain stands.
struct Agent {
    signer: Ed25519Signer,
    cert: String,
    key: String,
    host: String,
    site: String,
    sequence: u64,
    previous: ChainDigest,
}

/// What a veuctl run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

impl Harness {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        collector_pki::init(&pki, &["127.0.0.1".to_owned()], SystemTime::now()).unwrap();
        let ca = Ca::load(&pki).unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("collector.db"), SqliteOptions::default()).unwrap(),
        );
        let policy_toml = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/policies/uveu-2025-us-simulated.toml"),
        )
        .unwrap();
        let rules = Rules {
            catalogue: Catalogue::builtin().unwrap(),
            policy: Policy::from_toml(&policy_toml).unwrap(),
            policy_toml,
            catalogue_toml: proto_accounting::catalogue::BUILTIN_TOML.to_owned(),
            sites: SiteRegistry::from_toml(
                "[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\n[[site]]\nid = \"my-1\"\ncountry = \"MY\"\n",
            )
            .unwrap(),
            max_future_skew_ms: 300_000,
            max_backlog_ms: 30 * 86_400_000,
        };
        let collector = Arc::new(
            Collector::open(
                Arc::clone(&store) as Arc<dyn AttestationStore>,
                rules,
                NonceIssuer::new(&[42; 32], 300_000),
                Arc::new(Metrics::new()),
                180_000,
                now_ms,
            )
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = TlsFiles {
            certificate_pem: std::fs::read(pki.join("server.pem")).unwrap(),
            key_pem: std::fs::read(pki.join("server.key")).unwrap(),
            client_ca_pem: std::fs::read(pki.join("ca.pem")).unwrap(),
        };
        let stop = CancellationToken::new();
        let log = Arc::new(LogKeeper::new(
            Arc::clone(&store) as Arc<dyn AttestationStore>,
            Ed25519Signer::from_seed(&LOG_SEED).unwrap(),
            now_ms,
        ));
        tokio::spawn(collector_server::serve(
            listener,
            tls,
            Arc::clone(&collector),
            log,
            None,
            Duration::from_secs(300),
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
        }
    }

    /// Enrolls an agent directly in the store (a log leaf), with a certificate from the CA.
    fn enroll(&self, host: &str, site: &str, seed: u8) -> Agent {
        let signer = Ed25519Signer::from_seed(&[seed; 32]).unwrap();
        let credential = self
            .ca
            .issue_client(Role::Agent, host, SystemTime::now())
            .unwrap();
        let record = AgentRecord {
            key_id: *signer.key_id().0.as_bytes(),
            public_key: *signer.public_key().as_bytes(),
            host_id: host.to_owned(),
            site_id: site.to_owned(),
            country: if site.starts_with("us") { "US" } else { "MY" }.to_owned(),
            identity: format!("urn:veu:agent:{host}"),
            enrolled_at_ms: now_ms(),
            revoked_at_ms: None,
        };
        self.store.put_agent(&record).unwrap();
        self.collector.remember(&record);
        Agent {
            signer,
            cert: credential.cert_pem,
            key: credential.key_pem,
            host: host.to_owned(),
            site: site.to_owned(),
            sequence: 0,
            previous: ChainDigest::GENESIS,
        }
    }

    /// Streams `count` real signed attestations of `agent` and waits for each ack.
    async fn attest(&self, agent: &mut Agent, count: u64) {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(self.pki.join("ca.pem")).unwrap(),
            ))
            .identity(Identity::from_pem(&agent.cert, &agent.key))
            .domain_name("127.0.0.1");
        let channel = Channel::from_shared(format!("https://{}", self.addr))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (sender, receiver) = mpsc::channel(16);
        sender
            .send(v1::AgentMessage {
                message: Some(FromAgent::Hello(v1::Hello {
                    protocol_version: 1,
                    key_id: agent.signer.key_id().0.as_bytes().to_vec(),
                    host_id: agent.host.clone(),
                    agent_version: "test".into(),
                    last_sequence: agent.sequence,
                    last_digest: Vec::new(),
                })),
            })
            .await
            .unwrap();
        let mut inbound = AgentStreamClient::new(channel)
            .attest(ReceiverStream::new(receiver))
            .await
            .unwrap()
            .into_inner();
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(10), inbound.message())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
                .message
                .unwrap()
        };
        let ToAgent::Challenge(challenge) = next().await else {
            panic!("expected a challenge first");
        };
        for _ in 0..count {
            agent.sequence += 1;
            let envelope =
                proto_seal::seal(&payload(agent, &challenge.nonce), &agent.signer).unwrap();
            agent.previous = envelope.chain_digest();
            sender
                .send(v1::AgentMessage {
                    message: Some(FromAgent::Attestation(v1::SignedAttestation {
                        envelope: Some(proto_seal::envelope_to_wire(&envelope)),
                    })),
                })
                .await
                .unwrap();
            match next().await {
                ToAgent::Ack(ack) => assert_eq!(ack.sequence, agent.sequence),
                other => panic!("expected an ack, got {other:?}"),
            }
        }
    }

    /// Runs veuctl with `args`, then the collector's address and the PKI directory.
    async fn veuctl(&self, args: &[&str]) -> Run {
        self.veuctl_with(args, None).await
    }

    async fn veuctl_with(&self, args: &[&str], stdin: Option<String>) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veuctl"));
        command
            .args(args)
            .arg("--collector")
            .arg(format!("https://{}", self.addr))
            .arg("--pki-dir")
            .arg(&self.pki)
            .env_remove("VEU_COLLECTOR")
            .env_remove("VEU_SERVER_NAME")
            .env_remove("VEU_PKI_DIR")
            .env_remove("VEU_CA")
            .env_remove("VEU_CERT")
            .env_remove("VEU_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // veuctl blocks on the collector, which runs on this runtime: wait off its threads.
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("veuctl runs");
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                std::io::Write::write_all(&mut input, text.as_bytes()).unwrap();
            }
            drop(input);
            let output = child.wait_with_output().unwrap();
            Run {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        })
        .await
        .unwrap()
    }
}

fn payload(agent: &Agent, nonce: &[u8]) -> AttestationPayload {
    let devices: Vec<DeviceRecord> = (0..8)
        .map(|index| DeviceRecord {
            index,
            uuid: format!("GPU-{}-{index}", agent.host),
            serial: format!("SN-{}-{index}", agent.host),
            name: "NVIDIA H100 80GB HBM3".into(),
            pci_device_id: 0x2330_10de,
            architecture: "Hopper".into(),
            catalogue_id: "H100-SXM5-80GB".into(),
            tpp: 15840,
            ..DeviceRecord::default()
        })
        .collect();
    AttestationPayload {
        key_id: agent.signer.key_id(),
        host_id: HostId(agent.host.clone()),
        site_id: SiteId(agent.site.clone()),
        sequence: agent.sequence,
        previous_digest: agent.previous,
        issued_at_unix_ms: now_ms(),
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

/// The last-known view's (country, TPP) lines of `audit distribution --format json`.
fn countries(distribution: &Value) -> Vec<(String, u64)> {
    distribution["last_known"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["country"].as_str().unwrap().to_owned(),
                c["tpp"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_replays_past_distributions_and_reads_hosts_and_history() {
    let h = Harness::start().await;
    let mut us = h.enroll("gpu-us", "us-va-1", 1);
    let mut my = h.enroll("gpu-my", "my-1", 2);
    h.attest(&mut us, 2).await;
    let before_my = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.attest(&mut my, 1).await;

    // Now: half the compute in a Tier-2 country breaks the 7 % rule.
    let now = h
        .veuctl(&["audit", "distribution", "--format", "json"])
        .await
        .json();
    assert_eq!(
        countries(&now),
        [("MY".to_owned(), 126_720), ("US".to_owned(), 126_720)]
    );
    assert_eq!(now["last_known"]["compliant"], false);
    assert_eq!(now["hosts"], 2);
    let check = h.veuctl(&["audit", "distribution", "--check"]).await;
    assert_eq!(check.code, 1, "{check:?}");
    assert!(check.stdout.contains("NOT COMPLIANT"), "{check:?}");
    assert!(check.stdout.contains("MY"), "{check:?}");

    // Before the Malaysian host attested, only the US host counted, and every rule held:
    // asked in Unix milliseconds and in RFC 3339.
    let at = before_my.to_string();
    let then = h
        .veuctl(&["audit", "distribution", "--at", &at, "--format", "json"])
        .await
        .json();
    assert_eq!(countries(&then), [("US".to_owned(), 126_720)]);
    assert_eq!(then["last_known"]["compliant"], true);
    assert_eq!(then["as_of_unix_ms"], before_my);
    assert_eq!(then["hosts"], 1);
    let rfc3339 = collector_report::month::format_timestamp(before_my);
    let table = h
        .veuctl(&["audit", "distribution", "--at", &rfc3339, "--check"])
        .await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.contains("COMPLIANT: all"), "{table:?}");
    assert!(
        table.stdout.contains(&format!("as of {rfc3339}")),
        "{table:?}"
    );
    assert!(!table.stdout.contains("Malaysia"), "{table:?}");
    let bad = h
        .veuctl(&["audit", "distribution", "--at", "yesterday"])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("RFC 3339"), "{bad:?}");

    // Hosts: both, with their last sequence; the admin may ask too.
    let hosts = h.veuctl(&["audit", "hosts"]).await;
    assert_eq!(hosts.code, 0, "{hosts:?}");
    for line in [
        "gpu-us",
        "gpu-my",
        "us-va-1",
        "my-1",
        "126,720",
        "2 host(s)",
    ] {
        assert!(hosts.stdout.contains(line), "{line}: {hosts:?}");
    }
    let hosts = h
        .veuctl(&["audit", "hosts", "--role", "admin", "--format", "json"])
        .await
        .json();
    let sequences: Vec<(&str, u64, bool)> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host_id"].as_str().unwrap(),
                h["last_sequence"].as_u64().unwrap(),
                h["stale"].as_bool().unwrap(),
            )
        })
        .collect();
    let mut sorted = sequences.clone();
    sorted.sort();
    assert_eq!(sorted, [("gpu-my", 1, false), ("gpu-us", 2, false)]);

    // History: the US host's two attestations, after the two enrolments in the log.
    let history = h
        .veuctl(&["audit", "history", "gpu-us", "--format", "json"])
        .await
        .json();
    let rows = history["attestations"].as_array().unwrap();
    let seen: Vec<(u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["log_index"].as_u64().unwrap(),
                r["sequence"].as_u64().unwrap(),
                r["tpp"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(2, 1, 126_720), (3, 2, 126_720)]);
    assert_eq!(rows[0]["source"], "simulated");
    let table = h.veuctl(&["audit", "history", "gpu-us"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table.stdout.contains("2 attestation(s) of gpu-us"),
        "{table:?}"
    );
    // --from is inclusive: from the second one's receipt, only it.
    let second = rows[1]["received_unix_ms"].as_i64().unwrap().to_string();
    let later = h
        .veuctl(&[
            "audit", "history", "gpu-us", "--from", &second, "--format", "json",
        ])
        .await
        .json();
    assert_eq!(later["attestations"].as_array().unwrap().len(), 1);
    assert_eq!(later["attestations"][0]["sequence"], 2);
    let nobody = h.veuctl(&["audit", "history", "gpu-nobody"]).await;
    assert_eq!(nobody.code, 1, "{nobody:?}");
    assert!(nobody.stderr.contains("NotFound"), "{nobody:?}");
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_proves_every_entry_and_growth_against_the_pinned_key_only() {
    let h = Harness::start().await;
    let mut agent = h.enroll("gpu-1", "us-va-1", 1);
    h.attest(&mut agent, 3).await;
    let key = log_key();
    let wrong = wrong_key();

    // One enrolment and three attestations, signed now.
    let head = h
        .veuctl(&[
            "log",
            "head",
            "--sign-now",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(head["result"], "PASS");
    assert_eq!(head["tree_size"], 4);
    assert_eq!(head["verified"], true);
    assert_eq!(head["log_public_key"], key.as_str());
    // The key from a file (as log.pub holds it) and from standard input.
    let key_file = h.dir.path().join("log.pub");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let table = h
        .veuctl(&["log", "head", "--log-key", key_file.to_str().unwrap()])
        .await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table
            .stdout
            .contains("PASS: the pinned log key signed this head"),
        "{table:?}"
    );
    let piped = h
        .veuctl_with(
            &["log", "head", "--size", "4", "--log-key", "-"],
            Some(key.clone()),
        )
        .await;
    assert_eq!(piped.code, 0, "{piped:?}");
    // Without a pinned key: shown, with a warning.
    let unpinned = h.veuctl(&["log", "head"]).await;
    assert_eq!(unpinned.code, 0, "{unpinned:?}");
    assert!(
        unpinned
            .stderr
            .contains("not verified against a pinned key")
    );
    assert!(unpinned.stdout.contains("UNVERIFIED"), "{unpinned:?}");
    // With the wrong key: FAIL.
    let forged = h.veuctl(&["log", "head", "--log-key", &wrong]).await;
    assert_eq!(forged.code, 1, "{forged:?}");
    assert!(forged.stdout.contains("FAIL"), "{forged:?}");

    // Every leaf is in the signed log; the enrolment first.
    for index in 0..4u64 {
        let index = index.to_string();
        let proof = h
            .veuctl(&["log", "inclusion", &index, "--log-key", &key])
            .await;
        assert_eq!(proof.code, 0, "{proof:?}");
        assert!(proof.stdout.contains("PASS: leaf"), "{proof:?}");
        let expected = if index == "0" {
            "enrolled".to_owned()
        } else {
            format!("attestation of gpu-1 sequence {index}")
        };
        assert!(proof.stdout.contains(&expected), "{proof:?}");
    }
    let json = h
        .veuctl(&[
            "log",
            "inclusion",
            "2",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(json["result"], "PASS");
    assert_eq!(json["leaf"]["kind"], "attestation");
    assert_eq!(json["leaf"]["sequence"], 2);
    // The wrong key fails every proof, with the reason.
    let forged = h
        .veuctl(&["log", "inclusion", "1", "--log-key", &wrong])
        .await;
    assert_eq!(forged.code, 1, "{forged:?}");
    assert!(forged.stdout.contains("FAIL"), "{forged:?}");
    assert!(
        forged
            .stdout
            .contains("the signature does not verify with the pinned log key"),
        "{forged:?}"
    );
    let past = h
        .veuctl(&["log", "inclusion", "4", "--log-key", &key])
        .await;
    assert_eq!(past.code, 1, "{past:?}");
    assert!(
        past.stdout.contains("is not in the tree of 4 leaves"),
        "{past:?}"
    );

    // The log grows; the old head's leaves stay, and still prove in the old head.
    h.attest(&mut agent, 2).await;
    let newer = h
        .veuctl(&[
            "log",
            "head",
            "--sign-now",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(newer["tree_size"], 6);
    let consistency = h
        .veuctl(&["log", "consistency", "4", "--log-key", &key])
        .await;
    assert_eq!(consistency.code, 0, "{consistency:?}");
    assert!(
        consistency
            .stdout
            .contains("PASS: the log of 6 leaves extends the log of 4 leaves"),
        "{consistency:?}"
    );
    let json = h
        .veuctl(&[
            "log",
            "consistency",
            "4",
            "6",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(json["result"], "PASS");
    assert_eq!(
        (
            json["old"]["tree_size"].as_u64(),
            json["new"]["tree_size"].as_u64()
        ),
        (Some(4), Some(6))
    );
    let older = h
        .veuctl(&["log", "inclusion", "3", "--size", "4", "--log-key", &key])
        .await;
    assert_eq!(older.code, 0, "{older:?}");
    let forged = h
        .veuctl(&["log", "consistency", "4", "--log-key", &wrong])
        .await;
    assert_eq!(forged.code, 1, "{forged:?}");
    assert!(
        forged
            .stdout
            .contains("the old head: the signature does not verify")
    );
    // A size no head was signed at is refused by the collector.
    let unsigned = h
        .veuctl(&["log", "consistency", "5", "--log-key", &key])
        .await;
    assert_eq!(unsigned.code, 1, "{unsigned:?}");
    assert!(unsigned.stderr.contains("OutOfRange"), "{unsigned:?}");
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_certificate_may_not_audit() {
    let h = Harness::start().await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let cert = h.dir.path().join("agent.pem");
    let key = h.dir.path().join("agent.key");
    std::fs::write(&cert, &agent.cert).unwrap();
    std::fs::write(&key, &agent.key).unwrap();
    let as_agent = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let log_key = log_key();
    for command in [
        &["audit", "hosts"][..],
        &["audit", "distribution"],
        &["log", "head", "--sign-now", "--log-key", &log_key],
    ] {
        let run = h.veuctl(&[command, &as_agent].concat()).await;
        assert_ne!(run.code, 0, "{command:?}: {run:?}");
        assert!(
            run.stderr.contains("PermissionDenied"),
            "{command:?}: {run:?}"
        );
    }
    // The same collector answers the auditor.
    let run = h.veuctl(&["audit", "hosts"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    h.stop.cancel();
}
