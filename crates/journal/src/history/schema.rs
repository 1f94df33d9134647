//! The history's schema: its migrations, applied by `rusqlite_migration`,
//! which keeps the version in `PRAGMA user_version` as retort always has:
//! a database written before the crate was used (by retort's own
//! migration loop) is at the same version with the same tables, and opens
//! as it is.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};
use rusqlite_migration::{M, Migrations, SchemaVersion};

use super::{HistoryError, sqlite_error};

/// The schema version this build writes (SQLite's `PRAGMA user_version`):
/// the number of schema migrations it knows (6).
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// The oldest schema version a read-only view
/// ([`History::open_read_only`](super::History::open_read_only))
/// can read as it is: the migrations after it add only indexes, which
/// change no query's result. Raise it with any migration that changes a
/// table.
pub(super) const OLDEST_READABLE: i64 = 1;

/// The migrations, in order: migration `n` (from 1) takes a database from
/// `user_version = n - 1` to `n`. Append; never edit a released one.
const STEPS: &[M<'static>] = &[
    M::up(
        r"
CREATE TABLE runs (
    seq         INTEGER PRIMARY KEY,
    formula     TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    at          TEXT NOT NULL,
    gate_open   INTEGER NOT NULL,
    gate_reason TEXT NOT NULL,
    phase       TEXT,
    reason      TEXT,
    finished_at TEXT
);
CREATE INDEX runs_by_formula ON runs (formula, seq);

CREATE TABLE findings (
    formula     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule        TEXT NOT NULL,
    label       TEXT,
    priority    TEXT NOT NULL,
    message     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'firing', 'resolved')),
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    consecutive INTEGER NOT NULL,
    last_run    INTEGER NOT NULL,
    fired_at    TEXT,
    reported_at TEXT,
    resolved_at TEXT,
    PRIMARY KEY (formula, fingerprint)
);

CREATE TABLE run_findings (
    run         INTEGER NOT NULL REFERENCES runs (seq),
    fingerprint TEXT NOT NULL,
    rule        TEXT NOT NULL,
    label       TEXT,
    priority    TEXT NOT NULL,
    message     TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (run, fingerprint)
);

CREATE TABLE proposals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    formula     TEXT NOT NULL,
    action      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    priority    TEXT NOT NULL,
    message     TEXT NOT NULL,
    argv        TEXT NOT NULL,
    env         TEXT NOT NULL,
    cwd         TEXT NOT NULL,
    timeout_ms  INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    created_run TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    decided_at  TEXT,
    decided_by  TEXT,
    note        TEXT
);
CREATE INDEX proposals_by_status ON proposals (status, formula);

CREATE TABLE action_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    formula     TEXT NOT NULL,
    action      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id      TEXT,
    proposal    INTEGER REFERENCES proposals (id),
    argv        TEXT NOT NULL,
    at          TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    exit_code   INTEGER,
    outcome     TEXT NOT NULL,
    error       TEXT,
    stdout      TEXT NOT NULL,
    stderr      TEXT NOT NULL,
    truncated   INTEGER NOT NULL
);
CREATE INDEX action_runs_by_key ON action_runs (formula, action, fingerprint, at);
",
    ),
    M::up(
        r"
-- Pruning finds the latest proposal of each action and fingerprint (as the
-- cooldowns' query does), and the action runs of a proposal (which SQLite
-- also looks up for the foreign key whenever a proposal is deleted).
CREATE INDEX proposals_by_key ON proposals (formula, action, fingerprint, created_at);
CREATE INDEX action_runs_by_proposal ON action_runs (proposal);
",
    ),
    M::up(crate::spend::MIGRATION),
    M::up(
        r"
-- Notifications: one row per message to one target (retort-notify's
-- DeliveryRecord). The key columns are what deduplication and `retort show`
-- search by; `record` is the whole record as JSON, as retort-notify writes it.
CREATE TABLE deliveries (
    id          TEXT PRIMARY KEY,
    formula     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    target      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    planned_at  TEXT NOT NULL,
    status      TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX deliveries_by_formula ON deliveries (formula, planned_at);
CREATE INDEX deliveries_by_run ON deliveries (run_id);
",
    ),
    // A run made by `retort rerun RUN_ID` names the run it reruns. A new
    // nullable column changes no earlier query's result.
    M::up("ALTER TABLE runs ADD COLUMN rerun_of TEXT;"),
    // Every attempt of every step (`RUN/attempts.json`). A new table changes
    // no earlier query's result; a read-only view of an older file reads it
    // as having no attempts.
    M::up(super::attempts::MIGRATION),
];

/// Migrates the database of `conn` (at `path`) to [`SCHEMA_VERSION`], all
/// the migrations it lacks in one `IMMEDIATE` transaction.
///
/// `rusqlite_migration` reads the version before it takes the write lock,
/// so two processes opening a new database at once can both set out to
/// migrate it; the second then fails (its `CREATE TABLE` finds the table)
/// and rolls back. So a failed migration is forgiven when the database is
/// at [`SCHEMA_VERSION`] afterwards: another process migrated it.
///
/// # Errors
/// [`HistoryError::TooNew`] for a database a newer retort wrote;
/// [`HistoryError::Sqlite`] when SQLite fails; [`HistoryError::Corrupt`]
/// when the version is not one retort writes (negative).
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let migrations = Migrations::from_slice(STEPS);
    let too_new = |version: SchemaVersion| match version {
        SchemaVersion::Outside(found) => Some(HistoryError::TooNew {
            path: path.to_path_buf(),
            found: i64::try_from(found.get()).unwrap_or(i64::MAX),
        }),
        _ => None,
    };
    let version = migrations
        .current_version(conn)
        .map_err(|error| migration_error(path, error))?;
    if let Some(error) = too_new(version) {
        return Err(error);
    }
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let migrated = migrations.to_latest(conn);
    conn.set_transaction_behavior(TransactionBehavior::Deferred);
    let Err(error) = migrated else {
        return Ok(());
    };
    match migrations.current_version(conn) {
        Ok(version) if usize::from(version) == STEPS.len() => Ok(()),
        Ok(version) => Err(too_new(version).unwrap_or_else(|| migration_error(path, error))),
        Err(_) => Err(migration_error(path, error)),
    }
}

/// A `rusqlite_migration` error as the history reports it: SQLite's own
/// error as [`HistoryError::Sqlite`], anything else (a negative
/// `user_version`) as [`HistoryError::Corrupt`].
fn migration_error(path: &Path, error: rusqlite_migration::Error) -> HistoryError {
    match error {
        rusqlite_migration::Error::RusqliteError { err, .. } => sqlite_error(path)(err),
        other => super::corrupt(path, format!("cannot migrate its schema: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_are_valid_sql_in_order() {
        Migrations::from_slice(STEPS).validate().unwrap();
        assert_eq!(SCHEMA_VERSION, 6);
    }
}
