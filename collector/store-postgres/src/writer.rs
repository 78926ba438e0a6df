//! The writer task and its group commit.
//!
//! Every commit and every logged administrative write (agents, re-bindings, revocations,
//! decommissioning, measurements) reaches the task as a `Job`, in queue order: the order in
//! which `commit` and the administrative methods were called. Commits queued together are
//! stored in ONE transaction (`group`). If that transaction fails on a statement that refused
//! the data, it is rolled back and each batch runs again alone, so only the offending batch
//! fails. Every waiter is answered only after its transaction's COMMIT returned.

use std::sync::Arc;

use collector_store::queue::{self, Jobs, Waiter};
use collector_store::{
    AgentRecord, Batch, CommitReceipt, HostChange, KeyId, StoreError, WriterCounters as Counters,
};
use proto_merkle::Frontier;
use tokio::sync::oneshot;

use crate::admin;
use crate::group::{self, GroupError};
use crate::log::Leaf;
use crate::pool::{Conn, Connector};
use crate::schema;
use crate::target::Target;

/// Work for the writer task: commits, and administrative writes that append to the log.
type Job = queue::Job<Admin>;

/// An administrative write, in its own transaction; answered with the index of the first leaf
/// it appended (`None`: it changed nothing).
pub(crate) struct Admin {
    pub(crate) op: AdminOp,
    pub(crate) reply: oneshot::Sender<Result<Option<u64>, StoreError>>,
}

/// The administrative writes that append to the log.
#[derive(Debug)]
pub(crate) enum AdminOp {
    PutAgent(AgentRecord),
    Rebind(AgentRecord, Option<HostChange>),
    Revoke(KeyId, i64),
    Decommission(String, i64),
    /// A landmark's measurement leaf about a host (the host id, the encoded leaf).
    Measurement(String, Leaf),
}

/// The writer: one connection, the log's frontier as last committed, the queue's consumer.
pub(crate) struct Writer {
    connector: Connector,
    conn: Option<Conn>,
    schema: String,
    log_lock: i64,
    /// The frontier after this writer's last commit; reused while the log's size still
    /// matches it (no other writer appended), rebuilt from the nodes otherwise.
    frontier: Option<Frontier>,
    max_group: usize,
    counters: Arc<Counters>,
}

impl Writer {
    /// Connects, applies the pending migrations, and is ready to run.
    pub(crate) async fn start(
        target: Target,
        max_group: usize,
        counters: Arc<Counters>,
    ) -> Result<Self, StoreError> {
        let connector = Connector::new(target)?;
        let mut conn = connector.connect().await?;
        let schema = schema::migrate(&mut conn, connector.target().schema.as_deref()).await?;
        Ok(Self {
            log_lock: schema::lock_key("log", &schema),
            connector,
            conn: Some(conn),
            schema,
            frontier: None,
            max_group,
            counters,
        })
    }

    pub(crate) fn connector(&self) -> Connector {
        self.connector.clone()
    }

    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// Takes jobs until the queue is closed and drained.
    pub(crate) async fn run(mut self, mut jobs: Jobs<Admin>) {
        while let Some(job) = jobs.next().await {
            match job {
                Job::Shutdown => jobs.close(),
                Job::Write(Admin { op, reply }) => {
                    let _ = reply.send(self.admin(&op).await);
                }
                Job::Commit { batch, reply } => {
                    let group = jobs.gather(batch, reply, self.max_group);
                    let (outcomes, isolated) = self.commit_group(&group).await;
                    self.counters.record(&outcomes, isolated);
                    queue::answer(group, outcomes);
                }
            }
        }
    }

    /// One outcome per batch, and whether the group had to be run batch by batch.
    async fn commit_group(
        &mut self,
        group: &[Waiter],
    ) -> (Vec<Result<CommitReceipt, StoreError>>, bool) {
        let batches: Vec<&Batch> = group.iter().map(|waiter| &waiter.batch).collect();
        match self.transaction(&batches).await {
            Ok(outcomes) => (outcomes, false),
            Err(GroupError::Alone(_)) if batches.len() > 1 => {
                let mut outcomes = Vec::with_capacity(batches.len());
                for batch in batches {
                    outcomes.push(match self.transaction(&[batch]).await {
                        Ok(mut alone) => alone.pop().unwrap_or(Err(StoreError::Closed)),
                        Err(GroupError::Alone(error) | GroupError::Fail(error)) => Err(error),
                    });
                }
                (outcomes, true)
            }
            Err(GroupError::Alone(error) | GroupError::Fail(error)) => {
                (group.iter().map(|_| Err(error.clone())).collect(), false)
            }
        }
    }

    /// Runs `batches` in one transaction; keeps the frontier it committed.
    async fn transaction(
        &mut self,
        batches: &[&Batch],
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, GroupError> {
        let log_lock = self.log_lock;
        let cached = self.frontier.clone();
        let conn = self.conn().await?;
        let (outcomes, frontier) = group::commit(conn, log_lock, cached, batches).await?;
        self.frontier = Some(frontier);
        Ok(outcomes)
    }

    async fn admin(&mut self, op: &AdminOp) -> Result<Option<u64>, StoreError> {
        let log_lock = self.log_lock;
        let cached = self.frontier.clone();
        let conn = self.conn().await?;
        let (appended, frontier) = admin::logged(conn, log_lock, cached, op).await?;
        self.frontier = Some(frontier);
        Ok(appended)
    }

    /// The write connection, opened again if it closed (a server restart, a network cut).
    async fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        if self.conn.as_ref().is_none_or(Conn::is_closed) {
            self.conn = None;
            self.conn = Some(self.connector.connect().await?);
        }
        self.conn.as_mut().ok_or(StoreError::Closed)
    }
}
