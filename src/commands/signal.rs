//! `retort signal`: how an agent ends a step.

use std::path::PathBuf;

use retort_agent::signal::{self, Signal, SignalRecord};
use retort_runner::state::{RUN_DIR_ENV, RunDir};

use crate::cli::SignalArg;
use crate::{EXIT_FAILED, invalid};

/// Writes the signal file of the current step (or `step`) of the run in
/// `$RETORT_RUN_DIR`. Returns the exit status.
pub fn signal(signal: SignalArg, reason: Option<String>, step: Option<String>) -> u8 {
    let Some(dir) = std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty()) else {
        return invalid(&signal::SignalError::NotInRun.to_string());
    };
    let run = RunDir::new(PathBuf::from(dir));
    let step = match step.map_or_else(|| signal::current_step(&run), Ok) {
        Ok(step) => step,
        Err(error) => return invalid(&error.to_string()),
    };
    let signal = match signal {
        SignalArg::Done => Signal::Done,
        SignalArg::Failed => Signal::Failed,
        SignalArg::Escalate => Signal::Escalate,
    };
    let record = SignalRecord {
        step: step.clone(),
        signal,
        reason,
        at: chrono::Utc::now(),
    };
    match signal::write(&run, &record) {
        Ok(()) => {
            crate::out(&format!("retort: step `{step}` signalled {signal}\n"));
            0
        }
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_FAILED
        }
    }
}
