//! Verification throughput on one core, over NVIDIA's recorded evidence of eight H100s:
//! reports per second with the chain cache (the chain of each GPU validated once) and without
//! it (four certificate signatures and parsing per report), beside raw P-384 signature
//! verifications per second, and the cores a fleet needs at the measured rate.
//!
//! Rates are per second of the thread's CPU time (Linux schedstat), so they hold per core even
//! when other work shares the machine. Run: `cargo bench -p proto-gpu-evidence` (release
//! profile). Prints figures and ratios, asserts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proto_gpu_evidence::{ChainCache, Expected, Trust, chain, spdm, verify};
use ring::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};

/// 2026-01-01T00:00:00Z.
const AT_MS: i64 = 1_767_225_600_000;
/// How long each measurement runs in one round.
const RUN: Duration = Duration::from_millis(700);
/// Rounds, interleaving the three measurements; each figure is its best round, since other
/// work on the machine only ever slows a round down.
const ROUNDS: usize = 6;

/// 8 GPUs per host, a challenge every 5 minutes, 100,000 hosts.
const FLEET_REPORTS_PER_SECOND: f64 = 8.0 * 100_000.0 / 300.0;

struct Gpu {
    report: Vec<u8>,
    chain: Vec<u8>,
    nonce: [u8; 32],
}

fn gpus() -> Vec<Gpu> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/evidence-json/ppcie-8x-h100-gpu_evidence.json");
    let text = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let json: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    let base64 = base64::engine::general_purpose::STANDARD;
    json.as_array()
        .expect("array")
        .iter()
        .map(|gpu| {
            let report = base64
                .decode(gpu["evidence"].as_str().expect("evidence"))
                .expect("b64");
            let nonce = spdm::parse_report(&report).expect("report").nonce;
            Gpu {
                chain: base64
                    .decode(gpu["certificate"].as_str().expect("certificate"))
                    .expect("b64"),
                report,
                nonce,
            }
        })
        .collect()
}

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`), so that a rate is per core
/// even on a machine other work shares; `None` elsewhere.
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `once` for [`RUN`] and returns the rate per second of CPU time (of wall time where
/// CPU time cannot be read).
fn rate(mut once: impl FnMut(usize)) -> f64 {
    for round in 0..16 {
        once(round);
    }
    let start = Instant::now();
    let cpu_start = cpu_ns();
    let mut count = 0usize;
    while start.elapsed() < RUN {
        for _ in 0..16 {
            once(count);
            count += 1;
        }
    }
    let seconds = match (cpu_start, cpu_ns()) {
        (Some(before), Some(after)) if after > before => (after - before) as f64 / 1e9,
        _ => start.elapsed().as_secs_f64(),
    };
    count as f64 / seconds
}

fn main() {
    let gpus = gpus();
    let trust = Trust::nvidia();
    let expected = |gpu: &Gpu| Expected {
        nonce: gpu.nonce,
        at_unix_ms: AT_MS,
        driver_version: Some("590.12"),
        vbios_version: Some("96.00.A5.00.01"),
    };

    // The report signature alone, with the leaf key already extracted.
    let signed: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = gpus
        .iter()
        .map(|gpu| {
            let parsed = spdm::parse_report(&gpu.report).expect("report");
            let certificates = chain::split_chain(&gpu.chain).expect("chain");
            let (_, leaf) = x509_parser::parse_x509_certificate(&certificates[0]).expect("leaf");
            (
                leaf.public_key().subject_public_key.data.to_vec(),
                parsed.signed.to_vec(),
                parsed.signature.to_vec(),
            )
        })
        .collect();

    let cache = ChainCache::default();
    let (mut cached, mut uncached, mut raw) = (0f64, 0f64, 0f64);
    for _ in 0..ROUNDS {
        cached = cached.max(rate(|round| {
            let gpu = &gpus[round % gpus.len()];
            let outcome = verify(
                &gpu.report,
                &gpu.chain,
                &expected(gpu),
                &trust,
                Some(&cache),
            );
            outcome.expect("verifies");
        }));
        uncached = uncached.max(rate(|round| {
            let gpu = &gpus[round % gpus.len()];
            verify(&gpu.report, &gpu.chain, &expected(gpu), &trust, None).expect("verifies");
        }));
        raw = raw.max(rate(|round| {
            let (key, message, signature) = &signed[round % signed.len()];
            UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, key)
                .verify(message, signature)
                .expect("signature");
        }));
    }

    println!(
        "GPU attestation report verification, one core, NVIDIA 8xH100 evidence (per CPU-second, best of {ROUNDS} rounds):"
    );
    println!("  reports/s with chain cache     {cached:>10.0}");
    println!("  reports/s without chain cache  {uncached:>10.0}");
    println!("  raw P-384 verifications/s      {raw:>10.0}");
    println!(
        "  cache speed-up {:.2}x; cached report = {:.2} raw signature checks",
        cached / uncached,
        raw / cached
    );
    println!(
        "fleet of 100,000 hosts x 8 GPUs, one challenge per 5 minutes = {FLEET_REPORTS_PER_SECOND:.0} reports/s:"
    );
    println!(
        "  cores with chain cache {:.2}, without {:.2}",
        FLEET_REPORTS_PER_SECOND / cached,
        FLEET_REPORTS_PER_SECOND / uncached
    );
}
