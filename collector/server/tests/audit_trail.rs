//! The audit trail as an operator reads it: every administrative and auditor call, and every
//! refused caller, is one JSON log event naming who, what and the outcome, and no token secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use collector_pki::Role;
use collector_testkit::Harness;
use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use proto_wire::v1::audit_client::AuditClient;
use proto_wire::v1::enrollment_client::EnrollmentClient;
use serde_json::Value;

/// The log output, shared with the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// (who, action, outcome, subject, level) of every audit event.
    fn trail(&self) -> Vec<(String, String, String, String, String)> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["target"] == "veu::audit")
            .map(|event| {
                let field = |name: &str| event["fields"][name].as_str().unwrap_or("").to_owned();
                (
                    field("who"),
                    field("action"),
                    field("outcome"),
                    field("subject"),
                    event["level"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

fn has(
    trail: &[(String, String, String, String, String)],
    who: &str,
    action: &str,
    outcome: &str,
    subject_part: &str,
) -> bool {
    trail.iter().any(|(w, a, o, s, level)| {
        w == who
            && a == action
            && o == outcome
            && s.contains(subject_part)
            && level == if outcome == "ok" { "INFO" } else { "WARN" }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_and_auditor_call_and_every_refusal_is_one_event() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let mut admin = AdminClient::new(h.channel_as(Role::Admin, "ops-1").await);
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
    assert!(
        admin
            .create_enroll_token(v1::CreateEnrollTokenRequest {
                site_id: "nowhere".into(),
                ..Default::default()
            })
            .await
            .is_err()
    );
    admin.list_agents(v1::ListAgentsRequest {}).await.unwrap();
    admin.status(v1::StatusRequest::default()).await.unwrap();
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let key = agent.signer.key_id();
    let key_bytes = key.0.as_bytes().to_vec();
    let revoked = admin
        .revoke_agent(v1::RevokeAgentRequest {
            key_id: key_bytes.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked);
    let again = admin
        .revoke_agent(v1::RevokeAgentRequest { key_id: key_bytes })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.revoked);
    let _ = h.enroll("gpu-2", "us-va-1", 2);
    admin
        .decommission(v1::DecommissionRequest {
            host_id: "gpu-2".into(),
        })
        .await
        .unwrap();
    admin
        .decommission(v1::DecommissionRequest {
            host_id: "no-such-host".into(),
        })
        .await
        .unwrap();

    // An enrolment with a token nobody issued, from a host without a certificate.
    let stranger = proto_seal::Ed25519Signer::from_seed(&[9; 32]).unwrap();
    let mut enrollment = EnrollmentClient::new(h.anonymous_channel().await);
    assert!(
        enrollment
            .enroll(v1::EnrollRequest {
                token: "00".repeat(32),
                signing_public_key: stranger.public_key().as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .is_err()
    );

    let mut auditor = AuditClient::new(h.channel_as(Role::Auditor, "kpmg-1").await);
    auditor
        .distribution(v1::DistributionRequest::default())
        .await
        .unwrap();
    auditor.list_hosts(v1::ListHostsRequest {}).await.unwrap();
    let _ = auditor
        .report(v1::ReportRequest {
            month: "2999-01".into(),
        })
        .await;
    auditor
        .export_evidence(v1::ExportEvidenceRequest {
            from_unix_ms: 0,
            to_unix_ms: 1,
        })
        .await
        .unwrap();

    // Callers with the wrong role.
    let mut wrong = AdminClient::new(h.channel_as(Role::Auditor, "kpmg-1").await);
    assert!(
        wrong
            .decommission(v1::DecommissionRequest {
                host_id: "gpu-1".into(),
            })
            .await
            .is_err()
    );
    let mut agent_auditing = AuditClient::new(h.channel(&agent.cert, &agent.key).await);
    assert!(
        agent_auditing
            .list_hosts(v1::ListHostsRequest {})
            .await
            .is_err()
    );
    h.stop.cancel();

    let trail = captured.trail();
    let admin_id = "urn:veu:admin:ops-1";
    let auditor_id = "urn:veu:auditor:kpmg-1";
    let key_text = key.to_string();
    for (who, action, outcome, subject) in [
        (admin_id, "create enrollment token", "ok", "site us-va-1"),
        (
            admin_id,
            "create enrollment token",
            "refused",
            "site nowhere",
        ),
        (admin_id, "list agents", "ok", ""),
        (admin_id, "status", "ok", ""),
        (admin_id, "revoke agent", "ok", key_text.as_str()),
        (admin_id, "revoke agent", "refused", key_text.as_str()),
        (admin_id, "decommission", "ok", "host gpu-2"),
        (admin_id, "decommission", "refused", "host no-such-host"),
        ("anonymous", "enrol agent", "refused", "key "),
        (auditor_id, "distribution", "ok", "now"),
        (auditor_id, "list hosts", "ok", ""),
        (auditor_id, "report", "refused", "month 2999-01"),
        (auditor_id, "export evidence", "ok", "from 0 to 1"),
        (auditor_id, "decommission", "refused", "host gpu-1"),
        ("urn:veu:agent:gpu-1", "list hosts", "refused", ""),
    ] {
        assert!(
            has(&trail, who, action, outcome, subject),
            "no {outcome} {action:?} by {who} on {subject:?} in {trail:#?}"
        );
    }
    let text = captured.text();
    assert!(
        !text.contains(&token),
        "the token secret is in the log:\n{text}"
    );
    // A refusal names its reason.
    assert!(text.contains("\"reason\""), "{text}");
}
