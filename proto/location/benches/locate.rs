//! How fast the location verdict is: `cargo bench -p proto-location` (release) judges hosts
//! with one to four landmarks' measurements, near (a region inside one country) and far (a
//! region across a continent), and prints verdicts per second of CPU time beside the cost of
//! the distance computation alone, measured side by side in one run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use proto_accounting::CountryCode;
use proto_evidence::{Coordinates, KeyId, Measurement};
use proto_location::{Declared, LocationRule, distance_km, locate};

const KASSEL: (f64, f64) = (51.3127, 9.4797);
const LANDMARKS: [(f64, f64); 4] = [
    (51.3127, 9.4797),
    (50.1109, 8.6821),
    (52.5200, 13.4050),
    (48.1351, 11.5820),
];

fn at((lat, lon): (f64, f64)) -> Coordinates {
    Coordinates::from_degrees(lat, lon).unwrap()
}

fn measurements(count: usize, rtt_us: u64) -> Vec<Measurement> {
    LANDMARKS[..count]
        .iter()
        .enumerate()
        .map(|(i, place)| Measurement {
            landmark: format!("l{i}"),
            at: at(*place),
            host: "h".into(),
            agent_key: [1; 32],
            min_rtt_us: rtt_us + distance_km(at(*place), at(KASSEL)) as u64 * 10,
            rounds: 8,
            measured_at_ms: 1_000,
            nonce: [0; 32],
            answer: [0; 64],
        })
        .collect()
}

/// Calls per second of `f`, over about half a second.
fn rate(mut f: impl FnMut()) -> f64 {
    let mut calls = 0u64;
    let start = Instant::now();
    while start.elapsed().as_millis() < 500 {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let declared = Declared {
        country: CountryCode::parse("DE").unwrap(),
        site: Some(at(KASSEL)),
    };
    let key = KeyId::of_public_key(&[1; 32]);
    let rule = LocationRule::default();
    // The boundaries are read once per process; not part of any verdict's cost.
    let _ = locate(&declared, &key, &measurements(1, 400), 2_000, &rule);
    let distance = rate(|| {
        black_box(distance_km(
            black_box(at(KASSEL)),
            black_box(at(LANDMARKS[2])),
        ));
    });
    println!("{:<44} {:>12}", "case", "verdicts/s");
    println!("{:<44} {:>12.0}", "distance alone (haversine)", distance);
    for (name, count, rtt) in [
        ("1 landmark, near (0.4 ms)", 1, 400),
        ("4 landmarks, near", 4, 400),
        ("1 landmark, regional (4 ms: 600 km)", 1, 4_000),
        ("1 landmark, far (40 ms: a continent)", 1, 40_000),
        ("4 landmarks, far", 4, 40_000),
    ] {
        let m = measurements(count, rtt);
        let per_s = rate(|| {
            black_box(locate(&declared, &key, black_box(&m), 2_000, &rule));
        });
        println!(
            "{name:<44} {per_s:>12.0}  ({:.1}x distance)",
            distance / per_s
        );
    }
}
