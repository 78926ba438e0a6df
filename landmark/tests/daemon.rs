//! veu-landmark as a process: keygen and show-key print the registry entry of one key,
//! check-config reports every bad key with status 78, and `run` measures an agent and submits
//! the signed statement over mutual TLS, as `urn:veu:landmark:<id>`, to a collector's Landmark
//! service (a scripted one here, with a development PKI), then stops on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use agent_uplink::{ProbeOutcome, probe_landmark};
use collector_pki::Role;
use proto_evidence::SignedMeasurement;
use proto_location::Landmarks;
use proto_seal::{Ed25519Signer, PublicKey};
use proto_wire::v1;
use proto_wire::v1::landmark_server::{Landmark, LandmarkServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

fn landmark_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_veu-landmark"))
}

fn landmark(args: &[&str]) -> Output {
    Command::new(landmark_bin()).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Each submission's caller (`urn:veu:…`) and measurement bytes.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A collector's Landmark service that accepts everything and records who sent what.
#[derive(Clone, Default)]
struct Recording {
    received: Received,
}

#[tonic::async_trait]
impl Landmark for Recording {
    async fn submit(
        &self,
        request: Request<v1::SubmitMeasurementRequest>,
    ) -> Result<Response<v1::SubmitMeasurementResponse>, Status> {
        let leaf = request
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let identity = collector_pki::identity_of(leaf.as_ref())
            .map_err(|error| Status::unauthenticated(error.to_string()))?;
        let mut received = self.received.lock().unwrap();
        received.push((identity.to_string(), request.into_inner().measurement));
        Ok(Response::new(v1::SubmitMeasurementResponse {
            log_index: received.len() as u64,
            verdict: "unverified".into(),
        }))
    }
}

fn config(dir: &Path, collector: &str) -> String {
    format!(
        "id = \"fra-1\"\nlatitude = 50.1109\nlongitude = 8.6821\nkey = \"{}\"\n\
         listen = \"127.0.0.1:0\"\nrounds = 4\nhello_timeout = \"1s\"\n\
         [collector]\nendpoint = \"{collector}\"\nca = \"tls/ca.pem\"\n\
         certificate = \"tls/landmark.pem\"\nkey = \"tls/landmark.key\"\n",
        dir.join("state/landmark.key").display()
    )
}

#[test]
fn keygen_and_show_key_print_one_registry_entry_and_never_replace_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("landmark.key");
    let key_arg = key.to_str().unwrap();
    let made = landmark(&[
        "keygen",
        "--key",
        key_arg,
        "--id",
        "sin-1",
        "--latitude",
        "1.3521",
        "--longitude",
        "103.8198",
        "--operator",
        "Audit firm",
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let entry = String::from_utf8(made.stdout).unwrap();
    let registry = Landmarks::from_toml(&entry).unwrap();
    let sin = registry.get("sin-1").unwrap();
    assert_eq!(sin.operator, "Audit firm");
    let signer = proto_seal::keyfile::load(&key).unwrap();
    assert_eq!(sin.public_key, *signer.public_key().as_bytes());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let again = landmark(&[
        "keygen",
        "--key",
        key_arg,
        "--id",
        "sin-1",
        "--latitude",
        "1",
        "--longitude",
        "2",
    ]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    // West and south are negative numbers, not flags.
    let west = landmark(&[
        "keygen",
        "--key",
        dir.path().join("west.key").to_str().unwrap(),
        "--id",
        "gru-1",
        "--latitude",
        "-23.4356",
        "--longitude",
        "-46.4731",
    ]);
    assert!(west.status.success(), "{}", text(&west));

    // show-key prints the same entry from a configuration naming the key.
    let config_path = dir.path().join("landmark.toml");
    std::fs::write(
        &config_path,
        format!(
            "id = \"sin-1\"\nlatitude = 1.3521\nlongitude = 103.8198\nkey = \"{key_arg}\"\n\
             [collector]\nendpoint = \"https://c.example:7443\"\nca = \"a\"\ncertificate = \"b\"\nkey = \"c\"\n"
        ),
    )
    .unwrap();
    let shown = landmark(&[
        "show-key",
        "--config",
        config_path.to_str().unwrap(),
        "--operator",
        "Audit firm",
    ]);
    assert!(shown.status.success(), "{}", text(&shown));
    assert_eq!(String::from_utf8(shown.stdout).unwrap(), entry);
}

#[test]
fn check_config_reports_every_bad_key_with_status_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("landmark.toml");
    std::fs::write(
        &path,
        "id = \"fra 1\"\nlatitude = 91\nlongitude = 8\nkey = \"missing.key\"\nrounds = 1000\n\
         [collector]\nendpoint = \"https://c.example:7443\"\nca = \"ca.pem\"\ncertificate = \"l.pem\"\nkey = \"l.key\"\n",
    )
    .unwrap();
    let output = landmark(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    let report = text(&output);
    for key in ["id:", "latitude:", "rounds:"] {
        assert!(report.contains(key), "{key} in {report}");
    }
    // The same for run, before anything starts.
    let output = landmark(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    // Valid values, but files that are not there.
    std::fs::write(&path, config(dir.path(), "https://localhost:1")).unwrap();
    let output = landmark(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    let report = text(&output);
    for key in [
        "  key:",
        "collector.ca:",
        "collector.certificate:",
        "collector.key:",
    ] {
        assert!(report.contains(key), "{key} in {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_measures_an_agent_and_submits_over_mutual_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let pki = collector_pki::init(&dir.path().join("pki"), &["localhost".to_owned()], now).unwrap();
    let ca = collector_pki::Ca::load(&pki.dir).unwrap();
    let credential = ca.issue_client(Role::Landmark, "fra-1", now).unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::write(tls.join("ca.pem"), ca.ca_pem()).unwrap();
    std::fs::write(tls.join("landmark.pem"), &credential.cert_pem).unwrap();
    std::fs::write(tls.join("landmark.key"), &credential.key_pem).unwrap();

    // The collector's side: mutual TLS with the same CA.
    let service = Recording::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server_tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            std::fs::read(pki.server_cert()).unwrap(),
            std::fs::read(pki.server_key()).unwrap(),
        ))
        .client_ca_root(Certificate::from_pem(ca.ca_pem()));
    tokio::spawn(
        Server::builder()
            .tls_config(server_tls)
            .unwrap()
            .add_service(LandmarkServer::new(service.clone()))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            ),
    );

    let config_path = dir.path().join("landmark.toml");
    std::fs::write(
        &config_path,
        config(
            dir.path(),
            &format!("https://localhost:{}", collector.port()),
        ),
    )
    .unwrap();
    let config_arg = config_path.to_str().unwrap().to_owned();
    let made = landmark(&["keygen", "--config", &config_arg]);
    assert!(made.status.success(), "{}", text(&made));
    let registry = Landmarks::from_toml(&String::from_utf8(made.stdout).unwrap()).unwrap();
    let landmark_key = PublicKey::from_slice(&registry.get("fra-1").unwrap().public_key).unwrap();
    let checked = landmark(&["check-config", "--config", &config_arg]);
    assert!(checked.status.success(), "{}", text(&checked));
    // A certificate for another landmark is refused before the collector would refuse it.
    let other = ca.issue_client(Role::Landmark, "ams-1", now).unwrap();
    std::fs::write(tls.join("landmark.pem"), &other.cert_pem).unwrap();
    std::fs::write(tls.join("landmark.key"), &other.key_pem).unwrap();
    let refused = landmark(&["check-config", "--config", &config_arg]);
    assert_eq!(refused.status.code(), Some(78), "{}", text(&refused));
    assert!(
        text(&refused).contains("collector.certificate:")
            && text(&refused).contains("urn:veu:landmark:ams-1, not urn:veu:landmark:fra-1"),
        "{}",
        text(&refused)
    );
    std::fs::write(tls.join("landmark.pem"), &credential.cert_pem).unwrap();
    std::fs::write(tls.join("landmark.key"), &credential.key_pem).unwrap();

    let mut child = Command::new(landmark_bin())
        .args(["run", "--config", &config_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let address = line
        .trim()
        .strip_prefix("veu-landmark listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();

    let agent = Ed25519Signer::from_seed(&[5; 32]).unwrap();
    let outcome = probe_landmark(&address, "gpu-node-4", &agent, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        matches!(outcome, ProbeOutcome::Measured { rounds: 4, .. }),
        "{outcome:?}"
    );
    let started = Instant::now();
    let (who, bytes) = loop {
        if let Some(first) = service.received.lock().unwrap().first().cloned() {
            break first;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "nothing submitted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(who, "urn:veu:landmark:fra-1");
    let signed = SignedMeasurement::decode(&bytes).unwrap();
    let measurement = proto_seal::open_measurement(&signed, &landmark_key).unwrap();
    assert_eq!(measurement.landmark, "fra-1");
    assert_eq!(measurement.host, "gpu-node-4");
    assert_eq!(measurement.agent_key, *agent.public_key().as_bytes());
    assert_eq!(measurement.rounds, 4);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                child.kill().unwrap();
                panic!("veu-landmark did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    stop.cancel();
}
