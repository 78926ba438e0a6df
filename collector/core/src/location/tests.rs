//! The location book's admission rule and verdicts, with the inputs an attacker would send.

use proto_accounting::{CountryCode, EvidenceRule};
use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceRecord, EvidenceSource, HostId, SiteId, Totals,
};
use proto_location::Landmark;

use super::*;
use crate::ledger::Binding;

const T0: i64 = 1_764_403_200_000;
const FRANKFURT: (f64, f64) = (50.1109, 8.6821);
const KASSEL: (f64, f64) = (51.3127, 9.4797);
const SINGAPORE: (f64, f64) = (1.3521, 103.8198);

fn at((lat, lon): (f64, f64)) -> Coordinates {
    Coordinates::from_degrees(lat, lon).unwrap()
}

fn landmarks() -> Landmarks {
    Landmarks::from_landmarks([
        Landmark {
            id: "kas".into(),
            at: at(KASSEL),
            public_key: [1; 32],
            operator: String::new(),
        },
        Landmark {
            id: "sin".into(),
            at: at(SINGAPORE),
            public_key: [2; 32],
            operator: String::new(),
        },
    ])
}

fn sites() -> SiteRegistry {
    SiteRegistry::from_toml(&format!(
        "[[site]]\nid = \"de-1\"\ncountry = \"DE\"\nlatitude = {}\nlongitude = {}\n\n[[site]]\nid = \"de-fra\"\ncountry = \"DE\"\nlatitude = {}\nlongitude = {}\n",
        KASSEL.0, KASSEL.1, FRANKFURT.0, FRANKFURT.1
    ))
    .unwrap()
}

/// A ledger with `host` enrolled at `site` under the key `[seed; 32]`, attested once with one
/// H100.
fn ledger(host: &str, site: &str, seed: u8) -> Ledger {
    let mut ledger = Ledger::new(180_000, EvidenceRule::default());
    let key = KeyId::of_public_key(&[seed; 32]);
    ledger
        .enrol(
            &Binding {
                at_ms: T0,
                key,
                host,
                site,
                country: CountryCode::parse("DE").unwrap(),
            },
            false,
        )
        .unwrap();
    let devices = vec![DeviceRecord {
        index: 0,
        uuid: "GPU-1".into(),
        serial: "S-1".into(),
        catalogue_id: "H100-SXM5-80GB".into(),
        tpp: 15_840,
        ..DeviceRecord::default()
    }];
    let payload = AttestationPayload {
        key_id: key,
        host_id: HostId(host.into()),
        site_id: SiteId(site.into()),
        sequence: 1,
        previous_digest: ChainDigest::GENESIS,
        issued_at_unix_ms: T0 + 1000,
        collector_nonce: Vec::new(),
        totals: Totals::of(&devices).unwrap(),
        devices,
        catalogue_digest: String::new(),
        policy_digest: String::new(),
        agent_version: String::new(),
        source: EvidenceSource::Nvml,
        driver_version: String::new(),
    };
    ledger
        .attest(T0 + 1000, &payload, ChainDigest::of_payload(b"1"), &[])
        .unwrap();
    ledger
}

fn measured(
    landmark: &str,
    place: (f64, f64),
    host: &str,
    seed: u8,
    rtt_us: u64,
    when: i64,
) -> Measurement {
    Measurement {
        landmark: landmark.into(),
        at: at(place),
        host: host.into(),
        agent_key: [seed; 32],
        min_rtt_us: rtt_us,
        rounds: 8,
        measured_at_ms: when,
        nonce: [0; 32],
        answer: [0; 64],
    }
}

#[test]
fn an_honest_host_near_its_landmark_is_verified_and_counted() {
    let ledger = ledger("h1", "de-1", 7);
    let mut book = LocationBook::new(LocationRule::default());
    let m = measured("kas", KASSEL, "h1", 7, 400, T0 + 2000);
    book.check(&m, Some("kas"), &landmarks(), &ledger, T0 + 2000)
        .unwrap();
    book.accept(m);
    let sums = book.sums(&ledger, &sites(), T0 + 3000);
    assert_eq!(sums.verified.of(CountryCode::parse("DE").unwrap()), 15_840);
    assert_eq!(sums.hosts.get(&Verdict::Verified), Some(&1));
    assert!(sums.inconsistent.is_empty());
}

#[test]
fn a_host_in_johor_claiming_frankfurt_is_inconsistent_and_not_verified() {
    let ledger = ledger("h1", "de-fra", 7);
    let mut book = LocationBook::new(LocationRule::default());
    // Fast from Singapore: the Singapore disk leaves Frankfurt out.
    let m = measured("sin", SINGAPORE, "h1", 7, 400, T0 + 2000);
    book.check(&m, Some("sin"), &landmarks(), &ledger, T0 + 2000)
        .unwrap();
    book.accept(m);
    let sums = book.sums(&ledger, &sites(), T0 + 3000);
    assert_eq!(sums.verified.total(), 0);
    assert_eq!(sums.inconsistent, vec!["h1".to_owned()]);
    let record = ledger.host("h1").unwrap();
    assert_eq!(
        book.locate("h1", record, &ledger, &sites(), T0 + 3000)
            .excluding_site,
        vec!["sin".to_owned()]
    );
}

#[test]
fn measurements_an_attacker_sends_are_refused() {
    let ledger = ledger("h1", "de-1", 7);
    let mut book = LocationBook::new(LocationRule::default());
    let lm = landmarks();
    let now = T0 + 2000;
    let good = measured("kas", KASSEL, "h1", 7, 400, now);
    // Delivered by another landmark's certificate.
    assert!(matches!(
        book.check(&good, Some("sin"), &lm, &ledger, now),
        Err(MeasurementRefusal::WrongLandmark { .. })
    ));
    // A landmark nobody enrolled.
    let rogue = measured("rogue", KASSEL, "h1", 7, 400, now);
    assert_eq!(
        book.check(&rogue, Some("rogue"), &lm, &ledger, now),
        Err(MeasurementRefusal::UnknownLandmark("rogue".into()))
    );
    // An enrolled landmark claiming to stand elsewhere.
    let moved = measured("kas", FRANKFURT, "h1", 7, 400, now);
    assert!(matches!(
        book.check(&moved, Some("kas"), &lm, &ledger, now),
        Err(MeasurementRefusal::MovedLandmark { .. })
    ));
    // A key that is not the host's (a relay's own key answering fast).
    let other_key = measured("kas", KASSEL, "h1", 9, 400, now);
    assert!(matches!(
        book.check(&other_key, Some("kas"), &lm, &ledger, now),
        Err(MeasurementRefusal::NotHostKey { .. })
    ));
    let unknown_host = measured("kas", KASSEL, "ghost", 7, 400, now);
    assert_eq!(
        book.check(&unknown_host, Some("kas"), &lm, &ledger, now),
        Err(MeasurementRefusal::UnknownHost("ghost".into()))
    );
    // Back-dated beyond the clock window.
    let old = measured("kas", KASSEL, "h1", 7, 400, now - MAX_SKEW_MS - 1);
    assert!(matches!(
        book.check(&old, Some("kas"), &lm, &ledger, now),
        Err(MeasurementRefusal::Skewed { .. })
    ));
    // Replayed, and an older one delivered after a newer.
    book.check(&good, Some("kas"), &lm, &ledger, now).unwrap();
    book.accept(good.clone());
    assert!(matches!(
        book.check(&good, Some("kas"), &lm, &ledger, now + 10),
        Err(MeasurementRefusal::Replayed { .. })
    ));
    let earlier = measured("kas", KASSEL, "h1", 7, 100, now - 1);
    assert!(matches!(
        book.check(&earlier, Some("kas"), &lm, &ledger, now + 10),
        Err(MeasurementRefusal::Replayed { .. })
    ));
    assert_eq!(book.len(), 1);
}

#[test]
fn measurements_expire_and_an_unmeasured_host_is_never_verified() {
    let ledger = ledger("h1", "de-1", 7);
    let mut book = LocationBook::new(LocationRule::default());
    let sums = book.sums(&ledger, &sites(), T0 + 3000);
    assert_eq!(sums.hosts.get(&Verdict::Unmeasured), Some(&1));
    book.accept(measured("kas", KASSEL, "h1", 7, 400, T0 + 2000));
    let later = T0 + 2000 + book.rule().max_age_ms + 1;
    let sums = book.sums(&ledger, &sites(), later);
    assert_eq!(sums.verified.total(), 0);
    assert_eq!(sums.hosts.get(&Verdict::Unmeasured), Some(&1));
}

#[test]
fn a_judged_verdict_follows_new_measurements_and_their_expiry() {
    let ledger = ledger("h1", "de-1", 7);
    let mut book = LocationBook::new(LocationRule::default());
    let de = CountryCode::parse("DE").unwrap();
    book.accept(measured("kas", KASSEL, "h1", 7, 400, T0 + 2000));
    assert_eq!(
        book.sums(&ledger, &sites(), T0 + 3000).verified.of(de),
        15_840
    );
    // Judged again as soon as a new measurement arrives: Singapore's fast answer contradicts
    // the site.
    book.accept(measured("sin", SINGAPORE, "h1", 7, 400, T0 + 4000));
    let sums = book.sums(&ledger, &sites(), T0 + 5000);
    assert_eq!(sums.verified.of(de), 0);
    assert_eq!(sums.inconsistent, vec!["h1".to_owned()]);
    // The Kassel measurement expires first, then Singapore's: each changes the verdict at its
    // instant, without any new measurement.
    let max_age = book.rule().max_age_ms;
    let after_kassel = T0 + 2000 + max_age + 1;
    let record = ledger.host("h1").unwrap();
    assert_eq!(
        book.judge("h1", record, &ledger, &sites(), after_kassel)
            .disks
            .len(),
        1
    );
    let after_both = T0 + 4000 + max_age + 1;
    assert_eq!(
        book.sums(&ledger, &sites(), after_both)
            .hosts
            .get(&Verdict::Unmeasured),
        Some(&1)
    );
    // A measurement taken after the instant asked about does not count yet.
    book.accept(measured("kas", KASSEL, "h1", 7, 400, after_both + 10));
    assert_eq!(
        book.sums(&ledger, &sites(), after_both + 5)
            .verified
            .total(),
        0
    );
    assert_eq!(
        book.sums(&ledger, &sites(), after_both + 10)
            .verified
            .total(),
        15_840
    );
}

#[test]
fn a_revoked_key_verifies_nothing_even_with_a_judged_verdict_cached() {
    let mut ledger = ledger("h1", "de-1", 7);
    let mut book = LocationBook::new(LocationRule::default());
    let m = measured("kas", KASSEL, "h1", 7, 400, T0 + 2000);
    book.check(&m, Some("kas"), &landmarks(), &ledger, T0 + 2000)
        .unwrap();
    book.accept(m);
    assert_eq!(
        book.sums(&ledger, &sites(), T0 + 3000).verified.total(),
        15_840
    );
    // The key is revoked; the host still counts its last attested compute, but the key's
    // round trips no longer say where it is.
    ledger
        .revoke(T0 + 4000, KeyId::of_public_key(&[7; 32]))
        .unwrap();
    let sums = book.sums(&ledger, &sites(), T0 + 5000);
    assert_eq!(sums.verified.total(), 0);
    assert_eq!(sums.hosts.get(&Verdict::Unmeasured), Some(&1));
}
