//! Measurements the benchmarks share: pre-sealed realistic envelopes and the raw Ed25519
//! verification rate of this machine (ring, one signature at a time, and for reference
//! ed25519-dalek batches), which the ingest figures are quoted against.

#![allow(clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proto_seal::{Ed25519Signer, PublicKey};

use crate::attestor::Attestor;
use crate::inventory::BoardTemplate;
use crate::local::process_cpu_seconds;

/// Length of each raw verification measurement.
pub const RAW_SECONDS: u64 = 5;

/// Envelopes per batch of the batch-verification measurement.
pub const BATCH: usize = 64;

/// Attestations a month at the agent's default 60 s interval (30 days).
pub const ATTESTATIONS_PER_MONTH: f64 = 30.0 * 24.0 * 60.0;

/// A number from the environment, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// Pre-sealed realistic envelopes: 16 hosts, 64 consecutive attestations each (a stream's
/// batch at the load generator's window), and their keys.
pub fn sealed_samples() -> Vec<(proto_evidence::Envelope, PublicKey)> {
    let template = BoardTemplate::h100().expect("the built-in catalogue has the H100");
    let mut samples = Vec::new();
    for host in 0..16u8 {
        let signer = Ed25519Signer::from_seed(&[host + 1; 32]).expect("a seed makes a key");
        let key = signer.public_key();
        let mut attestor = Attestor::new(
            signer,
            &format!("bench-{host}"),
            "us-va-1",
            template.board(1, host.into()),
        );
        let nonce = [7u8; 24];
        for _ in 0..BATCH {
            samples.push((attestor.next(&nonce).expect("a payload seals"), key));
        }
    }
    samples
}

/// Runs `work` on `threads` threads for `RAW_SECONDS`; each call verifies some envelopes and
/// returns how many. Gives verifications per second, and per CPU-second of this process (the
/// machine is shared: the second is the per-core rate whatever else runs).
pub fn verification_rate(threads: usize, work: impl Fn(usize) -> u64 + Sync) -> (f64, f64) {
    let stop = AtomicBool::new(false);
    let verified = AtomicU64::new(0);
    let cpu = process_cpu_seconds(std::process::id()).unwrap_or(0.0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (stop, verified, work) = (&stop, &verified, &work);
            scope.spawn(move || {
                let mut count = 0u64;
                for round in thread * 97.. {
                    count += work(round);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                verified.fetch_add(count, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs(RAW_SECONDS));
        stop.store(true, Ordering::Relaxed);
    });
    let count = verified.load(Ordering::Relaxed) as f64;
    let rate = count / started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu;
    (rate, count / cpu.max(0.01))
}

/// Ring, one signature at a time: `proto_seal::open` of 64 envelopes per round.
pub fn raw_verification(
    threads: usize,
    samples: &[(proto_evidence::Envelope, PublicKey)],
) -> (f64, f64) {
    verification_rate(threads, |round| {
        let start = round % samples.len();
        for (envelope, key) in samples.iter().cycle().skip(start).take(BATCH) {
            let opened = proto_seal::open(envelope.clone(), key).expect("a sealed envelope opens");
            std::hint::black_box(opened);
        }
        BATCH as u64
    })
}

/// ed25519-dalek batch verification, for reference: `proto_seal::open_batch` of one host's 64
/// envelopes per round.
pub fn batch_verification(
    threads: usize,
    samples: &[(proto_evidence::Envelope, PublicKey)],
) -> (f64, f64) {
    let batches: Vec<&[(proto_evidence::Envelope, PublicKey)]> = samples.chunks(BATCH).collect();
    verification_rate(threads, |round| {
        let batch = batches[round % batches.len()];
        let opened = proto_seal::open_batch(batch.iter().map(|(e, key)| (e.clone(), key)));
        assert!(opened.iter().all(Result::is_ok), "sealed envelopes open");
        std::hint::black_box(opened);
        BATCH as u64
    })
}
