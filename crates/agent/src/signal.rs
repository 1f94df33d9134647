//! Step signals: how an agent says it has finished a step.
//!
//! The agent runs `retort signal done|failed|escalate [--reason TEXT]`,
//! which writes `RETORT_RUN_DIR/steps/STEP.signal` atomically as JSON:
//!
//! ```json
//! {"step":"report","signal":"failed","reason":"Matrix is down","at":"2026-11-21T11:20:05Z"}
//! ```
//!
//! Or, as the seed formula tells it to, the agent writes
//! `echo 'PHASE:done' > "$PHASE_FILE"` (`PHASE:failed`, `PHASE:escalate`,
//! with an optional reason after the word or on the next line). The agent's
//! `$PHASE_FILE` is its own, `RUN/agent.phase` ([`agent_phase_file`]), never
//! retort's phase file; it is cleared before each step ([`clear_agent_phase`]),
//! and what the agent writes there signals the step in progress
//! ([`read_step_end`]).

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

/// The agent's own phase file, `RUN/agent.phase`: what `$PHASE_FILE` names
/// in its session.
pub fn agent_phase_file(run: &RunDir) -> std::path::PathBuf {
    run.path().join("agent.phase")
}

/// Removes the agent's phase file, so that what it says next is about the
/// step about to start. A file already gone is no error.
///
/// # Errors
/// [`SignalError::Write`] when it exists and cannot be removed.
pub fn clear_agent_phase(run: &RunDir) -> Result<(), SignalError> {
    let path = agent_phase_file(run);
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(SignalError::Write {
            path,
            source: error,
        }),
        _ => Ok(()),
    }
}

/// How `step` was signalled, if it was: its signal file (`retort signal`),
/// else the agent's phase file (`PHASE:done`, …), read as a signal of the
/// step in progress.
///
/// # Errors
/// [`SignalError::Malformed`] when the signal file holds something else.
pub fn read_step_end(run: &RunDir, step: &str) -> Result<Option<SignalRecord>, SignalError> {
    if let Some(record) = read(run, step)? {
        return Ok(Some(record));
    }
    Ok(std::fs::read_to_string(agent_phase_file(run))
        .ok()
        .and_then(|text| parse_phase(&text))
        .map(|(signal, reason)| SignalRecord {
            step: step.to_string(),
            signal,
            reason,
            at: chrono::Utc::now(),
        }))
}

/// Reads a phase file's text as the seed formula writes it: a first line
/// `PHASE:done`, `PHASE:failed` or `PHASE:escalate`, then an optional
/// reason, after the word or on the lines below (a `Reason:` prefix is
/// dropped). `None` for anything else (an empty file, another word).
pub fn parse_phase(text: &str) -> Option<(Signal, Option<String>)> {
    let text = text.trim_start();
    let rest = text.strip_prefix("PHASE:")?;
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    let signal = match &rest[..end] {
        "done" => Signal::Done,
        "failed" => Signal::Failed,
        "escalate" => Signal::Escalate,
        _ => return None,
    };
    let reason = rest[end..].trim();
    let reason = reason.strip_prefix("Reason:").unwrap_or(reason).trim();
    Some((signal, (!reason.is_empty()).then(|| reason.to_string())))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_files_read_as_the_seed_writes_them() {
        assert_eq!(parse_phase("PHASE:done\n"), Some((Signal::Done, None)));
        assert_eq!(
            parse_phase("PHASE:failed\nReason: Matrix is down\n"),
            Some((Signal::Failed, Some("Matrix is down".to_string())))
        );
        assert_eq!(
            parse_phase("PHASE:escalate disk full"),
            Some((Signal::Escalate, Some("disk full".to_string())))
        );
        assert_eq!(parse_phase("PHASE:working\n"), None);
        assert_eq!(parse_phase(""), None);
        assert_eq!(parse_phase("done"), None);
    }
}
