//! Read-only queries for looking back: the formulas a history knows, runs
//! newest first, one run by id, action runs over a period, and how often
//! each fingerprint fired. `retort status`, `history`, `show` and
//! `report` read the history through these (on a read-only view, see
//! [`History::open_read_only`]).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::records::{ActionRunRecord, RunRecord};
use super::rows::{
    ACTION_RUN_COLUMNS, RUN_COLUMNS, action_run_row, collect_rows, run_findings, run_row, time_text,
};
use super::{History, HistoryError, corrupt, sqlite_error};

/// How often one fingerprint fired in a period: the runs that saw it `new`
/// or `firing`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FingerprintCount {
    /// The finding's fingerprint, `disk-pressure[/data]`.
    pub fingerprint: String,
    /// Its priority as last seen: `P0` … `P4` or `info`.
    pub priority: String,
    /// Its message as last seen.
    pub message: String,
    /// In how many runs of the period it was new or firing.
    pub runs: u64,
}

impl History {
    /// Every formula with a run or a proposal in the history, sorted by name.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn formulas(&self) -> Result<Vec<String>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare("SELECT formula FROM runs UNION SELECT formula FROM proposals ORDER BY 1")
            .map_err(&fail)?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(&fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&fail)
    }

    /// Runs newest first: of `formula` (every formula when `None`), that
    /// decided at or after `since` (when given), at most `limit` (when
    /// given), each with its findings.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn recent_runs(
        &self,
        formula: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: Option<usize>,
    ) -> Result<Vec<RunRecord>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let since = since.map(time_text).unwrap_or_default();
        let mut statement = self
            .conn
            .prepare(&format!(
                "{RUN_COLUMNS} WHERE (?1 IS NULL OR formula = ?1) AND at >= ?2
                 ORDER BY seq DESC LIMIT ?3"
            ))
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![formula, since, limit], run_row)
            .map_err(&fail)?;
        let mut runs = collect_rows(rows, &self.path)?;
        for run in &mut runs {
            run.findings = run_findings(&self.conn, &self.path, run.seq)?;
        }
        Ok(runs)
    }

    /// The run `run_id`, with its findings, if the history has it.
    ///
    /// # Errors
    /// [`HistoryError`] when it cannot be read.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let run = self
            .conn
            .query_row(
                &format!("{RUN_COLUMNS} WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1"),
                params![run_id],
                run_row,
            )
            .optional()
            .map_err(&fail)?
            .map(|r| r.map_err(|what| corrupt(&self.path, what)))
            .transpose()?;
        match run {
            Some(mut run) => {
                run.findings = run_findings(&self.conn, &self.path, run.seq)?;
                Ok(Some(run))
            }
            None => Ok(None),
        }
    }

    /// The action runs of `formula` started at or after `since`, oldest
    /// first (automatic ones and those of `retort approve`).
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn action_runs_since(
        &self,
        formula: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<ActionRunRecord>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare(&format!(
                "{ACTION_RUN_COLUMNS} WHERE formula = ?1 AND at >= ?2 ORDER BY at, id"
            ))
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![formula, time_text(since)], action_run_row)
            .map_err(&fail)?;
        collect_rows(rows, &self.path)
    }

    /// For each fingerprint of `formula` new or firing in a run that
    /// decided at or after `since`: in how many such runs, most first
    /// (then by fingerprint).
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn fingerprint_counts(
        &self,
        formula: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<FingerprintCount>, HistoryError> {
        let fail = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare(
                // With one max() aggregate, SQLite takes the bare columns
                // (priority, message) from the row holding the maximum: the
                // latest run's.
                "SELECT f.fingerprint, COUNT(*), f.priority, f.message, MAX(f.run)
                 FROM run_findings f JOIN runs r ON r.seq = f.run
                 WHERE r.formula = ?1 AND r.at >= ?2 AND f.state IN ('new', 'firing')
                 GROUP BY f.fingerprint
                 ORDER BY COUNT(*) DESC, f.fingerprint",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![formula, time_text(since)], |row| {
                Ok(FingerprintCount {
                    fingerprint: row.get(0)?,
                    runs: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    priority: row.get(2)?,
                    message: row.get(3)?,
                })
            })
            .map_err(&fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&fail)
    }
}
