//! Real crashes: this test binary re-executes itself as a committer (the ignored
//! `child_committer` test, switched on by an environment variable) that commits from several
//! threads and reports `committed KEY SEQ` only after `commit_blocking` returned `Ok`. The
//! parent SIGKILLs it at varying moments, reopens the database, and checks that every reported
//! commit is there with its exact bytes and that SQLite finds the file intact. Every round
//! reuses the database, so recovery after a kill is itself killed in later rounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use collector_store::conformance::fixture::{agent, attestation, batch, key, unindexed};
use collector_store::{AcceptedAttestation, AttestationStore, StoreError};
use collector_store_sqlite::{SqliteOptions, SqliteStore};

const TARGET: &str = "COLLECTOR_STORE_SIGKILL_TARGET";
/// Committer threads in the child, one key (and host) each.
const THREADS: u8 = 4;
/// A child that gets this far stops on its own (an orphan must not run forever).
const CHILD_LIMIT: u64 = 20_000;
/// Longest wait for a child's reports before it is killed regardless.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the child was started: during exec, open, recovery or migration.
    AfterMillis(u64),
    /// After the child has reported this many commits.
    AfterReports(usize),
}

/// What the child commits for (key, sequence); the parent recomputes it to compare bytes.
fn expected(n: u8, sequence: u64) -> AcceptedAttestation {
    attestation(n, sequence, &format!("host-{n}"), sequence as i64)
}

#[test]
#[ignore = "the committer process of the SIGKILL test; it runs it, it does nothing alone"]
fn child_committer() {
    let Some(target) = env::var_os(TARGET) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&target), SqliteOptions::default()).unwrap();
    let heads: BTreeMap<_, _> = store
        .chain_heads()
        .unwrap()
        .into_iter()
        .map(|head| (head.key_id, head.sequence))
        .collect();
    thread::scope(|scope| {
        for n in 0..THREADS {
            let store = &store;
            let start = heads.get(&key(n)).map_or(1, |s| s + 1);
            scope.spawn(move || {
                if start == 1 {
                    // A restarted child finds its agents enrolled (or half of them, if it was
                    // killed among the enrolments).
                    match store.put_agent(&agent(n, &format!("host-{n}"))) {
                        Ok(()) | Err(StoreError::AlreadyEnrolled { .. }) => {}
                        Err(error) => panic!("enrolling {n}: {error}"),
                    }
                }
                for sequence in start..start + CHILD_LIMIT {
                    store
                        .commit_blocking(batch(vec![expected(n, sequence)]))
                        .unwrap();
                    // One line per write, flushed at once: the parent may kill right after
                    // reading it. libtest may have left "test child_committer ... " without
                    // a newline, hence the leading one.
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "\ncommitted {n} {sequence}").is_err() || out.flush().is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn every_acknowledged_commit_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let plan = [
        Kill::AfterMillis(0),
        Kill::AfterMillis(3),
        Kill::AfterReports(1),
        Kill::AfterReports(5),
        Kill::AfterMillis(40),
        Kill::AfterReports(30),
        Kill::AfterReports(100),
        Kill::AfterMillis(150),
        Kill::AfterReports(250),
        Kill::AfterReports(600),
    ];
    // Everything ever reported, per key: the highest sequence acknowledged.
    let mut acknowledged: BTreeMap<u8, u64> = BTreeMap::new();
    let mut total_reports = 0;
    for (round, kill) in plan.into_iter().enumerate() {
        let reports = run_child(&path, kill);
        total_reports += reports.len();
        for (n, sequence) in reports {
            let highest = acknowledged.entry(n).or_default();
            *highest = (*highest).max(sequence);
        }
        let context = format!("round {round}, {kill:?}");
        check(&path, &acknowledged, &context);
    }
    assert!(
        total_reports >= 500,
        "the children reported only {total_reports} commits; the kills proved little"
    );
    eprintln!("10 kills, {total_reports} acknowledged commits, all present");
}

/// Reopens the database after a kill and checks it against what was acknowledged.
fn check(path: &Path, acknowledged: &BTreeMap<u8, u64>, context: &str) {
    if !path.exists() {
        assert!(acknowledged.is_empty(), "{context}: the database vanished");
        return;
    }
    {
        // Directly, before the store recovers anything: SQLite must find the file intact.
        let conn = rusqlite::Connection::open(path).unwrap();
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(verdict, "ok", "{context}");
    }
    let store = SqliteStore::open(path, SqliteOptions::default())
        .unwrap_or_else(|e| panic!("{context}: reopening failed: {e}"));
    // The log is one unbroken sequence whose stored nodes agree with its leaves.
    let records = store.log_records(0, usize::MAX).unwrap();
    let size = store.log_size().unwrap();
    assert_eq!(records.len() as u64, size, "{context}: log leaves");
    let tree = proto_merkle::MemoryTree::from_leaves(
        records.iter().map(|r| proto_merkle::leaf_hash(&r.entry)),
    );
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.log_index, i as u64, "{context}: log index");
    }
    assert_eq!(
        proto_merkle::root(&collector_store::LogNodes(&store), size).unwrap(),
        tree.root(),
        "{context}: log root"
    );
    let heads: BTreeMap<_, _> = store
        .chain_heads()
        .unwrap()
        .into_iter()
        .map(|head| (head.key_id, (head.sequence, head.digest)))
        .collect();
    for (&n, &highest) in acknowledged {
        let history = store
            .host_history(&format!("host-{n}"), i64::MIN, i64::MAX, usize::MAX)
            .unwrap();
        // Each child continues every chain after its stored head, so the chain is gapless
        // from 1: every acknowledged link is there, exactly as written, and so is at most
        // one unacknowledged link per committer that was in flight at the kill.
        assert!(
            history.len() as u64 >= highest,
            "{context}: key {n} acknowledged up to {highest}, {} stored",
            history.len()
        );
        for (i, stored) in unindexed(history.clone()).iter().enumerate() {
            assert_eq!(stored, &expected(n, i as u64 + 1), "{context}: key {n}");
        }
        let (head, digest) = heads[&key(n)];
        assert_eq!(head, history.len() as u64, "{context}: key {n}");
        assert_eq!(digest, expected(n, head).digest, "{context}: key {n}");
    }
}

/// Runs one child until the kill, SIGKILLs it, and returns every (key, sequence) it reported.
fn run_child(path: &Path, kill: Kill) -> Vec<(u8, u64)> {
    let child = Command::new(env::current_exe().unwrap())
        .args([
            "child_committer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TARGET, PathBuf::from(path))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let (lines, receive) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = line.split(' ');
            if let (Some("committed"), Some(n), Some(sequence), None) =
                (words.next(), words.next(), words.next(), words.next())
                && let (Ok(n), Ok(sequence)) = (n.parse::<u8>(), sequence.parse::<u64>())
            {
                let _ = lines.send((n, sequence));
            }
        }
    });
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut reports = Vec::new();
    match kill {
        Kill::AfterMillis(millis) => thread::sleep(Duration::from_millis(millis)),
        Kill::AfterReports(count) => {
            let deadline = Instant::now() + PATIENCE;
            while reports.len() < count {
                let left = deadline.saturating_duration_since(Instant::now());
                match receive.recv_timeout(left) {
                    Ok(report) => reports.push(report),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        let _ = child.0.wait();
                        let errors = errors.join().unwrap_or_default();
                        panic!(
                            "the child stopped by itself after {} reports:\n{errors}",
                            reports.len()
                        );
                    }
                }
            }
        }
    }
    // `Child::kill` is SIGKILL on Unix: no destructor runs, no buffer is flushed.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "the child must die by the signal");
    // Reports written before the kill are still in the pipe.
    reader.join().unwrap();
    reports.extend(receive.try_iter());
    let _ = errors.join();
    reports
}

/// Kills the child if the test fails part-way, so no committer outlives it.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
