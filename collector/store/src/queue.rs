//! The queue in front of a store's single writer, the same for every implementation: `commit`
//! queues its batch when it is called (so batches reach the log in call order, the ledger's
//! order), the writer gathers the commits queued together into one group, and answers each
//! waiter only once its transaction's fate is known. What a writer does with a group, and its
//! other work (`W`: administrative writes), belong to the implementation.

use std::fmt;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::{Batch, CommitFuture, CommitReceipt, StoreError};

/// Work for a writer.
pub enum Job<W> {
    /// Store a batch; answered after the transaction holding it committed (or failed).
    Commit { batch: Batch, reply: Reply },
    /// The implementation's other writes, run in queue order with the commits.
    Write(W),
    /// Finish what is queued, refuse what comes later, and stop.
    Shutdown,
}

impl<W> fmt::Debug for Job<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Commit { batch, .. } => f.debug_struct("Commit").field("batch", batch).finish(),
            Self::Write(_) => f.write_str("Write"),
            Self::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// The answer to a commit. The batch travels back with it, so that its many allocations are
/// freed on the committer's side rather than on the writer, which every commit waits for.
pub type Reply = oneshot::Sender<(Result<CommitReceipt, StoreError>, Batch)>;

/// A commit waiting for its transaction.
#[derive(Debug)]
pub struct Waiter {
    pub batch: Batch,
    pub reply: Reply,
}

/// The sending end of a writer's queue, and the thread the writer runs on.
///
/// Dropping it finishes every job already queued, answers later commits with `Closed`, and
/// joins the thread; it blocks for that long.
pub struct Queue<W> {
    /// Unbounded so that `commit` queues its batch when called, in call order (the ledger's
    /// order); what waits is bounded by the callers, each awaiting its commit.
    jobs: mpsc::UnboundedSender<Job<W>>,
    thread: Option<JoinHandle<()>>,
}

impl<W> Queue<W> {
    /// A queue whose jobs `thread` takes off the receiving end of `jobs`.
    pub fn new(jobs: mpsc::UnboundedSender<Job<W>>, thread: JoinHandle<()>) -> Self {
        Self {
            jobs,
            thread: Some(thread),
        }
    }

    /// `AttestationStore::commit`: an empty batch is stored at once; any other is queued now,
    /// not when the future is first polled.
    pub fn commit(&self, batch: Batch) -> CommitFuture {
        if batch.is_empty() {
            return CommitFuture::ready(Ok(CommitReceipt::default()));
        }
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job::Commit { batch, reply }).is_err() {
            return CommitFuture::ready(Err(StoreError::Closed));
        }
        CommitFuture::new(async move {
            let (outcome, _batch) = answer.await.map_err(|_| StoreError::Closed)?;
            outcome
        })
    }

    /// Queues other work behind the commits already queued; `Closed` once the writer stopped.
    pub fn write(&self, work: W) -> Result<(), StoreError> {
        self.jobs
            .send(Job::Write(work))
            .map_err(|_| StoreError::Closed)
    }
}

impl<W> Drop for Queue<W> {
    fn drop(&mut self) {
        // Shutdown queues behind every job already sent, so those complete; the writer then
        // closes the queue, and commits sent later are answered `Closed`.
        let _ = self.jobs.send(Job::Shutdown);
        if let Some(thread) = self.thread.take() {
            // The writer only ends by draining the queue; a panic in it has already answered
            // its waiters `Closed` by dropping their reply senders.
            let _ = thread.join();
        }
    }
}

impl<W> fmt::Debug for Queue<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

/// A new queue: its sending end (for `Queue::new`) and its receiving end, for the writer.
pub fn channel<W>() -> (mpsc::UnboundedSender<Job<W>>, Jobs<W>) {
    let (jobs, queue) = mpsc::unbounded_channel();
    (
        jobs,
        Jobs {
            queue,
            carried: None,
        },
    )
}

/// The receiving end of a writer's queue, as the writer takes jobs off it.
pub struct Jobs<W> {
    queue: mpsc::UnboundedReceiver<Job<W>>,
    /// A job taken off the queue while gathering a group, which must run after that group.
    carried: Option<Job<W>>,
}

impl<W> Jobs<W> {
    /// The next job in queue order; `None` once the queue is closed and drained.
    pub async fn next(&mut self) -> Option<Job<W>> {
        match self.carried.take() {
            Some(job) => Some(job),
            // After `close`, `recv` still yields everything queued before it, then `None`.
            None => self.queue.recv().await,
        }
    }

    /// Refuses every job sent from now on (`Closed`); those already queued are still taken.
    pub fn close(&mut self) {
        self.queue.close();
    }

    /// The group that starts with the commit of `batch`: the commits queued right behind it,
    /// while the group holds fewer than `max_group` attestations (an empty batch counts as
    /// one). The first other job met is kept, to be the next after the group.
    pub fn gather(&mut self, batch: Batch, reply: Reply, max_group: usize) -> Vec<Waiter> {
        let mut weight = batch_weight(&batch);
        let mut group = vec![Waiter { batch, reply }];
        while weight < max_group {
            match self.queue.try_recv() {
                Ok(Job::Commit { batch, reply }) => {
                    weight += batch_weight(&batch);
                    group.push(Waiter { batch, reply });
                }
                Ok(other) => {
                    self.carried = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        group
    }
}

impl<W> fmt::Debug for Jobs<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jobs")
            .field("carried", &self.carried)
            .finish_non_exhaustive()
    }
}

/// Answers each waiter of a group with its outcome, in order.
pub fn answer(group: Vec<Waiter>, outcomes: Vec<Result<CommitReceipt, StoreError>>) {
    for (waiter, outcome) in group.into_iter().zip(outcomes) {
        // A caller that dropped its future no longer needs the answer; the commit stands
        // either way.
        let _ = waiter.reply.send((outcome, waiter.batch));
    }
}

fn batch_weight(batch: &Batch) -> usize {
    batch.attestations.len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::park::block_on;

    fn commit(jobs: &mpsc::UnboundedSender<Job<u8>>) {
        let (reply, _answer) = oneshot::channel();
        let batch = Batch::default();
        jobs.send(Job::Commit { batch, reply }).unwrap();
    }

    fn first_commit(taken: &mut Jobs<u8>) -> (Batch, Reply) {
        match block_on(taken.next()) {
            Some(Job::Commit { batch, reply }) => (batch, reply),
            other => panic!("expected a commit, got {other:?}"),
        }
    }

    #[test]
    fn a_group_stops_at_its_bound_and_before_other_work() {
        let (jobs, mut taken) = channel::<u8>();
        for _ in 0..3 {
            commit(&jobs);
        }
        jobs.send(Job::Write(7)).unwrap();
        commit(&jobs);

        // Empty batches weigh one attestation each.
        let (batch, reply) = first_commit(&mut taken);
        assert_eq!(taken.gather(batch, reply, 2).len(), 2);
        let (batch, reply) = first_commit(&mut taken);
        assert_eq!(taken.gather(batch, reply, 10).len(), 1);
        assert!(matches!(block_on(taken.next()), Some(Job::Write(7))));
        let (batch, reply) = first_commit(&mut taken);
        assert_eq!(taken.gather(batch, reply, 10).len(), 1);

        taken.close();
        assert!(block_on(taken.next()).is_none());
        assert!(jobs.send(Job::Shutdown).is_err());
    }
}
