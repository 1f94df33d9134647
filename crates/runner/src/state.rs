//! Where retort keeps its state, and the layout of a run directory.
//!
//! ```text
//! STATE/                             mode 0700 (`runs/`, `journal/` and run directories too; files 0600)
//!   FORMULA.phase                    PHASE:running while a run is in progress, then
//!                                    PHASE:done | PHASE:failed | PHASE:escalate (+ Reason: line)
//!   FORMULA.lock                     held (flock) by the formula's run in progress
//!   history.sqlite                   the run history: findings across runs, actions, proposals
//!   history.sqlite.corrupt-TIMESTAMP a corrupt history a run moved aside (and said so in the journal)
//!   journal/FORMULA/YYYY-MM-DD.md    the markdown journal, one entry a run
//!   runs/RUN_ID/                     removed once older than the formula's `[history] keep`
//!     snapshot.json                  the preflight snapshot the prompts saw
//!     decision.json                  the decide phase: findings, actions, the gate's decision
//!     prompts/STEP.md                every prompt as sent (no prompts/ when the gate stayed closed)
//!     current_step                   the id of the step the agent is on
//!     agent.exit                     the agent's exit status, once it has exited
//!     agent-pane.txt                 the agent pane's last lines, at the end
//!     agent-2.exit, agent-pane-2.txt the same for a second session (a step changed model), …
//!     steps/STEP.signal              the agent's signal for a step (JSON; no steps/ without an agent)
//!     run.json                       the run's outcome, per step, and what retention removed
//!     owner.json                     who runs it (pid, tmux sessions), until run.json is written
//!     abandoned                      present once a later run found it abandoned
//! ```

use std::path::{Path, PathBuf};

use retort_os::paths::file_safe;
use retort_os::random::random_u32;

use chrono::{DateTime, NaiveDateTime, Utc};
use thiserror::Error;

pub use retort_agent::run_dir::{EVENTS_FILE_ENV, PHASE_FILE_ENV, RUN_DIR_ENV, RunDir};

/// The environment variable naming the state directory.
pub const STATE_DIR_ENV: &str = "RETORT_STATE_DIR";

/// The state directory could not be determined.
#[derive(Debug, Error)]
#[error(
    "no state directory: none of --state-dir, $RETORT_STATE_DIR, $XDG_STATE_HOME or $HOME is set"
)]
pub struct NoStateDir;

/// The state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(PathBuf);

impl StateDir {
    /// Resolves the state directory: `explicit` (from `--state-dir`), else
    /// `$RETORT_STATE_DIR`, else `$XDG_STATE_HOME/retort`, else
    /// `~/.local/state/retort` (the XDG Base Directory default). Empty
    /// variables count as unset, as the XDG specification says.
    ///
    /// # Errors
    /// [`NoStateDir`] when nothing gives a directory.
    pub fn resolve(explicit: Option<&Path>) -> Result<StateDir, NoStateDir> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = explicit {
            return Ok(StateDir(dir.to_path_buf()));
        }
        if let Some(dir) = var(STATE_DIR_ENV) {
            return Ok(StateDir(PathBuf::from(dir)));
        }
        if let Some(dir) = var("XDG_STATE_HOME") {
            return Ok(StateDir(PathBuf::from(dir).join("retort")));
        }
        std::env::home_dir()
            .filter(|home| !home.as_os_str().is_empty())
            .map(|home| StateDir(home.join(".local/state/retort")))
            .ok_or(NoStateDir)
    }

    /// A state directory that is never written: `retort render` uses it so
    /// that `{{ run.phase_file }}` renders as a readable placeholder.
    pub fn placeholder() -> StateDir {
        StateDir(PathBuf::from("$RETORT_STATE_DIR"))
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The default phase file of a formula: `STATE/FORMULA.phase`.
    pub fn phase_file(&self, formula: &str) -> PathBuf {
        self.0.join(format!("{}.phase", file_safe(formula)))
    }

    /// The run lock of a formula: `STATE/FORMULA.lock`.
    pub fn lock_file(&self, formula: &str) -> PathBuf {
        self.0.join(format!("{}.lock", file_safe(formula)))
    }

    /// The journal directory of a formula: `STATE/journal/FORMULA`.
    pub fn journal_dir(&self, formula: &str) -> PathBuf {
        self.0.join("journal").join(file_safe(formula))
    }

    /// Where runs are kept: `STATE/runs`.
    pub fn runs_dir(&self) -> PathBuf {
        self.0.join("runs")
    }

    /// Makes the state directory private before a run writes into it: the
    /// directory is created mode 0700 when missing (an existing one keeps
    /// its mode), its `runs/` and `journal/` are created (or set) mode
    /// 0700, and `history.sqlite` is created empty with mode 0600 (SQLite
    /// gives its `-wal` and `-shm` files the database's mode), or set 0600
    /// when an older retort left it 0644. Snapshots, prompts, findings and
    /// the journal describe the factory; no other user needs them. Files
    /// retort replaces atomically (the phase file, `run.json`, …) are
    /// created 0600 already (`retort_os::atomic`).
    ///
    /// # Errors
    /// The I/O error, with the path it concerns.
    pub fn prepare(&self) -> Result<(), (PathBuf, std::io::Error)> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // The state directory itself is created private but, when it
        // exists, left as it is: `--state-dir` may name a directory that is
        // not retort's alone (`.`, `/tmp`), whose mode is not retort's to
        // change. What retort keeps lives in its own subdirectories.
        for dir in [self.0.clone(), self.runs_dir(), self.0.join("journal")] {
            let fail = |error| (dir.clone(), error);
            create_private(&dir).map_err(fail)?;
            if dir != self.0 {
                set_mode(&dir, PRIVATE_DIR).map_err(fail)?;
            }
        }
        let history = self.0.join(retort_journal::history::HISTORY_FILE);
        let fail = |error| (history.clone(), error);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(&history)
        {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                set_mode(&history, PRIVATE_FILE).map_err(fail)?;
            }
            Err(error) => return Err(fail(error)),
        }
        // Its WAL and index, which outlive the run, as an older retort
        // may have left them.
        for suffix in ["-wal", "-shm"] {
            let mut name = history.clone().into_os_string();
            name.push(suffix);
            let file = PathBuf::from(name);
            if file.exists() {
                set_mode(&file, PRIVATE_FILE).map_err(|error| (file.clone(), error))?;
            }
        }
        fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
            let metadata = std::fs::metadata(path)?;
            if metadata.permissions().mode() & 0o777 != mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(())
        }
        Ok(())
    }

    /// Creates the state directory, mode 0700, when it is missing (before
    /// the run lock, whose file is in it); an existing one is left as it is.
    ///
    /// # Errors
    /// The I/O error, with the path.
    pub fn create(&self) -> Result<(), (PathBuf, std::io::Error)> {
        create_private(&self.0).map_err(|error| (self.0.clone(), error))
    }
}

/// Creates `dir` and its missing parents, mode [`PRIVATE_DIR`]; nothing
/// when it exists.
fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

/// The mode of retort's directories in the state directory: 0700.
pub const PRIVATE_DIR: u32 = 0o700;

/// The mode of retort's files in the state directory: 0600.
pub const PRIVATE_FILE: u32 = 0o600;

/// A run's identifier: its UTC start time to the second and 32 random bits
/// as 8 lowercase hex digits ([`retort_os::random::random_u32`]), such as
/// `20261121-112000-3fa9c1e0`. Sorts by start time; safe in file and tmux
/// session names; two runs started in the same second collide once in
/// 2^32.
pub fn new_run_id(started: DateTime<Utc>) -> String {
    format!("{}-{:08x}", started.format("%Y%m%d-%H%M%S"), random_u32())
}

/// The UTC start time a run id made by [`new_run_id`] records, to the
/// second; `None` for any name that is not such a run id: exactly
/// `YYYYMMDD-HHMMSS-` of a real date and time, then 8 lowercase hex digits
/// (or 4, the suffix of run ids before 8 were used, which state
/// directories still hold).
pub fn run_id_started(run_id: &str) -> Option<DateTime<Utc>> {
    let bytes = run_id.as_bytes();
    let shaped = matches!(bytes.len(), 20 | 24)
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 15 => b == b'-',
            16.. => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    let time = NaiveDateTime::parse_from_str(run_id.get(..15)?, "%Y%m%d-%H%M%S").ok()?;
    Some(time.and_utc())
}
