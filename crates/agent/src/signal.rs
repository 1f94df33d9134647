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
//! `$PHASE_FILE` is its own, `RUN/agent.phase` (`agent-2.phase`, … for
//! sessions that run beside the first,
//! [`crate::run_dir::RunDir::agent_phase_file`]), never retort's phase
//! file; it is cleared before each of the session's steps
//! ([`clear_agent_phase`]), and what the agent writes there signals its
//! session's step in progress ([`read_step_end`]), never another
//! session's.
//!
//! A signal is taken only for the step in progress (the run directory's
//! `current_step`, written as the step's prompt is delivered) and only
//! once: [`give`] refuses any other, with a message for the agent. The
//! runner removes a step's signal file before the step starts
//! ([`clear_step_signal`]), so that a signal written early, by any means,
//! never ends a step the agent has not been given. A signal file is read
//! robustly: an empty or half-written file is read again a few times
//! before it counts as malformed. Reasons are cleaned and capped
//! ([`retort_os::clean::one_line`], [`REASON_CAP`]) both when written and
//! when read.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::run_dir::RunDir;
use retort_os::clean::{REASON_CAP, one_line};

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
    /// The signal names a step that is not the one in progress.
    #[error("step `{step}` is not in progress; the step in progress is `{current}`")]
    NotInProgress {
        /// The step named.
        step: String,
        /// The step in progress.
        current: String,
    },
    /// The step in progress has been signalled already.
    #[error(
        "step `{step}` was already signalled ({signal}); a step is signalled once: wait for the next step's prompt"
    )]
    AlreadySignalled {
        /// The step.
        step: String,
        /// What it was signalled.
        signal: Signal,
    },
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

/// Signals the step in progress: `step` (`--step`), when given, must be
/// it. Writes its signal file once, atomically and exclusively (a
/// temporary file hard-linked into place, which fails when the file
/// exists); the reason is cleaned to one line of at most [`REASON_CAP`]
/// bytes. Returns the record written.
///
/// # Errors
/// [`SignalError::NoCurrentStep`] before the first prompt;
/// [`SignalError::NotInProgress`] for another step;
/// [`SignalError::AlreadySignalled`] when the step was signalled;
/// [`SignalError::Write`] with the I/O error.
pub fn give(
    run: &RunDir,
    signal: Signal,
    reason: Option<String>,
    step: Option<String>,
) -> Result<SignalRecord, SignalError> {
    give_in_progress(run, current_step(run)?, signal, reason, step)
}

/// The step a signal is for, when it may be given: `step` (`--step`, or
/// `current` when not given) must be `current`, the step in progress, and
/// not signalled yet.
///
/// # Errors
/// [`SignalError::NotInProgress`] for another step;
/// [`SignalError::AlreadySignalled`] when the step was signalled.
pub fn signallable(
    run: &RunDir,
    current: String,
    step: Option<String>,
) -> Result<String, SignalError> {
    let step = step.unwrap_or_else(|| current.clone());
    if step != current {
        return Err(SignalError::NotInProgress { step, current });
    }
    if let Ok(Some(earlier)) = read(run, &step) {
        return Err(SignalError::AlreadySignalled {
            step,
            signal: earlier.signal,
        });
    }
    Ok(step)
}

/// As [`give`], with `current` the step in progress as the caller knows it
/// (in a run whose steps run at once, each agent session has its own
/// current-step file).
///
/// # Errors
/// As [`give`].
pub fn give_in_progress(
    run: &RunDir,
    current: String,
    signal: Signal,
    reason: Option<String>,
    step: Option<String>,
) -> Result<SignalRecord, SignalError> {
    let step = signallable(run, current, step)?;
    let record = SignalRecord {
        step,
        signal,
        reason: reason
            .map(|r| one_line(&r, REASON_CAP))
            .filter(|r| !r.is_empty()),
        at: Utc::now(),
    };
    write(run, &record)?;
    Ok(record)
}

/// Writes `record` to its step's signal file, atomically and only when
/// there is none: a temporary file in `steps/`, hard-linked as the signal
/// file (`link(2)` fails when the name exists), then removed.
///
/// # Errors
/// [`SignalError::AlreadySignalled`] when the step has a signal file;
/// [`SignalError::Write`] with the I/O error.
pub fn write(run: &RunDir, record: &SignalRecord) -> Result<(), SignalError> {
    let path = run.signal_file(&record.step);
    let write_error = |source| SignalError::Write {
        path: path.clone(),
        source,
    };
    let mut json = serde_json::to_vec(record).map_err(|e| write_error(std::io::Error::other(e)))?;
    json.push(b'\n');
    let dir = run.steps_dir();
    std::fs::create_dir_all(&dir).map_err(write_error)?;
    let temp = dir.join(format!(
        ".signal-{}-{}.tmp",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let linked = std::fs::write(&temp, &json).and_then(|()| std::fs::hard_link(&temp, &path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let signal = read(run, &record.step)
                .ok()
                .flatten()
                .map_or(record.signal, |r| r.signal);
            Err(SignalError::AlreadySignalled {
                step: record.step.clone(),
                signal,
            })
        }
        Err(error) => Err(write_error(error)),
    }
}

/// Removes `step`'s signal file, if any, before the step starts: a signal
/// given before the step was in progress does not end it. A file already
/// gone is no error.
///
/// # Errors
/// [`SignalError::Write`] when it exists and cannot be removed.
pub fn clear_step_signal(run: &RunDir, step: &str) -> Result<(), SignalError> {
    let path = run.signal_file(step);
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(SignalError::Write {
            path,
            source: error,
        }),
        _ => Ok(()),
    }
}

/// Reads the signal of `step`, if the agent has given one.
///
/// # Errors
/// [`SignalError::Malformed`] when the file holds something else.
pub fn read(run: &RunDir, step: &str) -> Result<Option<SignalRecord>, SignalError> {
    read_file(&run.signal_file(step))
}

/// Removes the phase file of session `session`'s agent (from 0,
/// [`RunDir::agent_phase_file`]), so that what it says next is about the
/// step about to start in that session; other sessions' files are left
/// alone. A file already gone is no error.
///
/// # Errors
/// [`SignalError::Write`] when it exists and cannot be removed.
pub fn clear_agent_phase(run: &RunDir, session: usize) -> Result<(), SignalError> {
    let path = run.agent_phase_file(session);
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(SignalError::Write {
            path,
            source: error,
        }),
        _ => Ok(()),
    }
}

/// How `step`, in progress in session `session` (from 0), was signalled,
/// if it was: its signal file (`retort signal`), else the phase file of
/// that session's agent (`PHASE:done`, …,
/// [`RunDir::agent_phase_file`]), read as a signal of the step in progress.
///
/// # Errors
/// [`SignalError::Malformed`] when the signal file holds something else.
pub fn read_step_end(
    run: &RunDir,
    session: usize,
    step: &str,
) -> Result<Option<SignalRecord>, SignalError> {
    // A signal file whose record names another step is not this step's.
    if let Some(record) = read(run, step)?.filter(|r| r.step == step) {
        return Ok(Some(record));
    }
    Ok(std::fs::read_to_string(run.agent_phase_file(session))
        .ok()
        .and_then(|text| parse_phase(&text))
        .map(|(signal, reason)| SignalRecord {
            step: step.to_string(),
            signal,
            reason: reason
                .map(|r| one_line(&r, REASON_CAP))
                .filter(|r| !r.is_empty()),
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

/// How many times a signal file that does not parse is read again before
/// it counts as malformed, and how long between reads: 20 × 25 ms. An
/// agent writing the file itself (`echo … > FILE`) may be caught half-way.
const MALFORMED_RETRIES: u32 = 20;
const MALFORMED_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// Reads the bytes of a signal file, once: `None` while it is empty or
/// only whitespace (being written), the record with its reason made one
/// clean line of at most [`REASON_CAP`] bytes, or the JSON error (a file
/// caught half-written, or not a signal). Never panics, whatever the bytes.
///
/// # Errors
/// The JSON error when the bytes are not a [`SignalRecord`].
pub fn parse_record(bytes: &[u8]) -> Result<Option<SignalRecord>, serde_json::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut record = serde_json::from_slice::<SignalRecord>(bytes)?;
    record.reason = record
        .reason
        .map(|r| one_line(&r, REASON_CAP))
        .filter(|r| !r.is_empty());
    Ok(Some(record))
}

fn read_file(path: &Path) -> Result<Option<SignalRecord>, SignalError> {
    let mut attempt = 0;
    loop {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(_) => return Ok(None),
        };
        match parse_record(&bytes) {
            Ok(record) => return Ok(record),
            Err(_) if attempt < MALFORMED_RETRIES => {
                attempt += 1;
                std::thread::sleep(MALFORMED_PAUSE);
            }
            Err(source) => {
                return Err(SignalError::Malformed {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_at(step: &str) -> (tempfile::TempDir, RunDir) {
        let temp = tempfile::tempdir().unwrap();
        let run = RunDir::new(temp.path().to_path_buf());
        run.create_agent_dirs().unwrap();
        std::fs::write(run.current_step_file(), format!("{step}\n")).unwrap();
        (temp, run)
    }

    #[test]
    fn only_the_step_in_progress_is_signalled_and_only_once() {
        let (_temp, run) = run_at("one");
        let error = give(&run, Signal::Done, None, Some("two".into())).unwrap_err();
        assert_eq!(
            error.to_string(),
            "step `two` is not in progress; the step in progress is `one`"
        );
        assert_eq!(read(&run, "two").unwrap(), None, "nothing written");
        let record = give(&run, Signal::Failed, Some("a\n\u{1b}[31mb".into()), None).unwrap();
        assert_eq!(record.reason.as_deref(), Some("a b"));
        let again = give(&run, Signal::Done, None, Some("one".into())).unwrap_err();
        assert!(
            again
                .to_string()
                .starts_with("step `one` was already signalled (failed)"),
            "{again}"
        );
        assert_eq!(read(&run, "one").unwrap().unwrap().signal, Signal::Failed);
        let names: Vec<_> = std::fs::read_dir(run.steps_dir()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary left: {names:?}");
    }

    #[test]
    fn a_half_written_signal_file_is_read_again() {
        let (_temp, run) = run_at("one");
        let path = run.signal_file("one");
        std::fs::write(&path, "").unwrap();
        assert_eq!(read(&run, "one").unwrap(), None, "empty: not yet");
        std::fs::write(&path, r#"{"step":"one","sig"#).unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                file.write_all(br#"nal":"done","at":"2026-01-01T00:00:00Z"}"#)
                    .unwrap();
            })
        };
        let record = read(&run, "one").unwrap().unwrap();
        writer.join().unwrap();
        assert_eq!(record.signal, Signal::Done);
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            read(&run, "one"),
            Err(SignalError::Malformed { .. })
        ));
    }

    #[test]
    fn a_signal_file_naming_another_step_does_not_end_this_one() {
        let (_temp, run) = run_at("two");
        std::fs::write(
            run.signal_file("two"),
            r#"{"step":"one","signal":"done","at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(read_step_end(&run, 0, "two").unwrap(), None);
        clear_step_signal(&run, "two").unwrap();
        assert!(!run.signal_file("two").exists());
    }

    #[test]
    fn a_sessions_phase_line_ends_only_its_own_step_and_clearing_leaves_others() {
        let (_temp, run) = run_at("one");
        assert_eq!(run.agent_phase_file(0), run.path().join("agent.phase"));
        assert_eq!(run.agent_phase_file(1), run.path().join("agent-2.phase"));
        std::fs::write(run.agent_phase_file(1), "PHASE:escalate disk full\n").unwrap();
        assert_eq!(read_step_end(&run, 0, "one").unwrap(), None);
        let record = read_step_end(&run, 1, "two").unwrap().unwrap();
        assert_eq!(
            (
                record.step.as_str(),
                record.signal,
                record.reason.as_deref()
            ),
            ("two", Signal::Escalate, Some("disk full"))
        );
        // Session 0's next step clears its own file, not session 1's.
        std::fs::write(run.agent_phase_file(0), "PHASE:done\n").unwrap();
        clear_agent_phase(&run, 0).unwrap();
        assert!(!run.agent_phase_file(0).exists());
        assert!(run.agent_phase_file(1).exists());
    }

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
