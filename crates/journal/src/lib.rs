//! The run journal and the run-history store.
//!
//! The journal is markdown, one file a formula a UTC day:
//! `STATE/journal/FORMULA/YYYY-MM-DD.md`. Each run appends one entry headed
//! `## FORMULA run — HH:MM UTC`, so that a person (or the next run's agent)
//! can read the day's runs top to bottom. Entries are only ever appended:
//! nothing already written is rewritten or lost.
//!
//! The run history ([`history`]) is the machine-readable side: an SQLite
//! database, `STATE/history.sqlite`, holding each formula's runs, the state
//! of its findings across runs, the actions run and the proposals waiting
//! for a human, what each run's agent spent ([`spend`]), and the
//! notifications delivered.
//!
//! Looking back: [`summary`] reads what a run's `run.json` says that the
//! history does not keep (step durations, tokens, cost), and [`report`]
//! sums runs, outcomes, findings, actions and cost over a period.

#![warn(missing_docs)]

mod entry;
pub mod history;
pub mod report;
pub mod spend;
pub mod summary;

pub use entry::{Decision, Entry, JournalError, StepLine, append, journal_file};
pub use history::{History, HistoryError};
