//! The runs' rows after their decide phase: a run's end, a run its retort
//! left open recorded `abandoned`, reruns, and every run of a formula with
//! its findings.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::records::RunRecord;
use super::rows::{RUN_COLUMNS, collect_rows, run_findings, run_row, time_text};
use super::{History, HistoryError, sqlite_error};

impl History {
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

    /// Records run `run_id` as `abandoned` with `reason`, when its row is
    /// still open (no `finished_at`): its retort ended without finishing
    /// it (SIGKILL, the OOM killer, a crash). Returns whether it was open.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn abandon_run(
        &self,
        run_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, HistoryError> {
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET phase = 'abandoned', reason = ?1, finished_at = ?2 \
                 WHERE run_id = ?3 AND finished_at IS NULL",
                params![reason, time_text(at), run_id],
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(changed > 0)
    }

    /// Records that run `run_id` reruns run `of` (`retort rerun`).
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn mark_rerun(&self, run_id: &str, of: &str) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE runs SET rerun_of = ?1 WHERE run_id = ?2",
                params![of, run_id],
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(())
    }

    /// The run that run `run_id` reruns, if it is a rerun.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn rerun_of(&self, run_id: &str) -> Result<Option<String>, HistoryError> {
        self.conn
            .query_row(
                "SELECT rerun_of FROM runs WHERE run_id = ?1",
                params![run_id],
                |row| row.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(sqlite_error(&self.path))
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
