//! Notification deliveries in the history: the `deliveries` table, and
//! [`History`] as retort-notify's [`DeliveryLog`], so that deduplication
//! (`repeat`, resolved notices, retries of undelivered messages) holds
//! across separate runs.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use retort_notify::{DeliveryLog, DeliveryRecord};

use super::rows::time_text;
use super::{History, HistoryError, corrupt, sqlite_error};

impl History {
    /// Whether the database has the `deliveries` table: a read-only view of
    /// a history written before notifications has none (and no deliveries).
    fn has_deliveries(&self) -> Result<bool, HistoryError> {
        self.conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
                [],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(sqlite_error(&self.path))
    }

    /// The delivery records whose `column` is `value`, oldest planned
    /// first. `column` is one of this file's column names, never input.
    fn deliveries_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Vec<DeliveryRecord>, HistoryError> {
        if !self.has_deliveries()? {
            return Ok(Vec::new());
        }
        let fail = sqlite_error(&self.path);
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT record FROM deliveries WHERE {column} = ?1 ORDER BY planned_at, id"
            ))
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![value], |row| row.get::<_, String>(0))
            .map_err(&fail)?;
        let mut records = Vec::new();
        for row in rows {
            let json = row.map_err(&fail)?;
            let record = serde_json::from_str(&json).map_err(|error| {
                corrupt(
                    &self.path,
                    format!("a delivery record is not JSON retort wrote: {error}"),
                )
            })?;
            records.push(record);
        }
        Ok(records)
    }

    /// Every delivery record of `formula`, oldest planned first.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn deliveries(&self, formula: &str) -> Result<Vec<DeliveryRecord>, HistoryError> {
        self.deliveries_where("formula", formula)
    }

    /// The delivery records planned by run `run_id` (retries by later runs
    /// keep the run that planned them), oldest first.
    ///
    /// # Errors
    /// [`HistoryError`] when they cannot be read.
    pub fn deliveries_of_run(&self, run_id: &str) -> Result<Vec<DeliveryRecord>, HistoryError> {
        self.deliveries_where("run_id", run_id)
    }

    /// Inserts `record`, or replaces the one with its id.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`] when it cannot be written.
    pub fn save_delivery(&self, record: &DeliveryRecord) -> Result<(), HistoryError> {
        let json = serde_json::to_string(record)
            .map_err(|error| corrupt(&self.path, format!("cannot encode a delivery: {error}")))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO deliveries
                     (id, formula, kind, fingerprint, target, run_id, planned_at, status, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    record.id,
                    record.event.formula,
                    record.event.kind.as_str(),
                    record.event.fingerprint,
                    record.target.0,
                    record.event.run_id,
                    time_text(record.planned_at),
                    record.status.as_str(),
                    json
                ],
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(())
    }

    /// Removes `formula`'s delivery records planned before `before`,
    /// except pending ones and the latest record of each (kind,
    /// fingerprint, target): deduplication still reads those (see
    /// [`DeliveryLog`]). Returns how many rows went.
    ///
    /// # Errors
    /// [`HistoryError::Sqlite`].
    pub fn prune_deliveries(
        &self,
        formula: &str,
        before: DateTime<Utc>,
    ) -> Result<u64, HistoryError> {
        if !self.has_deliveries()? {
            return Ok(0);
        }
        let removed = self
            .conn
            .execute(
                "DELETE FROM deliveries
                 WHERE formula = ?1 AND planned_at < ?2 AND status <> 'pending'
                   AND planned_at < (SELECT MAX(later.planned_at) FROM deliveries later
                                     WHERE later.formula = deliveries.formula
                                       AND later.kind = deliveries.kind
                                       AND later.fingerprint = deliveries.fingerprint
                                       AND later.target = deliveries.target)",
                params![formula, time_text(before)],
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }
}

impl DeliveryLog for History {
    type Error = HistoryError;

    fn records(&self, formula: &str) -> Result<Vec<DeliveryRecord>, HistoryError> {
        self.deliveries(formula)
    }

    fn save(&mut self, record: &DeliveryRecord) -> Result<(), HistoryError> {
        self.save_delivery(record)
    }
}
