//! The collector under attack, over real mutual TLS and a real SQLite store: every rejection
//! reason is provoked by a forged, replayed, reordered or tampered input, counted and kept;
//! roles are enforced; GPU conflicts count once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use collector_pki::Role;
use collector_store::AttestationStore;
use proto_evidence::{
    ATTESTATION_CONTEXT, AttestationPayload, CHALLENGE_CONTEXT, ChainDigest, SiteId, Totals,
};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::agent_message::Message as FromAgent;
use proto_wire::v1::agent_stream_client::AgentStreamClient;
use proto_wire::v1::audit_client::AuditClient;

use collector_testkit::{
    Agent, Harness, Stream, acked, attestation, now_ms, payload, reject_reason,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[tokio::test]
async fn a_chain_is_stored_byte_exact_and_acknowledged() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let mut previous = ChainDigest::GENESIS;
    let mut sent = Vec::new();
    for sequence in 1..=3 {
        let envelope = proto_seal::seal(
            &payload(&agent, sequence, previous, &stream.nonce),
            &agent.signer,
        )
        .unwrap();
        previous = envelope.chain_digest();
        assert_eq!(acked(&stream.send(&envelope).await), sequence);
        sent.push(proto_seal::encode_envelope(&envelope));
    }
    let stored = h.store.attestations(0, i64::MAX, None, 10).unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|a| a.envelope.clone())
            .collect::<Vec<_>>(),
        sent
    );
    assert!(
        stored
            .iter()
            .all(|a| a.fresh && a.country == "US" && a.tpp == 126_720)
    );
    // Replaying stored bytes is acknowledged again and stored once.
    let first = proto_seal::decode_envelope(&sent[0]).unwrap();
    assert_eq!(acked(&stream.send(&first).await), 1);
    assert_eq!(
        h.store.attestations(0, i64::MAX, None, 10).unwrap().len(),
        3
    );
    assert_eq!(h.collector.state().ledger.distribution().total(), 126_720);
    h.stop.cancel();
}

#[tokio::test]
async fn forged_tampered_replayed_and_reordered_inputs_are_rejected_with_their_reason() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let nonce = stream.nonce.clone();
    let seal = |p: &AttestationPayload| proto_seal::seal(p, &agent.signer).unwrap();

    let first = seal(&payload(&agent, 1, ChainDigest::GENESIS, &nonce));
    assert_eq!(acked(&stream.send(&first).await), 1);
    let second = seal(&payload(&agent, 2, first.chain_digest(), &nonce));

    // Tampered: one flipped byte.
    let mut tampered = second.clone();
    tampered.payload[20] ^= 1;
    assert_eq!(
        reject_reason(&stream.send(&tampered).await),
        v1::RejectReason::BadSignature
    );
    // Forged: signed by another key under this agent's key id.
    let mut forged = Ed25519Signer::from_seed(&[99; 32])
        .unwrap()
        .sign(ATTESTATION_CONTEXT, second.payload.clone());
    forged.key_id = agent.signer.key_id();
    assert_eq!(
        reject_reason(&stream.send(&forged).await),
        v1::RejectReason::BadSignature
    );
    // Signed garbage.
    let garbage = agent.signer.sign(ATTESTATION_CONTEXT, vec![0xff; 64]);
    assert_eq!(
        reject_reason(&stream.send(&garbage).await),
        v1::RejectReason::Malformed
    );
    // Oversized.
    let huge = agent.signer.sign(
        ATTESTATION_CONTEXT,
        vec![0; proto_wire::MAX_PAYLOAD_BYTES + 1],
    );
    assert_eq!(
        reject_reason(&stream.send(&huge).await),
        v1::RejectReason::Oversized
    );
    // Wrong predecessor.
    let wrong = seal(&payload(
        &agent,
        2,
        ChainDigest::of_payload(b"elsewhere"),
        &nonce,
    ));
    assert_eq!(
        reject_reason(&stream.send(&wrong).await),
        v1::RejectReason::PreviousDigestMismatch
    );
    // The real second link, then a different statement for the same sequence: a fork.
    assert_eq!(acked(&stream.send(&second).await), 2);
    let mut other = payload(&agent, 2, first.chain_digest(), &nonce);
    other.issued_at_unix_ms += 1;
    assert_eq!(
        reject_reason(&stream.send(&seal(&other)).await),
        v1::RejectReason::Fork
    );
    // Reordered: 4 before 3 is accepted as a gap; 3 then arrives too late: a rollback.
    let third = seal(&payload(&agent, 3, second.chain_digest(), &nonce));
    let fourth = seal(&payload(&agent, 4, third.chain_digest(), &nonce));
    assert_eq!(acked(&stream.send(&fourth).await), 4);
    assert_eq!(
        reject_reason(&stream.send(&third).await),
        v1::RejectReason::SequenceRollback
    );
    // Clock: issued an hour ahead.
    let mut future = payload(&agent, 5, fourth.chain_digest(), &nonce);
    future.issued_at_unix_ms += 3_600_000;
    assert_eq!(
        reject_reason(&stream.send(&seal(&future)).await),
        v1::RejectReason::ClockSkew
    );
    // A nonce issued to another key.
    let other_key = proto_evidence::KeyId::of_public_key(b"someone else");
    let foreign = h.collector.nonces.issue(&other_key, now_ms());
    let stale = seal(&payload(&agent, 5, fourth.chain_digest(), &foreign));
    assert_eq!(
        reject_reason(&stream.send(&stale).await),
        v1::RejectReason::StaleNonce
    );
    // Another site than the enrolled one.
    let mut moved = payload(&agent, 5, fourth.chain_digest(), &nonce);
    moved.site_id = SiteId("my-1".into());
    assert_eq!(
        reject_reason(&stream.send(&seal(&moved)).await),
        v1::RejectReason::SiteMismatch
    );
    // Inflated TPP (totals kept consistent so only the catalogue can tell).
    let mut inflated = payload(&agent, 5, fourth.chain_digest(), &nonce);
    inflated.devices[0].tpp = 58_484;
    inflated.totals = Totals::of(&inflated.devices).unwrap();
    assert_eq!(
        reject_reason(&stream.send(&seal(&inflated)).await),
        v1::RejectReason::CatalogueMismatch
    );

    // Every rejection is counted and kept, and the chain still extends.
    let fifth = seal(&payload(&agent, 5, fourth.chain_digest(), &nonce));
    assert_eq!(acked(&stream.send(&fifth).await), 5);
    assert_eq!(
        h.reasons(),
        [
            "bad_signature",
            "bad_signature",
            "catalogue_mismatch",
            "clock_skew",
            "fork",
            "malformed",
            "oversized",
            "previous_digest_mismatch",
            "sequence_rollback",
            "site_mismatch",
            "stale_nonce",
        ]
    );
    let metrics = h.collector.metrics.render();
    assert!(
        metrics.contains("veu_collector_rejections_total{reason=\"bad_signature\"} 2"),
        "{metrics}"
    );
    let gaps: Vec<_> = h
        .store
        .events(0, 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "gap")
        .collect();
    assert_eq!(gaps.len(), 1, "the gap before 4 is recorded");
    h.stop.cancel();
}

#[tokio::test]
async fn forgeries_in_a_pipelined_batch_are_rejected_and_the_rest_acknowledged() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let nonce = stream.nonce.clone();
    let mut links = Vec::new();
    let mut previous = ChainDigest::GENESIS;
    for sequence in 1..=17 {
        let link =
            proto_seal::seal(&payload(&agent, sequence, previous, &nonce), &agent.signer).unwrap();
        previous = link.chain_digest();
        links.push(link);
    }
    let mut tampered = links[8].clone();
    tampered.payload[20] ^= 1;
    let mut foreign = Ed25519Signer::from_seed(&[99; 32])
        .unwrap()
        .sign(ATTESTATION_CONTEXT, links[16].payload.clone());
    foreign.key_id = agent.signer.key_id();
    let cross_context = agent
        .signer
        .sign(CHALLENGE_CONTEXT, links[16].payload.clone());

    // Sent without waiting, so the collector takes them as one batch (or a few).
    let mut sent = links[..8].to_vec();
    sent.push(tampered);
    sent.extend_from_slice(&links[8..16]);
    sent.extend([foreign, cross_context, links[16].clone()]);
    for envelope in &sent {
        stream.sender.send(attestation(envelope)).await.unwrap();
    }
    let mut answers = Vec::new();
    for _ in 0..sent.len() {
        answers.push(stream.next().await);
    }
    let forged = [8, 17, 18];
    let mut expected_sequence = 1;
    for (index, answer) in answers.iter().enumerate() {
        if forged.contains(&index) {
            assert_eq!(
                reject_reason(answer),
                v1::RejectReason::BadSignature,
                "{index}"
            );
        } else {
            assert_eq!(acked(answer), expected_sequence, "{index}");
            expected_sequence += 1;
        }
    }
    assert_eq!(
        h.collector
            .state()
            .ledger
            .key(&agent.signer.key_id())
            .and_then(|k| k.head)
            .unwrap()
            .sequence,
        17
    );
    h.stop.cancel();
}

#[tokio::test]
async fn identities_roles_and_revocation_are_enforced() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let alice = h.enroll("gpu-1", "us-va-1", 1);
    let mallory = h.enroll("gpu-2", "us-va-1", 2);

    // Alice's key over Mallory's certificate, and a key nobody enrolled: the refusal arrives
    // in place of the challenge.
    let unknown = Agent {
        signer: Ed25519Signer::from_seed(&[77; 32]).unwrap(),
        ..h.enroll("gpu-3", "us-va-1", 3)
    };
    for (agent, tls, expected) in [
        (&alice, &mallory, v1::RejectReason::KeyIdentityMismatch),
        (&unknown, &unknown, v1::RejectReason::UnknownKey),
    ] {
        let channel = h.channel(&tls.cert, &tls.key).await;
        let (sender, receiver) = mpsc::channel(4);
        sender
            .send(v1::AgentMessage {
                message: Some(FromAgent::Hello(v1::Hello {
                    protocol_version: 1,
                    key_id: agent.signer.key_id().0.as_bytes().to_vec(),
                    host_id: agent.host.clone(),
                    ..v1::Hello::default()
                })),
            })
            .await
            .unwrap();
        let mut inbound = AgentStreamClient::new(channel)
            .attest(ReceiverStream::new(receiver))
            .await
            .unwrap()
            .into_inner();
        let answer = inbound.message().await.unwrap().unwrap().message.unwrap();
        assert_eq!(reject_reason(&answer), expected);
    }

    // Revoked: refused at hello.
    h.collector
        .revoke(&alice.signer.key_id(), now_ms())
        .unwrap();
    let channel = h.channel(&alice.cert, &alice.key).await;
    let (sender, receiver) = mpsc::channel(4);
    sender
        .send(v1::AgentMessage {
            message: Some(FromAgent::Hello(v1::Hello {
                key_id: alice.signer.key_id().0.as_bytes().to_vec(),
                ..v1::Hello::default()
            })),
        })
        .await
        .unwrap();
    let mut inbound = AgentStreamClient::new(channel)
        .attest(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reject_reason(&inbound.message().await.unwrap().unwrap().message.unwrap()),
        v1::RejectReason::RevokedKey
    );

    // An auditor cannot submit; an agent cannot administer.
    let auditor = (
        std::fs::read_to_string(h.pki.join("auditor.pem")).unwrap(),
        std::fs::read_to_string(h.pki.join("auditor.key")).unwrap(),
    );
    let channel = h.channel(&auditor.0, &auditor.1).await;
    let (_sender, receiver) = mpsc::channel::<v1::AgentMessage>(1);
    let status = AgentStreamClient::new(channel)
        .attest(ReceiverStream::new(receiver))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let channel = h.channel(&mallory.cert, &mallory.key).await;
    let status = v1::admin_client::AdminClient::new(channel)
        .status(v1::StatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // Nor can an agent read the audit service.
    let channel = h.channel(&mallory.cert, &mallory.key).await;
    let status = AuditClient::new(channel)
        .tree_head(v1::TreeHeadRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    h.stop.cancel();
}

#[tokio::test]
async fn simulated_evidence_is_refused_under_the_production_policy() {
    let h = Harness::start("uveu-2025-us.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let envelope = proto_seal::seal(
        &payload(&agent, 1, ChainDigest::GENESIS, &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    assert_eq!(
        reject_reason(&stream.send(&envelope).await),
        v1::RejectReason::SimulatedEvidence
    );
    h.stop.cancel();
}

#[tokio::test]
async fn a_gpu_reported_by_two_hosts_counts_once_and_raises_a_conflict() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let a = h.enroll("gpu-a", "us-va-1", 1);
    let b = h.enroll("gpu-b", "my-1", 2);
    let mut stream_a = Stream::open(&h, &a, &a).await.unwrap();
    let pa = payload(&a, 1, ChainDigest::GENESIS, &stream_a.nonce);
    assert_eq!(
        acked(
            &stream_a
                .send(&proto_seal::seal(&pa, &a.signer).unwrap())
                .await
        ),
        1
    );
    // Host b claims two of a's GPUs.
    let mut stream_b = Stream::open(&h, &b, &b).await.unwrap();
    let mut pb = payload(&b, 1, ChainDigest::GENESIS, &stream_b.nonce);
    pb.devices[0].uuid = pa.devices[0].uuid.clone();
    pb.devices[1].serial = pa.devices[1].serial.clone();
    assert_eq!(
        acked(
            &stream_b
                .send(&proto_seal::seal(&pb, &b.signer).unwrap())
                .await
        ),
        1
    );
    let my = proto_accounting::CountryCode::parse("MY").unwrap();
    let counted = h.collector.state().ledger.distribution().of(my);
    assert_eq!(counted, 6 * 15840, "the shared GPUs count once, for gpu-a");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let conflicts: Vec<_> = h
        .store
        .events(0, 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "gpu_conflict")
        .collect();
    assert_eq!(conflicts.len(), 2);
    h.stop.cancel();
}

#[tokio::test]
async fn an_agent_with_an_operator_certificate_is_registered_by_an_admin() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    // The operator's PKI issued this certificate; the collector never saw the key before.
    let signer = Ed25519Signer::from_seed(&[50; 32]).unwrap();
    let credential =
        h.ca.issue_client(Role::Agent, "byo-1", SystemTime::now())
            .unwrap();
    let agent = Agent {
        signer,
        cert: credential.cert_pem,
        key: credential.key_pem,
        host: "byo-1".into(),
        site: "us-va-1".into(),
    };
    assert!(
        Stream::open(&h, &agent, &agent).await.is_err(),
        "unknown before registration"
    );

    let admin_cert = std::fs::read_to_string(h.pki.join("admin.pem")).unwrap();
    let admin_key = std::fs::read_to_string(h.pki.join("admin.key")).unwrap();
    let mut admin = v1::admin_client::AdminClient::new(h.channel(&admin_cert, &admin_key).await);
    let bad_site = admin
        .register_agent(v1::RegisterAgentRequest {
            signing_public_key: agent.signer.public_key().as_bytes().to_vec(),
            host_id: "byo-1".into(),
            site_id: "nowhere".into(),
            rebind: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_site.code(), tonic::Code::InvalidArgument);
    // A small-order point: anyone could sign for it.
    let mut identity_point = vec![0; 32];
    identity_point[0] = 1;
    let weak_key = admin
        .register_agent(v1::RegisterAgentRequest {
            signing_public_key: identity_point,
            host_id: "byo-1".into(),
            site_id: "us-va-1".into(),
            rebind: false,
        })
        .await
        .unwrap_err();
    assert_eq!(weak_key.code(), tonic::Code::InvalidArgument);
    let registered = admin
        .register_agent(v1::RegisterAgentRequest {
            signing_public_key: agent.signer.public_key().as_bytes().to_vec(),
            host_id: "byo-1".into(),
            site_id: "us-va-1".into(),
            rebind: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        registered.key_id,
        agent.signer.key_id().0.as_bytes().to_vec()
    );

    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let envelope = proto_seal::seal(
        &payload(&agent, 1, ChainDigest::GENESIS, &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    assert_eq!(acked(&stream.send(&envelope).await), 1);
    h.stop.cancel();
}

#[tokio::test]
async fn another_algorithm_and_broken_protocol_are_refused() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    // An envelope naming an algorithm this contract does not define.
    let envelope = proto_seal::seal(
        &payload(&agent, 1, ChainDigest::GENESIS, &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    let mut wire = proto_seal::envelope_to_wire(&envelope);
    wire.algorithm = 9;
    stream
        .sender
        .send(v1::AgentMessage {
            message: Some(FromAgent::Attestation(v1::SignedAttestation {
                envelope: Some(wire),
            })),
        })
        .await
        .unwrap();
    assert_eq!(
        reject_reason(&stream.next().await),
        v1::RejectReason::UnsupportedAlgorithm
    );
    // A second hello in the middle of a stream.
    stream
        .sender
        .send(v1::AgentMessage {
            message: Some(FromAgent::Hello(v1::Hello::default())),
        })
        .await
        .unwrap();
    assert_eq!(
        reject_reason(&stream.next().await),
        v1::RejectReason::ProtocolViolation
    );
    // A stream that does not start with hello.
    let channel = h.channel(&agent.cert, &agent.key).await;
    let (sender, receiver) = mpsc::channel(4);
    sender.send(attestation(&envelope)).await.unwrap();
    let mut inbound = AgentStreamClient::new(channel)
        .attest(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reject_reason(&inbound.message().await.unwrap().unwrap().message.unwrap()),
        v1::RejectReason::ProtocolViolation
    );
    let mut reasons = h.reasons();
    reasons.dedup();
    assert_eq!(reasons, ["protocol_violation", "unsupported_algorithm"]);
    h.stop.cancel();
}

fn hash32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap()
}

#[tokio::test]
async fn signed_heads_prove_every_attestation_and_an_append_only_log() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let auditor = (
        std::fs::read_to_string(h.pki.join("auditor.pem")).unwrap(),
        std::fs::read_to_string(h.pki.join("auditor.key")).unwrap(),
    );
    let mut audit = AuditClient::new(h.channel(&auditor.0, &auditor.1).await);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let mut previous = ChainDigest::GENESIS;
    let mut heads = Vec::new();
    for sequence in 1..=5 {
        let envelope = proto_seal::seal(
            &payload(&agent, sequence, previous, &stream.nonce),
            &agent.signer,
        )
        .unwrap();
        previous = envelope.chain_digest();
        assert_eq!(acked(&stream.send(&envelope).await), sequence);
        if sequence == 2 || sequence == 5 {
            let head = audit
                .tree_head(v1::TreeHeadRequest {
                    sign_now: true,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            heads.push(head);
        }
    }
    // One enrolment and five attestations.
    let (first, last) = (&heads[0], &heads[1]);
    assert_eq!((first.tree_size, last.tree_size), (3, 6));
    let log_key = proto_seal::PublicKey::from_slice(&last.log_public_key).unwrap();
    for head in &heads {
        let envelope = proto_seal::envelope_from_wire(head.signature.clone().unwrap()).unwrap();
        let signed = proto_seal::open_tree_head(&envelope, &log_key).unwrap();
        assert_eq!(signed.tree_size, head.tree_size);
        assert_eq!(signed.root.to_vec(), head.root_hash);
    }
    // A head signed by any other key does not open.
    let envelope = proto_seal::envelope_from_wire(last.signature.clone().unwrap()).unwrap();
    let other = Ed25519Signer::from_seed(&[78; 32]).unwrap().public_key();
    assert!(proto_seal::open_tree_head(&envelope, &other).is_err());

    for index in 0..6 {
        let proof = audit
            .inclusion_proof(v1::InclusionProofRequest {
                log_index: index,
                tree_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(proof.tree_size, 6);
        let path: Vec<[u8; 32]> = proof.audit_path.iter().map(|p| hash32(p)).collect();
        let leaf = proto_merkle::leaf_hash(&proof.entry);
        proto_merkle::verify_inclusion(&leaf, index, 6, &path, &hash32(&last.root_hash)).unwrap();
        let entry = proto_evidence::LogEntry::decode(&proof.entry).unwrap();
        if let proto_evidence::LogEntry::Attestation { envelope, .. } = entry {
            assert_eq!(envelope, proto_evidence::Sha256::of(&proof.envelope));
        } else {
            assert_eq!(index, 0, "only the first leaf is the enrolment");
        }
        // The same proof does not prove a neighbour.
        if index > 0 {
            assert!(
                proto_merkle::verify_inclusion(
                    &leaf,
                    index - 1,
                    6,
                    &path,
                    &hash32(&last.root_hash)
                )
                .is_err()
            );
        }
    }
    let consistency = audit
        .consistency_proof(v1::ConsistencyProofRequest {
            first_tree_size: 3,
            second_tree_size: 6,
        })
        .await
        .unwrap()
        .into_inner();
    let proof: Vec<[u8; 32]> = consistency.proof.iter().map(|p| hash32(p)).collect();
    proto_merkle::verify_consistency(
        3,
        6,
        &hash32(&first.root_hash),
        &hash32(&last.root_hash),
        &proof,
    )
    .unwrap();
    // A swapped head fails the consistency check.
    assert!(
        proto_merkle::verify_consistency(
            3,
            6,
            &hash32(&last.root_hash),
            &hash32(&first.root_hash),
            &proof
        )
        .is_err()
    );
    // Asking past the log's end is refused with a reason.
    let status = audit
        .inclusion_proof(v1::InclusionProofRequest {
            log_index: 6,
            tree_size: 6,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    h.stop.cancel();
}

#[tokio::test]
async fn past_distributions_replay_the_stored_history() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let us = h.enroll("gpu-us", "us-va-1", 1);
    let my = h.enroll("gpu-my", "my-1", 2);
    let auditor = (
        std::fs::read_to_string(h.pki.join("auditor.pem")).unwrap(),
        std::fs::read_to_string(h.pki.join("auditor.key")).unwrap(),
    );
    let mut audit = AuditClient::new(h.channel(&auditor.0, &auditor.1).await);
    let mut stream = Stream::open(&h, &us, &us).await.unwrap();
    let envelope = proto_seal::seal(
        &payload(&us, 1, ChainDigest::GENESIS, &stream.nonce),
        &us.signer,
    )
    .unwrap();
    acked(&stream.send(&envelope).await);
    let before_my = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut stream = Stream::open(&h, &my, &my).await.unwrap();
    let envelope = proto_seal::seal(
        &payload(&my, 1, ChainDigest::GENESIS, &stream.nonce),
        &my.signer,
    )
    .unwrap();
    acked(&stream.send(&envelope).await);

    let countries = |response: &v1::DistributionResponse| -> Vec<(String, u64)> {
        response
            .last_known
            .as_ref()
            .unwrap()
            .countries
            .iter()
            .map(|c| (c.country.clone(), c.tpp))
            .collect()
    };
    let then = audit
        .distribution(v1::DistributionRequest {
            as_of_unix_ms: before_my,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(countries(&then), vec![("US".to_owned(), 126_720)]);
    assert!(then.last_known.unwrap().compliant);
    let now = audit
        .distribution(v1::DistributionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        countries(&now),
        vec![("MY".to_owned(), 126_720), ("US".to_owned(), 126_720)]
    );
    // Half the compute in a Tier-2 country breaks the 7 % rule.
    assert!(!now.last_known.unwrap().compliant);
    let hosts = audit
        .list_hosts(v1::ListHostsRequest {})
        .await
        .unwrap()
        .into_inner()
        .hosts;
    assert_eq!(hosts.len(), 2);
    let mut history = audit
        .host_history(v1::HostHistoryRequest {
            host_id: "gpu-my".into(),
            from_unix_ms: 0,
            to_unix_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let first = history.message().await.unwrap().unwrap();
    assert_eq!(first.log_index, 3);
    assert!(history.message().await.unwrap().is_none());
    h.stop.cancel();
}

/// The collector's clock in `a_silent_host_heard_again_is_a_silence_in_the_report`.
static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn test_clock() -> i64 {
    CLOCK.load(std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test]
async fn a_silent_host_heard_again_is_a_silence_in_the_report() {
    CLOCK.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    let h = Harness::start_with_clock("uveu-2025-us-simulated.toml", test_clock).await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let first = proto_seal::seal(
        &payload(&agent, 1, ChainDigest::GENESIS, &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    assert_eq!(acked(&stream.send(&first).await), 1);
    // When the books heard it: the ledger's clock, which never runs behind an earlier entry
    // (the enrolment was stamped with the system clock).
    let heard = h
        .collector
        .state()
        .ledger
        .host("gpu-1")
        .unwrap()
        .last_received_ms;
    let start = test_clock();
    // Ten minutes of silence on the collector's clock (the freshness window is 3 minutes).
    CLOCK.fetch_add(600_000, std::sync::atomic::Ordering::Relaxed);
    let second = proto_seal::seal(
        &payload(&agent, 2, first.chain_digest(), &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    assert_eq!(acked(&stream.send(&second).await), 2);
    let events = h.store.events(0, 100).unwrap();
    let silence = events
        .iter()
        .find(|e| e.kind == collector_app::ingest::SILENCE_EVENT)
        .unwrap_or_else(|| panic!("a silence event in {events:?}"));
    assert_eq!(silence.value, Some(heard + 180_000));
    assert_eq!(silence.at_ms, start + 600_000);
    // Another attestation soon after is no silence.
    let third = proto_seal::seal(
        &payload(&agent, 3, second.chain_digest(), &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    assert_eq!(acked(&stream.send(&third).await), 3);
    let silences = h
        .store
        .events(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == collector_app::ingest::SILENCE_EVENT)
        .count();
    assert_eq!(silences, 1);

    // The month's report, a millisecond later (a partial report speaks of the time before
    // the instant it is made), lists the silence with its start and end.
    CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let month = collector_report::month::format_date(test_clock())[..7].to_owned();
    let report = collector_app::report::build(&h.collector, &h.log, &month).unwrap();
    let span = report
        .stale
        .iter()
        .find(|s| s.host_id == "gpu-1" && s.to_ms.is_some())
        .expect("the silence in the report");
    assert_eq!(span.to_ms, Some(start + 600_000));
    assert!(report.partial);
    assert_eq!(report.as_of_ms, test_clock());
    h.stop.cancel();
}

/// A sequence the stores cannot hold is refused alone, with its reason, on a stream that goes
/// on: it never fails the batch it came in (nor leaves the books to be reloaded).
#[tokio::test]
async fn a_sequence_beyond_the_store_is_refused_alone() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
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
    let second = proto_seal::seal(
        &payload(&agent, 2, first.chain_digest(), &stream.nonce),
        &agent.signer,
    )
    .unwrap();
    // Pipelined, so the three can arrive as one batch.
    for envelope in [&first, &huge, &second] {
        stream.sender.send(attestation(envelope)).await.unwrap();
    }
    let answers = [
        stream.next().await,
        stream.next().await,
        stream.next().await,
    ];
    assert_eq!(acked(&answers[0]), 1);
    assert_eq!(reject_reason(&answers[1]), v1::RejectReason::Malformed);
    assert_eq!(acked(&answers[2]), 2);
    assert_eq!(h.reasons(), ["malformed"]);
    h.stop.cancel();
}

#[tokio::test]
async fn terminal_escapes_in_a_signed_device_name_are_refused_at_decoding_with_the_field() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let mut hostile = payload(&agent, 1, ChainDigest::GENESIS, &stream.nonce);
    hostile.devices[0].name = "NVIDIA H100\u{1b}]0;pwned\u{7}".into();
    hostile.devices[1].name = "\u{1b}[2J".into();
    let envelope = proto_seal::seal(&hostile, &agent.signer).unwrap();
    let answer = stream.send(&envelope).await;
    assert_eq!(reject_reason(&answer), v1::RejectReason::Malformed);
    let v1::collector_message::Message::Reject(reject) = &answer else {
        unreachable!("a reject was asserted above");
    };
    assert!(
        reject.detail.contains("devices.name")
            && reject.detail.contains("U+001B")
            && !reject.detail.contains('\u{1b}'),
        "{}",
        reject.detail
    );
    let kept = h.store.rejections(10).unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].detail.contains("devices.name"), "{kept:?}");
    assert!(
        h.store
            .attestations(0, i64::MAX, None, 10)
            .unwrap()
            .is_empty()
    );
    h.stop.cancel();
}
