//! A write transaction on the history: what a run records, all or nothing.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::records::{
    ActionRunRecord, FindingRecord, FormulaState, NewProposal, ProposalStatus, RunRecord,
};
use super::rows::{decide_proposal, insert_action_run, json_text, read_state, time_text};
use super::{HistoryError, RUN_FINDINGS_KEPT, sqlite_error};

#[cfg(doc)]
use super::History;

/// A write transaction on the history (see [`History::transaction`]).
/// Dropped without [`commit`](Self::commit), it rolls back.
#[derive(Debug)]
pub struct HistoryTransaction<'a> {
    pub(super) tx: rusqlite::Transaction<'a>,
    pub(super) path: &'a Path,
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
