//! What a report's location timeline costs: `cargo bench -p collector-bundle --bench timeline`
//! (release) replays a log of hosts enrolled at one site and measured every hour by three
//! landmarks, and times, side by side in one run, the verdicts at one instant
//! (`located_at` without a period start: the newest measurements only, as every report
//! computes) and the whole period's timeline (with the period start: every measurement leaf
//! opened and judged, as a report under `[location] require_for_tier1` computes), against
//! opening every leaf alone (its two Ed25519 signatures, no judging).
//! `VEU_BENCH_HOSTS` (default 200) and `VEU_BENCH_DAYS` (default 7) size the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use collector_bundle::{Locating, located_at};
use collector_core::SiteRegistry;
use proto_evidence::{Coordinates, LogEntry, Measurement};
use proto_location::{Landmark, Landmarks, LocationRule};
use proto_seal::Ed25519Signer;

const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_793_491_200_000;
const KASSEL: (f64, f64) = (51.3127, 9.4797);
const STATIONS: [(&str, (f64, f64)); 3] = [
    ("kas", (51.3127, 9.4797)),
    ("fra", (50.1109, 8.6821)),
    ("ber", (52.5200, 13.4050)),
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let hosts = env("VEU_BENCH_HOSTS", 200);
    let days = env("VEU_BENCH_DAYS", 7) as i64;
    let at = |(lat, lon): (f64, f64)| Coordinates::from_degrees(lat, lon).unwrap();
    let stations: Vec<(&str, (f64, f64), Ed25519Signer)> = STATIONS
        .iter()
        .enumerate()
        .map(|(i, (id, place))| {
            (
                *id,
                *place,
                Ed25519Signer::from_seed(&[i as u8 + 1; 32]).unwrap(),
            )
        })
        .collect();
    let landmarks =
        Landmarks::from_landmarks(stations.iter().map(|(id, place, signer)| Landmark {
            id: (*id).into(),
            at: at(*place),
            public_key: *signer.public_key().as_bytes(),
            operator: "auditor".into(),
        }));
    let sites = SiteRegistry::from_toml(&format!(
        "[[site]]\nid = \"de-kas\"\ncountry = \"DE\"\nlatitude = {}\nlongitude = {}\n",
        KASSEL.0, KASSEL.1
    ))
    .unwrap();
    let agents: Vec<Ed25519Signer> = (0..hosts)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 100).to_le_bytes());
            Ed25519Signer::from_seed(&seed).unwrap()
        })
        .collect();
    let mut entries = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        entries.push(LogEntry::KeyEnrolled {
            at_ms: T0,
            public_key: *agent.public_key().as_bytes(),
            host_id: format!("h{i}"),
            site_id: "de-kas".into(),
            country: "DE".into(),
        });
    }
    let built = Instant::now();
    for hour in 0..days * 24 {
        for (i, agent) in agents.iter().enumerate() {
            for (id, place, signer) in &stations {
                let when = T0 + hour * HOUR_MS + i as i64;
                let nonce = [(when % 251) as u8; 32];
                let measurement = Measurement {
                    landmark: (*id).into(),
                    at: at(*place),
                    host: format!("h{i}"),
                    agent_key: *agent.public_key().as_bytes(),
                    min_rtt_us: 400
                        + 10 * proto_location::distance_km(at(*place), at(KASSEL)) as u64,
                    rounds: 8,
                    measured_at_ms: when,
                    nonce,
                    answer: proto_seal::answer_rtt(&nonce, agent),
                };
                entries.push(LogEntry::Measurement {
                    received_at_ms: when + 50,
                    measurement: proto_seal::sign_measurement(&measurement, signer)
                        .unwrap()
                        .encode()
                        .unwrap(),
                });
            }
        }
    }
    let leaves = entries.len() - hosts;
    eprintln!(
        "{hosts} hosts, 3 landmarks hourly for {days} days: {leaves} measurement leaves (made in {:.1} s)",
        built.elapsed().as_secs_f64()
    );
    let locating = Locating {
        landmarks: &landmarks,
        sites: &sites,
        rule: LocationRule::default(),
    };
    let indexed = || entries.iter().enumerate().map(|(i, e)| (i as u64, e));
    let as_of = T0 + days * 24 * HOUR_MS;

    let start = Instant::now();
    let at_end = located_at(indexed(), locating, as_of, None);
    let instant_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let timeline = located_at(indexed(), locating, as_of, Some(T0));
    let timeline_s = start.elapsed().as_secs_f64();
    assert_eq!(at_end.hosts, timeline.hosts, "both judge the end alike");
    let verified_changes = timeline.changes.iter().filter(|c| c.verified).count();
    assert_eq!(verified_changes, hosts, "every host verified once and kept");

    // Opening every leaf alone: the landmark's and the agent's signatures (ring), no judging.
    let start = Instant::now();
    for entry in &entries {
        if let LogEntry::Measurement { measurement, .. } = entry {
            proto_seal::open_delivered(measurement, |id| landmarks.get(id).map(|l| l.public_key))
                .unwrap();
        }
    }
    let open_s = start.elapsed().as_secs_f64();

    let per_leaf = |seconds: f64| seconds / leaves as f64 * 1e6;
    println!(
        "location timeline ({hosts} hosts, {leaves} measurement leaves; leaves opened on {} threads):",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    );
    println!(
        "  verdicts at one instant (newest window only): {:>8.3} s  ({:.1} µs per leaf in the log)",
        instant_s,
        per_leaf(instant_s)
    );
    println!(
        "  timeline of the period (every leaf opened):   {:>8.3} s  ({:.1} µs per leaf)",
        timeline_s,
        per_leaf(timeline_s)
    );
    println!(
        "  opening every leaf alone, one thread:          {:>8.3} s  ({:.1} µs per leaf)",
        open_s,
        per_leaf(open_s)
    );
    println!(
        "  timeline / one instant: {:.1}x; timeline / opening alone: {:.2}x",
        timeline_s / instant_s,
        timeline_s / open_s
    );
}
