//! The phase file: a run's outcome in the form the factory's other
//! scripts already read (`PHASE:done`, `PHASE:failed`, `PHASE:escalate`).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use retort_os::atomic::{write_atomic, write_durable};

/// A run's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Every step finished.
    Done,
    /// A step failed, timed out, or the agent went away.
    Failed,
    /// A step needs a human.
    Escalate,
}

impl Phase {
    /// The process exit status for this outcome: 0 done, 1 failed, 3 escalated.
    pub fn exit_code(self) -> u8 {
        match self {
            Phase::Done => 0,
            Phase::Failed => 1,
            Phase::Escalate => 3,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Done => "done",
            Phase::Failed => "failed",
            Phase::Escalate => "escalate",
        })
    }
}

/// The phase file's text: `PHASE:done\n`, or `PHASE:failed\nReason: …\n`.
/// A multi-line reason is folded onto the one `Reason:` line.
pub fn phase_text(phase: Phase, reason: Option<&str>) -> String {
    let mut text = format!("PHASE:{phase}\n");
    if let Some(reason) = reason.filter(|_| phase != Phase::Done) {
        let folded: Vec<&str> = reason.split_whitespace().collect();
        text.push_str(&format!("Reason: {}\n", folded.join(" ")));
    }
    text
}

/// Writes the phase file atomically and durably (it survives a crash of
/// the machine: the next run and supervisors read it).
///
/// # Errors
/// The I/O error.
pub fn write_phase_file(path: &Path, phase: Phase, reason: Option<&str>) -> std::io::Result<()> {
    write_durable(path, phase_text(phase, reason).as_bytes())
}

/// The phase file's text while a run is in progress: `PHASE:running` and
/// the run's id. Written when a run starts (under its lock), so that no
/// earlier run's outcome stands for this one: a run killed before it ends
/// leaves `PHASE:running`, never the `PHASE:done` of the run before.
pub fn running_text(run_id: &str) -> String {
    format!("PHASE:running\nRun: {run_id}\n")
}

/// Writes [`running_text`] atomically (readers see the old text or the
/// new). Not synced to disk, unlike the outcome ([`write_phase_file`]):
/// it stands in for the old outcome against a crash of retort, which the
/// rename alone covers; a crash of the machine ends the run as well, and
/// the next run records it as abandoned. Two fsyncs less a run.
///
/// # Errors
/// The I/O error: the run must not go on, since its outcome could not be
/// recorded where the factory reads it.
pub fn write_running(path: &Path, run_id: &str) -> std::io::Result<()> {
    write_atomic(path, running_text(run_id).as_bytes())
}
