//! Ingest through one and two collector replicas on PostgreSQL, beside the embedded SQLite
//! store, in one run, against the raw signature-verification rate of the same machine; and the
//! storage each store takes per attestation.
//!
//! ```text
//! cargo build --release -p collector-daemon
//! VEU_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p collector-loadgen --bench replicas
//! ```
//! Each configuration streams `VEU_BENCH_SECONDS` (default 10) of pre-signed 8-GPU
//! attestations from `VEU_BENCH_AGENTS` (default 100) agents; with two replicas, half the
//! agents stream to each. The database's size comes from `psql` (the load generator never
//! links the collector's store). The last line gives the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use collector_loadgen::local::{LocalCollector, SITES, collector_binary};
use collector_loadgen::measure::{
    ATTESTATIONS_PER_MONTH, env_or, raw_verification, sealed_samples,
};
use collector_loadgen::{FleetPlan, StreamPlan, Summary, enroll_fleet, stream_fleet};
use tokio_util::sync::CancellationToken;

fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// One measured configuration.
struct Run {
    name: String,
    acked: u64,
    per_second: f64,
    bytes: u64,
}

/// Enrolls the fleet through the first collector and streams it, split evenly over all of them.
fn measure(
    runtime: &tokio::runtime::Runtime,
    collectors: &[LocalCollector],
    agents: usize,
    seconds: u64,
) -> Summary {
    let first = &collectors[0];
    let plan = FleetPlan {
        agents,
        sites: first.sites.clone(),
        host_prefix: format!("bench{}", collector_loadgen::random_u64() % 10_000),
        gpu_seed: collector_loadgen::random_u64(),
        parallel: 16,
    };
    let per_agent = 30_000 * seconds / agents.max(1) as u64;
    let streams = StreamPlan {
        attestations_per_agent: Some(per_agent),
        duration: Some(Duration::from_secs(seconds * 3)),
        rate: 0.0,
        window: 64,
        concurrency: agents,
        presign: per_agent,
    };
    let fleet = runtime
        .block_on(enroll_fleet(&first.target, &first.admin, &plan))
        .unwrap_or_else(|error| panic!("{error}\n{}", first.log()));
    let mut shares: Vec<Vec<_>> = (0..collectors.len()).map(|_| Vec::new()).collect();
    for (index, agent) in fleet.into_iter().enumerate() {
        shares[index % collectors.len()].push(agent);
    }
    // One or two collectors (more would need a join of a list).
    let summaries: Vec<Summary> = runtime.block_on(async {
        let mut runs = collectors.iter().zip(shares).map(|(collector, share)| {
            stream_fleet(
                &collector.target,
                share,
                &streams,
                CancellationToken::new(),
                false,
            )
        });
        match (runs.next(), runs.next()) {
            (Some(first), None) => vec![first.await],
            (Some(first), Some(second)) => {
                let (first, second) = tokio::join!(first, second);
                vec![first, second]
            }
            _ => Vec::new(),
        }
    });
    let mut total = summaries[0].clone();
    for other in &summaries[1..] {
        total.acked += other.acked;
        total.sent += other.sent;
        total.failed_agents += other.failed_agents;
        total.seconds = total.seconds.max(other.seconds);
    }
    total.acked_per_second = total.acked as f64 / total.seconds.max(0.001);
    assert_eq!(total.failed_agents, 0, "{:?}", total.errors);
    total
}

fn postgres_bytes(url: &str, schema: &str) -> u64 {
    psql(
        url,
        &format!(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'm')"
        ),
    )
    .parse()
    .unwrap()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(url) = std::env::var("VEU_TEST_POSTGRES_URL") else {
        eprintln!(
            "replicas: set VEU_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        std::process::exit(2);
    };
    let seconds = env_or("VEU_BENCH_SECONDS", 10);
    let agents = env_or("VEU_BENCH_AGENTS", 100) as usize;
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let binary = collector_binary().unwrap_or_else(|error| {
        eprintln!("replicas: {error}");
        std::process::exit(2);
    });
    let samples = sealed_samples();
    eprintln!("replicas: raw Ed25519 verification on {threads} thread(s) …");
    let (raw, _) = raw_verification(threads, &samples);
    drop(samples);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();

    eprintln!("replicas: SQLite, one collector …");
    {
        let mut collector = LocalCollector::start(&binary, &dir.path().join("sqlite"), SITES)
            .unwrap_or_else(|e| panic!("{e}"));
        let summary = measure(&runtime, std::slice::from_ref(&collector), agents, seconds);
        collector.stop().unwrap();
        runs.push(Run {
            name: "SQLite, 1 collector".into(),
            acked: summary.acked,
            per_second: summary.acked_per_second,
            bytes: collector.database_bytes(),
        });
    }
    for replicas in [1usize, 2] {
        eprintln!("replicas: PostgreSQL, {replicas} replica(s) …");
        let schema = format!("veu_bench_{}_{replicas}", std::process::id());
        psql(&url, &format!("CREATE SCHEMA {schema}"));
        let separator = if url.contains('?') { '&' } else { '?' };
        let store = format!("{url}{separator}options=-c%20search_path%3D{schema}");
        let base = dir.path().join(format!("pg{replicas}"));
        let first = LocalCollector::start_with_store(&binary, &base.join("a"), SITES, Some(&store))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut collectors = vec![first];
        for n in 1..replicas {
            let replica = collectors[0]
                .replica(&binary, &base.join(format!("r{n}")))
                .unwrap_or_else(|e| panic!("{e}"));
            collectors.push(replica);
        }
        let summary = measure(&runtime, &collectors, agents, seconds);
        for collector in &mut collectors {
            collector.stop().unwrap();
        }
        runs.push(Run {
            name: format!("PostgreSQL, {replicas} replica(s)"),
            acked: summary.acked,
            per_second: summary.acked_per_second,
            bytes: postgres_bytes(&url, &schema),
        });
        psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
    }

    println!();
    println!(
        "collector ingest by store ({seconds} s each, {agents} agents, {threads} CPUs shared by collectors, database and load generator)"
    );
    println!("  raw verification, proto_seal::open, {threads} threads: {raw:.0} /s");
    for run in &runs {
        let per = run.bytes as f64 / run.acked.max(1) as f64;
        println!(
            "  {:<26} {:>8.0} /s  {:>3.0} % of raw   {:>6.0} bytes per attestation  {:>4.0} MB per host-month",
            run.name,
            run.per_second,
            100.0 * run.per_second / raw,
            per,
            per * ATTESTATIONS_PER_MONTH / 1e6
        );
    }
    let line: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} {:.0}/s ({:.0} %)",
                r.name,
                r.per_second,
                100.0 * r.per_second / raw
            )
        })
        .collect();
    println!("replicas: {}; raw verification {raw:.0}/s", line.join(", "));
}
