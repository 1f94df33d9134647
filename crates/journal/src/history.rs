//! The run-history store: what earlier runs found and did, kept in SQLite so
//! that separate cron invocations can tell a new finding from an old one.
//!
//! One database serves every formula of a state directory:
//! `STATE/history.sqlite` ([`HISTORY_FILE`]). It holds
//!
//! | table          | one row per                                               |
//! |----------------|-----------------------------------------------------------|
//! | `runs`         | run that reached the decide phase (`seq` orders them)      |
//! | `findings`     | fingerprint of a formula: its state across runs            |
//! | `run_findings` | finding a run saw, with its state in that run              |
//! | `proposals`    | proposed action waiting for (or given) a human's decision  |
//! | `action_runs`  | action started, automatically or by `retort approve`       |
//! | `deliveries`   | notification message to one target (retort-notify's record) |
//!
//! Rows do not stay for ever: [`History::prune`] removes what a formula's
//! runs left before a given time (its `[history] keep`), except what later
//! runs still read: the formula's latest run, the latest attempt of each
//! action for each finding (cooldowns count from it), pending proposals and
//! the `findings` table.
//!
//! The schema is versioned with `PRAGMA user_version` ([`SCHEMA_VERSION`]);
//! [`History::open`] applies the migrations a database lacks, in order, in
//! one transaction (with `rusqlite_migration`), and refuses a database
//! written by a newer retort.
//! Writers use WAL mode (readers never block the writer), `synchronous =
//! NORMAL` (a commit does not wait for fsync; a power cut may lose the last
//! records, never corrupt the file) and a busy timeout of
//! [`BUSY_TIMEOUT`], so that a run, `retort approve` and `retort proposals`
//! can overlap. [`History::sync_commits`] syncs the commits made so far:
//! a run calls it after it records its end, which then survives a crash of
//! the machine.
//! Closing a connection does not checkpoint the WAL (SQLite's
//! `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`) until the WAL is past
//! [`WAL_CHECKPOINT_BYTES`]: then the writer closing it checkpoints it and
//! truncates it to nothing. A checkpoint at every close, and the WAL
//! created afresh by every run, cost four fsyncs a run (milliseconds each),
//! more than any other part of a healthy run; the next open reading the
//! short WAL costs well under one. (SQLite's own `wal_autocheckpoint` is
//! off: a WAL that outlives its connection is read back as not yet
//! checkpointed, so it would grow for ever and be copied again at every
//! commit.)
//! [`History::open_read_only`] reads without writing a byte.
//!
//! Times are stored as RFC 3339 text in UTC with milliseconds
//! (`2026-11-21T11:20:00.000Z`), which sorts in time order.
//!
//! The parts, one file each under `history/`: `schema.rs` (the migrations),
//! `records.rs` (the rows as Rust values), `runs.rs` (a run's end,
//! abandoned runs, reruns, a formula's runs), `actions.rs` (action runs
//! and proposals), `queries.rs` (read-only
//! queries for looking back), `deliveries.rs` (notification deliveries), `rows.rs` (reading and writing
//! them, shared by the database and its transactions), `transaction.rs`
//! (a run's writes, in one transaction), `prune.rs` (what
//! [`History::prune`] removes), `read_only.rs` (opening without writing),
//! `recover.rs` (a corrupt file moved aside, [`History::open_or_recover`]).

mod actions;
mod attempts;
mod deliveries;
mod prune;
mod queries;
mod read_only;
mod records;
mod recover;
mod rows;
mod runs;
mod schema;
mod transaction;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use thiserror::Error;

pub use attempts::StepAttemptRecord;
pub use queries::FingerprintCount;
pub use records::{
    ActionRunRecord, FindingRecord, FindingStatus, FormulaState, NewProposal, ProposalRecord,
    ProposalStatus, PrunedRows, RunFindingRecord, RunRecord,
};
pub use recover::{Recovered, corrupt_name};
pub use rows::time_text;
pub use schema::SCHEMA_VERSION;
pub use transaction::HistoryTransaction;

use read_only::{immutable_uri, private_copy, sibling};
use rows::read_state;
use schema::{OLDEST_READABLE, migrate};

/// The history database's file name in the state directory.
pub const HISTORY_FILE: &str = "history.sqlite";

/// How many of a formula's latest runs keep their `run_findings`: 1000,
/// about two weeks of runs every 20 minutes.
pub const RUN_FINDINGS_KEPT: i64 = 1000;

/// How long a writer waits for another process's lock before giving up: 5 seconds.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL's size, in bytes, past which a writer closing the history
/// checkpoints the WAL into the database and truncates it (1 MiB). A
/// healthy run adds a few 4 KiB pages, so this is a checkpoint every few
/// dozen runs, and the WAL that each open reads stays near 1 MiB.
pub const WAL_CHECKPOINT_BYTES: u64 = 1 << 20;

/// The history store could not be used.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// The database's directory could not be created, or the database
    /// copied for a read-only view.
    #[error("cannot create or copy {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// SQLite failed: the file is unreadable, locked past the busy timeout,
    /// not a database, or corrupt.
    #[error("run history {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer retort.
    #[error(
        "run history {}: schema version {found} is newer than this retort's ({SCHEMA_VERSION}); upgrade retort, or move the file aside to start a new history",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// A stored value is not what this retort wrote (a hand-edited database).
    #[error("run history {}: {what}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// The run-history database.
#[derive(Debug)]
pub struct History {
    conn: Connection,
    path: PathBuf,
    /// The private copy a read-only view reads, removed on drop.
    _copy: Option<tempfile::TempDir>,
    /// Opened to write ([`History::open`]): checkpoints on drop when the
    /// WAL is past [`WAL_CHECKPOINT_BYTES`].
    writer: bool,
}

impl Drop for History {
    fn drop(&mut self) {
        let wal = sibling(&self.path, "-wal");
        let large = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_CHECKPOINT_BYTES);
        if self.writer && large {
            // Best effort: a checkpoint that cannot finish (another
            // connection reading) is retried by the next writer to close.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

/// The history database of the state directory `state_dir`: `STATE/history.sqlite`.
pub fn history_file(state_dir: &Path) -> PathBuf {
    state_dir.join(HISTORY_FILE)
}

impl History {
    /// Opens the database at `path` for reading and writing, creating it
    /// (and its directory) when missing, mode 0600 (its `-wal` and `-shm`
    /// files take that mode from it), and migrating it to
    /// [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`] when it cannot be created, opened or
    /// migrated; [`HistoryError::TooNew`] when a newer retort wrote it.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // Created here, 0600, rather than by SQLite with the umask's mode:
        // SQLite gives the `-wal` and `-shm` files the database's mode.
        match std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create_new(true),
            0o600,
        )
        .open(path)
        {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(HistoryError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        let fail = sqlite_error(path);
        let mut conn = Connection::open(path).map_err(&fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&fail)?;
        // Switching a new database to WAL takes an exclusive lock, and
        // SQLite answers SQLITE_BUSY there without its busy handler while
        // another connection switches it too: retried within BUSY_TIMEOUT.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(error, _))
                    if error.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => break result.map_err(&fail)?,
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&fail)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(&fail)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(&fail)?;
        migrate(&mut conn, path)?;
        Ok(History {
            conn,
            path: path.to_path_buf(),
            _copy: None,
            writer: true,
        })
    }

    /// Opens the database at `path` without writing anything, or returns
    /// `None` when there is no database yet.
    ///
    /// A database without a `-wal` file (no writer has it open) is opened
    /// `immutable`, which creates no `-wal` or `-shm` file. One with a
    /// `-wal` file (a writer has it open, or crashed) is copied, with its
    /// WAL, into a private temporary directory and read there: even a
    /// read-only SQLite connection writes the `-shm` index of a WAL
    /// database. The
    /// copy is taken without locks; committed transactions are whole in it
    /// (the WAL is append-only and checksummed), but a checkpoint running at
    /// that very moment can make it fail to read, which is then an error.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`] when it is not a readable database;
    /// [`HistoryError::Io`] when it cannot be copied;
    /// [`HistoryError::TooNew`] when a newer retort wrote it.
    pub fn open_read_only(path: &Path) -> Result<Option<History>, HistoryError> {
        if !path.exists() {
            return Ok(None);
        }
        let fail = sqlite_error(path);
        let wal = sibling(path, "-wal");
        let (conn, copy) = if wal.exists() {
            let copy = private_copy(path, &wal)?;
            let file = copy.path().join(HISTORY_FILE);
            let conn = Connection::open(&file).map_err(&fail)?;
            // The copy is thrown away: nothing of it is worth an fsync.
            conn.pragma_update(None, "synchronous", "OFF")
                .map_err(&fail)?;
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .map_err(&fail)?;
            (conn, Some(copy))
        } else {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(immutable_uri(path), flags).map_err(&fail)?;
            (conn, None)
        };
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(&fail)?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::TooNew {
                path: path.to_path_buf(),
                found: version,
            });
        }
        if version < OLDEST_READABLE {
            // Empty (version 0) and read-only: nothing to read yet.
            return Ok(None);
        }
        Ok(Some(History {
            conn,
            path: path.to_path_buf(),
            _copy: copy,
            writer: false,
        }))
    }

    /// Syncs every commit made so far to disk, so that it survives a crash
    /// of the machine, not only of retort: one `fdatasync(2)` of the WAL,
    /// where the commits are (SQLite's `synchronous = FULL` would sync at
    /// each commit instead, and the directory too for the connection's
    /// first). SQLite synced the WAL's header and its directory entry when
    /// it started the WAL. A run calls it once, after its last record.
    ///
    /// # Errors
    /// [`HistoryError::Io`] when the WAL cannot be opened or synced.
    pub fn sync_commits(&self) -> Result<(), HistoryError> {
        let wal = sibling(&self.path, "-wal");
        let io = |source| HistoryError::Io {
            path: wal.clone(),
            source,
        };
        match std::fs::File::open(&wal) {
            Ok(file) => file.sync_data().map_err(io),
            // No WAL: every commit is in the database file, synced by the
            // checkpoint that moved it there.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io(error)),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the history says of `formula`.
    ///
    /// # Errors
    /// [`HistoryError`] when it cannot be read.
    pub fn state(&self, formula: &str) -> Result<FormulaState, HistoryError> {
        read_state(&self.conn, &self.path, formula)
    }

    /// Starts a write transaction, taking SQLite's write lock at once
    /// (`BEGIN IMMEDIATE`), so that what is read in it is still true at
    /// commit.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`], for example when another writer holds the
    /// lock past the busy timeout.
    pub fn transaction(&mut self) -> Result<HistoryTransaction<'_>, HistoryError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error(&self.path))?;
        Ok(HistoryTransaction {
            tx,
            path: &self.path,
        })
    }

    /// The connection, for the other tables' modules ([`crate::spend`]).
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

pub(crate) fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
    move |source| HistoryError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, what: String) -> HistoryError {
    HistoryError::Corrupt {
        path: path.to_path_buf(),
        what,
    }
}
