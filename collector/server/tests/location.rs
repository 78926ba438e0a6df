//! Landmarks' round-trip measurements under attack, over real mutual TLS and a real SQLite
//! store: forged, replayed, back-dated, delivered by the wrong or an unenrolled landmark,
//! answered by a relay's own key. What an auditor observes is judged: the log's size, the
//! audit service's location-verified TPP, the collector's events, and the books after a
//! restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use collector_pki::Role;
use collector_store::AttestationStore as _;
use collector_testkit::{Agent, Chain, Harness};
use proto_evidence::{Coordinates, Measurement, SignedMeasurement};
use proto_location::{Landmark, Landmarks};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::audit_client::AuditClient;
use proto_wire::v1::landmark_client::LandmarkClient;
use tonic::Code;

const POLICY: &str = "uveu-2025-us-simulated.toml";
/// The harness's us-va-1 site.
const ASHBURN: (f64, f64) = (39.0438, -77.4874);
const SINGAPORE: (f64, f64) = (1.3521, 103.8198);

fn at((lat, lon): (f64, f64)) -> Coordinates {
    Coordinates::from_degrees(lat, lon).unwrap()
}

struct Station {
    id: &'static str,
    place: (f64, f64),
    signer: Ed25519Signer,
}

impl Station {
    fn new(id: &'static str, place: (f64, f64), seed: u8) -> Self {
        Self {
            id,
            place,
            signer: Ed25519Signer::from_seed(&[seed; 32]).unwrap(),
        }
    }

    fn registered(&self) -> Landmark {
        Landmark {
            id: self.id.into(),
            at: at(self.place),
            public_key: *self.signer.public_key().as_bytes(),
            operator: "auditor".into(),
        }
    }

    /// A measurement of `host` answered by `answering`, as this landmark signs it.
    fn measure(&self, host: &str, answering: &Ed25519Signer, rtt_us: u64, when: i64) -> Vec<u8> {
        let nonce = [(when % 251) as u8; 32];
        let measurement = Measurement {
            landmark: self.id.into(),
            at: at(self.place),
            host: host.into(),
            agent_key: *answering.public_key().as_bytes(),
            min_rtt_us: rtt_us,
            rounds: 8,
            measured_at_ms: when,
            nonce,
            answer: proto_seal::answer_rtt(&nonce, answering),
        };
        proto_seal::sign_measurement(&measurement, &self.signer)
            .unwrap()
            .encode()
            .unwrap()
    }
}

async fn submit(
    h: &Harness,
    as_landmark: &str,
    bytes: Vec<u8>,
) -> Result<v1::SubmitMeasurementResponse, Code> {
    LandmarkClient::new(h.channel_as(Role::Landmark, as_landmark).await)
        .submit(v1::SubmitMeasurementRequest { measurement: bytes })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| status.code())
}

/// The auditor's live view of the last-known distribution.
async fn last_known(h: &Harness) -> v1::DistributionView {
    AuditClient::new(h.channel_as(Role::Auditor, "auditor-1").await)
        .distribution(v1::DistributionRequest::default())
        .await
        .unwrap()
        .into_inner()
        .last_known
        .unwrap()
}

/// The auditor's view: location-verified TPP in total and inconsistent hosts.
async fn located(h: &Harness) -> (u64, Vec<String>) {
    let view = last_known(h).await;
    (view.location_verified_tpp, view.location_inconsistent)
}

async fn setup() -> (Harness, Agent, Station, Station) {
    let iad = Station::new("iad-1", ASHBURN, 51);
    let sin = Station::new("sin-1", SINGAPORE, 52);
    let h = Harness::start_with_landmarks(
        POLICY,
        Landmarks::from_landmarks([iad.registered(), sin.registered()]),
    )
    .await;
    let agent = h.enroll("gpu-us", "us-va-1", 7);
    let mut chain = Chain::new(h.enroll("gpu-us-2", "us-va-1", 8));
    h.attest(&mut chain, 1).await;
    let mut own = Chain::new(Agent {
        signer: Ed25519Signer::from_seed(&[7; 32]).unwrap(),
        cert: agent.cert.clone(),
        key: agent.key.clone(),
        host: agent.host.clone(),
        site: agent.site.clone(),
    });
    h.attest(&mut own, 1).await;
    (h, agent, iad, sin)
}

#[tokio::test]
async fn an_honest_measurement_is_logged_and_verifies_the_host() {
    let (h, agent, iad, _) = setup().await;
    let before = h.store.log_size().unwrap();
    let now = h.collector.now_ms();
    let answer = submit(&h, "iad-1", iad.measure("gpu-us", &agent.signer, 300, now))
        .await
        .unwrap();
    assert_eq!(answer.verdict, "verified");
    assert_eq!(answer.log_index, before);
    assert_eq!(h.store.log_size().unwrap(), before + 1);
    let (verified, inconsistent) = located(&h).await;
    assert_eq!(
        verified,
        8 * 15_840,
        "one 8-GPU host of two is location-verified"
    );
    assert!(inconsistent.is_empty());

    // A restart rebuilds the book from the logged leaf: the same verdict.
    let reopened = h.reopen(POLICY);
    let sums = reopened.location_sums();
    assert_eq!(sums.verified.total(), 8 * 15_840);
}

#[tokio::test]
async fn forged_replayed_backdated_and_misdelivered_measurements_are_refused() {
    let (h, agent, iad, sin) = setup().await;
    let now = h.collector.now_ms();
    let size = h.store.log_size().unwrap();

    // Forged: the round trip shortened after the landmark signed it.
    let honest = iad.measure("gpu-us", &agent.signer, 90_000, now);
    let signed = SignedMeasurement::decode(&honest).unwrap();
    let mut statement = Measurement::decode(&signed.statement).unwrap();
    statement.min_rtt_us = 10;
    let forged = SignedMeasurement {
        statement: statement.encode().unwrap(),
        signature: signed.signature,
    }
    .encode()
    .unwrap();
    assert_eq!(
        submit(&h, "iad-1", forged).await.unwrap_err(),
        Code::InvalidArgument
    );

    // A landmark with a valid landmark certificate but absent from the registry.
    let rogue = Station::new("rogue-1", ASHBURN, 53);
    let bytes = rogue.measure("gpu-us", &agent.signer, 100, now);
    assert_eq!(
        submit(&h, "rogue-1", bytes).await.unwrap_err(),
        Code::PermissionDenied
    );

    // Singapore's statement delivered under the Ashburn landmark's certificate.
    let bytes = sin.measure("gpu-us", &agent.signer, 100, now);
    assert_eq!(
        submit(&h, "iad-1", bytes).await.unwrap_err(),
        Code::PermissionDenied
    );

    // An agent's certificate calling the landmark service.
    let bytes = iad.measure("gpu-us", &agent.signer, 100, now);
    let as_agent = LandmarkClient::new(h.channel(&agent.cert, &agent.key).await)
        .submit(v1::SubmitMeasurementRequest { measurement: bytes })
        .await
        .unwrap_err();
    assert_eq!(as_agent.code(), Code::PermissionDenied);

    // A relay near the landmark answering with its own key.
    let relay = Ed25519Signer::from_seed(&[99; 32]).unwrap();
    let bytes = iad.measure("gpu-us", &relay, 100, now);
    assert_eq!(
        submit(&h, "iad-1", bytes).await.unwrap_err(),
        Code::FailedPrecondition
    );

    // Back-dated by ten minutes.
    let bytes = iad.measure("gpu-us", &agent.signer, 100, now - 600_000);
    assert_eq!(
        submit(&h, "iad-1", bytes).await.unwrap_err(),
        Code::InvalidArgument
    );

    // Bytes that are no measurement at all.
    assert_eq!(
        submit(&h, "iad-1", vec![0xff; 300]).await.unwrap_err(),
        Code::InvalidArgument
    );

    // Nothing of it reached the log or the books.
    assert_eq!(h.store.log_size().unwrap(), size);
    assert_eq!(located(&h).await.0, 0);

    // The honest one is accepted once; the same bytes again are a replay.
    let bytes = iad.measure("gpu-us", &agent.signer, 300, now);
    submit(&h, "iad-1", bytes.clone()).await.unwrap();
    assert_eq!(
        submit(&h, "iad-1", bytes).await.unwrap_err(),
        Code::AlreadyExists
    );
    assert_eq!(h.store.log_size().unwrap(), size + 1);
}

#[tokio::test]
async fn a_host_answering_singapore_fast_is_inconsistent_and_an_event_says_so() {
    let (h, agent, iad, sin) = setup().await;
    let now = h.collector.now_ms();
    // Fast from Singapore: the host cannot be at its Ashburn site.
    let answer = submit(&h, "sin-1", sin.measure("gpu-us", &agent.signer, 500, now))
        .await
        .unwrap();
    assert_eq!(answer.verdict, "inconsistent");
    // Ashburn's own measurement cannot make it verified while Singapore's disk excludes
    // the site.
    let answer = submit(
        &h,
        "iad-1",
        iad.measure("gpu-us", &agent.signer, 300, now + 1),
    )
    .await
    .unwrap();
    assert_eq!(answer.verdict, "inconsistent");
    let (verified, inconsistent) = located(&h).await;
    assert_eq!(verified, 0);
    assert_eq!(inconsistent, vec!["gpu-us".to_owned()]);
    let events: Vec<_> = h
        .store
        .events(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "location_inconsistent")
        .collect();
    assert_eq!(
        events.len(),
        1,
        "one event for the host turning inconsistent"
    );
    assert!(events[0].detail.contains("sin-1"), "{}", events[0].detail);
}

/// The auditor's live view: the verdict and the broken rules.
async fn standing(h: &Harness) -> (String, Vec<String>) {
    let view = last_known(h).await;
    let rules = view.violations.iter().map(|v| v.rule.clone()).collect();
    (view.verdict, rules)
}

#[tokio::test]
async fn under_a_location_requirement_only_verified_tier_1_compute_meets_the_minimums() {
    let simulated = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/policies")
            .join(POLICY),
    )
    .unwrap();
    let policy = format!(
        "{}\n[location]\nrequire_for_tier1 = true\n",
        simulated.replace(
            "id = \"uveu-2025-us-simulated\"",
            "id = \"uveu-2025-us-located\""
        )
    );
    let iad = Station::new("iad-1", ASHBURN, 51);
    let sin = Station::new("sin-1", SINGAPORE, 52);
    let h = Harness::start_with_landmarks(
        &policy,
        Landmarks::from_landmarks([iad.registered(), sin.registered()]),
    )
    .await;
    let mut first = Chain::new(h.enroll("gpu-us", "us-va-1", 7));
    let mut second = Chain::new(h.enroll("gpu-us-2", "us-va-1", 8));
    h.attest(&mut first, 1).await;
    h.attest(&mut second, 1).await;

    // Two US hosts, declared at a US site, neither measured: all of it counts in the total,
    // none toward the Tier-1 and home minimums.
    assert_eq!(
        standing(&h).await,
        (
            "not_compliant".to_owned(),
            vec!["tier1_min_share".to_owned(), "home_min_share".to_owned()]
        )
    );

    // One host measured fast from Ashburn: half the compute is verified at home.
    let now = h.collector.now_ms();
    let one = Ed25519Signer::from_seed(&[7; 32]).unwrap();
    submit(&h, "iad-1", iad.measure("gpu-us", &one, 300, now))
        .await
        .unwrap();
    assert_eq!(
        standing(&h).await,
        (
            "not_compliant".to_owned(),
            vec!["tier1_min_share".to_owned()]
        )
    );

    // A relay's own key answering for the second host is refused and verifies nothing.
    let relay = Ed25519Signer::from_seed(&[99; 32]).unwrap();
    assert_eq!(
        submit(&h, "iad-1", iad.measure("gpu-us-2", &relay, 300, now + 1)).await,
        Err(Code::FailedPrecondition)
    );
    assert_eq!(standing(&h).await.0, "not_compliant");

    // The second host answering itself: every Tier-1 TPP is verified, so the fleet complies.
    let two = Ed25519Signer::from_seed(&[8; 32]).unwrap();
    submit(&h, "iad-1", iad.measure("gpu-us-2", &two, 300, now + 2))
        .await
        .unwrap();
    assert_eq!(standing(&h).await, ("compliant".to_owned(), Vec::new()));

    // After a restart the books are the same.
    let reopened = h.reopen(&policy);
    assert_eq!(reopened.location_sums().verified.total(), 2 * 8 * 15_840);
}
