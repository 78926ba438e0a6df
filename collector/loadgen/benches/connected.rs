//! Connected-agent scale of a real `veu-collector` (release build), for each fleet size in one
//! run, side by side with the ratio of the largest to the smallest:
//! a) N agents enroll, connect over mutual TLS (one connection each) and attest once, then hold
//!    their streams at one attestation per `VEU_BENCH_INTERVAL` seconds (default 60, each agent
//!    at its own phase): the collector's resident memory (`VmRSS` of its process) before and
//!    after they connect gives the memory per connected agent, and its CPU (`utime + stime`)
//!    over `VEU_BENCH_SECONDS` (default 30) of that steady state;
//! b) the reconnect storm: the collector is killed (SIGKILL) with every agent connected and
//!    started again on the same store; each agent spools the attestation due meanwhile,
//!    reconnects with the real agent's backoff and replays everything unanswered. Measured: the
//!    time until every agent is connected again with nothing unanswered, the collector's peak
//!    memory meanwhile, and that nothing was lost (every attestation sent is acknowledged, and
//!    the collector's transparency log grew by exactly that many leaves).
//!
//! ```text
//! cargo build --release -p collector-daemon
//! VEU_BENCH_FLEETS=1000,10000 cargo bench -p collector-loadgen --bench connected
//! ```
//! `VEU_BENCH_COLLECTOR=PATH` runs another collector binary (or a wrapper that profiles it).
//! The bench raises its soft limit on open files to the hard limit (the collector it starts
//! inherits it); loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use agent_uplink::Backoff;
use collector_loadgen::hold::{HeldFleet, HoldPlan};
use collector_loadgen::local::{
    LocalCollector, SITES, collector_binary, process_rss_bytes, raise_open_files_limit,
};
use collector_loadgen::measure::env_or;
use collector_loadgen::{FleetPlan, enroll_fleet};

/// How long the fleet may take to connect, and the storm to settle, before the bench gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Enrollments in flight at once.
const ENROLL_PARALLEL: usize = 32;

/// How often memory is sampled during the storm.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What one fleet size measured.
struct Figures {
    agents: usize,
    enroll_seconds: f64,
    connect_seconds: f64,
    rss_fresh: u64,
    rss_enrolled: u64,
    rss_connected: u64,
    rss_steady: u64,
    steady_cpu: f64,
    steady_seconds: f64,
    steady_acked: u64,
    loadgen_rss_per_agent: f64,
    restart_seconds: f64,
    storm_seconds: f64,
    storm_complete: bool,
    rss_storm_peak: u64,
    rss_after_storm: u64,
    storm_cpu: f64,
    replayed: u64,
    sent: u64,
    acked: u64,
    rejected: u64,
    stored: u64,
    failed_attempts: u64,
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (before, after) = raise_open_files_limit().unwrap();
    let fleets: Vec<usize> = std::env::var("VEU_BENCH_FLEETS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("VEU_BENCH_FLEETS: {n:?} is not a number"))
        })
        .collect();
    let steady = Duration::from_secs(env_or("VEU_BENCH_SECONDS", 30));
    let interval = Duration::from_secs(env_or("VEU_BENCH_INTERVAL", 60));
    let binary = match std::env::var_os("VEU_BENCH_COLLECTOR")
        .map(|path| Ok(std::path::PathBuf::from(path)))
        .unwrap_or_else(collector_binary)
    {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("connected: {error}");
            std::process::exit(2);
        }
    };
    eprintln!("connected: open files soft limit raised from {before} to {after}");
    let figures: Vec<Figures> = fleets
        .iter()
        .map(|&agents| measure(&binary, agents, steady, interval))
        .collect();
    print_table(&figures, steady, interval, after);
}

fn measure(
    binary: &std::path::Path,
    agents: usize,
    steady: Duration,
    interval: Duration,
) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let mut collector = LocalCollector::start(binary, dir.path(), SITES)
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss_fresh = collector.rss_bytes().unwrap_or(0);

    eprintln!("connected: enrolling {agents} agents …");
    let plan = FleetPlan {
        agents,
        sites: collector.sites.clone(),
        host_prefix: "held".into(),
        gpu_seed: collector_loadgen::random_u64(),
        parallel: ENROLL_PARALLEL,
    };
    let enrolling = Instant::now();
    let fleet = runtime
        .block_on(enroll_fleet(&collector.target, &collector.admin, &plan))
        .unwrap_or_else(|error| panic!("{error}\n{}", collector.log()));
    let enroll_seconds = enrolling.elapsed().as_secs_f64();
    let log_enrolled = runtime.block_on(collector.log_size()).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss_enrolled = collector.rss_bytes().unwrap_or(0);
    let loadgen_before = process_rss_bytes(std::process::id()).unwrap_or(0);

    eprintln!("connected: connecting {agents} agents …");
    let hold = HoldPlan {
        interval,
        backoff: Backoff::default(),
    };
    let connecting = Instant::now();
    let held = {
        let _context = runtime.enter();
        HeldFleet::start(&collector.target, fleet, hold)
    };
    let counters = std::sync::Arc::clone(&held.counters);
    let settled = wait(|| {
        counters.connected() == agents as u64
            && counters
                .counts
                .sent
                .load(std::sync::atomic::Ordering::Relaxed)
                >= agents as u64
            && counters.pending() == 0
    });
    assert!(
        settled,
        "{agents} agents did not all connect and attest within {SETTLE_TIMEOUT:?}: {counters:?}\n{}",
        collector.log()
    );
    let connect_seconds = connecting.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rss_connected = collector.rss_bytes().unwrap_or(0);
    let loadgen_rss_per_agent = process_rss_bytes(std::process::id())
        .unwrap_or(0)
        .saturating_sub(loadgen_before) as f64
        / agents as f64;

    eprintln!("connected: steady state for {} s …", steady.as_secs());
    let (_, acked_before, _, _) = counters.counts.snapshot();
    let cpu_before = collector.cpu_seconds().unwrap_or(0.0);
    let window = Instant::now();
    std::thread::sleep(steady);
    let steady_cpu = collector.cpu_seconds().unwrap_or(0.0) - cpu_before;
    let steady_seconds = window.elapsed().as_secs_f64();
    let (_, acked_after, _, _) = counters.counts.snapshot();
    let rss_steady = collector.rss_bytes().unwrap_or(0);

    eprintln!("connected: killing and restarting the collector …");
    let opened_before = counters.opened();
    let killed = Instant::now();
    collector.kill_and_restart(binary).unwrap();
    let restart_seconds = killed.elapsed().as_secs_f64();
    let listening = Instant::now();
    let mut rss_storm_peak = 0;
    let storm_complete = wait(|| {
        rss_storm_peak = rss_storm_peak.max(collector.rss_bytes().unwrap_or(0));
        counters.opened() >= opened_before + agents as u64
            && counters.connected() == agents as u64
            && counters.pending() == 0
    });
    let storm_seconds = listening.elapsed().as_secs_f64();
    let storm_cpu = collector.cpu_seconds().unwrap_or(0.0);
    std::thread::sleep(Duration::from_secs(2));
    let rss_after_storm = collector.rss_bytes().unwrap_or(0);
    // Settle the counts: no new attestations, every one made answered.
    held.stop_attesting();
    assert!(
        wait(|| counters.pending() == 0),
        "attestations unanswered: {counters:?}"
    );
    let log_after = runtime.block_on(collector.log_size()).unwrap();

    let (failed, errors) = runtime.block_on(held.stop());
    assert_eq!(failed, 0, "agents failed: {errors:?}");
    let (sent, acked, rejected, _) = counters.counts.snapshot();
    collector.stop().unwrap();
    Figures {
        agents,
        enroll_seconds,
        connect_seconds,
        rss_fresh,
        rss_enrolled,
        rss_connected,
        rss_steady,
        steady_cpu,
        steady_seconds,
        steady_acked: acked_after - acked_before,
        loadgen_rss_per_agent,
        restart_seconds,
        storm_seconds,
        storm_complete,
        rss_storm_peak,
        rss_after_storm,
        storm_cpu,
        replayed: counters.replayed.load(std::sync::atomic::Ordering::Relaxed),
        sent,
        acked,
        rejected,
        stored: log_after - log_enrolled,
        failed_attempts: counters
            .failed_attempts
            .load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// Polls `done` every `SAMPLE_EVERY` until it holds (true) or `SETTLE_TIMEOUT` passes (false).
fn wait(mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < SETTLE_TIMEOUT {
        if done() {
            return true;
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    false
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn print_table(figures: &[Figures], steady: Duration, interval: Duration, files: u64) {
    type Row = (&'static str, fn(&Figures) -> (String, f64));
    let rows: &[Row] = &[
        ("enrollment (token, keys, CSR, certificate)", |f| {
            (
                format!(
                    "{:.1} s ({:.0}/s)",
                    f.enroll_seconds,
                    f.agents as f64 / f.enroll_seconds
                ),
                f.enroll_seconds,
            )
        }),
        ("connect all (TLS, hello, challenge, 1st ack)", |f| {
            (format!("{:.1} s", f.connect_seconds), f.connect_seconds)
        }),
        ("collector RSS started / enrolled", |f| {
            (
                format!("{} / {}", mb(f.rss_fresh), mb(f.rss_enrolled)),
                f.rss_enrolled as f64,
            )
        }),
        ("collector RSS all connected", |f| {
            (mb(f.rss_connected), f.rss_connected as f64)
        }),
        ("  per connected agent", |f| {
            let per = f.rss_connected.saturating_sub(f.rss_enrolled) as f64 / f.agents as f64;
            (format!("{:.1} KB", per / 1e3), per)
        }),
        ("collector RSS after the steady window", |f| {
            (mb(f.rss_steady), f.rss_steady as f64)
        }),
        ("collector CPU at steady state", |f| {
            let cores = f.steady_cpu / f.steady_seconds;
            (
                format!(
                    "{:.2} s in {:.0} s = {:.3} cores",
                    f.steady_cpu, f.steady_seconds, cores
                ),
                cores,
            )
        }),
        ("  acked in the window", |f| {
            (f.steady_acked.to_string(), f.steady_acked as f64)
        }),
        ("  CPU per 1000 agents", |f| {
            let per = 1000.0 * f.steady_cpu / f.steady_seconds / f.agents as f64;
            (format!("{:.4} cores", per), per)
        }),
        ("load generator RSS per agent (client side)", |f| {
            (
                format!("{:.1} KB", f.loadgen_rss_per_agent / 1e3),
                f.loadgen_rss_per_agent,
            )
        }),
        ("storm: SIGKILL to listening again", |f| {
            (format!("{:.2} s", f.restart_seconds), f.restart_seconds)
        }),
        ("storm: listening to all back, all replayed", |f| {
            let done = if f.storm_complete {
                ""
            } else {
                " (INCOMPLETE)"
            };
            (format!("{:.2} s{done}", f.storm_seconds), f.storm_seconds)
        }),
        ("storm: collector CPU from start to settled", |f| {
            (format!("{:.1} s", f.storm_cpu), f.storm_cpu)
        }),
        ("storm: peak collector RSS", |f| {
            (mb(f.rss_storm_peak), f.rss_storm_peak as f64)
        }),
        ("storm: collector RSS settled", |f| {
            (mb(f.rss_after_storm), f.rss_after_storm as f64)
        }),
        ("storm: attestations replayed / failed attempts", |f| {
            (
                format!("{} / {}", f.replayed, f.failed_attempts),
                f.replayed as f64,
            )
        }),
        ("sent / acked / rejected / stored (log growth)", |f| {
            (
                format!("{} / {} / {} / {}", f.sent, f.acked, f.rejected, f.stored),
                f.sent as f64,
            )
        }),
        ("nothing lost (sent = acked = stored)", |f| {
            let ok = f.sent == f.acked && f.acked == f.stored && f.rejected == 0;
            (if ok { "yes" } else { "NO" }.to_owned(), 0.0)
        }),
    ];
    let cells: Vec<Vec<(String, f64)>> = rows
        .iter()
        .map(|(_, cell)| figures.iter().map(cell).collect())
        .collect();
    let name_width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let width = cells
        .iter()
        .flatten()
        .map(|(text, _)| text.len())
        .max()
        .unwrap_or(0)
        .max(12);
    println!();
    println!(
        "connected agents (interval {} s, steady window {} s, open files limit {files}, {} CPUs shared by collector and load generator)",
        interval.as_secs(),
        steady.as_secs(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    print!("  {:<name_width$}", "agents");
    for f in figures {
        print!("  {:>width$}", f.agents);
    }
    if figures.len() > 1 {
        print!("  {:>8}", "ratio");
    }
    println!();
    for ((name, _), row) in rows.iter().zip(&cells) {
        print!("  {name:<name_width$}");
        for (text, _) in row {
            print!("  {text:>width$}");
        }
        if let (Some((_, first)), Some((_, last))) = (row.first(), row.last())
            && figures.len() > 1
            && *first > 0.0
        {
            print!("  {:>8}", format!("{:.2}", last / first));
        }
        println!();
    }
    if let (Some(first), Some(last)) = (figures.first(), figures.last())
        && last.agents > first.agents
    {
        // The fixed costs (SQLite's page cache, the runtime) cancel out between two sizes.
        let grown = |f: &Figures| f.rss_connected as f64 - f.rss_enrolled as f64;
        println!(
            "connected: marginal memory per connected agent from {} to {} agents: {:.1} KB",
            first.agents,
            last.agents,
            (grown(last) - grown(first)) / (last.agents - first.agents) as f64 / 1e3
        );
    }
    for f in figures {
        let per = f.rss_connected.saturating_sub(f.rss_enrolled) as f64 / f.agents as f64;
        println!(
            "connected: {} agents: {:.1} KB per connected agent (target 20 KB); storm {:.1} s after restart, {:.1} s from the kill (target 30 s); nothing lost: {}",
            f.agents,
            per / 1e3,
            f.storm_seconds,
            f.storm_seconds + f.restart_seconds,
            f.sent == f.acked && f.acked == f.stored && f.rejected == 0,
        );
    }
}
