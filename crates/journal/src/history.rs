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
//!
//! Rows do not stay for ever: [`History::prune`] removes what a formula's
//! runs left before a given time (its `[history] keep`), except what later
//! runs still read: the formula's latest run, the latest attempt of each
//! action for each finding (cooldowns count from it), pending proposals and
//! the `findings` table.
//!
//! The schema is versioned with `PRAGMA user_version` ([`SCHEMA_VERSION`]);
//! [`History::open`] applies the migrations a database lacks, in order, in
//! one transaction, and refuses a database written by a newer retort.
//! Writers use WAL mode (readers never block the writer), `synchronous =
//! NORMAL` (a commit does not wait for fsync; a power cut may lose the last
//! runs' records, never corrupt the file) and a busy timeout of
//! [`BUSY_TIMEOUT`], so that a run, `retort approve` and `retort proposals`
//! can overlap. The last connection to close checkpoints the WAL into the
//! database and removes it (keeping the WAL instead makes the next open
//! rebuild its index from the whole WAL, which costs more than the
//! checkpoint), so between runs the history is one file.
//! [`History::open_read_only`] reads without writing a byte.
//!
//! Times are stored as RFC 3339 text in UTC with milliseconds
//! (`2026-11-21T11:20:00.000Z`), which sorts in time order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use thiserror::Error;

/// The history database's file name in the state directory.
pub const HISTORY_FILE: &str = "history.sqlite";

/// The schema version this build writes (SQLite's `PRAGMA user_version`):
/// the number of schema migrations it knows.
pub const SCHEMA_VERSION: i64 = 3;

/// The oldest schema version a read-only view ([`History::open_read_only`])
/// can read as it is: the migrations after it add only indexes, which
/// change no query's result. Raise it with any migration that changes a
/// table.
const OLDEST_READABLE: i64 = 1;

/// How many of a formula's latest runs keep their `run_findings`: 1000,
/// about two weeks of runs every 20 minutes.
pub const RUN_FINDINGS_KEPT: i64 = 1000;

/// How long a writer waits for another process's lock before giving up: 5 seconds.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order: migration `n` (from 1) takes a database from
/// `user_version = n - 1` to `n`. Append; never edit a released one.
const MIGRATIONS: &[&str] = &[
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
    r"
-- Pruning finds the latest proposal of each action and fingerprint (as the
-- cooldowns' query does), and the action runs of a proposal (which SQLite
-- also looks up for the foreign key whenever a proposal is deleted).
CREATE INDEX proposals_by_key ON proposals (formula, action, fingerprint, created_at);
CREATE INDEX action_runs_by_proposal ON action_runs (proposal);
",
    crate::spend::MIGRATION,
];

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

/// A finding's state across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingStatus {
    /// The rule's condition holds, but not yet for the rule's `for` runs.
    Pending,
    /// The finding fired and its condition still held at the last run.
    Firing,
    /// The finding fired and its condition has since stopped holding.
    Resolved,
}

impl FindingStatus {
    /// `pending`, `firing` or `resolved`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Pending => "pending",
            FindingStatus::Firing => "firing",
            FindingStatus::Resolved => "resolved",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(FindingStatus::Pending),
            "firing" => Some(FindingStatus::Firing),
            "resolved" => Some(FindingStatus::Resolved),
            _ => None,
        }
    }
}

/// One fingerprint's row in `findings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    /// The rule id, plus `[label]` for a rule over a list: `disk-pressure[/]`.
    pub fingerprint: String,
    /// The rule's id.
    pub rule: String,
    /// The list item's label, for a rule over a list.
    pub label: Option<String>,
    /// `P0` … `P4` or `info`.
    pub priority: String,
    /// The message as last rendered.
    pub message: String,
    /// Where it stands.
    pub status: FindingStatus,
    /// When its condition started to hold (this episode).
    pub first_seen: DateTime<Utc>,
    /// When its condition last held.
    pub last_seen: DateTime<Utc>,
    /// For how many consecutive runs of its formula the condition has held.
    pub consecutive: u32,
    /// The `seq` of the last run that evaluated it.
    pub last_run: i64,
    /// When it fired (this episode).
    pub fired_at: Option<DateTime<Utc>>,
    /// When it was last reported as new (at firing, and again after each `repeat`).
    pub reported_at: Option<DateTime<Utc>>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A finding as one run saw it, in `run_findings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFindingRecord {
    /// As [`FindingRecord::fingerprint`].
    pub fingerprint: String,
    /// The rule's id.
    pub rule: String,
    /// The list item's label.
    pub label: Option<String>,
    /// `P0` … `P4` or `info`.
    pub priority: String,
    /// The rendered message.
    pub message: String,
    /// `new`, `firing`, `pending` or `resolved`.
    pub state: String,
}

/// A run's row in `runs`, with the findings it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's position in the history (all formulas share the sequence).
    pub seq: i64,
    /// The formula's name.
    pub formula: String,
    /// The run id.
    pub run_id: String,
    /// The time the run decided at (its snapshot's `collected_at`).
    pub at: DateTime<Utc>,
    /// Whether the gate let the agent start.
    pub gate_open: bool,
    /// Why the gate opened or stayed closed.
    pub gate_reason: String,
    /// `done`, `failed` or `escalate`; none when the run has not ended (or crashed).
    pub phase: Option<String>,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The findings it saw.
    pub findings: Vec<RunFindingRecord>,
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Waiting for `retort approve` or `retort reject`.
    Pending,
    /// Approved and run.
    Approved,
    /// Rejected.
    Rejected,
    /// Closed by retort because its finding resolved first.
    Expired,
}

impl ProposalStatus {
    /// `pending`, `approved`, `rejected` or `expired`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Approved => "approved",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(ProposalStatus::Pending),
            "approved" => Some(ProposalStatus::Approved),
            "rejected" => Some(ProposalStatus::Rejected),
            "expired" => Some(ProposalStatus::Expired),
            _ => None,
        }
    }
}

impl std::fmt::Display for ProposalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A proposed action to store: everything needed to run it later without
/// the formula.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProposal {
    /// The formula's name.
    pub formula: String,
    /// The action's id.
    pub action: String,
    /// The finding it answers.
    pub fingerprint: String,
    /// The finding's priority.
    pub priority: String,
    /// The finding's message.
    pub message: String,
    /// The command, rendered: program and arguments, run without a shell.
    pub argv: Vec<String>,
    /// Environment variables to add when it runs.
    pub env: Vec<(String, String)>,
    /// The directory to run it in.
    pub cwd: PathBuf,
    /// How long it may run, in milliseconds.
    pub timeout_ms: u64,
    /// When it was proposed.
    pub created_at: DateTime<Utc>,
    /// The run that proposed it.
    pub created_run: String,
}

/// A stored proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRecord {
    /// Its id, as `retort approve ID` takes it.
    pub id: i64,
    /// What was proposed.
    pub proposal: NewProposal,
    /// Where it stands.
    pub status: ProposalStatus,
    /// When it was approved, rejected or expired.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided (`$USER`), or `retort` for an expiry.
    pub decided_by: Option<String>,
    /// The reason given, or why it expired.
    pub note: Option<String>,
}

/// An action that was started (or could not be), for `action_runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRunRecord {
    /// The formula's name.
    pub formula: String,
    /// The action's id.
    pub action: String,
    /// The finding it answered.
    pub fingerprint: String,
    /// The run that started it (automatic actions).
    pub run_id: Option<String>,
    /// The proposal it carried out (`retort approve`).
    pub proposal: Option<i64>,
    /// The command as run.
    pub argv: Vec<String>,
    /// When it started.
    pub at: DateTime<Utc>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// Its exit status, when it exited normally.
    pub exit_code: Option<i32>,
    /// `ok`, `failed`, `timed-out` or `not-started`.
    pub outcome: String,
    /// Why it failed to start, was killed, or timed out.
    pub error: Option<String>,
    /// Its standard output (size-capped).
    pub stdout: String,
    /// Its standard error (size-capped).
    pub stderr: String,
    /// Whether output was cut at the cap.
    pub truncated: bool,
}

/// What the history says of one formula, as the decide phase needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormulaState {
    /// The `seq` the next run of any formula gets.
    pub next_seq: i64,
    /// The formula's last run, with its findings.
    pub previous: Option<RunRecord>,
    /// Every finding row of the formula (pending, firing and resolved).
    pub findings: Vec<FindingRecord>,
    /// Pending proposals of the formula, oldest first.
    pub pending_proposals: Vec<ProposalRecord>,
    /// For each (action, fingerprint) of the formula, the last time the
    /// action was run or proposed for it: what cooldowns count from.
    pub last_attempts: Vec<(String, String, DateTime<Utc>)>,
}

impl FormulaState {
    /// The last time `action` was run or proposed for `fingerprint`.
    pub fn last_attempt(&self, action: &str, fingerprint: &str) -> Option<DateTime<Utc>> {
        self.last_attempts
            .iter()
            .find(|(a, f, _)| a == action && f == fingerprint)
            .map(|(_, _, at)| *at)
    }

    /// The pending proposal of `action` for `fingerprint`, if there is one.
    pub fn pending_proposal(&self, action: &str, fingerprint: &str) -> Option<&ProposalRecord> {
        self.pending_proposals
            .iter()
            .find(|p| p.proposal.action == action && p.proposal.fingerprint == fingerprint)
    }
}

/// What [`History::prune`] removed, in rows of each table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrunedRows {
    /// Rows of `runs`.
    pub runs: u64,
    /// Rows of `run_findings` (of the runs removed).
    pub run_findings: u64,
    /// Rows of `action_runs`.
    pub action_runs: u64,
    /// Rows of `proposals` (approved, rejected or expired).
    pub proposals: u64,
}

impl PrunedRows {
    /// All the rows removed.
    pub fn total(&self) -> u64 {
        self.runs + self.run_findings + self.action_runs + self.proposals
    }
}

/// The run-history database.
#[derive(Debug)]
pub struct History {
    conn: Connection,
    path: PathBuf,
    /// The private copy a read-only view reads, removed on drop.
    _copy: Option<tempfile::TempDir>,
}

/// The history database of the state directory `state_dir`: `STATE/history.sqlite`.
pub fn history_file(state_dir: &Path) -> PathBuf {
    state_dir.join(HISTORY_FILE)
}

impl History {
    /// Opens the database at `path` for reading and writing, creating it
    /// (and its directory) when missing and migrating it to
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
        let fail = sqlite_error(path);
        let mut conn = Connection::open(path).map_err(&fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&fail)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&fail)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&fail)?;
        migrate(&mut conn, path)?;
        Ok(History {
            conn,
            path: path.to_path_buf(),
            _copy: None,
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
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the other tables' modules ([`crate::spend`]).
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
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

    /// Records the end of run `run_id`.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn finish_run(
        &self,
        run_id: &str,
        phase: &str,
        reason: Option<&str>,
        finished_at: DateTime<Utc>,
    ) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE runs SET phase = ?1, reason = ?2, finished_at = ?3 WHERE run_id = ?4",
                params![phase, reason, time_text(finished_at), run_id],
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(())
    }

    /// Records an action that was started (or could not be); returns its id.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn record_action_run(&self, record: &ActionRunRecord) -> Result<i64, HistoryError> {
        insert_action_run(&self.conn, &self.path, record)
    }

    /// The proposals with `status` (every proposal when `None`), oldest
    /// first, of every formula.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn proposals(
        &self,
        status: Option<ProposalStatus>,
    ) -> Result<Vec<ProposalRecord>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let (sql, status) = match status {
            Some(status) => (
                format!("{PROPOSAL_COLUMNS} WHERE status = ?1 ORDER BY id"),
                status.as_str(),
            ),
            None => (format!("{PROPOSAL_COLUMNS} WHERE ?1 = ?1 ORDER BY id"), ""),
        };
        let mut statement = self.conn.prepare(&sql).map_err(&fail)?;
        let rows = statement
            .query_map(params![status], proposal_row)
            .map_err(&fail)?;
        collect_rows(rows, &self.path)
    }

    /// The proposal `id`, if there is one.
    ///
    /// # Errors
    /// [`HistoryError`] when it cannot be read.
    pub fn proposal(&self, id: i64) -> Result<Option<ProposalRecord>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let row = self
            .conn
            .query_row(
                &format!("{PROPOSAL_COLUMNS} WHERE id = ?1"),
                params![id],
                proposal_row,
            )
            .optional()
            .map_err(&fail)?;
        row.map(|r| r.map_err(|what| corrupt(&self.path, what)))
            .transpose()
    }

    /// Moves proposal `id` from pending to `status` (approved, rejected or
    /// expired), recording who and why. Returns `false`, changing nothing,
    /// when the proposal is not pending: of two concurrent approvals only
    /// one wins.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn decide_proposal(
        &self,
        id: i64,
        status: ProposalStatus,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, HistoryError> {
        decide_proposal(&self.conn, &self.path, id, status, by, note, at)
    }

    /// The runs of actions started for proposal `id`.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn action_runs_of_proposal(&self, id: i64) -> Result<Vec<ActionRunRecord>, HistoryError> {
        self.action_runs_where("proposal", &id)
    }

    /// The action runs started by run `run_id`, in order.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn action_runs_of_run(&self, run_id: &str) -> Result<Vec<ActionRunRecord>, HistoryError> {
        self.action_runs_where("run_id", &run_id)
    }

    /// The action runs whose `column` equals `value`, in order. `column` is
    /// one of this file's own column names, never user input.
    fn action_runs_where(
        &self,
        column: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Vec<ActionRunRecord>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare(&format!(
                "{ACTION_RUN_COLUMNS} WHERE {column} = ?1 ORDER BY id"
            ))
            .map_err(&fail)?;
        let rows = statement
            .query_map([value], action_run_row)
            .map_err(&fail)?;
        collect_rows(rows, &self.path)
    }

    /// Removes, in one transaction, the rows `formula` left in the history
    /// from before `before`:
    ///
    /// - its runs that decided before `before`, with their `run_findings`,
    ///   except its latest run (the next run's `previous`), however old;
    /// - its action runs that started before `before`, except the latest of
    ///   each action for each fingerprint, however old (cooldowns count
    ///   from it), and those of proposals that are kept;
    /// - its approved, rejected and expired proposals decided before
    ///   `before`, except the latest proposal of each action for each
    ///   fingerprint (cooldowns count from it too) and those with an action
    ///   run that is kept.
    ///
    /// Pending proposals, the `findings` table and other formulas' rows are
    /// never touched. Each query uses an index: runs by formula, action runs
    /// and proposals by formula, action and fingerprint, action runs by
    /// proposal.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`]: nothing is removed then.
    pub fn prune(
        &mut self,
        formula: &str,
        before: DateTime<Utc>,
    ) -> Result<PrunedRows, HistoryError> {
        let fail = sqlite_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let before = time_text(before);
        let mut removed = [0_u64; 4];
        for (count, sql) in removed.iter_mut().zip(prune_statements()) {
            let rows = tx.execute(&sql, params![formula, before]).map_err(&fail)?;
            *count = u64::try_from(rows).unwrap_or(u64::MAX);
        }
        let [run_findings, runs, action_runs, proposals] = removed;
        tx.commit().map_err(&fail)?;
        Ok(PrunedRows {
            runs,
            run_findings,
            action_runs,
            proposals,
        })
    }

    /// Every run of `formula`, oldest first, with its findings.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn runs(&self, formula: &str) -> Result<Vec<RunRecord>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare(&format!("{RUN_COLUMNS} WHERE formula = ?1 ORDER BY seq"))
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![formula], run_row)
            .map_err(&fail)?;
        let mut runs = collect_rows(rows, &self.path)?;
        for run in &mut runs {
            run.findings = run_findings(&self.conn, &self.path, run.seq)?;
        }
        Ok(runs)
    }
}

/// A write transaction on the history (see [`History::transaction`]).
/// Dropped without [`commit`](Self::commit), it rolls back.
#[derive(Debug)]
pub struct HistoryTransaction<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
}

impl HistoryTransaction<'_> {
    /// What the history says of `formula`, as of this transaction.
    ///
    /// # Errors
    /// [`HistoryError`] when it cannot be read.
    pub fn state(&self, formula: &str) -> Result<FormulaState, HistoryError> {
        read_state(&self.tx, self.path, formula)
    }

    /// Records a run (its `findings` are its `run_findings`).
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`], for example when `seq` is taken.
    pub fn insert_run(&self, run: &RunRecord) -> Result<(), HistoryError> {
        let fail = sqlite_error(self.path);
        self.tx
            .execute(
                "INSERT INTO runs (seq, formula, run_id, at, gate_open, gate_reason, phase, reason, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run.seq,
                    run.formula,
                    run.run_id,
                    time_text(run.at),
                    run.gate_open,
                    run.gate_reason,
                    run.phase,
                    run.reason,
                    run.finished_at.map(time_text),
                ],
            )
            .map_err(&fail)?;
        let mut statement = self
            .tx
            .prepare_cached(
                "INSERT INTO run_findings (run, fingerprint, rule, label, priority, message, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(&fail)?;
        for finding in &run.findings {
            statement
                .execute(params![
                    run.seq,
                    finding.fingerprint,
                    finding.rule,
                    finding.label,
                    finding.priority,
                    finding.message,
                    finding.state,
                ])
                .map_err(&fail)?;
        }
        Ok(())
    }

    /// Forgets the `run_findings` of `formula`'s runs older than its last
    /// [`RUN_FINDINGS_KEPT`] runs (the runs themselves stay), so that the
    /// history does not grow without end.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn prune_run_findings(&self, formula: &str) -> Result<(), HistoryError> {
        self.tx
            .execute(
                "DELETE FROM run_findings WHERE run < (
                     SELECT MIN(seq) FROM (
                         SELECT seq FROM runs WHERE formula = ?1 ORDER BY seq DESC LIMIT ?2))
                 AND run IN (SELECT seq FROM runs WHERE formula = ?1)",
                params![formula, RUN_FINDINGS_KEPT],
            )
            .map_err(sqlite_error(self.path))?;
        Ok(())
    }

    /// Inserts or replaces the row of `finding` for `formula`.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn put_finding(&self, formula: &str, finding: &FindingRecord) -> Result<(), HistoryError> {
        let mut statement = self
            .tx
            .prepare_cached(
                "INSERT OR REPLACE INTO findings (formula, fingerprint, rule, label, priority, message, status,
                     first_seen, last_seen, consecutive, last_run, fired_at, reported_at, resolved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(sqlite_error(self.path))?;
        statement
            .execute(params![
                formula,
                finding.fingerprint,
                finding.rule,
                finding.label,
                finding.priority,
                finding.message,
                finding.status.as_str(),
                time_text(finding.first_seen),
                time_text(finding.last_seen),
                finding.consecutive,
                finding.last_run,
                finding.fired_at.map(time_text),
                finding.reported_at.map(time_text),
                finding.resolved_at.map(time_text),
            ])
            .map_err(sqlite_error(self.path))?;
        Ok(())
    }

    /// Deletes the row of `fingerprint` for `formula` (a pending finding
    /// whose condition stopped holding before it fired).
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn delete_finding(&self, formula: &str, fingerprint: &str) -> Result<(), HistoryError> {
        self.tx
            .execute(
                "DELETE FROM findings WHERE formula = ?1 AND fingerprint = ?2",
                params![formula, fingerprint],
            )
            .map_err(sqlite_error(self.path))?;
        Ok(())
    }

    /// Stores a pending proposal; returns its id.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn add_proposal(&self, proposal: &NewProposal) -> Result<i64, HistoryError> {
        let fail = sqlite_error(self.path);
        self.tx
            .execute(
                "INSERT INTO proposals (formula, action, fingerprint, priority, message, argv, env, cwd,
                     timeout_ms, created_at, created_run, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending')",
                params![
                    proposal.formula,
                    proposal.action,
                    proposal.fingerprint,
                    proposal.priority,
                    proposal.message,
                    json_text(&proposal.argv),
                    json_text(&proposal.env),
                    proposal.cwd.display().to_string(),
                    i64::try_from(proposal.timeout_ms).unwrap_or(i64::MAX),
                    time_text(proposal.created_at),
                    proposal.created_run,
                ],
            )
            .map_err(&fail)?;
        Ok(self.tx.last_insert_rowid())
    }

    /// As [`History::decide_proposal`], inside this transaction.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn decide_proposal(
        &self,
        id: i64,
        status: ProposalStatus,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, HistoryError> {
        decide_proposal(&self.tx, self.path, id, status, by, note, at)
    }

    /// Records an action run inside this transaction; returns its id.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn record_action_run(&self, record: &ActionRunRecord) -> Result<i64, HistoryError> {
        insert_action_run(&self.tx, self.path, record)
    }

    /// Commits everything written in the transaction.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn commit(self) -> Result<(), HistoryError> {
        self.tx.commit().map_err(sqlite_error(self.path))
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let fail = sqlite_error(path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&fail)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(&fail)?;
    if version > SCHEMA_VERSION {
        return Err(HistoryError::TooNew {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let start = usize::try_from(version).unwrap_or(0);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(migration).map_err(&fail)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).unwrap_or(i64::MAX),
        )
        .map_err(&fail)?;
    }
    tx.commit().map_err(&fail)
}

fn read_state(conn: &Connection, path: &Path, formula: &str) -> Result<FormulaState, HistoryError> {
    let fail = sqlite_error(path);
    let next_seq: i64 = conn
        .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs", [], |row| {
            row.get(0)
        })
        .map_err(&fail)?;

    let previous = conn
        .query_row(
            &format!("{RUN_COLUMNS} WHERE formula = ?1 ORDER BY seq DESC LIMIT 1"),
            params![formula],
            run_row,
        )
        .optional()
        .map_err(&fail)?
        .map(|r| r.map_err(|what| corrupt(path, what)))
        .transpose()?;
    let previous = match previous {
        Some(mut run) => {
            run.findings = run_findings(conn, path, run.seq)?;
            Some(run)
        }
        None => None,
    };

    let mut statement = conn
        .prepare_cached(
            "SELECT fingerprint, rule, label, priority, message, status, first_seen, last_seen,
                    consecutive, last_run, fired_at, reported_at, resolved_at
             FROM findings WHERE formula = ?1 ORDER BY fingerprint",
        )
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![formula], finding_row)
        .map_err(&fail)?;
    let findings = collect_rows(rows, path)?;

    let mut statement = conn
        .prepare_cached(&format!(
            "{PROPOSAL_COLUMNS} WHERE status = 'pending' AND formula = ?1 ORDER BY id"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![formula], proposal_row)
        .map_err(&fail)?;
    let pending_proposals = collect_rows(rows, path)?;

    let mut statement = conn
        .prepare_cached(
            "SELECT action, fingerprint, MAX(at) FROM (
                 SELECT action, fingerprint, at FROM action_runs WHERE formula = ?1
                 UNION ALL
                 SELECT action, fingerprint, created_at FROM proposals WHERE formula = ?1
             ) GROUP BY action, fingerprint",
        )
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![formula], |row| {
            let action: String = row.get(0)?;
            let fingerprint: String = row.get(1)?;
            let at: String = row.get(2)?;
            Ok(parse_time(&at).map(|at| (action, fingerprint, at)))
        })
        .map_err(&fail)?;
    let last_attempts = collect_rows(rows, path)?;

    Ok(FormulaState {
        next_seq,
        previous,
        findings,
        pending_proposals,
        last_attempts,
    })
}

fn run_findings(
    conn: &Connection,
    path: &Path,
    seq: i64,
) -> Result<Vec<RunFindingRecord>, HistoryError> {
    let fail = sqlite_error(path);
    let mut statement = conn
        .prepare_cached(
            "SELECT fingerprint, rule, label, priority, message, state
             FROM run_findings WHERE run = ?1 ORDER BY fingerprint",
        )
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![seq], |row| {
            Ok(Ok(RunFindingRecord {
                fingerprint: row.get(0)?,
                rule: row.get(1)?,
                label: row.get(2)?,
                priority: row.get(3)?,
                message: row.get(4)?,
                state: row.get(5)?,
            }))
        })
        .map_err(&fail)?;
    collect_rows(rows, path)
}

fn decide_proposal(
    conn: &Connection,
    path: &Path,
    id: i64,
    status: ProposalStatus,
    by: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, HistoryError> {
    let changed = conn
        .execute(
            "UPDATE proposals SET status = ?1, decided_at = ?2, decided_by = ?3, note = ?4
             WHERE id = ?5 AND status = 'pending'",
            params![status.as_str(), time_text(at), by, note, id],
        )
        .map_err(sqlite_error(path))?;
    Ok(changed == 1)
}

fn insert_action_run(
    conn: &Connection,
    path: &Path,
    record: &ActionRunRecord,
) -> Result<i64, HistoryError> {
    conn.execute(
        "INSERT INTO action_runs (formula, action, fingerprint, run_id, proposal, argv, at, duration_ms,
             exit_code, outcome, error, stdout, stderr, truncated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            record.formula,
            record.action,
            record.fingerprint,
            record.run_id,
            record.proposal,
            json_text(&record.argv),
            time_text(record.at),
            i64::try_from(record.duration_ms).unwrap_or(i64::MAX),
            record.exit_code,
            record.outcome,
            record.error,
            record.stdout,
            record.stderr,
            record.truncated,
        ],
    )
    .map_err(sqlite_error(path))?;
    Ok(conn.last_insert_rowid())
}

/// The statements of [`History::prune`], in order, each over `?1` (the
/// formula) and `?2` (the time before which rows go): `run_findings` of
/// old runs, old runs, old action runs, old proposals.
fn prune_statements() -> [String; 4] {
    // The formula's runs before ?2 but its latest.
    let old_runs = "SELECT seq FROM runs
         WHERE formula = ?1 AND at < ?2
           AND seq < (SELECT MAX(seq) FROM runs WHERE formula = ?1)";
    // Its proposals decided before ?2 but the latest of each action and
    // fingerprint; ends in its `WHERE`, so that more conditions can follow.
    let old_proposals = "SELECT p.id FROM proposals p
         WHERE p.status IN ('approved', 'rejected', 'expired') AND p.formula = ?1
           AND COALESCE(p.decided_at, p.created_at) < ?2
           AND (EXISTS (SELECT 1 FROM proposals q
                        WHERE q.formula = p.formula AND q.action = p.action
                          AND q.fingerprint = p.fingerprint AND q.created_at > p.created_at)
                OR EXISTS (SELECT 1 FROM proposals q
                           WHERE q.formula = p.formula AND q.action = p.action
                             AND q.fingerprint = p.fingerprint AND q.created_at = p.created_at
                             AND q.id > p.id))";
    [
        format!("DELETE FROM run_findings WHERE run IN ({old_runs})"),
        format!("DELETE FROM runs WHERE seq IN ({old_runs})"),
        // Its action runs before ?2 but the latest of each action and
        // fingerprint (the second EXISTS breaks ties of time), and but
        // those of proposals that stay.
        format!(
            "DELETE FROM action_runs WHERE id IN (
                 SELECT a.id FROM action_runs a
                 WHERE a.formula = ?1 AND a.at < ?2
                   AND (EXISTS (SELECT 1 FROM action_runs b
                                WHERE b.formula = a.formula AND b.action = a.action
                                  AND b.fingerprint = a.fingerprint AND b.at > a.at)
                        OR EXISTS (SELECT 1 FROM action_runs b
                                   WHERE b.formula = a.formula AND b.action = a.action
                                     AND b.fingerprint = a.fingerprint AND b.at = a.at
                                     AND b.id > a.id))
                   AND (a.proposal IS NULL OR a.proposal IN ({old_proposals})))"
        ),
        // Old proposals none of whose action runs stayed.
        format!(
            "DELETE FROM proposals WHERE id IN ({old_proposals}
                 AND NOT EXISTS (SELECT 1 FROM action_runs r WHERE r.proposal = p.id))"
        ),
    ]
}

const RUN_COLUMNS: &str =
    "SELECT seq, formula, run_id, at, gate_open, gate_reason, phase, reason, finished_at FROM runs";

const PROPOSAL_COLUMNS: &str =
    "SELECT id, formula, action, fingerprint, priority, message, argv, env, cwd, timeout_ms,
     created_at, created_run, status, decided_at, decided_by, note FROM proposals";

const ACTION_RUN_COLUMNS: &str =
    "SELECT formula, action, fingerprint, run_id, proposal, argv, at, duration_ms, exit_code,
     outcome, error, stdout, stderr, truncated FROM action_runs";

/// A row read with values this build did not write is reported, not unwrapped.
type Parsed<T> = Result<T, String>;

fn run_row(row: &Row<'_>) -> rusqlite::Result<Parsed<RunRecord>> {
    let at: String = row.get(3)?;
    let finished: Option<String> = row.get(8)?;
    Ok((|| {
        Ok(RunRecord {
            seq: row.get(0).map_err(|e| e.to_string())?,
            formula: row.get(1).map_err(|e| e.to_string())?,
            run_id: row.get(2).map_err(|e| e.to_string())?,
            at: parse_time(&at)?,
            gate_open: row.get(4).map_err(|e| e.to_string())?,
            gate_reason: row.get(5).map_err(|e| e.to_string())?,
            phase: row.get(6).map_err(|e| e.to_string())?,
            reason: row.get(7).map_err(|e| e.to_string())?,
            finished_at: finished.as_deref().map(parse_time).transpose()?,
            findings: Vec::new(),
        })
    })())
}

fn finding_row(row: &Row<'_>) -> rusqlite::Result<Parsed<FindingRecord>> {
    let status: String = row.get(5)?;
    let first_seen: String = row.get(6)?;
    let last_seen: String = row.get(7)?;
    let fired_at: Option<String> = row.get(10)?;
    let reported_at: Option<String> = row.get(11)?;
    let resolved_at: Option<String> = row.get(12)?;
    let fingerprint: String = row.get(0)?;
    let rule: String = row.get(1)?;
    let label: Option<String> = row.get(2)?;
    let priority: String = row.get(3)?;
    let message: String = row.get(4)?;
    let consecutive: u32 = row.get(8)?;
    let last_run: i64 = row.get(9)?;
    Ok((|| {
        Ok(FindingRecord {
            status: FindingStatus::parse(&status)
                .ok_or_else(|| format!("finding `{fingerprint}` has unknown status `{status}`"))?,
            first_seen: parse_time(&first_seen)?,
            last_seen: parse_time(&last_seen)?,
            fired_at: fired_at.as_deref().map(parse_time).transpose()?,
            reported_at: reported_at.as_deref().map(parse_time).transpose()?,
            resolved_at: resolved_at.as_deref().map(parse_time).transpose()?,
            fingerprint,
            rule,
            label,
            priority,
            message,
            consecutive,
            last_run,
        })
    })())
}

fn proposal_row(row: &Row<'_>) -> rusqlite::Result<Parsed<ProposalRecord>> {
    let id: i64 = row.get(0)?;
    let argv: String = row.get(6)?;
    let env: String = row.get(7)?;
    let cwd: String = row.get(8)?;
    let timeout_ms: i64 = row.get(9)?;
    let created_at: String = row.get(10)?;
    let status: String = row.get(12)?;
    let decided_at: Option<String> = row.get(13)?;
    let proposal = (
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, String>(3)?,
        row.get::<_, String>(4)?,
        row.get::<_, String>(5)?,
        row.get::<_, String>(11)?,
    );
    let decided_by: Option<String> = row.get(14)?;
    let note: Option<String> = row.get(15)?;
    Ok((|| {
        let (formula, action, fingerprint, priority, message, created_run) = proposal;
        Ok(ProposalRecord {
            id,
            proposal: NewProposal {
                formula,
                action,
                fingerprint,
                priority,
                message,
                argv: serde_json::from_str(&argv)
                    .map_err(|e| format!("proposal {id} has a malformed argv: {e}"))?,
                env: serde_json::from_str(&env)
                    .map_err(|e| format!("proposal {id} has a malformed env: {e}"))?,
                cwd: PathBuf::from(cwd),
                timeout_ms: u64::try_from(timeout_ms).unwrap_or(0),
                created_at: parse_time(&created_at)?,
                created_run,
            },
            status: ProposalStatus::parse(&status)
                .ok_or_else(|| format!("proposal {id} has unknown status `{status}`"))?,
            decided_at: decided_at.as_deref().map(parse_time).transpose()?,
            decided_by,
            note,
        })
    })())
}

fn action_run_row(row: &Row<'_>) -> rusqlite::Result<Parsed<ActionRunRecord>> {
    let argv: String = row.get(5)?;
    let at: String = row.get(6)?;
    let duration_ms: i64 = row.get(7)?;
    let record = ActionRunRecord {
        formula: row.get(0)?,
        action: row.get(1)?,
        fingerprint: row.get(2)?,
        run_id: row.get(3)?,
        proposal: row.get(4)?,
        argv: Vec::new(),
        at: DateTime::<Utc>::MIN_UTC,
        duration_ms: u64::try_from(duration_ms).unwrap_or(0),
        exit_code: row.get(8)?,
        outcome: row.get(9)?,
        error: row.get(10)?,
        stdout: row.get(11)?,
        stderr: row.get(12)?,
        truncated: row.get(13)?,
    };
    Ok((|| {
        Ok(ActionRunRecord {
            argv: serde_json::from_str(&argv)
                .map_err(|e| format!("an action run has a malformed argv: {e}"))?,
            at: parse_time(&at)?,
            ..record
        })
    })())
}

fn collect_rows<T>(
    rows: impl Iterator<Item = rusqlite::Result<Parsed<T>>>,
    path: &Path,
) -> Result<Vec<T>, HistoryError> {
    let mut out = Vec::new();
    for row in rows {
        let parsed = row.map_err(sqlite_error(path))?;
        out.push(parsed.map_err(|what| corrupt(path, what))?);
    }
    Ok(out)
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

/// `PATH` with `suffix` appended to its file name: `history.sqlite-wal`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copies the database and its WAL into a new temporary directory.
fn private_copy(path: &Path, wal: &Path) -> Result<tempfile::TempDir, HistoryError> {
    let io = |source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix("retort-history-")
        .tempdir()
        .map_err(io)?;
    let copy = dir.path().join(HISTORY_FILE);
    std::fs::copy(path, &copy).map_err(io)?;
    std::fs::copy(wal, sibling(&copy, "-wal")).map_err(io)?;
    Ok(dir)
}

/// `file:PATH?immutable=1`, with the path percent-encoded where URIs need it.
fn immutable_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for byte in absolute.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                uri.push(char::from(*byte));
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// A time as stored: RFC 3339, UTC, milliseconds.
pub fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_searches_indexes_and_scans_no_table() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(&dir.path().join(HISTORY_FILE)).unwrap();
        for sql in prune_statements() {
            let mut statement = history
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = statement
                .query_map(params!["supervisor", "2026-11-21T00:00:00.000Z"], |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN")),
                "{sql}\n{plan:#?}"
            );
            assert!(
                plan.iter()
                    .filter(|step| step.starts_with("SEARCH"))
                    .count()
                    >= 2,
                "{plan:#?}"
            );
        }
    }

    #[test]
    fn immutable_uris_escape_what_uris_reserve() {
        let uri = immutable_uri(Path::new("/tmp/a b/h#1.sqlite"));
        assert_eq!(uri, "file:/tmp/a%20b/h%231.sqlite?immutable=1");
    }

    #[test]
    fn times_round_trip_at_millisecond_precision() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T11:20:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time_text(at), "2026-11-21T11:20:00.123Z");
        assert_eq!(parse_time(&time_text(at)).unwrap(), at);
    }
}
