//! Every attempt of every step a run made, in the history: the
//! `step_attempts` table (schema version 6), one row an attempt, written
//! by the runner at the run's end from what its scheduler recorded
//! (`RUN/attempts.json`). A run whose steps went one at a time in one
//! session has no rows.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::rows::{parse_time, time_text};
use super::{History, HistoryError, corrupt, sqlite_error};

/// The migration that adds the `step_attempts` table.
pub(super) const MIGRATION: &str = r"
-- Every attempt of a step (the scheduler's RUN/attempts.json): its outcome,
-- why (one line, capped, the run's secrets redacted), when it started and
-- ended, and how long the scheduler waited before the next attempt, when it
-- retried. Keyed by run, step and attempt (from 1).
CREATE TABLE step_attempts (
    run_id         TEXT NOT NULL,
    step           TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    reason         TEXT,
    started_at     TEXT NOT NULL,
    ended_at       TEXT NOT NULL,
    retry_after_ms INTEGER,
    PRIMARY KEY (run_id, step, attempt)
);
";

/// One attempt of a step, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAttemptRecord {
    /// The step's id.
    pub step: String,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// How it ended: `done`, `failed`, `escalated`, `rate-limited`.
    pub outcome: String,
    /// Why, when not done: one line, capped, the run's secrets redacted
    /// (the runner cleans it as it cleans every reason it saves).
    pub reason: Option<String>,
    /// When it started (millisecond precision).
    pub started_at: DateTime<Utc>,
    /// When it ended (millisecond precision).
    pub ended_at: DateTime<Utc>,
    /// How long after its end the step was tried again, in milliseconds:
    /// `None` for a step's last attempt.
    pub retry_after_ms: Option<u64>,
}

impl History {
    /// Whether the database has the `step_attempts` table: a read-only view
    /// of a history written before schema version 6 has none (and no
    /// attempts).
    fn has_step_attempts(&self) -> Result<bool, HistoryError> {
        self.conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'step_attempts'",
                [],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(sqlite_error(&self.path))
    }

    /// Records the attempts of run `run_id`, in one transaction; an attempt
    /// already recorded (same step and number) is replaced.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`]: nothing is recorded then.
    pub fn record_step_attempts(
        &mut self,
        run_id: &str,
        attempts: &[StepAttemptRecord],
    ) -> Result<(), HistoryError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let fail = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(&fail)?;
        {
            let mut statement = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO step_attempts
                         (run_id, step, attempt, outcome, reason, started_at, ended_at, retry_after_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&fail)?;
            for attempt in attempts {
                statement
                    .execute(params![
                        run_id,
                        attempt.step,
                        attempt.attempt,
                        attempt.outcome,
                        attempt.reason,
                        time_text(attempt.started_at),
                        time_text(attempt.ended_at),
                        attempt
                            .retry_after_ms
                            .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                    ])
                    .map_err(&fail)?;
            }
        }
        tx.commit().map_err(&fail)
    }

    /// The attempts of run `run_id`, in the order they started (then by
    /// step and number); empty for a run without any, or a history written
    /// before schema version 6.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`] when SQLite fails; [`HistoryError::Corrupt`]
    /// when a row holds what retort does not write (a time that does not
    /// parse, a negative number).
    pub fn step_attempts(&self, run_id: &str) -> Result<Vec<StepAttemptRecord>, HistoryError> {
        if !self.has_step_attempts()? {
            return Ok(Vec::new());
        }
        let fail = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT step, attempt, outcome, reason, started_at, ended_at, retry_after_ms
                 FROM step_attempts WHERE run_id = ?1
                 ORDER BY started_at, step, attempt",
            )
            .map_err(&fail)?;
        type Row = (
            String,
            i64,
            String,
            Option<String>,
            String,
            String,
            Option<i64>,
        );
        let rows = statement
            .query_map(params![run_id], |row| -> rusqlite::Result<Row> {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                ))
            })
            .map_err(&fail)?;
        let time = |text: &str| {
            parse_time(text)
                .map_err(|error| corrupt(&self.path, format!("a step attempt's time: {error}")))
        };
        let number = |value: i64, what: &str| {
            u64::try_from(value).map_err(|_| {
                corrupt(
                    &self.path,
                    format!("a step attempt's {what} is negative: {value}"),
                )
            })
        };
        let mut attempts = Vec::new();
        for row in rows {
            let (step, attempt, outcome, reason, started, ended, retry) = row.map_err(&fail)?;
            attempts.push(StepAttemptRecord {
                step,
                attempt: u32::try_from(number(attempt, "number")?).unwrap_or(u32::MAX),
                outcome,
                reason,
                started_at: time(&started)?,
                ended_at: time(&ended)?,
                retry_after_ms: retry.map(|ms| number(ms, "retry delay")).transpose()?,
            });
        }
        Ok(attempts)
    }

    /// How many attempts of run `run_id` were retried (every attempt of a
    /// step but its last): 0 for a run without retries, or a history
    /// written before schema version 6.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn retried_attempts(&self, run_id: &str) -> Result<u64, HistoryError> {
        if !self.has_step_attempts()? {
            return Ok(0);
        }
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM step_attempts WHERE run_id = ?1 AND retry_after_ms IS NOT NULL",
                params![run_id],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(sqlite_error(&self.path))
    }
}
