//! Connections: opening one (with or without TLS), a statement cache per connection, and the
//! small pool the reads share.
//!
//! The pool is idle connections in a `Vec` behind a mutex, and a semaphore that bounds how
//! many are out at once. A connection goes back to the `Vec` when its lease ends, unless it
//! closed (the server restarted, the network dropped it); the next lease then opens a new one.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

use collector_store::StoreError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::target::Target;
use crate::tls::{self, MakeRustls};

/// Opens connections to one target.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    target: Target,
    tls: Option<MakeRustls>,
}

impl Connector {
    pub(crate) fn new(target: Target) -> Result<Self, StoreError> {
        let tls = tls::client_config(&target.tls)
            .map_err(StoreError::backend)?
            .map(MakeRustls);
        Ok(Self { target, tls })
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Opens one connection; its I/O runs as a task on the current runtime until it closes.
    pub(crate) async fn connect(&self) -> Result<Conn, StoreError> {
        let config = &self.target.config;
        let client = match &self.tls {
            None => {
                let (client, connection) = config.connect(NoTls).await.db()?;
                tokio::spawn(connection);
                client
            }
            Some(tls) => {
                let (client, connection) = config.connect(tls.clone()).await.db()?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }
}

/// One connection and the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The statement for `sql`, prepared on first use.
    pub(crate) async fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await.db()?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, params).await.db()
    }

    pub(crate) async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, params).await.db()
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, params).await.db()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// The read connections.
pub(crate) struct Pool {
    connector: Connector,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    pub(crate) fn new(connector: Connector, size: usize) -> Self {
        Self {
            connector,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// Opens connections to the same target outside the pool (sessions that must outlive one
    /// operation, like the log's leadership lock).
    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// A connection for one operation: an idle one, or a new one; waits while `size` are out.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Lease, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        loop {
            // A poisoned lock only means a holder panicked between push and pop; the
            // connections in the `Vec` are whole.
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match idle {
                Some(conn) if conn.is_closed() => continue,
                Some(conn) => {
                    return Ok(Lease {
                        pool: Arc::clone(self),
                        conn: Some(conn),
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let conn = self.connector.connect().await?;
        Ok(Lease {
            pool: Arc::clone(self),
            conn: Some(conn),
            _permit: permit,
        })
    }
}

/// A pooled connection, returned to the pool when dropped.
pub(crate) struct Lease {
    pool: Arc<Pool>,
    conn: Option<Conn>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Lease {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take().filter(|conn| !conn.is_closed()) {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

/// Turns the client's errors into the port's, at the seam.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(StoreError::backend)
    }
}
