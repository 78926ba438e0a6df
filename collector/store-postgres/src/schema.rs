//! Versioned migrations, applied at connect: `schema_version` holds the number of scripts
//! applied. Replicas that start together take a session advisory lock first, so each script
//! runs once; each script commits with its version in one transaction (DDL is transactional
//! in PostgreSQL), so a crash mid-migration leaves the previous version.

use collector_store::StoreError;
use proto_evidence::Sha256;

use crate::pool::{Conn, Db};

/// The scripts in order; script `i` takes the schema from version `i` to `i + 1`. Only ever
/// append: a released script is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_ledger.sql"),
    include_str!("migrations/0003_witness.sql"),
    include_str!("migrations/0004_hardware.sql"),
    include_str!("migrations/0005_rejection_count.sql"),
    include_str!("migrations/0006_measurements.sql"),
];

/// The schema version this build writes.
pub(crate) fn known_version() -> u32 {
    // The list is a handful of scripts; it can never reach u32::MAX.
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// An advisory lock key for `purpose` in `schema`: stores in different schemas of one database
/// never wait for each other, stores in the same schema always share the key.
pub(crate) fn lock_key(purpose: &str, schema: &str) -> i64 {
    let hash = Sha256::of(format!("veu-attest {purpose} {schema}").as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_be_bytes(first)
}

/// Creates `schema` if it is given and missing, brings it up to `known_version`, and returns
/// the schema the tables are in.
pub(crate) async fn migrate(conn: &mut Conn, schema: Option<&str>) -> Result<String, StoreError> {
    let name = match schema {
        Some(schema) => schema.to_owned(),
        None => conn
            .client()
            .query_one("SELECT current_schema()", &[])
            .await
            .db()?
            .try_get::<_, Option<String>>(0)
            .db()?
            .ok_or_else(|| {
                StoreError::backend(std::io::Error::other(
                    "no schema of the search_path exists; name one in the store's options",
                ))
            })?,
    };
    let key = lock_key("migrate", &name);
    conn.client()
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .db()?;
    let applied = apply(conn, schema, MIGRATIONS).await;
    // A session lock outlives transactions; a broken connection releases it anyway.
    let unlocked = conn
        .client()
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .db();
    applied?;
    unlocked?;
    Ok(name)
}

async fn apply(conn: &mut Conn, schema: Option<&str>, scripts: &[&str]) -> Result<(), StoreError> {
    let client = conn.client();
    if let Some(schema) = schema {
        // `schema` is a plain identifier (checked when the URL was parsed): no quoting needed.
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .db()?;
    }
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        .await
        .db()?;
    let known = u32::try_from(scripts.len()).unwrap_or(u32::MAX);
    loop {
        client.batch_execute("BEGIN").await.db()?;
        let step = async {
            let found: Option<i32> = client
                .query_one("SELECT max(version) FROM schema_version", &[])
                .await
                .db()?
                .try_get(0)
                .db()?;
            let found = u32::try_from(found.unwrap_or(0))
                .map_err(|_| StoreError::Corrupt(format!("schema_version holds {found:?}")))?;
            if found > known {
                return Err(StoreError::SchemaTooNew { found, known });
            }
            let Some(script) = scripts.get(found as usize) else {
                return Ok(false);
            };
            client.batch_execute(script).await.db()?;
            let next = i32::try_from(found + 1).unwrap_or(i32::MAX);
            client
                .execute("DELETE FROM schema_version", &[])
                .await
                .db()?;
            client
                .execute("INSERT INTO schema_version (version) VALUES ($1)", &[&next])
                .await
                .db()?;
            Ok(true)
        };
        match step.await {
            Ok(true) => client.batch_execute("COMMIT").await.db()?,
            Ok(false) => {
                client.batch_execute("COMMIT").await.db()?;
                return Ok(());
            }
            Err(error) => {
                // The error is the answer; a failed rollback only means the connection is gone.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_by_schema_and_purpose() {
        assert_eq!(lock_key("log", "a"), lock_key("log", "a"));
        assert_ne!(lock_key("log", "a"), lock_key("log", "b"));
        assert_ne!(lock_key("log", "a"), lock_key("migrate", "a"));
    }
}
