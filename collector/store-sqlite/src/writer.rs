//! The writer thread and its group commit.
//!
//! Every write reaches the thread as a `Job`. Commits that are queued together are applied in
//! ONE transaction (one fsync for all of them). A batch that fails (a fork, an unknown key)
//! must be rolled back alone while the others still commit: the group first runs without
//! savepoints (the common case; a savepoint per batch costs a copy of every page the batch
//! touches), and only if some batch fails is that transaction rolled back and the group run
//! again with a SAVEPOINT per batch. Every waiter is answered only after the transaction's
//! COMMIT returned; if the transaction as a whole fails, every waiter in it gets the error.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::log::Log;
use crate::{Db, apply};
use collector_store::park::block_on;
use collector_store::queue::{self, Jobs, Waiter};
use collector_store::{Batch, CommitReceipt, StoreError, WriterCounters as Counters};

/// Work for the writer thread: commits, and administrative writes (agents, tokens,
/// decommissioning) that get the write connection and answer their callers themselves.
type Job = queue::Job<WriteOp>;

/// An administrative write: it gets the write connection and the log to append to.
pub(crate) type WriteOp = Box<dyn FnOnce(&mut Connection, &mut Log) + Send>;

/// Starts the writer thread, which owns `conn` until the queue is closed and drained.
pub(crate) fn spawn(
    conn: Connection,
    log: Log,
    jobs: Jobs<WriteOp>,
    max_group: usize,
    counters: Arc<Counters>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("sqlite-writer".to_owned())
        .spawn(move || run(conn, log, jobs, max_group, &counters))
}

fn run(
    mut conn: Connection,
    mut log: Log,
    mut jobs: Jobs<WriteOp>,
    max_group: usize,
    counters: &Counters,
) {
    while let Some(job) = block_on(jobs.next()) {
        match job {
            Job::Shutdown => jobs.close(),
            Job::Write(op) => op(&mut conn, &mut log),
            Job::Commit { batch, reply } => {
                let group = jobs.gather(batch, reply, max_group);
                let (outcomes, isolated) = commit_group(&mut conn, &mut log, &group);
                counters.record(&outcomes, isolated);
                queue::answer(group, outcomes);
            }
        }
    }
}

/// Applies every batch of the group in one transaction; returns one outcome per batch, final
/// only once the transaction's fate is known, and whether the group had to be isolated.
///
/// The log's frontier follows the transaction: whatever was rolled back is taken back off it.
fn commit_group(
    conn: &mut Connection,
    log: &mut Log,
    group: &[Waiter],
) -> (Vec<Result<CommitReceipt, StoreError>>, bool) {
    let mark = log.mark();
    match commit_all_or_nothing(conn, log, group) {
        Ok(Ok(receipts)) => (receipts.into_iter().map(Ok).collect(), false),
        // A lone batch needs no isolating: its failure is its answer.
        Ok(Err(failure)) if group.len() == 1 => {
            log.reset(mark);
            (vec![Err(failure)], false)
        }
        // A batch failed and everything was rolled back: isolate the failure.
        Ok(Err(_)) => {
            log.reset(mark.clone());
            let outcomes = commit_isolated(conn, log, group);
            if outcomes.iter().all(Result::is_err) {
                log.reset(mark);
            }
            (outcomes, true)
        }
        Err(error) => {
            log.reset(mark);
            (fail_all(group.len(), &error), false)
        }
    }
}

/// The fast path: every batch straight into one transaction. `Ok(Err(_))`: a batch failed
/// with that error and the transaction was rolled back, nothing stored.
fn commit_all_or_nothing(
    conn: &mut Connection,
    log: &mut Log,
    group: &[Waiter],
) -> Result<Result<Vec<CommitReceipt>, StoreError>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let mut receipts = Vec::with_capacity(group.len());
    for waiter in group {
        match apply::batch(&tx, log, &waiter.batch) {
            Ok(receipt) => receipts.push(receipt),
            // SQLite already rolled the transaction back (I/O error, full disk): no batch
            // can be stored, and the cause is the error every waiter should see.
            Err(failure) if tx.is_autocommit() => return Err(failure),
            Err(failure) => {
                tx.rollback().db()?;
                return Ok(Err(failure));
            }
        }
    }
    tx.commit().db()?;
    Ok(Ok(receipts))
}

/// The slow path: one savepoint per batch, so a failing batch is rolled back alone.
fn commit_isolated(
    conn: &mut Connection,
    log: &mut Log,
    group: &[Waiter],
) -> Vec<Result<CommitReceipt, StoreError>> {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return fail_all(group.len(), &StoreError::backend(error)),
    };
    let mut outcomes = Vec::with_capacity(group.len());
    for waiter in group {
        match apply_savepoint(&mut tx, log, &waiter.batch) {
            Ok(outcome) => outcomes.push(outcome),
            Err(abort) => {
                // The transaction itself is gone (SQLite rolls back on I/O errors or a full
                // disk): nothing of the group was stored, and continuing would run the next
                // batches outside any transaction.
                return fail_all(group.len(), &abort);
            }
        }
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(error) => {
            let error = StoreError::backend(error);
            outcomes
                .into_iter()
                .map(|outcome| outcome.and(Err(error.clone())))
                .collect()
        }
    }
}

/// Applies one batch inside a savepoint. `Ok(Err(_))`: the batch failed and was rolled back
/// alone; `Err(_)`: the enclosing transaction is lost and the whole group must fail.
fn apply_savepoint(
    tx: &mut Transaction<'_>,
    log: &mut Log,
    batch: &Batch,
) -> Result<Result<CommitReceipt, StoreError>, StoreError> {
    let mut savepoint = tx.savepoint().db()?;
    let mark = log.mark();
    match apply::batch(&savepoint, log, batch) {
        Ok(receipt) => {
            savepoint.commit().db()?;
            Ok(Ok(receipt))
        }
        Err(failure) => {
            log.reset(mark);
            if savepoint.is_autocommit() {
                return Err(failure);
            }
            savepoint.rollback().db()?;
            savepoint.commit().db()?;
            Ok(Err(failure))
        }
    }
}

fn fail_all(count: usize, error: &StoreError) -> Vec<Result<CommitReceipt, StoreError>> {
    (0..count).map(|_| Err(error.clone())).collect()
}
