//! The run journal and, later, the run-history store.
//!
//! The journal is markdown, one file a formula a UTC day:
//! `STATE/journal/FORMULA/YYYY-MM-DD.md`. Each run appends one entry headed
//! `## FORMULA run — HH:MM UTC`, so that a person (or the next run's agent)
//! can read the day's runs top to bottom. Entries are only ever appended:
//! nothing already written is rewritten or lost.

#![warn(missing_docs)]

mod entry;

pub use entry::{Entry, JournalError, StepLine, append, journal_file};
