//! A run's claim on its formula, taken before anything else, and what a
//! run interrupted before it decided leaves.
//!
//! [`Claim::take`] is the first thing a run does once its formula names
//! itself (before the preflight): it takes the formula's run [`lock`](crate::lock),
//! ends and records the runs of the formula whose retort died
//! ([`crate::recovery`]), and replaces the phase file with `PHASE:running`.
//! [`interrupted_early`] records a run that SIGINT, SIGTERM or SIGHUP
//! stopped before its decide phase (in its preflight): `PHASE:failed` with
//! where and why, a closed run-history row and a journal entry.
//!
//! In: the state directory, the formula's name, its phase file. Out: the
//! held lock, the lines of what recovery did, the files above.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use retort_journal::history::{History, RunRecord};
use retort_os::interrupt::Interruption;

use crate::lock::RunLock;
use crate::phase::{Phase, write_phase_file, write_running};
use crate::recovery;
use crate::run::RunError;
use crate::state::{RunDir, StateDir};

/// A run's hold on its formula: the run lock, until dropped (or the
/// process ends), and what recovery found as it was taken.
#[derive(Debug)]
pub struct Claim {
    _lock: RunLock,
    /// One line per dead run of the formula ended and recorded
    /// `abandoned` ([`recovery::recover`]).
    pub recovered: recovery::Recovered,
    /// Why `RUN/owner.json` could not be written, when it could not: the
    /// run goes on (a warning), but a SIGKILL would leave it unrecovered.
    pub owner_unsaved: Option<String>,
    /// The run history as recovery opened it (none when it could not be
    /// opened: the decide phase then opens it itself, moving a corrupt one
    /// aside): the run previews its decision in it and [`Claim::history`]
    /// hands it to the decide phase, one connection a run.
    history: std::sync::Mutex<Option<History>>,
}

/// Who is claiming: the run and where it writes.
#[derive(Debug, Clone, Copy)]
pub struct Claimant<'a> {
    /// The formula's name.
    pub formula: &'a str,
    /// The run's id.
    pub run_id: &'a str,
    /// When the run started (UTC).
    pub started_at: DateTime<Utc>,
    /// The phase file.
    pub phase_file: &'a Path,
    /// The formula's journal directory.
    pub journal_dir: &'a Path,
    /// The tmux server the run's sessions will be on (`None`: the
    /// default), for `owner.json`.
    pub tmux_socket: Option<&'a Path>,
}

impl Claim {
    /// Creates the state directory, takes the formula's run lock, recovers
    /// the formula's dead runs, makes the state directory private and
    /// writes `PHASE:running` with the run's id to the phase file.
    ///
    /// # Errors
    /// [`RunError::Locked`] when another run holds the lock (nothing is
    /// written then); [`RunError::Write`] when the state directory, the
    /// lock or the phase file cannot be written.
    pub async fn take(state: &StateDir, who: Claimant<'_>) -> Result<Claim, RunError> {
        let write_error = |(path, source)| RunError::Write { path, source };
        state.create().map_err(write_error)?;
        let lock = RunLock::acquire(&state.lock_file(who.formula))?;
        // Before anything else: runs of this formula whose retort died.
        let history = History::open(&retort_journal::history::history_file(state.path())).ok();
        let recovered =
            recovery::recover(state, who.formula, who.journal_dir, history.as_ref()).await;
        state.prepare().map_err(write_error)?;
        // No earlier run's outcome may stand for this one: a phase file that
        // cannot say `PHASE:running` ends the run here, before anything starts.
        write_running(who.phase_file, who.run_id).map_err(|source| RunError::Write {
            path: who.phase_file.to_path_buf(),
            source,
        })?;
        // The run's directory, and in it who owns the run, before the
        // preflight starts the formula's commands: their process groups
        // are logged beside it (`preflight-groups`), so that the next run
        // ends them should this one be killed.
        let run =
            RunDir::create(&state.runs_dir(), who.run_id).map_err(|source| RunError::Write {
                path: state.runs_dir().join(who.run_id),
                source,
            })?;
        let _ = std::fs::set_permissions(
            run.path(),
            std::os::unix::fs::PermissionsExt::from_mode(crate::state::PRIVATE_DIR),
        );
        let owner = recovery::Owner::this_process(
            who.formula,
            who.run_id,
            who.started_at,
            who.phase_file,
            who.tmux_socket,
        );
        let owner_unsaved = owner.save(&run).err().map(|error| {
            format!(
                "could not write {}: {error}",
                recovery::owner_file(&run).display()
            )
        });
        Ok(Claim {
            _lock: lock,
            recovered,
            owner_unsaved,
            history: std::sync::Mutex::new(history),
        })
    }

    /// Runs `read` on the run history the claim opened, if it did.
    pub fn with_history<T>(&self, read: impl FnOnce(&History) -> T) -> Option<T> {
        let history = self.history.lock().ok()?;
        history.as_ref().map(read)
    }

    /// Takes the run history the claim opened, if it did (once).
    pub fn history(&self) -> Option<History> {
        self.history.lock().ok()?.take()
    }
}

/// The reason recorded for a run that `signal` stopped `during` a phase
/// (`the preflight`, `the auto actions`, `finishing`).
pub fn interrupted_reason(signal: Interruption, during: &str) -> String {
    format!("retort was interrupted by {signal} during {during}")
}

/// Records run `who` as stopped by `signal` during its preflight, before
/// it decided anything: `PHASE:failed` with the reason, a run-history row
/// (gate closed, `failed`, finished now) and a journal entry. Returns the
/// reason and the lines of what could not be recorded.
pub fn interrupted_early(
    state: &StateDir,
    who: Claimant<'_>,
    signal: Interruption,
) -> (String, Vec<String>) {
    let reason = format!(
        "{}; nothing was decided or started",
        interrupted_reason(signal, "the preflight")
    );
    let now = Utc::now();
    let mut notes = Vec::new();
    if let Err(error) = write_phase_file(who.phase_file, Phase::Failed, Some(&reason)) {
        notes.push(format!(
            "could not write the phase file {}: {error}",
            who.phase_file.display()
        ));
    }
    if let Err(error) = record_run(state.path(), who, &reason, now) {
        notes.push(format!("could not record the run in the history: {error}"));
    }
    let entry = retort_journal::Entry {
        formula: who.formula.to_string(),
        run_id: who.run_id.to_string(),
        started_at: who.started_at,
        duration: (now - who.started_at).to_std().unwrap_or_default(),
        phase: Phase::Failed.to_string(),
        reason: Some(reason.clone()),
        health: Vec::new(),
        steps: Vec::new(),
        decision: None,
        usage: None,
        notes: notes.clone(),
    };
    if let Err(error) = retort_journal::append(who.journal_dir, &entry) {
        notes.push(error.to_string());
    }
    // Recorded: nothing for the next run to recover.
    let run = RunDir::new(state.runs_dir().join(who.run_id));
    let _ = std::fs::remove_file(recovery::owner_file(&run));
    (reason, notes)
}

/// Removes the directory the claim made for run `who`, when the run could
/// not go on before it decided anything (its formula has errors found
/// beside the preflight): the phase file says why, and no run was made.
pub fn discard_run_dir(state: &StateDir, who: Claimant<'_>) {
    let _ = std::fs::remove_dir_all(state.runs_dir().join(who.run_id));
}

/// A closed run row for a run that never decided.
fn record_run(
    state: &Path,
    who: Claimant<'_>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), retort_journal::history::HistoryError> {
    let path: PathBuf = retort_journal::history::history_file(state);
    let (mut history, _) = History::open_or_recover(&path)?;
    let transaction = history.transaction()?;
    let seq = transaction.state(who.formula)?.next_seq;
    transaction.insert_run(&RunRecord {
        seq,
        formula: who.formula.to_string(),
        run_id: who.run_id.to_string(),
        at: who.started_at,
        gate_open: false,
        gate_reason: "not decided: retort was interrupted first".to_string(),
        phase: Some(Phase::Failed.to_string()),
        reason: Some(reason.to_string()),
        finished_at: Some(now),
        findings: Vec::new(),
    })?;
    transaction.commit()
}
