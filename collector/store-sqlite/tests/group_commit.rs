//! Group commit under load: many concurrent committers, async and blocking, all acknowledged,
//! everything stored, in fewer transactions than commits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use collector_store::AttestationStore;
use collector_store::conformance::fixture::{agent, attestation, batch, key, unindexed};
use collector_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};

fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let path = dir.path().join("store.sqlite");
    Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap())
}

#[test]
fn many_async_committers_are_all_acknowledged_in_fewer_transactions() {
    const TASKS: u8 = 64;
    const PER_TASK: u64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in 0..TASKS {
        store.put_agent(&agent(n, &format!("host-{n}"))).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    // Each task is one agent's stream: its links in order, one at a time.
                    for sequence in 1..=PER_TASK {
                        let a = attestation(n, sequence, &format!("host-{n}"), 1_000);
                        let receipt = store.commit(batch(vec![a])).await.unwrap();
                        assert_eq!(receipt.stored, 1);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });

    let commits = u64::from(TASKS) * PER_TASK;
    let stats = store.stats();
    assert_eq!(stats.stored, commits);
    assert_eq!(stats.batches, commits);
    assert!(
        stats.groups < commits,
        "no batches were coalesced: {stats:?}"
    );
    let heads = store.chain_heads().unwrap();
    assert_eq!(heads.len(), usize::from(TASKS));
    assert!(heads.iter().all(|head| head.sequence == PER_TASK));
    eprintln!(
        "{commits} commits in {} group commits ({:.1} batches per group)",
        stats.groups,
        commits as f64 / stats.groups as f64
    );
}

#[test]
fn many_blocking_committers_are_all_acknowledged_and_stored() {
    const THREADS: u8 = 16;
    const PER_THREAD: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in 0..THREADS {
        store.put_agent(&agent(n, &format!("host-{n}"))).unwrap();
    }
    let threads: Vec<_> = (0..THREADS)
        .map(|n| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for sequence in 1..=PER_THREAD {
                    let a = attestation(n, sequence, &format!("host-{n}"), 1_000);
                    store.commit_blocking(batch(vec![a])).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for n in 0..THREADS {
        let history = store
            .host_history(&format!("host-{n}"), 0, i64::MAX, 100)
            .unwrap();
        let expected: Vec<_> = (1..=PER_THREAD)
            .map(|s| attestation(n, s, &format!("host-{n}"), 1_000))
            .collect();
        assert_eq!(unindexed(history), expected);
        assert_eq!(
            store.stored_digest(&key(n), PER_THREAD).unwrap(),
            Some(expected[19].digest)
        );
    }
    let stats = store.stats();
    assert!(stats.groups < u64::from(THREADS) * PER_THREAD, "{stats:?}");
}

/// Attestations per second with 8-GPU, 2.5 KiB envelopes, one per commit, from concurrent
/// committers (`COLLECTOR_STORE_COMMITTERS`, default 32, at most 255) with the default (FULL)
/// durability:
/// `cargo test -p collector-store --test group_commit -- --ignored --nocapture throughput`.
/// Each committer waits for its commit, so a group holds at most one batch per committer and
/// the rate is about committers / fsync latency until the writer's CPU becomes the limit.
#[test]
#[ignore = "a measurement, not a check; run it by hand"]
fn throughput() {
    let committers: u8 = std::env::var("COLLECTOR_STORE_COMMITTERS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    // `COLLECTOR_STORE_SYNC=normal` shows how much of the time is the fsync.
    let synchronous = match std::env::var("COLLECTOR_STORE_SYNC").as_deref() {
        Ok("normal") => Synchronous::Normal,
        _ => Synchronous::Full,
    };
    let seconds = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite"), options).unwrap());
    for n in 0..committers {
        store.put_agent(&agent(n, &format!("host-{n}"))).unwrap();
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..committers)
        .map(|n| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let mut sequence = 0;
                while started.elapsed() < seconds {
                    sequence += 1;
                    let a = attestation(n, sequence, &format!("host-{n}"), sequence as i64);
                    store.commit_blocking(batch(vec![a])).unwrap();
                }
                sequence
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let stats = store.stats();
    if let Some(ticks) = writer_cpu_ticks() {
        // /proc reports in USER_HZ, which is 100 on Linux.
        eprintln!(
            "writer thread CPU: {:.1} us per attestation",
            ticks as f64 * 10_000.0 / total as f64
        );
    }
    eprintln!(
        "{committers} committers, {synchronous:?}: {total} attestations in {elapsed:.2} s: {:.0}/s, {} group commits ({:.1} per group), \
         {} bytes on disk ({:.0} per attestation)",
        total as f64 / elapsed,
        stats.groups,
        total as f64 / stats.groups as f64,
        store.size_bytes().unwrap(),
        store.size_bytes().unwrap() as f64 / total as f64,
    );
}

/// User plus system time of the writer thread so far, where /proc shows it.
fn writer_cpu_ticks() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        let (name, rest) = stat.split_once(") ")?;
        if name.ends_with("(sqlite-writer") {
            // Fields after the name: state is the first, utime the 12th, stime the 13th.
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            return Some(user + system);
        }
    }
    None
}
