//! What [`History::prune`] removes: a formula's rows from before a time,
//! but what later runs still read.

use chrono::{DateTime, Utc};
use rusqlite::{TransactionBehavior, params};

use super::records::PrunedRows;
use super::rows::time_text;
use super::{History, HistoryError, sqlite_error};

impl History {
    /// Removes, in one transaction, the rows `formula` left in the history
    /// from before `before`:
    ///
    /// - its runs that decided before `before`, with their `run_findings`
    ///   and their `step_attempts`, except its latest run (the next run's
    ///   `previous`), however old;
    /// - its action runs that started before `before`, except the latest of
    ///   each action for each fingerprint, however old (cooldowns count
    ///   from it), and those of proposals that are kept;
    /// - its approved, rejected and expired proposals decided before
    ///   `before`, except the latest proposal of each action for each
    ///   fingerprint (cooldowns count from it too) and those with an action
    ///   run that is kept.
    ///
    /// - its notification deliveries planned before `before`, except
    ///   pending ones and the latest of each (kind, fingerprint, target).
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
        let before_time = before;
        let before = time_text(before);
        let mut removed = [0_u64; 5];
        for (count, sql) in removed.iter_mut().zip(prune_statements()) {
            let rows = tx.execute(&sql, params![formula, before]).map_err(&fail)?;
            *count = u64::try_from(rows).unwrap_or(u64::MAX);
        }
        let [run_findings, step_attempts, runs, action_runs, proposals] = removed;
        tx.commit().map_err(&fail)?;
        let deliveries = self.prune_deliveries(formula, before_time)?;
        Ok(PrunedRows {
            runs,
            run_findings,
            step_attempts,
            action_runs,
            proposals,
            deliveries,
        })
    }
}

/// The statements of [`History::prune`], in order, each over `?1` (the
/// formula) and `?2` (the time before which rows go): `run_findings` of
/// old runs, `step_attempts` of old runs, old runs, old action runs, old
/// proposals.
fn prune_statements() -> [String; 5] {
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
        format!(
            "DELETE FROM step_attempts WHERE run_id IN (
                 SELECT run_id FROM runs WHERE seq IN ({old_runs}))"
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HISTORY_FILE;

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
}
