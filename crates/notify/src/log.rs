//! Where delivery records are kept between runs: the [`DeliveryLog`] trait
//! (the run history implements it in the journal crate) and [`MemoryLog`],
//! an in-memory one for tests and single-process use.

use std::collections::BTreeMap;
use std::convert::Infallible;

use crate::dedup::DeliveryRecord;

/// A store of [`DeliveryRecord`]s, keyed by their `id`.
///
/// What to keep: every pending record, and for each (formula, kind,
/// fingerprint, target) at least the latest record, however old (a
/// resolved notice needs to know that its finding was notified, days ago
/// perhaps). Older records of a key may be removed with the run history's
/// retention.
pub trait DeliveryLog {
    /// The store's error (an SQLite error, say).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Every kept record of `formula`, in any order.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn records(&self, formula: &str) -> Result<Vec<DeliveryRecord>, Self::Error>;

    /// Inserts `record`, or replaces the record with the same `id`.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn save(&mut self, record: &DeliveryRecord) -> Result<(), Self::Error>;
}

/// Records in memory, lost with the value.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    records: BTreeMap<String, DeliveryRecord>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// Every record, by id.
    pub fn all(&self) -> impl Iterator<Item = &DeliveryRecord> {
        self.records.values()
    }
}

impl DeliveryLog for MemoryLog {
    type Error = Infallible;

    fn records(&self, formula: &str) -> Result<Vec<DeliveryRecord>, Infallible> {
        Ok(self
            .records
            .values()
            .filter(|r| r.event.formula == formula)
            .cloned()
            .collect())
    }

    fn save(&mut self, record: &DeliveryRecord) -> Result<(), Infallible> {
        self.records.insert(record.id.clone(), record.clone());
        Ok(())
    }
}
