//! Actions and proposals in the history: an action run recorded as it
//! starts and given its result once it ends, action runs a killed retort
//! left `running`, and the proposals with a human's decision on each.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::records::{ActionRunRecord, ProposalRecord, ProposalStatus};
use super::rows::{
    ACTION_RUN_COLUMNS, PROPOSAL_COLUMNS, action_run_row, collect_rows, decide_proposal,
    insert_action_run, proposal_row,
};
use super::{History, HistoryError, corrupt, sqlite_error};

impl History {
    /// Records an action that was started (or could not be); returns its id.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn record_action_run(&self, record: &ActionRunRecord) -> Result<i64, HistoryError> {
        insert_action_run(&self.conn, &self.path, record)
    }

    /// Replaces what action run `id` ([`History::record_action_run`])
    /// says: an action recorded as it starts (outcome `running`, so that
    /// its cooldown holds even if retort is killed while it runs) gets its
    /// result once it has ended. Its `at` stays as first recorded.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn update_action_run(&self, id: i64, record: &ActionRunRecord) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE action_runs SET duration_ms = ?1, exit_code = ?2, outcome = ?3, error = ?4,
                     stdout = ?5, stderr = ?6, truncated = ?7 WHERE id = ?8",
                params![
                    i64::try_from(record.duration_ms).unwrap_or(i64::MAX),
                    record.exit_code,
                    record.outcome,
                    record.error,
                    record.stdout,
                    record.stderr,
                    record.truncated,
                    id,
                ],
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(())
    }

    /// Closes the action runs of run `run_id` still recorded `running`
    /// (their retort was killed while they ran) as `abandoned` with
    /// `reason`. Returns how many.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn abandon_action_runs(&self, run_id: &str, reason: &str) -> Result<usize, HistoryError> {
        self.conn
            .execute(
                "UPDATE action_runs SET outcome = 'abandoned', error = ?1 \
                 WHERE run_id = ?2 AND outcome = 'running'",
                params![reason, run_id],
            )
            .map_err(sqlite_error(&self.path))
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
}
