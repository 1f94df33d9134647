//! Schedules for retort formulas: cron expressions, and the crontab lines,
//! systemd units and Nomad jobs that run formulas on them.
//!
//! Owns: the `schedule = "*/20 * * * *"` expression ([`Schedule`]: what
//! retort accepts, why it refuses the rest, next run times), its translation
//! to systemd `OnCalendar=` ([`on_calendar`]), and the three renderers
//! ([`crontab`], [`systemd`], [`nomad`]), which are pure functions of a list
//! of [`ScheduledFormula`]s, plus [`write_files`] for `--output DIR`.
//!
//! In: the expression text (from a formula's `schedule` key) and, for the
//! renderers, absolute paths of the retort binary, formula files, state
//! directory, env file and working directory. Out: [`ScheduleError`] (message plus byte range,
//! for `retort check`), next run times, and generated file contents.
//! Nothing here reads formulas, runs anything, or touches the network; the
//! `retort schedule` command wires this to the CLI. `docs/schedules.md` is
//! the operator's reference.

#![warn(missing_docs)]

mod calendar;
mod cron;
mod crontab;
mod formula;
mod grammar;
mod nomad;
mod output;
mod systemd;

pub use calendar::on_calendar;
pub use cron::{Field, Schedule, ScheduleError};
pub use crontab::{BEGIN as CRONTAB_BEGIN, END as CRONTAB_END, crontab};
pub use formula::{RenderError, ScheduledFormula};
pub use nomad::{NomadKind, nomad};
pub use output::{Format, GeneratedFile, MARKER, Overwrite, WriteError, render, write_files};
pub use systemd::systemd;
