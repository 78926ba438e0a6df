//! Certificate renewal over real mutual TLS: an agent with a valid certificate gets a fresh
//! one for the same TLS key and host; anyone else, another key, another host's signing key or
//! a revoked key is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use collector_pki::Role;
use collector_testkit::{Agent, Harness};
use proto_wire::v1;
use proto_wire::v1::enrollment_client::EnrollmentClient;
use tonic::Code;

/// A PKCS#10 request for the key in `key_pem`.
fn csr(key_pem: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .der()
        .to_vec()
}

fn request(agent: &Agent, csr_der: Vec<u8>) -> v1::RenewRequest {
    v1::RenewRequest {
        signing_public_key: agent.signer.public_key().as_bytes().to_vec(),
        csr_der,
    }
}

fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[tokio::test]
async fn an_agent_renews_its_certificate_for_the_same_key_and_nobody_else_can() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let other = h.enroll("gpu-2", "us-va-1", 2);
    let mut client = EnrollmentClient::new(h.channel(&agent.cert, &agent.key).await);

    let renewed = client
        .renew(request(&agent, csr(&agent.key)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renewed.host_id.as_str(), renewed.site_id.as_str()),
        ("gpu-1", "us-va-1")
    );
    assert_eq!(renewed.country, "US");
    let fresh = &renewed.certificate_chain_pem[0];
    assert_ne!(fresh, &agent.cert);
    // Same identity, same key: the renewed certificate works with the key the agent has.
    let identity = collector_pki::identity_of(&der(fresh)).unwrap();
    assert_eq!(
        (identity.role, identity.name.as_str()),
        (Role::Agent, "gpu-1")
    );
    assert!(collector_pki::same_key(&csr(&agent.key), &der(fresh)));
    let mut again = EnrollmentClient::new(h.channel(fresh, &agent.key).await);
    again.renew(request(&agent, csr(&agent.key))).await.unwrap();

    // A request for another key than the certificate's.
    let stranger = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let refused = client
        .renew(request(&agent, csr(&stranger)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // gpu-1's certificate with gpu-2's signing key.
    let refused = client
        .renew(request(&other, csr(&agent.key)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // No certificate, or an admin's.
    let mut anonymous = EnrollmentClient::new(h.anonymous_channel().await);
    let refused = anonymous
        .renew(request(&agent, csr(&agent.key)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let mut admin = EnrollmentClient::new(h.channel_as(Role::Admin, "ops").await);
    let refused = admin
        .renew(request(&agent, csr(&agent.key)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // A revoked key renews nothing.
    h.collector
        .revoke(&agent.signer.key_id(), h.collector.now_ms())
        .unwrap();
    let refused = client
        .renew(request(&agent, csr(&agent.key)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    h.stop.cancel();
}
