//! `retort signal`: how an agent ends a step.

use std::path::PathBuf;

use retort_agent::output;
use retort_agent::signal::{self, Signal};
use retort_runner::state::{RUN_DIR_ENV, RunDir};

use crate::cli::SignalArg;
use crate::{EXIT_FAILED, invalid};

/// Writes the signal file of the step in progress of the run in
/// `$RETORT_RUN_DIR` (`step`, when given, must be it), once, after its
/// output (`--output TEXT`, or the text of `--output-file PATH`; at most
/// 64 KiB) when one is given. Returns the exit status: 0, 2 when refused
/// (another step, a repeat, not in a run, an output too large), 1 when a
/// file cannot be written.
pub fn signal(
    signal: SignalArg,
    reason: Option<String>,
    step: Option<String>,
    output: Option<String>,
    output_file: Option<PathBuf>,
) -> u8 {
    let Some(dir) = std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty()) else {
        return invalid(&signal::SignalError::NotInRun.to_string());
    };
    let run = RunDir::new(PathBuf::from(dir));
    // The step in progress: that of this agent's session (runs whose steps
    // run at once give each session its own current-step file), else the
    // run's. (Not `RETORT_STEP`: a headless Claude Code session is one
    // process for all its steps.)
    let session_file = std::env::var_os(retort_runner::parallel::CURRENT_STEP_FILE_ENV)
        .filter(|f| !f.is_empty())
        .and_then(|file| std::fs::read_to_string(file).ok())
        .map(|text| text.trim().to_string())
        .filter(|s| !s.is_empty());
    let current = match session_file.map_or_else(|| signal::current_step(&run), Ok) {
        Ok(current) => current,
        Err(error) => return invalid(&error.to_string()),
    };
    // Only the step in progress, once: anything else is refused, with a
    // message the agent reads, and nothing (not even an output) is written.
    let step = match signal::signallable(&run, current.clone(), step) {
        Ok(step) => step,
        Err(error) => return invalid(&error.to_string()),
    };
    let output = match (output, output_file) {
        (Some(text), _) => Some(text),
        (None, Some(path)) => match output::read_output_file(&path) {
            Ok(text) => Some(text),
            Err(error) => return invalid(&error.to_string()),
        },
        (None, None) => None,
    };
    // The output first, so that it is there when the run sees the signal.
    if let Some(text) = &output {
        match output::write(&run, &step, text) {
            Ok(()) => {}
            Err(error @ output::OutputError::TooLarge { .. }) => {
                return invalid(&error.to_string());
            }
            Err(error) => {
                eprintln!("error: {error}");
                return EXIT_FAILED;
            }
        }
    }
    let signal = match signal {
        SignalArg::Done => Signal::Done,
        SignalArg::Failed => Signal::Failed,
        SignalArg::Escalate => Signal::Escalate,
    };
    match signal::give_in_progress(&run, current, signal, reason, Some(step)) {
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
