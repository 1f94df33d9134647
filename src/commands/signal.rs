//! `retort signal`: how an agent ends a step.

use std::path::PathBuf;

use retort_agent::signal::{self, Signal};
use retort_runner::state::{RUN_DIR_ENV, RunDir};

use crate::cli::SignalArg;
use crate::{EXIT_FAILED, invalid};

/// Writes the signal file of the step in progress of the run in
/// `$RETORT_RUN_DIR` (`step`, when given, must be it), once. Returns the
/// exit status: 0, 2 when refused (another step, a repeat, not in a run),
/// 1 when the file cannot be written.
pub fn signal(signal: SignalArg, reason: Option<String>, step: Option<String>) -> u8 {
    let Some(dir) = std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty()) else {
        return invalid(&signal::SignalError::NotInRun.to_string());
    };
    let run = RunDir::new(PathBuf::from(dir));
    let signal = match signal {
        SignalArg::Done => Signal::Done,
        SignalArg::Failed => Signal::Failed,
        SignalArg::Escalate => Signal::Escalate,
    };
    // Only the step in progress, once: anything else is refused, with a
    // message the agent reads, and nothing is written.
    match signal::give(&run, signal, reason, step) {
        Ok(record) => {
            crate::out(&format!(
                "retort: step `{}` signalled {signal}\n",
                record.step
            ));
            0
        }
        Err(error @ signal::SignalError::Write { .. }) => {
            eprintln!("error: {error}");
            EXIT_FAILED
        }
        Err(error) => invalid(&error.to_string()),
    }
}
