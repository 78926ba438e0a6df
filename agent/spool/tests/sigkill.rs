//! Real crashes: this test binary re-executes itself as a writer (the ignored `child_writer`
//! test, switched on by an environment variable), kills it with SIGKILL at chosen and at
//! random moments, reopens what it left and checks the guarantees against what the child had
//! reported. The child reports an operation on stdout only after it returned `Ok`, so the
//! parent knows a lower bound of what is durable; an operation in flight may or may not have
//! taken effect, and the checks allow exactly that much.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::env;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_spool::state;
use agent_spool::{Entry, EntryKind, Spool, SpoolLimits};
use proto_evidence::{ChainDigest, ChainHead, Sha256};

const MODE: &str = "AGENT_SPOOL_SIGKILL_CHILD";
const TARGET: &str = "AGENT_SPOOL_SIGKILL_TARGET";
const START: &str = "AGENT_SPOOL_SIGKILL_START";
const SEED: &str = "AGENT_SPOOL_SIGKILL_SEED";

/// The child acks `sequence - ACK_LAG` after every eighth push, so the spool stays small and
/// acks are often in flight when the kill lands.
const ACK_LAG: u64 = 3;
/// A child that reaches this many operations stops on its own (an orphan must not run forever).
const CHILD_LIMIT: u64 = 50_000;
/// Longest wait for a child's reports before it is killed regardless.
const PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
enum Kill {
    /// After the child has reported this many operations (pushes, or states stored).
    AfterReports(u64),
    /// This long after the child was started: during start-up, open, recovery or writing.
    AfterMicros(u64),
}

/// Pushes (and acks) forever, or stores chain states forever, reporting each success.
#[test]
#[ignore = "the writer process of the SIGKILL tests; they run it, it does nothing alone"]
fn child_writer() {
    let (Ok(mode), Some(target), Ok(start)) =
        (env::var(MODE), env::var_os(TARGET), env::var(START))
    else {
        return;
    };
    let target = PathBuf::from(target);
    let start: u64 = start.parse().unwrap();
    let mut out = std::io::stdout().lock();
    // libtest may have written "test child_writer ... " without a newline.
    writeln!(out).unwrap();
    match mode.as_str() {
        "spool" => spool_writer(&target, start, &mut out),
        "state" => state_writer(&target, start, &mut out),
        other => panic!("unknown child mode {other}"),
    }
}

fn spool_writer(dir: &Path, start: u64, out: &mut impl Write) {
    let (mut spool, _) = Spool::open(dir, SpoolLimits::default()).unwrap();
    for sequence in start..start + CHILD_LIMIT {
        spool.push(&expected_entry(sequence)).unwrap();
        if report(out, "pushed", sequence).is_err() {
            return;
        }
        if sequence.is_multiple_of(8) {
            let acked = sequence - ACK_LAG;
            if report(out, "acking", acked).is_err() {
                return;
            }
            spool.ack(acked).unwrap();
            if report(out, "acked", acked).is_err() {
                return;
            }
        }
    }
}

fn state_writer(path: &Path, start: u64, out: &mut impl Write) {
    for sequence in start..start + CHILD_LIMIT {
        state::store(path, &expected_state(sequence)).unwrap();
        if report(out, "stored", sequence).is_err() {
            return;
        }
    }
}

/// One line, flushed at once: the parent may kill the child right after reading it.
fn report(out: &mut impl Write, what: &str, sequence: u64) -> std::io::Result<()> {
    writeln!(out, "{what} {sequence}")?;
    out.flush()
}

#[test]
fn spool_keeps_every_acknowledged_push_across_sigkill() {
    let mut random = Random::seeded();
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let started = Instant::now();

    // What the child reported, accumulated over all rounds (every round reuses the spool).
    let mut pushed = BTreeSet::new();
    let mut acked: Option<u64> = None;
    let mut acking: Option<u64> = None;
    let mut next = 1u64;
    let mut rounds_with_temp = 0;

    for round in 0..20 {
        let kill = plan(round, &mut random);
        let reports = run_child("spool", &spool_dir, next, kill);
        let mut last_reported = None;
        for (what, sequence) in &reports {
            match what.as_str() {
                "pushed" => {
                    pushed.insert(*sequence);
                    last_reported = Some(*sequence);
                }
                "acking" => acking = acking.max(Some(*sequence)),
                "acked" => acked = acked.max(Some(*sequence)),
                other => panic!("unexpected report {other}"),
            }
        }
        // The one push that may have completed without being reported.
        let in_flight = last_reported.map_or(next, |s| s + 1);

        let context = format!("round {round}, {kill:?}, seed {}", random.seed);
        let (mut spool, recovery) = Spool::open(&spool_dir, SpoolLimits::default())
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(recovery.quarantined.is_empty(), "{context}: {recovery:?}");
        assert!(recovery.ignored.is_empty(), "{context}: {recovery:?}");
        if !recovery.removed_temp.is_empty() {
            rounds_with_temp += 1;
        }

        let present: Vec<u64> = spool.pending().map(|p| p.sequence).collect();
        for &sequence in &present {
            // Nothing acked comes back, and nothing unknown appears.
            assert!(
                acked < Some(sequence),
                "{context}: acked {sequence} came back"
            );
            assert!(
                pushed.contains(&sequence) || sequence == in_flight,
                "{context}: {sequence} was never pushed"
            );
            // Every entry held verifies and is exactly what was written.
            let entry = spool
                .read(sequence)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(entry, expected_entry(sequence), "{context}");
        }
        for &sequence in pushed.range(acked.map_or(0, |a| a + 1)..) {
            // Pushed and not acked: held, unless an ack that covered it was in flight.
            let maybe_acked = acking >= Some(sequence);
            assert!(
                maybe_acked || present.contains(&sequence),
                "{context}: pushed {sequence} was lost"
            );
        }
        // From here on the model is what the spool holds: lost-to-an-in-flight-ack entries
        // are gone for good, and an unreported push that landed is as good as a reported one.
        pushed = present.iter().copied().collect();

        // The spool accepts new pushes after recovery, and keeps them.
        let newest = pushed.last().copied().max(Some(in_flight)).unwrap_or(0);
        let own = newest + 1;
        spool.push(&expected_entry(own)).unwrap();
        pushed.insert(own);
        next = own + 1;
        drop(spool);
    }

    let (spool, recovery) = Spool::open(&spool_dir, SpoolLimits::default()).unwrap();
    assert!(recovery.is_clean(), "{recovery:?}");
    assert_eq!(
        spool.pending().map(|p| p.sequence).collect::<BTreeSet<_>>(),
        pushed
    );
    eprintln!(
        "20 kills in {:?}, up to sequence {next}, {rounds_with_temp} left a temporary file, seed {}",
        started.elapsed(),
        random.seed
    );
}

#[test]
fn state_file_is_one_reported_state_or_the_one_in_flight_after_sigkill() {
    let mut random = Random::seeded();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.state");
    let mut last_stored: Option<u64> = None;
    let mut next = 1u64;

    for round in 0..20 {
        let kill = plan(round, &mut random);
        let reports = run_child("state", &path, next, kill);
        for (what, sequence) in &reports {
            assert_eq!(what, "stored");
            last_stored = last_stored.max(Some(*sequence));
        }
        let context = format!("round {round}, {kill:?}, seed {}", random.seed);
        let in_flight = last_stored.map_or(next, |s| s + 1);
        match state::load(&path).unwrap_or_else(|e| panic!("{context}: {e}")) {
            None => assert_eq!(last_stored, None, "{context}: a stored state vanished"),
            Some(loaded) => {
                assert!(
                    Some(loaded.sequence) == last_stored || loaded.sequence == in_flight,
                    "{context}: loaded {}, last reported {last_stored:?}",
                    loaded.sequence
                );
                assert_eq!(loaded, expected_state(loaded.sequence), "{context}");
                last_stored = Some(loaded.sequence);
            }
        }
        next = last_stored.map_or(1, |s| s + 1);
    }
}

/// Kills after 1, 7, 50 and 200 reports, and at a random instant, four times over.
fn plan(round: u64, random: &mut Random) -> Kill {
    match round % 5 {
        0 => Kill::AfterReports(1),
        1 => Kill::AfterReports(7),
        2 => Kill::AfterReports(50),
        3 => Kill::AfterReports(200),
        _ => Kill::AfterMicros(random.below(40_000)),
    }
}

/// Runs one child until the kill, SIGKILLs it, and returns every report it printed.
fn run_child(mode: &str, target: &Path, start: u64, kill: Kill) -> Vec<(String, u64)> {
    let child = Command::new(env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MODE, mode)
        .env(TARGET, target)
        .env(START, start.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let (lines, reader) = read_reports(stdout);
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut reports = Vec::new();
    match kill {
        Kill::AfterMicros(micros) => thread::sleep(Duration::from_micros(micros)),
        Kill::AfterReports(count) => {
            let deadline = Instant::now() + PATIENCE;
            let mut seen = 0;
            while seen < count {
                let left = deadline.saturating_duration_since(Instant::now());
                match lines.recv_timeout(left) {
                    Ok(report) => {
                        if report.0 == "pushed" || report.0 == "stored" {
                            seen += 1;
                        }
                        reports.push(report);
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        let _ = child.0.wait();
                        let errors = errors.join().unwrap_or_default();
                        panic!("the child stopped after {seen} reports by itself:\n{errors}");
                    }
                }
            }
        }
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no chance to finish a write.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(
        !status.success(),
        "the child must die by the signal, not finish"
    );
    // Reports written before the kill are still in the pipe.
    reader.join().unwrap();
    reports.extend(lines.try_iter());
    let _ = errors.join();
    reports
}

fn read_reports(stdout: impl Read + Send + 'static) -> (Receiver<(String, u64)>, JoinHandle<()>) {
    let (send, receive) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some((what, sequence)) = line.split_once(' ') else {
                continue;
            };
            let known = ["pushed", "acking", "acked", "stored"].contains(&what);
            if let (true, Ok(sequence)) = (known, sequence.parse()) {
                let _ = send.send((what.to_owned(), sequence));
            }
        }
    });
    (receive, reader)
}

/// Kills the child if the test fails part-way, so no writer outlives it.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the child writes for `sequence`: the parent recomputes it to compare byte for byte.
fn expected_entry(sequence: u64) -> Entry {
    let mut random = Random::new(sequence);
    let len = if sequence.is_multiple_of(13) {
        0
    } else {
        random.below(6000) as usize
    };
    Entry {
        sequence,
        kind: if sequence.is_multiple_of(5) {
            EntryKind::InventoryChange
        } else {
            EntryKind::Periodic
        },
        bytes: (0..len).map(|_| random.next() as u8).collect(),
    }
}

fn expected_state(sequence: u64) -> ChainHead {
    let mut random = Random::new(sequence ^ 0x5eed);
    let mut digest = [0; 32];
    for chunk in digest.chunks_mut(8) {
        chunk.copy_from_slice(&random.next().to_le_bytes());
    }
    ChainHead {
        sequence,
        digest: ChainDigest(Sha256::from_bytes(digest)),
    }
}

/// SplitMix64: deterministic per seed, good enough to vary sizes and timings.
struct Random {
    seed: u64,
    state: u64,
}

impl Random {
    fn new(seed: u64) -> Self {
        Self { seed, state: seed }
    }

    /// From `AGENT_SPOOL_SIGKILL_SEED` to reproduce a failure, else from the clock.
    fn seeded() -> Self {
        let seed = env::var(SEED)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                now.as_nanos() as u64 ^ u64::from(std::process::id())
            });
        Self::new(seed)
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}
