//! veu-loadgen's engine against a real `veu-collector` process (debug build): every attestation
//! of a small fleet is acknowledged, a fleet that reuses another's GPU identities is accepted but
//! raises GPU conflicts, and an unknown site fails enrollment with the agent named; a held
//! fleet survives a SIGKILL of its collector with every attestation acknowledged and stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use agent_uplink::Backoff;
use collector_loadgen::hold::{HeldFleet, HoldCounters, HoldPlan};
use collector_loadgen::local::{LocalCollector, SITES, collector_binary};
use collector_loadgen::{FleetPlan, StreamPlan, Summary, enroll_fleet, stream_fleet};
use tokio_util::sync::CancellationToken;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn fleet(collector: &LocalCollector, prefix: &str, gpu_seed: u64) -> Summary {
    let plan = FleetPlan {
        agents: 5,
        sites: collector.sites.clone(),
        host_prefix: prefix.to_owned(),
        gpu_seed,
        parallel: 4,
    };
    let streams = StreamPlan {
        attestations_per_agent: Some(20),
        duration: None,
        rate: 0.0,
        window: 8,
        concurrency: 5,
        presign: 0,
    };
    runtime().block_on(async {
        let agents = enroll_fleet(&collector.target, &collector.admin, &plan)
            .await
            .unwrap_or_else(|error| panic!("{error}\n{}", collector.log()));
        assert_eq!(agents.len(), 5);
        assert_eq!(agents[2].site_id, SITES[2].0, "sites are dealt round-robin");
        stream_fleet(
            &collector.target,
            agents,
            &streams,
            CancellationToken::new(),
            false,
        )
        .await
    })
}

#[test]
fn a_fleet_is_acknowledged_and_duplicate_gpus_are_conflicts_not_rejections() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let binary = collector_binary().unwrap_or_else(|error| panic!("{error}"));
    let dir = tempfile::tempdir().unwrap();
    let mut collector = LocalCollector::start(&binary, dir.path(), SITES).unwrap();

    let first = fleet(&collector, "first", 42);
    assert_eq!(
        (first.sent, first.acked, first.rejected, first.failed_agents),
        (100, 100, 0, 0),
        "{first:?}\n{}",
        collector.log()
    );
    assert!(first.latency_ms.p50 > 0.0 && first.latency_ms.max >= first.latency_ms.p99);
    let accepted = "veu_collector_attestations_accepted_total";
    let conflicts = "veu_collector_gpu_conflicts_total";
    assert_eq!(collector.metric(accepted).unwrap(), Some(100.0));
    assert_eq!(collector.metric(conflicts).unwrap(), Some(0.0));

    // Same GPU seed, other hosts: every GPU is claimed twice. Accepted, counted once, flagged.
    let second = fleet(&collector, "second", 42);
    assert_eq!(
        (second.acked, second.rejected, second.failed_agents),
        (100, 0, 0),
        "{second:?}"
    );
    assert_eq!(collector.metric(accepted).unwrap(), Some(200.0));
    let raised = collector.metric(conflicts).unwrap().unwrap();
    assert!(
        raised >= 5.0 * 8.0,
        "{raised} GPU conflicts for 5 hosts of 8 duplicated GPUs"
    );

    let refused = runtime().block_on(enroll_fleet(
        &collector.target,
        &collector.admin,
        &FleetPlan {
            agents: 1,
            sites: vec!["nowhere-1".into()],
            host_prefix: "third".into(),
            gpu_seed: 7,
            parallel: 1,
        },
    ));
    let message = refused.unwrap_err().to_string();
    assert!(
        message.starts_with("cannot enroll agent 0: ") && message.contains("nowhere-1"),
        "{message}"
    );

    collector.stop().unwrap();
    assert!(collector.database_bytes() > 0);
}

/// Polls until `done` holds; a generous bound only so that a defect fails instead of hanging.
fn eventually(what: &str, counters: &HoldCounters, done: impl Fn(&HoldCounters) -> bool) {
    let started = Instant::now();
    while !done(counters) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what}: {counters:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_held_fleet_replays_its_spool_after_the_collector_is_killed_and_nothing_is_lost() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let binary = collector_binary().unwrap_or_else(|error| panic!("{error}"));
    let dir = tempfile::tempdir().unwrap();
    let mut collector = LocalCollector::start(&binary, dir.path(), SITES).unwrap();
    let runtime = runtime();
    let plan = FleetPlan {
        agents: 4,
        sites: collector.sites.clone(),
        host_prefix: "held".into(),
        gpu_seed: 9,
        parallel: 4,
    };
    let agents = runtime
        .block_on(enroll_fleet(&collector.target, &collector.admin, &plan))
        .unwrap();
    let enrolled = runtime.block_on(collector.log_size()).unwrap();
    let hold = HoldPlan {
        interval: Duration::from_millis(300),
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        },
    };
    let held = {
        let _context = runtime.enter();
        HeldFleet::start(&collector.target, agents, hold)
    };
    let counters = std::sync::Arc::clone(&held.counters);
    eventually("connected and attesting", &counters, |c| {
        c.connected() == 4 && c.counts.acked.load(Ordering::Relaxed) >= 8
    });

    collector.kill_and_restart(&binary).unwrap();
    eventually("back after the restart", &counters, |c| {
        c.opened() >= 8 && c.connected() == 4 && c.pending() == 0
    });
    held.stop_attesting();
    eventually("settled", &counters, |c| c.pending() == 0);
    let stored = runtime.block_on(collector.log_size()).unwrap() - enrolled;
    let (failed, errors) = runtime.block_on(held.stop());
    assert_eq!(failed, 0, "{errors:?}");

    let (sent, acked, rejected, _) = counters.counts.snapshot();
    assert_eq!((acked, rejected, stored), (sent, 0, sent), "{counters:?}");
    assert_eq!(counters.lost.load(Ordering::Relaxed), 4, "{counters:?}");
    // Each agent spooled one attestation while the collector was away, and replayed it.
    assert!(
        counters.replayed.load(Ordering::Relaxed) >= 4,
        "{counters:?}"
    );
    collector.stop().unwrap();
}
