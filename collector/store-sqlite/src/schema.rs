//! Versioned migrations: `schema_version` holds the number of scripts applied; each script runs
//! in its own transaction at open, so a crash mid-migration leaves the previous version intact.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::Db;
use collector_store::StoreError;

/// The scripts in order; script `i` takes the schema from version `i` to `i + 1`. Only ever
/// append: a released script is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_log.sql"),
    include_str!("migrations/0003_ledger.sql"),
    include_str!("migrations/0004_witness.sql"),
    include_str!("migrations/0005_hardware.sql"),
    include_str!("migrations/0006_rejection_count.sql"),
    include_str!("migrations/0007_measurements.sql"),
];

/// The schema version this build writes.
pub(crate) fn known_version() -> u32 {
    // The list is a handful of scripts; it can never reach u32::MAX.
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// Brings the database up to `known_version`, refusing one written by a newer build; returns
/// the version it found.
pub(crate) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    migrate_with(conn, MIGRATIONS)
}

/// Brings the database up to `version` only: a database as an older build left it.
#[cfg(test)]
pub(crate) fn migrate_to(conn: &mut Connection, version: usize) -> Result<u32, StoreError> {
    migrate_with(conn, &MIGRATIONS[..version])
}

fn migrate_with(conn: &mut Connection, scripts: &[&str]) -> Result<u32, StoreError> {
    let known = u32::try_from(scripts.len()).unwrap_or(u32::MAX);
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .db()?;
    let mut first_found = None;
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening
        // the same file cannot both apply the same script.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let found = current_version(&tx)?;
        let first = *first_found.get_or_insert(found);
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        let Some(script) = scripts.get(found as usize) else {
            return Ok(first);
        };
        tx.execute_batch(script).db()?;
        tx.execute("DELETE FROM schema_version", []).db()?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [found + 1],
        )
        .db()?;
        tx.commit().db()?;
    }
}

fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: Option<i64> = conn
        .query_row("SELECT max(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .optional()
        .db()?
        .flatten();
    let version = version.unwrap_or(0);
    u32::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("schema_version holds {version}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_each_script_once_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        let scripts = ["CREATE TABLE a (x)", "CREATE TABLE b (y)"];
        migrate_with(&mut conn, &scripts[..1]).unwrap();
        assert_eq!(current_version(&conn).unwrap(), 1);
        // Re-running with more scripts applies only the new one (CREATE TABLE a would fail).
        migrate_with(&mut conn, &scripts).unwrap();
        assert_eq!(current_version(&conn).unwrap(), 2);
        migrate_with(&mut conn, &scripts).unwrap();
        assert_eq!(current_version(&conn).unwrap(), 2);
    }

    #[test]
    fn a_newer_database_is_refused_naming_both_versions() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &["CREATE TABLE a (x)", "CREATE TABLE b (y)"]).unwrap();
        let error = migrate_with(&mut conn, &["CREATE TABLE a (x)"]).unwrap_err();
        assert!(matches!(
            error,
            StoreError::SchemaTooNew { found: 2, known: 1 }
        ));
        let message = error.to_string();
        assert!(message.contains('2') && message.contains('1'), "{message}");
    }

    #[test]
    fn a_failing_script_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let scripts = [
            "CREATE TABLE a (x)",
            "CREATE TABLE b (y); SELECT * FROM missing",
        ];
        assert!(migrate_with(&mut conn, &scripts).is_err());
        assert_eq!(current_version(&conn).unwrap(), 1);
        let b_exists: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(b_exists, 0);
    }

    #[test]
    fn the_shipped_scripts_apply_to_an_empty_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), known_version());
    }
}
