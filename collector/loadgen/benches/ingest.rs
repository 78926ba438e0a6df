//! Collector ingest against the raw signature-verification rate, measured in one run on this
//! machine (SPEC section 6: at least 70 %):
//! a) Ed25519 verification with `proto_seal::open` (ring, one signature at a time) of pre-sealed
//!    realistic 8-GPU envelopes, for 5 s on as many threads as the collector's runtime uses (one
//!    per CPU): the raw rate the verdict compares with; then, for reference only, the same
//!    envelopes through `proto_seal::open_batch` (ed25519-dalek batch verification, 64 of one
//!    host per batch) for another 5 s;
//! b) a real `veu-collector` (release build) in a temporary directory, loaded by the in-process
//!    load generator: agents enroll with tokens, then stream pipelined attestations for
//!    `VEU_BENCH_SECONDS` (default 20) over mutual TLS; acknowledged = verified, admitted and
//!    durably committed (SQLite WAL, `synchronous = FULL`). The load generator signs on the
//!    fly and shares the CPUs with the collector.
//!
//! ```text
//! cargo build --release -p collector-daemon
//! cargo bench -p collector-loadgen --bench ingest
//! ```
//! `VEU_BENCH_AGENTS` sets the fleet (default 200). The last line is the verdict.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use collector_loadgen::local::{LocalCollector, SITES, collector_binary, process_cpu_seconds};
use collector_loadgen::measure::{
    ATTESTATIONS_PER_MONTH, BATCH, RAW_SECONDS, batch_verification, env_or, raw_verification,
    sealed_samples,
};
use collector_loadgen::{FleetPlan, StreamPlan, enroll_fleet, stream_fleet};
use tokio_util::sync::CancellationToken;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seconds = env_or("VEU_BENCH_SECONDS", 10);
    let agents = env_or("VEU_BENCH_AGENTS", 100) as usize;
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let binary = match collector_binary() {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("ingest: {error}");
            std::process::exit(2);
        }
    };

    let samples = sealed_samples();
    let wire_bytes = proto_seal::encode_envelope(&samples[0].0).len();
    eprintln!("ingest: raw Ed25519 verification on {threads} thread(s) for {RAW_SECONDS} s …");
    let (raw, raw_per_cpu) = raw_verification(threads, &samples);
    eprintln!("ingest: batch verification on {threads} thread(s) for {RAW_SECONDS} s …");
    let (batched, batched_per_cpu) = batch_verification(threads, &samples);
    drop(samples);

    let dir = tempfile::tempdir().unwrap();
    let mut collector = LocalCollector::start(&binary, dir.path(), SITES)
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let plan = FleetPlan {
        agents,
        sites: collector.sites.clone(),
        host_prefix: "bench".into(),
        gpu_seed: collector_loadgen::random_u64(),
        parallel: 16,
    };
    // Agents sign on their own hosts: seal every attestation before the clock starts, so the
    // two cores measure the collector (TLS, decoding, verification, admission, storage, acks),
    // with a fresh nonce in each statement. Enough for about `seconds` of ingest.
    let per_agent = env_or(
        "VEU_BENCH_PER_AGENT",
        30_000 * seconds / agents.max(1) as u64,
    );
    let streams = StreamPlan {
        attestations_per_agent: Some(per_agent),
        duration: Some(Duration::from_secs(seconds * 3)),
        rate: 0.0,
        window: 64,
        concurrency: agents,
        presign: per_agent,
    };
    eprintln!(
        "ingest: enrolling {agents} agents at {} sites …",
        SITES.len()
    );
    let enrolling = Instant::now();
    let fleet = runtime
        .block_on(enroll_fleet(&collector.target, &collector.admin, &plan))
        .unwrap_or_else(|error| panic!("{error}\n{}", collector.log()));
    let enroll_seconds = enrolling.elapsed().as_secs_f64();
    eprintln!("ingest: streaming for {seconds} s …");
    let collector_cpu = collector.cpu_seconds().unwrap_or(0.0);
    let own_cpu = process_cpu_seconds(std::process::id()).unwrap_or(0.0);
    let summary = runtime.block_on(stream_fleet(
        &collector.target,
        fleet,
        &streams,
        CancellationToken::new(),
        true,
    ));
    let collector_cpu = collector.cpu_seconds().unwrap_or(0.0) - collector_cpu;
    let own_cpu = process_cpu_seconds(std::process::id()).unwrap_or(0.0) - own_cpu;
    let accepted = collector
        .metric("veu_collector_attestations_accepted_total")
        .unwrap_or_else(|error| panic!("{error}\n{summary:?}\ncollector log:\n{}", collector.log()))
        .unwrap_or(0.0);
    collector.stop().unwrap();
    let database = collector.database_bytes();
    assert_eq!(summary.failed_agents, 0, "{:?}", summary.errors);
    assert_eq!(
        accepted as u64, summary.acked,
        "the collector's count and the acks differ"
    );

    let ingest = summary.acked_per_second;
    let per_attestation = database as f64 / summary.acked.max(1) as f64;
    let rows: Vec<(String, String)> = vec![
        (
            "CPUs (collector runtime threads = verification threads)".into(),
            threads.to_string(),
        ),
        (
            "envelope on the wire (8 x H100, signed)".into(),
            format!("{wire_bytes} bytes"),
        ),
        (
            format!("raw verification, proto_seal::open, {threads} threads, {RAW_SECONDS} s"),
            format!("{raw:.0} /s ({:.0} /s per thread)", raw / threads as f64),
        ),
        (
            format!(
                "for reference: dalek batches of {BATCH}, proto_seal::open_batch, {threads} threads"
            ),
            format!(
                "{batched:.0} /s ({:.0} /s per thread, {batched_per_cpu:.0} per CPU-second)",
                batched / threads as f64
            ),
        ),
        (
            "agents / sites / countries".into(),
            format!("{agents} / {} / 5", SITES.len()),
        ),
        (
            "enrollment (token, keys, CSR, certificate)".into(),
            format!(
                "{enroll_seconds:.1} s ({:.0} agents/s)",
                agents as f64 / enroll_seconds
            ),
        ),
        (
            "streaming time (start to last answer)".into(),
            format!("{:.1} s", summary.seconds),
        ),
        (
            "sent / acknowledged / rejected".into(),
            format!(
                "{} / {} / {}",
                summary.sent, summary.acked, summary.rejected
            ),
        ),
        (
            "ingest: verified, stored, acknowledged".into(),
            format!("{ingest:.0} /s"),
        ),
        (
            "latency send to ack p50 / p90 / p99 / max".into(),
            format!(
                "{} / {} / {} / {} ms",
                summary.latency_ms.p50,
                summary.latency_ms.p90,
                summary.latency_ms.p99,
                summary.latency_ms.max
            ),
        ),
        (
            "collector CPU while streaming".into(),
            format!(
                "{collector_cpu:.1} s = {:.2} cores",
                collector_cpu / summary.seconds.max(0.001)
            ),
        ),
        (
            "load generator CPU while streaming (signing, TLS)".into(),
            format!(
                "{own_cpu:.1} s = {:.2} cores",
                own_cpu / summary.seconds.max(0.001)
            ),
        ),
        (
            "collector CPU per acknowledged attestation".into(),
            format!(
                "{:.0} us",
                collector_cpu * 1e6 / summary.acked.max(1) as f64
            ),
        ),
        (
            "raw verifications per CPU-second".into(),
            format!("{raw_per_cpu:.0}"),
        ),
        (
            "acknowledged per collector CPU-second (share of raw)".into(),
            format!(
                "{:.0} ({:.0} %)",
                summary.acked as f64 / collector_cpu.max(0.001),
                100.0 * summary.acked as f64 / collector_cpu.max(0.001) / raw_per_cpu
            ),
        ),
        (
            "database after shutdown (collector.db*)".into(),
            format!("{database} bytes = {per_attestation:.0} bytes per attestation"),
        ),
        (
            "storage per host per month at a 60 s interval".into(),
            format!("{:.0} MB", per_attestation * ATTESTATIONS_PER_MONTH / 1e6),
        ),
    ];
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    println!();
    println!(
        "collector ingest ({} s, {agents} agents, {threads} CPUs shared by collector and load generator)",
        seconds
    );
    for (name, value) in &rows {
        println!("  {name:<width$}  {value}");
    }
    println!(
        "ingest: {ingest:.0} attestations/s verified, stored and acknowledged; raw verification: {raw:.0}/s; ratio {:.0} % (target 70 %)",
        100.0 * ingest / raw
    );
}
