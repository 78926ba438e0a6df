//! The landmark in-process with a channel for its statements, probed by the agent's own
//! `probe_landmark`: directly, through a delay relay standing in for distance, with the wrong
//! key, by strangers, and by more connections than it serves at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agent_uplink::{ProbeOutcome, probe_landmark};
use collector_testkit::DelayRelay;
use proto_evidence::{Coordinates, SignedMeasurement};
use proto_seal::Ed25519Signer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use veu_landmark::{Identity, Limits};

const DEADLINE: Duration = Duration::from_secs(10);

struct Running {
    addr: SocketAddr,
    statements: mpsc::Receiver<SignedMeasurement>,
    landmark_key: proto_seal::PublicKey,
    at: Coordinates,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn landmark(limits: Limits) -> Running {
    let signer = Ed25519Signer::from_seed(&[42; 32]).unwrap();
    let landmark_key = signer.public_key();
    let at = Coordinates::from_degrees(50.1109, 8.6821).unwrap();
    let identity = Arc::new(Identity {
        id: "fra-1".into(),
        at,
        signer,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, statements) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    tokio::spawn(veu_landmark::serve(
        listener,
        identity,
        limits,
        sink,
        shutdown.clone(),
    ));
    Running {
        addr,
        statements,
        landmark_key,
        at,
        shutdown,
    }
}

fn agent(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32]).unwrap()
}

fn quick() -> Limits {
    Limits {
        rounds: 5,
        max_sessions: 8,
        hello_timeout: Duration::from_millis(300),
        session_timeout: Duration::from_secs(5),
    }
}

/// No statement arrives within `wait`.
async fn none_within(statements: &mut mpsc::Receiver<SignedMeasurement>, wait: Duration) {
    if let Ok(Some(signed)) = tokio::time::timeout(wait, statements.recv()).await {
        panic!("unexpected statement {signed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_probe_yields_a_statement_the_landmark_key_opens() {
    let mut running = landmark(quick()).await;
    let key = agent(1);
    let outcome = probe_landmark(&running.addr.to_string(), "gpu-node-7", &key, DEADLINE)
        .await
        .unwrap();
    let ProbeOutcome::Measured { min_rtt_us, rounds } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(rounds, 5);
    assert!(min_rtt_us < 20_000, "{min_rtt_us} µs on loopback");
    let signed = tokio::time::timeout(DEADLINE, running.statements.recv())
        .await
        .unwrap()
        .unwrap();
    let measurement = proto_seal::open_measurement(&signed, &running.landmark_key).unwrap();
    assert_eq!(measurement.landmark, "fra-1");
    assert_eq!(measurement.at, running.at);
    assert_eq!(measurement.host, "gpu-node-7");
    assert_eq!(measurement.agent_key, *key.public_key().as_bytes());
    assert_eq!(measurement.min_rtt_us, min_rtt_us);
    assert_eq!(measurement.rounds, 5);
    assert!(
        proto_seal::check_rtt_answer(&key.public_key(), &measurement.nonce, &measurement.answer)
            .is_ok()
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now_ms - measurement.measured_at_ms).abs() < 60_000);
    // Another landmark's key does not open it.
    assert!(proto_seal::open_measurement(&signed, &agent(9).public_key()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_on_the_path_bounds_the_round_trip_from_below() {
    let mut running = landmark(quick()).await;
    let relay = DelayRelay::start(running.addr, Duration::from_millis(25))
        .await
        .unwrap();
    let key = agent(2);
    let outcome = probe_landmark(&relay.addr().to_string(), "gpu-node-8", &key, DEADLINE)
        .await
        .unwrap();
    let ProbeOutcome::Measured { min_rtt_us, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(min_rtt_us >= 50_000, "{min_rtt_us} µs through 2 × 25 ms");
    let signed = tokio::time::timeout(DEADLINE, running.statements.recv())
        .await
        .unwrap()
        .unwrap();
    let measurement = proto_seal::open_measurement(&signed, &running.landmark_key).unwrap();
    assert!(measurement.min_rtt_us >= 50_000);
    // The disk it draws is at least the relay's distance at light speed wide.
    let radius = proto_location::radius_km(measurement.min_rtt_us, proto_location::LIGHT_KM_PER_MS);
    assert!(radius >= 7_000.0, "{radius} km");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_another_key_are_refused_without_a_statement() {
    let mut running = landmark(quick()).await;
    let claimed = agent(3);
    let other = agent(4);
    // A client that names one key and answers with another.
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let hello = proto_location::probe::Hello {
        agent_key: *claimed.public_key().as_bytes(),
        host: "gpu-node-9".into(),
    }
    .encode()
    .unwrap();
    stream.write_all(&hello).await.unwrap();
    let mut challenge = [0; proto_location::probe::CHALLENGE_LEN];
    stream.read_exact(&mut challenge).await.unwrap();
    let nonce: [u8; 32] = challenge[1..].try_into().unwrap();
    stream
        .write_all(&proto_seal::answer_rtt(&nonce, &other))
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let frame = proto_location::probe::LandmarkFrame::decode(rest[0], &rest[1..]).unwrap();
    assert_eq!(
        frame,
        proto_location::probe::LandmarkFrame::Refused(veu_landmark::session::BAD_ANSWER.into())
    );
    none_within(&mut running.statements, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_dropped_without_a_statement_or_blocking_agents() {
    let mut running = landmark(quick()).await;
    // Silent: holds its connection until the hello deadline.
    let mut silent = TcpStream::connect(running.addr).await.unwrap();
    // HTTP: not a probe.
    let mut http = TcpStream::connect(running.addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: landmark.example\r\nAccept: */*\r\n\r\n")
        .await
        .unwrap();
    // An agent is measured meanwhile.
    let outcome = probe_landmark(&running.addr.to_string(), "gpu-node-1", &agent(5), DEADLINE)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ProbeOutcome::Measured { .. }),
        "{outcome:?}"
    );
    let signed = running.statements.recv().await.unwrap();
    let measurement = proto_seal::open_measurement(&signed, &running.landmark_key).unwrap();
    assert_eq!(measurement.host, "gpu-node-1");

    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), http.read_to_end(&mut answer))
        .await
        .expect("the HTTP client is dropped at once")
        .unwrap();
    let refused = proto_location::probe::LandmarkFrame::decode(answer[0], &answer[1..]).unwrap();
    assert!(matches!(
        refused,
        proto_location::probe::LandmarkFrame::Refused(_)
    ));
    let started = std::time::Instant::now();
    let mut nothing = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), silent.read_to_end(&mut nothing))
        .await
        .expect("the silent client is dropped at the hello deadline")
        .unwrap();
    assert!(nothing.is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));
    none_within(&mut running.statements, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_sessions_are_closed_at_once() {
    let mut running = landmark(Limits {
        max_sessions: 2,
        hello_timeout: Duration::from_secs(3),
        ..quick()
    })
    .await;
    let _first = TcpStream::connect(running.addr).await.unwrap();
    let _second = TcpStream::connect(running.addr).await.unwrap();
    // Let the landmark accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(running.addr).await.unwrap();
    let mut read = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), third.read_to_end(&mut read)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the excess connection is closed at once: {closed:?}"
    );
    // A probe over the limit fails; once a session ends, probes are served again.
    let over = probe_landmark(&running.addr.to_string(), "gpu-node-2", &agent(6), DEADLINE).await;
    assert!(over.is_err(), "{over:?}");
    drop(_first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcome = probe_landmark(&running.addr.to_string(), "gpu-node-2", &agent(6), DEADLINE)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ProbeOutcome::Measured { .. }),
        "{outcome:?}"
    );
    assert!(running.statements.recv().await.is_some());
}
