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

/// A German host in Kassel attested on the 2nd, measured from Kassel once (verified from its
/// receipt until it ages out 24 h later), never again; a report as of the 5th, under a
/// DE-headquartered policy that counts Tier-1 compute only while location-verified.
struct Required {
    log: Log,
    bundle: Bundle,
    input: ReportInput,
}

/// The log's leaves decoded, with their indices: what the collector reads from its store.
fn entries_of(log: &Log) -> Vec<(u64, LogEntry)> {
    log.leaves
        .iter()
        .enumerate()
        .map(|(i, (bytes, _))| (i as u64, LogEntry::decode(bytes).unwrap()))
        .collect()
}

const MEASURED: i64 = NOV + DAY + 100;
const RECEIVED: i64 = NOV + DAY + 200;
const AS_OF: i64 = NOV + 4 * DAY;

fn required_month() -> Required {
    let policy_toml = format!(
        "{}\n[location]\nrequire_for_tier1 = true\n",
        POLICY
            .replace("headquarters = \"US\"", "headquarters = \"DE\"")
            .replace("id = \"uveu-2025-us-simulated\"", "id = \"de-located\"")
    );
    let policy = Policy::from_toml(&policy_toml).unwrap();
    let mut log = Log::new();
    let host = agent(11, "gpu-de", "de-kas", "DE");
    let kas = Landmarked::new("kas", KASSEL, 31);
    log.enrol(&host, NOV);
    let start = log.sign_head(NOV + 1_000);
    log.attest(&host, 8, NOV + DAY);
    logged(
        &mut log,
        kas.measure(&host, &host.signer, 400, MEASURED),
        RECEIVED,
    );
    log.attest(&host, 8, NOV + 3 * DAY);
    let end = log.sign_head(AS_OF);
    let landmarks = Landmarks::from_landmarks([kas.entry()]);
    let mut bundle = log.bundle(NOV, AS_OF);
    bundle.landmarks_toml = Some(landmarks.to_toml());
    bundle.sites_toml = Some(SITES.into());
    bundle.policy_toml = policy_toml;

    // The collector's own inputs: its host changes, and the location timeline computed from
    // the log as `veu-collector` computes it from its store.
    let change = |at_ms| HostChange {
        at_ms,
        host_id: "gpu-de".into(),
        site_id: "de-kas".into(),
        country: CountryCode::parse("DE").unwrap(),
        tpp: 8 * 15_840,
        hardware_tpp: 0,
        devices: 8,
        kind: ChangeKind::Attested,
    };
    let entries = entries_of(&log);
    let sites = collector_core::SiteRegistry::from_toml(SITES).unwrap();
    let location = collector_bundle::located_at(
        entries.iter().map(|(i, e)| (*i, e)),
        collector_bundle::Locating {
            landmarks: &landmarks,
            sites: &sites,
            rule: proto_location::LocationRule::from(&policy.location),
        },
        AS_OF,
        Some(NOV),
    );
    let consistency_proof =
        proto_merkle::consistency_proof(&log.tree, start.tree_size, end.tree_size)
            .unwrap()
            .iter()
            .map(|h| to_hex(h))
            .collect();
    let input = ReportInput {
        month: "2026-11".parse().unwrap(),
        as_of_ms: AS_OF,
        policy_id: policy.id.clone(),
        policy_digest: policy.digest().to_string(),
        catalogue_digest: proto_accounting::Catalogue::builtin()
            .unwrap()
            .digest()
            .to_string(),
        policy,
        collector: to_hex(log.key.key_id().0.as_bytes()),
        organisation: None,
        changes: vec![change(NOV + DAY + 40), change(NOV + 3 * DAY + 40)],
        stale: Vec::new(),
        gaps: Vec::new(),
        conflicts: Vec::new(),
        rejections: Vec::new(),
        log: LogEvidence {
            start: Some(start),
            end: Some(end),
            consistency_proof,
            checkpoint: None,
        },
        location: Some(location),
    };
    Required { log, bundle, input }
}

fn verified_report(month: &Required, report: &collector_report::Report) -> Outcome {
    let json = report.to_json().into_bytes();
    let signature = proto_seal::sign_report(&json, &month.log.key);
    verify(
        &month.bundle,
        &month.log.key.public_key(),
        &Requirements::default(),
        Some(ReportCheck {
            json: &json,
            signature: Some(&signature),
        }),
    )
}

#[test]
fn tier_1_compute_counts_only_while_its_measurement_lasts_and_the_verifier_agrees() {
    let month = required_month();
    let location = month.input.location.as_ref().unwrap();
    // Verified from the measurement's receipt until one millisecond past its 24 hours.
    let expires = MEASURED + 24 * 3_600_000 + 1;
    assert_eq!(
        location
            .changes
            .iter()
            .map(|c| (c.at_ms, c.host_id.as_str(), c.verified))
            .collect::<Vec<_>>(),
        [(RECEIVED, "gpu-de", true), (expires, "gpu-de", false)]
    );
    let report = collector_report::build(&month.input).unwrap();
    let intervals: Vec<(String, i64, Option<i64>)> = report
        .violations
        .iter()
        .map(|v| (v.rule.as_str().to_owned(), v.start_ms, v.end_ms))
        .collect();
    // Counted but not yet verified, verified, then no longer: Tier 1 counts nothing twice.
    assert_eq!(
        intervals,
        [
            ("tier1_min_share".to_owned(), NOV + DAY + 40, Some(RECEIVED)),
            ("tier1_min_share".to_owned(), expires, None),
        ]
    );
    assert_eq!(report.verdict.at_end, State::NotCompliant);
    assert_eq!(report.end_of_month.tier1_unlocated_tpp, 8 * 15_840);
    assert!(report.limits.tier1_requires_location);

    let outcome = verified_report(&month, &report);
    assert!(outcome.passed(), "{:#?}", outcome.failures);
    // The verifier's own verdict on the books at the end head: not compliant either.
    assert!(!outcome.evaluation.unwrap().compliant());
}

#[test]
fn a_report_that_keeps_an_aged_measurement_counting_fails_verification() {
    let month = required_month();
    // The operator, who holds the log key, signs a report whose location timeline forgets
    // that the measurement aged out: compliant from the 2nd on.
    let mut forged = month.input.clone();
    let location = forged.location.as_mut().unwrap();
    location.changes.retain(|c| c.verified);
    location.hosts[0].verdict = collector_report::LocationVerdict::Verified;
    let report = collector_report::build(&forged).unwrap();
    assert_eq!(report.verdict.at_end, State::Compliant);
    let outcome = verified_report(&month, &report);
    let codes: Vec<&str> = outcome.failures.iter().map(|f| f.code).collect();
    assert!(codes.contains(&"report_mismatch"), "{codes:?}");
    assert!(
        outcome
            .failures
            .iter()
            .any(|f| f.detail.contains("verdict") || f.detail.contains("violations")),
        "{:#?}",
        outcome.failures
    );
}

#[test]
fn a_revoked_key_or_a_decommissioned_host_stops_being_verified_at_that_instant() {
    let mut log = Log::new();
    let host = agent(11, "gpu-de", "de-kas", "DE");
    let other = agent(12, "gpu-de-2", "de-kas", "DE");
    let kas = Landmarked::new("kas", KASSEL, 31);
    log.enrol(&host, NOV);
    log.enrol(&other, NOV);
    for agent in [&host, &other] {
        logged(
            &mut log,
            kas.measure(agent, &agent.signer, 400, MEASURED),
            RECEIVED,
        );
    }
    log.append(
        &LogEntry::KeyRevoked {
            at_ms: RECEIVED + 5_000,
            key_id: host.signer.key_id(),
        },
        None,
    );
    log.append(
        &LogEntry::HostDecommissioned {
            at_ms: RECEIVED + 6_000,
            host_id: "gpu-de-2".into(),
        },
        None,
    );
    let entries = entries_of(&log);
    let landmarks = Landmarks::from_landmarks([kas.entry()]);
    let sites = collector_core::SiteRegistry::from_toml(SITES).unwrap();
    let located = |changes_from| {
        collector_bundle::located_at(
            entries.iter().map(|(i, e)| (*i, e)),
            collector_bundle::Locating {
                landmarks: &landmarks,
                sites: &sites,
                rule: proto_location::LocationRule::default(),
            },
            AS_OF,
            changes_from,
        )
    };
    let location = located(Some(NOV));
    assert_eq!(
        location
            .changes
            .iter()
            .map(|c| (c.at_ms, c.host_id.as_str(), c.verified))
            .collect::<Vec<_>>(),
        [
            (RECEIVED, "gpu-de", true),
            (RECEIVED, "gpu-de-2", true),
            (RECEIVED + 5_000, "gpu-de", false),
            (RECEIVED + 6_000, "gpu-de-2", false),
        ]
    );
    // Without a period start only the end instant is judged: no changes.
    let at_end = located(None);
    assert!(at_end.changes.is_empty());
    assert_eq!(at_end.hosts, location.hosts);
}
