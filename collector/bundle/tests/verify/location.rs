//! Round-trip measurements in the log, re-judged offline: the verifier opens each with the
//! landmarks it trusts, admits it by the collector's own rule, and recomputes every host's
//! location verdict at the bundle's end.

use proto_evidence::{Coordinates, Measurement};
use proto_location::{Landmark, Landmarks, Verdict};

use super::*;

const KASSEL: (f64, f64) = (51.3127, 9.4797);
const SINGAPORE: (f64, f64) = (1.3521, 103.8198);

const SITES: &str =
    "[[site]]\nid = \"de-kas\"\ncountry = \"DE\"\nlatitude = 51.3127\nlongitude = 9.4797\n";

fn at((lat, lon): (f64, f64)) -> Coordinates {
    Coordinates::from_degrees(lat, lon).unwrap()
}

struct Landmarked {
    id: &'static str,
    place: (f64, f64),
    signer: Ed25519Signer,
}

impl Landmarked {
    fn new(id: &'static str, place: (f64, f64), seed: u8) -> Self {
        Self {
            id,
            place,
            signer: Ed25519Signer::from_seed(&[seed; 32]).unwrap(),
        }
    }

    fn entry(&self) -> Landmark {
        Landmark {
            id: self.id.into(),
            at: at(self.place),
            public_key: *self.signer.public_key().as_bytes(),
            operator: "auditor".into(),
        }
    }

    /// A measurement of `agent`'s key (answered by `answering`) taken at `when`.
    fn measure(&self, agent: &Agent, answering: &Ed25519Signer, rtt_us: u64, when: i64) -> Vec<u8> {
        let nonce = [when as u8; 32];
        let measurement = Measurement {
            landmark: self.id.into(),
            at: at(self.place),
            host: agent.host.clone(),
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

fn logged(log: &mut Log, bytes: Vec<u8>, received_at_ms: i64) {
    log.append(
        &LogEntry::Measurement {
            received_at_ms,
            measurement: bytes,
        },
        None,
    );
}

/// Two German hosts: `honest` measured fast from Kassel, `johor` measured fast from
/// Singapore while its site says Kassel.
fn located_month(extra: impl FnOnce(&mut Log, &Agent, &Landmarked)) -> (Log, Bundle, Landmarks) {
    let mut log = Log::new();
    let honest = agent(11, "gpu-de", "de-kas", "DE");
    let johor = agent(12, "gpu-johor", "de-kas", "DE");
    let kas = Landmarked::new("kas", KASSEL, 31);
    let sin = Landmarked::new("sin", SINGAPORE, 32);
    log.enrol(&honest, NOV);
    log.enrol(&johor, NOV);
    log.attest(&honest, 8, NOV + DAY);
    log.attest(&johor, 8, NOV + DAY);
    logged(
        &mut log,
        kas.measure(&honest, &honest.signer, 400, NOV + DAY + 100),
        NOV + DAY + 200,
    );
    logged(
        &mut log,
        sin.measure(&johor, &johor.signer, 400, NOV + DAY + 100),
        NOV + DAY + 200,
    );
    extra(&mut log, &honest, &kas);
    log.sign_head(NOV + DAY + 60_000);
    let landmarks = Landmarks::from_landmarks([kas.entry(), sin.entry()]);
    let mut bundle = log.bundle(NOV, NOV + DAY + 60_000);
    bundle.landmarks_toml = Some(landmarks.to_toml());
    bundle.sites_toml = Some(SITES.into());
    (log, bundle, landmarks)
}

fn verdict_of(outcome: &Outcome, host: &str) -> Verdict {
    outcome
        .located_hosts
        .iter()
        .find(|h| h.host == host)
        .map(|h| h.location.verdict)
        .unwrap()
}

#[test]
fn the_verifier_recomputes_each_hosts_location_from_the_log() {
    let (log, bundle, _) = located_month(|_, _, _| {});
    let outcome = verify(
        &bundle,
        &log.key.public_key(),
        &Requirements::default(),
        None,
    );
    assert!(outcome.passed(), "{:?}", outcome.failures);
    assert_eq!(outcome.measurements, 2);
    assert_eq!(outcome.landmarks_from, "bundle");
    assert_eq!(verdict_of(&outcome, "gpu-de"), Verdict::Verified);
    assert_eq!(verdict_of(&outcome, "gpu-johor"), Verdict::Inconsistent);
    let location = outcome.location.unwrap();
    assert_eq!(
        location.verified.of(CountryCode::parse("DE").unwrap()),
        8 * 15_840
    );
    assert_eq!(location.inconsistent, vec!["gpu-johor".to_owned()]);
}

#[test]
fn an_auditor_judges_by_its_own_landmarks() {
    let (log, bundle, landmarks) = located_month(|_, _, _| {});
    // The auditor trusts only the Singapore landmark: the Kassel measurement counts for
    // nothing, so the honest host is unmeasured, never verified on the operator's word.
    let pinned = Landmarks::from_landmarks(landmarks.iter().filter(|l| l.id == "sin").cloned());
    let requires = Requirements {
        landmarks: Some(pinned),
        ..Requirements::default()
    };
    let outcome = verify(&bundle, &log.key.public_key(), &requires, None);
    assert!(outcome.passed(), "{:?}", outcome.failures);
    assert_eq!(outcome.landmarks_from, "pinned");
    assert_eq!(verdict_of(&outcome, "gpu-de"), Verdict::Unmeasured);
    assert!(
        outcome.notes.iter().any(|n| n.contains("landmark kas")),
        "{:?}",
        outcome.notes
    );
    // A rogue registry entry (same id, another key) makes the logged statement fail.
    let mut rogue = landmarks.iter().cloned().collect::<Vec<_>>();
    rogue[0].public_key = *Ed25519Signer::from_seed(&[99; 32])
        .unwrap()
        .public_key()
        .as_bytes();
    let requires = Requirements {
        landmarks: Some(Landmarks::from_landmarks(rogue)),
        ..Requirements::default()
    };
    let outcome = verify(&bundle, &log.key.public_key(), &requires, None);
    assert!(
        outcome
            .failures
            .iter()
            .any(|f| f.code == "measurement_invalid")
    );
}

#[test]
fn measurements_the_collector_should_have_refused_fail_verification() {
    // A measurement of a key that is not the host's (a relay answering with its own key).
    let (log, bundle, _) = located_month(|log, honest, kas| {
        let relay = Ed25519Signer::from_seed(&[77; 32]).unwrap();
        logged(
            log,
            kas.measure(honest, &relay, 100, NOV + DAY + 300),
            NOV + DAY + 400,
        );
    });
    let outcome = verify(
        &bundle,
        &log.key.public_key(),
        &Requirements::default(),
        None,
    );
    let codes: Vec<&str> = outcome.failures.iter().map(|f| f.code).collect();
    assert_eq!(codes, ["key_not_host"]);

    // The same statement logged twice (a replay).
    let (log, bundle, _) = located_month(|log, honest, kas| {
        let again = kas.measure(honest, &honest.signer, 400, NOV + DAY + 100);
        logged(log, again, NOV + DAY + 500);
    });
    let outcome = verify(
        &bundle,
        &log.key.public_key(),
        &Requirements::default(),
        None,
    );
    let codes: Vec<&str> = outcome.failures.iter().map(|f| f.code).collect();
    assert_eq!(codes, ["measurement_replayed"]);

    // A statement whose round trip was shortened after the landmark signed it.
    let (log, bundle, _) = located_month(|log, honest, kas| {
        let mut bytes = kas.measure(honest, &honest.signer, 90_000, NOV + DAY + 600);
        let signed = proto_evidence::SignedMeasurement::decode(&bytes).unwrap();
        let mut m = Measurement::decode(&signed.statement).unwrap();
        m.min_rtt_us = 10;
        let forged = proto_evidence::SignedMeasurement {
            statement: m.encode().unwrap(),
            signature: signed.signature,
        };
        bytes = forged.encode().unwrap();
        logged(log, bytes, NOV + DAY + 700);
    });
    let outcome = verify(
        &bundle,
        &log.key.public_key(),
        &Requirements::default(),
        None,
    );
    let codes: Vec<&str> = outcome.failures.iter().map(|f| f.code).collect();
    assert_eq!(codes, ["measurement_invalid"]);
}
