//! The PostgreSQL the tests run against: its URL from `VEU_TEST_POSTGRES_URL`, a fresh schema
//! per store (`veu_test_<random>`), and every schema dropped again at the end.
//!
//! Without the variable the tests are reported as not run, never as passed: the crate's build
//! script compiles them as ignored ("not run: VEU_TEST_POSTGRES_URL is unset"). Run by hand
//! (`--ignored`) without it, each prints that and returns; with `CI=true` it fails instead.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the harness"
)]

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use collector_store_postgres::{PostgresOptions, PostgresStore};
use tokio::runtime::Runtime;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls, Row};

/// The test database, and the schemas this process made in it.
pub struct Database {
    pub url: String,
    runtime: Runtime,
    client: Client,
    schemas: Mutex<Vec<String>>,
}

impl Database {
    /// The database of `VEU_TEST_POSTGRES_URL`; `None` (after saying so) when it is unset
    /// outside CI. In CI (`CI=true`) an unset variable fails the test.
    pub fn from_env() -> Option<Self> {
        let url = match std::env::var("VEU_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
                "VEU_TEST_POSTGRES_URL is unset and CI=true: the PostgreSQL tests must run in CI \
                 (.ci/run sets it to the local server)"
            ),
            _ => {
                eprintln!("not run: VEU_TEST_POSTGRES_URL is unset");
                return None;
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = admin_config(&url);
        let client = runtime.block_on(async {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
            tokio::spawn(connection);
            client
        });
        Some(Self {
            url,
            runtime,
            client,
            schemas: Mutex::new(Vec::new()),
        })
    }

    /// A schema name no other test uses; the store creates it, `Drop` drops it.
    pub fn fresh_schema(&self) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "veu_test_{:x}_{nanos:x}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.schemas.lock().unwrap().push(name.clone());
        name
    }

    /// Options for a store in `schema`.
    pub fn options(schema: &str) -> PostgresOptions {
        PostgresOptions {
            schema: Some(schema.to_owned()),
            ..PostgresOptions::default()
        }
    }

    /// A store in a fresh schema.
    pub fn fresh_store(&self, options: PostgresOptions) -> PostgresStore {
        let schema = self.fresh_schema();
        PostgresStore::connect(
            &self.url,
            PostgresOptions {
                schema: Some(schema),
                ..options
            },
        )
        .unwrap()
    }

    /// Runs SQL on the test's own connection (search_path left alone).
    pub fn query(&self, sql: &str) -> Vec<Row> {
        self.runtime
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    pub fn execute(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
        for schema in schemas {
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            if let Err(error) = self.runtime.block_on(self.client.batch_execute(&sql)) {
                eprintln!("could not drop test schema {schema}: {error}");
            }
        }
    }
}

/// The URL as tokio-postgres reads it, for the harness's own plain connection: the store's
/// TLS settings taken out (the test server accepts plain TCP from 127.0.0.1).
fn admin_config(url: &str) -> Config {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let disable = query.split('&').any(|pair| pair == "sslmode=disable");
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            !pair.is_empty() && !pair.starts_with("sslmode=") && !pair.starts_with("sslrootcert=")
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config = Config::from_str(&url).unwrap();
    config.ssl_mode(if disable {
        SslMode::Disable
    } else {
        SslMode::Prefer
    });
    config
}
