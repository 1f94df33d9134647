//! What each run's agent spent, in the run history: tokens and US dollars
//! per run (table `run_usage`, added by schema migration 3), for the
//! record and for `[budget] day_usd`.
//!
//! | column                        | what                                    |
//! |-------------------------------|-----------------------------------------|
//! | `run_id`                      | the run (one row a run that used an agent) |
//! | `formula`                     | its formula                             |
//! | `at`                          | when it started (RFC 3339, UTC)         |
//! | `input_tokens` … `cache_read_input_tokens` | tokens, as the agent reported them |
//! | `cost_usd`                    | US dollars, `NULL` when not known       |

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::history::{History, HistoryError, sqlite_error, time_text};

/// The schema migration that adds `run_usage` (migration 3).
pub(crate) const MIGRATION: &str = r"
CREATE TABLE IF NOT EXISTS run_usage (
    run_id                      TEXT PRIMARY KEY,
    formula                     TEXT NOT NULL,
    at                          TEXT NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_creation_input_tokens INTEGER NOT NULL,
    cache_read_input_tokens     INTEGER NOT NULL,
    cost_usd                    REAL
);
CREATE INDEX IF NOT EXISTS run_usage_by_formula ON run_usage (formula, at);
";

/// Tokens and cost of one run's agent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunSpend {
    /// Input tokens not read from or written to the prompt cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// US dollars; `None` when the agent did not say and it could not be
    /// priced.
    pub cost_usd: Option<f64>,
}

impl RunSpend {
    /// One line for people: `2000 in, 100 out, cache 0 written / 50 read
    /// tokens; $0.0150` (`cost unknown` when it is).
    pub fn describe(&self) -> String {
        let cost = match self.cost_usd {
            Some(cost) => format!("${cost:.4}"),
            None => "cost unknown".to_string(),
        };
        format!(
            "{} in, {} out, cache {} written / {} read tokens; {cost}",
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens
        )
    }
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl History {
    /// Records what run `run_id` of `formula`, started at `at`, spent
    /// (replacing what was recorded for it before).
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn record_spend(
        &self,
        formula: &str,
        run_id: &str,
        at: DateTime<Utc>,
        spend: &RunSpend,
    ) -> Result<(), HistoryError> {
        self.connection()
            .execute(
                "INSERT OR REPLACE INTO run_usage (run_id, formula, at, input_tokens, output_tokens,
                     cache_creation_input_tokens, cache_read_input_tokens, cost_usd)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run_id,
                    formula,
                    time_text(at),
                    int(spend.input_tokens),
                    int(spend.output_tokens),
                    int(spend.cache_creation_input_tokens),
                    int(spend.cache_read_input_tokens),
                    spend.cost_usd,
                ],
            )
            .map_err(sqlite_error(self.path()))?;
        Ok(())
    }

    /// What run `run_id` spent, if it was recorded.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn spend_of_run(&self, run_id: &str) -> Result<Option<RunSpend>, HistoryError> {
        if !self.has_spend_table()? {
            return Ok(None);
        }
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        self.connection()
            .query_row(
                "SELECT input_tokens, output_tokens, cache_creation_input_tokens,
                        cache_read_input_tokens, cost_usd
                 FROM run_usage WHERE run_id = ?1",
                params![run_id],
                |row| {
                    Ok(RunSpend {
                        input_tokens: count(row.get(0)?),
                        output_tokens: count(row.get(1)?),
                        cache_creation_input_tokens: count(row.get(2)?),
                        cache_read_input_tokens: count(row.get(3)?),
                        cost_usd: row.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(sqlite_error(self.path()))
    }

    /// What `formula`'s runs that started at or after `since` spent, in
    /// US dollars (runs of unknown cost count as nothing).
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn spent_since(&self, formula: &str, since: DateTime<Utc>) -> Result<f64, HistoryError> {
        if !self.has_spend_table()? {
            return Ok(0.0);
        }
        self.connection()
            .query_row(
                "SELECT COALESCE(SUM(cost_usd), 0.0) FROM run_usage WHERE formula = ?1 AND at >= ?2",
                params![formula, time_text(since)],
                |row| row.get(0),
            )
            .map_err(sqlite_error(self.path()))
    }

    /// Removes what `formula`'s runs that started before `before` spent
    /// (as `[history] keep` removes their runs). Returns how many rows went.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn prune_spend(&self, formula: &str, before: DateTime<Utc>) -> Result<usize, HistoryError> {
        if !self.has_spend_table()? {
            return Ok(0);
        }
        self.connection()
            .execute(
                "DELETE FROM run_usage WHERE formula = ?1 AND at < ?2",
                params![formula, time_text(before)],
            )
            .map_err(sqlite_error(self.path()))
    }

    /// Records that run `run_id`'s gate stayed closed after all, for
    /// `reason` (a rate-limit hold or the day's budget, decided after the
    /// findings).
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn close_gate(&self, run_id: &str, reason: &str) -> Result<(), HistoryError> {
        self.connection()
            .execute(
                "UPDATE runs SET gate_open = 0, gate_reason = ?1 WHERE run_id = ?2",
                params![reason, run_id],
            )
            .map_err(sqlite_error(self.path()))?;
        Ok(())
    }

    /// Whether the database has `run_usage` (a read-only view of an older
    /// database may not).
    fn has_spend_table(&self) -> Result<bool, HistoryError> {
        self.connection()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'run_usage'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(sqlite_error(self.path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn spend_is_recorded_per_run_and_summed_per_formula_since_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(&dir.path().join("history.sqlite")).unwrap();
        let day = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        let spend = |cost| RunSpend {
            input_tokens: 2000,
            output_tokens: 100,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 50,
            cost_usd: cost,
        };
        let before = day - chrono::Duration::minutes(20);
        history
            .record_spend("sup", "r0", before, &spend(Some(1.0)))
            .unwrap();
        history
            .record_spend("sup", "r1", day, &spend(Some(0.25)))
            .unwrap();
        history
            .record_spend("sup", "r2", day + chrono::Duration::hours(3), &spend(None))
            .unwrap();
        history
            .record_spend("other", "r3", day, &spend(Some(7.0)))
            .unwrap();

        assert_eq!(history.spent_since("sup", day).unwrap(), 0.25);
        assert_eq!(history.spent_since("sup", before).unwrap(), 1.25);
        assert_eq!(history.spend_of_run("r1").unwrap(), Some(spend(Some(0.25))));
        assert_eq!(history.spend_of_run("nope").unwrap(), None);
        assert_eq!(history.prune_spend("sup", day).unwrap(), 1);
        assert_eq!(history.spent_since("sup", before).unwrap(), 0.25);
        assert_eq!(history.spent_since("other", before).unwrap(), 7.0);
    }
}
