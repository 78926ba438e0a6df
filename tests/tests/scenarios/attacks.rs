//! Attacks on a real collector process, each refused with its reason code (counted in the
//! collector's status): a forged signature, a tampered payload, a replayed link rewritten (a
//! fork), another host's certificate, a revoked key; an exact resubmission is acknowledged
//! idempotently; an auditor certificate cannot submit and an agent certificate cannot read the
//! audit service.

use std::path::Path;
use std::time::Duration;

use collector_client::{Channel, Credential};
use proto_evidence::Envelope;
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::agent_stream_client::AgentStreamClient;
use proto_wire::v1::collector_message::Message as ToAgent;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::support::{Agent, Collector, eventually, ok};

async fn channel(collector: &Collector, cert: &Path, key: &Path) -> Channel {
    collector
        .channel(Some(Credential::from_files(cert, key).unwrap()))
        .await
}

/// Opens an agent stream as `host` (its certificate) for `signer`'s key and sends `envelope`;
/// returns the collector's answer (or the stream's refusal).
async fn submit(
    collector: &Collector,
    tls_of: &Path,
    host: &str,
    signer: &Ed25519Signer,
    envelope: &Envelope,
) -> Result<ToAgent, tonic::Status> {
    let channel = channel(
        collector,
        &tls_of.join("tls/agent.pem"),
        &tls_of.join("tls/agent.key"),
    )
    .await;
    let answer = collector_testkit::submit_once(channel, signer, host, "attack", envelope).await?;
    Ok(answer.expect("an answer"))
}

fn reason(answer: &ToAgent) -> String {
    match answer {
        ToAgent::Reject(reject) => v1::RejectReason::try_from(reject.reason)
            .map(|r| r.as_str_name().to_owned())
            .unwrap_or_default(),
        other => format!("not a reject: {other:?}"),
    }
}

#[test]
fn forged_tampered_replayed_misbound_and_revoked_submissions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(dir.path());
    let mut us = Agent::start(&collector, "us-01", "us-va-1", "dgx-h100.json", 300);
    let mut de = Agent::start(&collector, "de-01", "de-fra-1", "hgx-h200.json", 300);
    eventually(Duration::from_secs(30), "two attestations each", || {
        collector.history("us-01").len() >= 2 && collector.history("de-01").len() >= 2
    });
    us.kill();
    de.kill();
    let us_dir = collector.dir.join("agents/us-01");
    let de_dir = collector.dir.join("agents/de-01");
    let key = |dir: &Path| {
        Ed25519Signer::from_pkcs8(&std::fs::read(dir.join("state/signing-key.pk8")).unwrap())
            .unwrap()
    };
    let (us_key, de_key) = (key(&us_dir), key(&de_dir));
    let chain = collector.stored(dir.path(), "us-01");
    let first = chain[0].clone();
    let mut payload = proto_seal::decode_payload_unverified(&first).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // An exact resubmission: acknowledged, stored once.
        let answer = submit(&collector, &us_dir, "us-01", &us_key, &first)
            .await
            .unwrap();
        assert!(matches!(answer, ToAgent::Ack(_)), "{answer:?}");

        // A forged signature: the bytes of link 1 signed by another key under us-01's key id.
        let stranger = Ed25519Signer::from_seed(&[66; 32]).unwrap();
        let forged = Envelope {
            signature: stranger
                .sign(proto_evidence::ATTESTATION_CONTEXT, first.payload.clone())
                .signature,
            ..first.clone()
        };
        let answer = submit(&collector, &us_dir, "us-01", &us_key, &forged)
            .await
            .unwrap();
        assert_eq!(reason(&answer), "REJECT_REASON_BAD_SIGNATURE");

        // A tampered payload: one byte flipped after signing.
        let mut tampered = first.clone();
        let last = tampered.payload.len() - 1;
        tampered.payload[last] ^= 0x01;
        let answer = submit(&collector, &us_dir, "us-01", &us_key, &tampered)
            .await
            .unwrap();
        assert_eq!(reason(&answer), "REJECT_REASON_BAD_SIGNATURE");

        // A replay rewritten: link 1 again, re-signed with the real key but issued later.
        payload.issued_at_unix_ms += 1;
        let rewritten = proto_seal::seal(&payload, &us_key).unwrap();
        let answer = submit(&collector, &us_dir, "us-01", &us_key, &rewritten)
            .await
            .unwrap();
        let refused = reason(&answer);
        assert!(
            refused == "REJECT_REASON_FORK" || refused == "REJECT_REASON_SEQUENCE_ROLLBACK",
            "{refused}"
        );

        // Another host's certificate for us-01's key.
        let answer = submit(&collector, &de_dir, "us-01", &us_key, &first).await;
        let refused = match &answer {
            Ok(answer) => reason(answer),
            Err(status) => format!("{:?}", status.code()),
        };
        assert!(
            refused == "REJECT_REASON_KEY_IDENTITY_MISMATCH" || refused == "PermissionDenied",
            "{refused}"
        );
        let _ = de_key;

        // An auditor certificate cannot submit.
        let channel = channel(
            &collector,
            &collector.dir.join("pki/auditor.pem"),
            &collector.dir.join("pki/auditor.key"),
        )
        .await;
        let (_sender, receiver) = mpsc::channel::<v1::AgentMessage>(1);
        let status = AgentStreamClient::new(channel)
            .attest(ReceiverStream::new(receiver))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    });

    // An agent certificate cannot read the audit service.
    let output = collector.veuctl(&[
        "audit",
        "hosts",
        "--cert",
        us_dir.join("tls/agent.pem").to_str().unwrap(),
        "--key",
        us_dir.join("tls/agent.key").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("permission denied"));

    // A revoked key is refused from then on.
    let key_id: String = us_key.key_id().0.hex();
    ok(&collector.veuctl(&["agents", "revoke", "--yes", &key_id]));
    let next = {
        let mut payload = proto_seal::decode_payload_unverified(chain.last().unwrap()).unwrap();
        payload.sequence += 100;
        proto_seal::seal(&payload, &us_key).unwrap()
    };
    let answer = runtime
        .block_on(submit(&collector, &us_dir, "us-01", &us_key, &next))
        .unwrap();
    assert_eq!(reason(&answer), "REJECT_REASON_REVOKED_KEY");

    // Every refusal is counted by reason, and the chains are as the real agents left them.
    let status = ok(&collector.veuctl(&["status", "--format", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let counts = &status["rejection_counts"];
    assert_eq!(counts["bad_signature"], 2, "{counts}");
    assert_eq!(counts["revoked_key"], 1, "{counts}");
    assert_eq!(collector.stored(dir.path(), "us-01").len(), chain.len());

    // The collector's own log holds the audit trail: who, what and the outcome of each call.
    let log = std::fs::read_to_string(dir.path().join("collector.log")).unwrap();
    let trail: Vec<&str> = log.lines().filter(|l| l.contains("audit=true")).collect();
    for (action, who, outcome, subject) in [
        (
            "enrol agent",
            "who=\"anonymous\"",
            "ok",
            "host us-01, site us-va-1",
        ),
        (
            "create enrollment token",
            "who=\"urn:veu:admin:",
            "ok",
            "site us-va-1",
        ),
        ("list hosts", "who=\"urn:veu:agent:", "refused", ""),
        (
            "revoke agent",
            "who=\"urn:veu:admin:",
            "ok",
            key_id.as_str(),
        ),
        ("status", "who=\"urn:veu:admin:", "ok", ""),
    ] {
        assert!(
            trail
                .iter()
                .any(|line| line.contains(&format!("action=\"{action}\""))
                    && line.contains(who)
                    && line.contains(&format!("outcome=\"{outcome}\""))
                    && line.contains(subject)),
            "no {outcome} {action} by {who} on {subject:?} in the collector's log:\n{}",
            trail.join("\n")
        );
    }
}
