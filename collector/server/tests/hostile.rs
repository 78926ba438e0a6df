//! The collector facing a hostile network, over real sockets on loopback and real mutual TLS:
//! floods of idle connections, unauthenticated enrollment and refused input. Each test judges
//! what an operator sees (admin calls answered, ingest going on, refusals counted and kept),
//! with bounded counts and never a timed assertion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use collector_pki::Role;
use collector_server::Limits;
use collector_store::AttestationStore;
use collector_testkit::{Chain, Harness, acked, attestation, payload, reject_reason};
use proto_evidence::ChainDigest;
use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use proto_wire::v1::enrollment_client::EnrollmentClient;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const POLICY: &str = "uveu-2025-us-simulated.toml";

/// A TCP connection to `to` from the loopback address `from` (all of 127/8 is local).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket.connect(to).await.ok()
}

/// The value of one series in the collector's metrics text, 0 when absent.
fn metric(h: &Harness, series: &str) -> f64 {
    h.collector
        .metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Connections refused or closed early, every reason together.
fn refused(h: &Harness) -> f64 {
    h.collector
        .metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("veu_collector_connections_refused_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (yielding, bounded) until the series reaches `at_least`; the last value seen.
async fn reaches(h: &Harness, series: &str, at_least: f64) -> f64 {
    for _ in 0..500 {
        if metric(h, series) >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    metric(h, series)
}

fn small_limits() -> Limits {
    let mut limits = Limits::default();
    limits.connections.max_connections = 64;
    limits.connections.max_connections_per_ip = 16;
    // More handshake slots than one address may hold: the per-address cap, not the eviction
    // of the oldest handshake, is what stops one address's flood, whatever the scheduling.
    limits.connections.max_handshakes = 32;
    limits.connections.max_anonymous = 8;
    // Long: the caps and the handshake eviction, not the clock, keep the port open here.
    limits.connections.handshake_timeout = Duration::from_secs(600);
    limits.connections.first_request_timeout = Duration::from_secs(600);
    limits
}

/// Idle TCP connections that never speak TLS, from one address and from many, are held to
/// their caps while they stay open, and an admin's `status` is answered all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_lock_out_the_operator() {
    let h = Harness::start_with_limits(POLICY, small_limits()).await;
    let mut flood = Vec::new();
    // 300 from one address: 16 get a slot, the rest are closed at once.
    for _ in 0..300 {
        flood.extend(connect_from([127, 0, 0, 2], h.addr).await);
    }
    // 8 each from 40 more addresses: every handshake slot taken many times over.
    for host in 1..=40u8 {
        for _ in 0..8 {
            flood.extend(connect_from([127, 0, 1, host], h.addr).await);
        }
    }
    let attempts = flood.len() as f64;
    assert_eq!(attempts, 620.0, "loopback accepted every connect");
    // Every connection is accounted for: open, or refused with its reason.
    for _ in 0..500 {
        if metric(&h, "veu_collector_connections_open") + refused(&h) >= attempts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open = metric(&h, "veu_collector_connections_open");
    assert_eq!(open + refused(&h), attempts);
    assert!(open <= 64.0, "{open} open");
    let reason = |r: &str| {
        metric(
            &h,
            &format!("veu_collector_connections_refused_total{{reason=\"{r}\"}}"),
        )
    };
    assert!(reason("max_connections_per_ip") >= 1.0);
    assert!(reason("handshake_evicted") >= 1.0);

    // The flood is still open; the operator's call goes through.
    let mut admin = AdminClient::new(h.channel_as(Role::Admin, "ops").await);
    let status = admin
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(status.now_unix_ms > 0);
    assert!(metric(&h, "veu_collector_connections_open") <= 64.0);
    drop(flood);
    h.stop.cancel();
}

/// A connection that never finishes its handshake, and one that handshakes but never makes a
/// request, are closed by the collector itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_by_the_collector() {
    let mut limits = small_limits();
    limits.connections.handshake_timeout = Duration::from_millis(200);
    limits.connections.first_request_timeout = Duration::from_millis(400);
    let h = Harness::start_with_limits(POLICY, limits).await;

    let mut silent = connect_from([127, 0, 0, 3], h.addr).await.unwrap();
    let mut buffer = [0u8; 64];
    // The read ends when the collector closes the connection (EOF or reset).
    let read = silent.read(&mut buffer).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(
        metric(
            &h,
            "veu_collector_connections_refused_total{reason=\"handshake_timeout\"}"
        ),
        1.0
    );

    // A client that completes TLS (anonymously) and then says nothing.
    let channel = h.anonymous_channel().await;
    assert!(
        reaches(
            &h,
            "veu_collector_connections_refused_total{reason=\"first_request_timeout\"}",
            1.0
        )
        .await
            >= 1.0
    );
    drop(channel);
    // A connection that made its request is not cut by the first-request deadline.
    let mut admin = AdminClient::new(h.channel_as(Role::Admin, "ops").await);
    admin.status(v1::StatusRequest::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    admin.status(v1::StatusRequest::default()).await.unwrap();
    h.stop.cancel();
}

/// An enrollment flood from one peer is refused before any work past its burst, and an
/// agent's ingest completes meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_flood_is_rate_limited_and_ingest_goes_on() {
    let mut limits = Limits::default();
    limits.enrollment.per_peer.per_second = 0.001;
    limits.enrollment.per_peer.burst = 3;
    limits.enrollment.concurrency = 2;
    let h = Harness::start_with_limits(POLICY, limits).await;
    let mut chain = Chain::new(h.enroll("gpu-1", "us-va-1", 1));

    let enrollment = EnrollmentClient::new(h.anonymous_channel().await);
    let flood: Vec<_> = (0..300)
        .map(|n| {
            let mut client = enrollment.clone();
            tokio::spawn(async move {
                client
                    .enroll(v1::EnrollRequest {
                        token: format!("{n:064x}"),
                        signing_public_key: vec![9; 32],
                        csr_der: vec![0; 100],
                        host: None,
                    })
                    .await
                    .map(drop)
            })
        })
        .collect();
    h.attest(&mut chain, 20).await;

    let mut worked = 0;
    let mut refused = 0;
    // Calls the transport itself turned away on a loaded machine (the connection's stream
    // limit): they reached neither the rate limit nor the work.
    let mut transport = 0;
    for call in flood {
        match call.await.unwrap() {
            Err(status) if status.code() == tonic::Code::ResourceExhausted => refused += 1,
            // What the enrollment work answers a made-up token or a bad request.
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::PermissionDenied
                        | tonic::Code::InvalidArgument
                        | tonic::Code::FailedPrecondition
                        | tonic::Code::AlreadyExists
                ) =>
            {
                worked += 1;
            }
            Err(_) => transport += 1,
            Ok(()) => panic!("a made-up token enrolled"),
        }
    }
    assert_eq!(chain.sequence, 20, "every attestation was acknowledged");
    assert!(worked <= 3, "{worked} calls reached the enrollment work");
    assert!(transport < 300, "the flood never reached the collector");
    assert_eq!(worked + refused + transport, 300);
    let counted = metric(
        &h,
        "veu_collector_enrollments_refused_total{reason=\"peer_rate\"}",
    ) + metric(
        &h,
        "veu_collector_enrollments_refused_total{reason=\"busy\"}",
    );
    assert_eq!(counted, f64::from(refused));
    h.stop.cancel();
}

/// An attestation with sequence 2^63 in a batch with refused forgeries: each is refused with
/// its own reason, every refusal is kept, and the stream goes on.
#[tokio::test]
async fn an_out_of_range_sequence_never_loses_the_batch_refusals() {
    let h = Harness::start(POLICY).await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = collector_testkit::Stream::open(&h, &agent, &agent)
        .await
        .unwrap();
    let first = proto_seal::seal(
        &payload(&agent, 1, ChainDigest::GENESIS, &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    let huge = proto_seal::seal(
        &payload(&agent, 1 << 63, first.chain_digest(), &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    let mut batch = vec![first.clone(), huge];
    for n in 0..13u8 {
        // Signed, then one byte of the signature changed.
        let mut forged = proto_seal::seal(
            &payload(
                &agent,
                2 + u64::from(n),
                first.chain_digest(),
                &stream.nonce,
            ),
            &agent.signer,
        )
        .unwrap();
        forged.signature[n as usize] ^= 1;
        batch.push(forged);
    }
    for envelope in &batch {
        stream.sender.send(attestation(envelope)).await.unwrap();
    }
    let mut answers = Vec::new();
    for _ in 0..batch.len() {
        answers.push(stream.next().await);
    }
    assert_eq!(acked(&answers[0]), 1);
    assert_eq!(reject_reason(&answers[1]), v1::RejectReason::Malformed);
    for answer in &answers[2..] {
        assert_eq!(reject_reason(answer), v1::RejectReason::BadSignature);
    }
    let reasons = h.reasons();
    assert_eq!(reasons.len(), 14, "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| *r == "malformed").count(), 1);
    assert_eq!(reasons.iter().filter(|r| *r == "bad_signature").count(), 13);
    // The stream goes on.
    let second = proto_seal::seal(
        &payload(&agent, 2, first.chain_digest(), &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    assert_eq!(acked(&stream.send(&second).await), 2);
    h.stop.cancel();
}

/// Hundreds of refused hellos from one certificate are every one answered with its reason and
/// counted, and stored as two rows (the first in full, then the window's repeats with their
/// count), not a row each; `veuctl status` counts them all at once.
#[tokio::test]
async fn repeated_refused_hellos_are_counted_not_stored_one_by_one() {
    let h = Harness::start(POLICY).await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    // A certificate of its own, naming a key nobody enrolled.
    let stranger = collector_testkit::Agent {
        signer: proto_seal::Ed25519Signer::from_seed(&[200; 32]).unwrap(),
        ..agent
    };
    const TRIES: u64 = 300;
    for _ in 0..TRIES {
        match collector_testkit::Stream::open(&h, &stranger, &stranger).await {
            Ok(mut stream) => panic!("an unknown key got a challenge: {:?}", stream.next().await),
            // The reject message, then the end of the stream.
            Err(status) => assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}"),
        }
    }
    assert_eq!(
        metric(&h, "veu_collector_rejections_total{reason=\"unknown_key\"}"),
        TRIES as f64
    );
    let rows = h.store.rejections(10_000).unwrap();
    assert_eq!(rows.len(), 1, "only the first refusal is stored at once");
    let mut admin = AdminClient::new(h.channel_as(Role::Admin, "ops").await);
    let status = admin
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let counted: Vec<(String, u64)> = status
        .rejection_counts
        .into_iter()
        .map(|c| (c.reason, c.count))
        .collect();
    assert_eq!(counted, [("unknown_key".to_owned(), TRIES)]);
    // The window's repeats, stored as one row with their count.
    h.collector.flush_refusals(true).await;
    let rows = h.store.rejections(10_000).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), TRIES);
    assert_eq!(
        h.store.rejection_counts().unwrap(),
        vec![("unknown_key".to_owned(), TRIES)]
    );
    h.stop.cancel();
}
