//! Step signals: how an agent says it has finished a step.
//!
//! The agent runs `retort signal done|failed|escalate [--reason TEXT]`,
//! which writes `RETORT_RUN_DIR/steps/STEP.signal` atomically as JSON:
//!
//! ```json
//! {"step":"report","signal":"failed","reason":"Matrix is down","at":"2026-11-21T11:20:05Z"}
//! ```

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::run_dir::RunDir;
use retort_os::atomic::write_atomic;

/// What the agent says of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// The step is finished.
    Done,
    /// The step could not be done.
    Failed,
    /// The step needs a human.
    Escalate,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Done => "done",
            Signal::Failed => "failed",
            Signal::Escalate => "escalate",
        })
    }
}

/// The content of a signal file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// The step signalled.
    pub step: String,
    /// What the agent said.
    pub signal: Signal,
    /// Why, in the agent's words.
    #[serde(default)]
    pub reason: Option<String>,
    /// When (UTC).
    pub at: DateTime<Utc>,
}

/// A signal could not be written or read.
#[derive(Debug, Error)]
pub enum SignalError {
    /// `RETORT_RUN_DIR` is not set: not inside a retort session.
    #[error(
        "RETORT_RUN_DIR is not set: `retort signal` is meant to run inside an agent session started by `retort run`"
    )]
    NotInRun,
    /// `current_step` is missing or empty and no `--step` was given.
    #[error("no current step in {}: retort has not sent a step yet; pass --step ID to name one", .0.display())]
    NoCurrentStep(std::path::PathBuf),
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The signal file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists but is not a signal record.
    #[error("{} is not a signal record: {source}", path.display())]
    Malformed {
        /// The signal file.
        path: std::path::PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Reads the step the agent is on from `current_step`.
///
/// # Errors
/// [`SignalError::NoCurrentStep`] when the file is missing or empty.
pub fn current_step(run: &RunDir) -> Result<String, SignalError> {
    let path = run.current_step_file();
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
        _ => Err(SignalError::NoCurrentStep(path)),
    }
}

/// Writes `record` to its step's signal file, atomically.
///
/// # Errors
/// [`SignalError::Write`] with the I/O error.
pub fn write(run: &RunDir, record: &SignalRecord) -> Result<(), SignalError> {
    let path = run.signal_file(&record.step);
    let mut json = serde_json::to_vec(record).map_err(|e| SignalError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    write_atomic(&path, &json).map_err(|source| SignalError::Write { path, source })
}

/// Reads the signal of `step`, if the agent has given one.
///
/// # Errors
/// [`SignalError::Malformed`] when the file holds something else.
pub fn read(run: &RunDir, step: &str) -> Result<Option<SignalRecord>, SignalError> {
    read_file(&run.signal_file(step))
}

fn read_file(path: &Path) -> Result<Option<SignalRecord>, SignalError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| SignalError::Malformed {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(_) => Ok(None),
    }
}
