//! Runs that ended without finishing: who owns a run, and what the next
//! run does about one whose owner is gone.
//!
//! Every run records in its directory who it is, `RUN/owner.json`
//! ([`Owner`]): retort's pid and the start time of that process (so that a
//! reused pid is not taken for it), the formula, the phase file, the tmux
//! server and the sessions it started, and the process groups of its
//! headless agents. A run killed by SIGKILL (the OOM killer, `timeout -s
//! KILL`, `systemctl kill`) leaves that file and no `run.json`.
//!
//! The next run of the formula, once it holds the run lock and before
//! anything else ([`recover`]), finds such runs, ends what is left of them
//! (tmux sessions by name, process groups: SIGTERM, then SIGKILL), records
//! each `abandoned` in the run history (when its row is still open) and
//! the journal, writes `PHASE:failed` to its phase file when that says
//! nothing newer, and marks the run directory `abandoned` so that it is
//! handled once. The tmux pane's own watcher
//! ([`retort_agent::session::WRAPPER`]) has usually ended the agent within
//! seconds already.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use retort_journal::history::History;
use retort_os::atomic::write_atomic;

use crate::phase::{Phase, write_phase_file};
use crate::state::{RunDir, StateDir};

/// The file in a run directory naming its owner.
pub use retort_agent::run_dir::OWNER_FILE;
/// The file that marks a run directory handled as abandoned.
pub const ABANDONED_FILE: &str = "abandoned";

/// Who a run is: written when its directory is made, updated as its
/// sessions and process groups start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The formula's name.
    pub formula: String,
    /// The run id.
    pub run_id: String,
    /// retort's process id.
    pub pid: u32,
    /// The process's start time, in clock ticks since boot (field 22 of
    /// `/proc/PID/stat`, proc(5)); none where it cannot be read.
    pub pid_start: Option<u64>,
    /// When the run started (UTC).
    pub started_at: DateTime<Utc>,
    /// The phase file the run writes.
    pub phase_file: PathBuf,
    /// The tmux server's socket (`-S`), when one was named.
    pub tmux_socket: Option<PathBuf>,
    /// `$TMUX_TMPDIR` of retort, which places the default tmux server.
    pub tmux_tmpdir: Option<PathBuf>,
    /// The tmux sessions started, in order.
    pub sessions: Vec<String>,
    /// The process groups started (headless agents, actions).
    pub groups: Vec<i32>,
}

impl Owner {
    /// This process, as the owner of run `run_id` of `formula`.
    pub fn this_process(
        formula: &str,
        run_id: &str,
        started_at: DateTime<Utc>,
        phase_file: &Path,
        tmux_socket: Option<&Path>,
    ) -> Owner {
        let pid = std::process::id();
        Owner {
            formula: formula.to_string(),
            run_id: run_id.to_string(),
            pid,
            pid_start: process_start(pid),
            started_at,
            phase_file: phase_file.to_path_buf(),
            tmux_socket: tmux_socket.map(Path::to_path_buf),
            tmux_tmpdir: std::env::var_os("TMUX_TMPDIR").map(PathBuf::from),
            sessions: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Writes it to `RUN/owner.json`, atomically.
    ///
    /// # Errors
    /// The I/O error.
    pub fn save(&self, run: &RunDir) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&owner_file(run), &json)
    }

    /// Reads `RUN/owner.json`; none when missing or unreadable.
    pub fn load(run: &RunDir) -> Option<Owner> {
        let bytes = std::fs::read(owner_file(run)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether its retort is still running: its pid alive, with the same
    /// start time.
    pub fn alive(&self) -> bool {
        let Some(start) = process_start(self.pid) else {
            return false;
        };
        self.pid_start.is_none_or(|recorded| recorded == start)
    }
}

/// `RUN/owner.json`.
pub fn owner_file(run: &RunDir) -> PathBuf {
    run.path().join(OWNER_FILE)
}

/// Adds tmux session `name` to the run's owner file (best effort: a run
/// that cannot record it still runs; the pane's watcher ends the session
/// anyway).
pub(crate) fn add_session(run: &RunDir, name: &str) {
    if let Some(mut owner) = Owner::load(run) {
        owner.sessions.push(name.to_string());
        let _ = owner.save(run);
    }
}

/// The start time of process `pid` in clock ticks since boot, from
/// `/proc/PID/stat` (the field after the parenthesised command name, 20
/// fields on); none when there is no such process.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// What [`recover`] found and did: one line per abandoned run.
pub type Recovered = Vec<String>;

/// Finds the runs of `formula` in `state` whose retort is gone without
/// finishing them (an `owner.json`, no `run.json`, not yet marked), ends
/// what is left of each, records it `abandoned` in `history` and the
/// journal in `journal_dir`, writes its phase file when that says nothing
/// newer, and marks it. Call it holding the formula's run lock. Returns a
/// line per run handled; failures to record are in those lines, never
/// errors.
pub async fn recover(
    state: &StateDir,
    formula: &str,
    journal_dir: &Path,
    history: Option<&History>,
) -> Recovered {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(state.runs_dir()) else {
        return lines;
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let run = RunDir::new(dir);
        if run.summary_file().exists() || run.path().join(ABANDONED_FILE).exists() {
            continue;
        }
        let Some(owner) = Owner::load(&run) else {
            continue;
        };
        if owner.formula != formula || owner.alive() {
            continue;
        }
        lines.push(abandon(&run, &owner, journal_dir, history).await);
    }
    lines
}

async fn abandon(
    run: &RunDir,
    owner: &Owner,
    journal_dir: &Path,
    history: Option<&History>,
) -> String {
    end_leftovers(run, owner).await;
    let now = Utc::now();
    let reason = format!(
        "run {} was abandoned: retort (pid {}) ended without finishing it (SIGKILL, the OOM killer or a crash); found by the next run",
        owner.run_id, owner.pid
    );
    let mut notes = Vec::new();
    if let Some(history) = history
        && let Err(error) = history
            .abandon_run(&owner.run_id, &reason, now)
            .and_then(|_| {
                // Its actions recorded as started, never as ended.
                history.abandon_action_runs(&owner.run_id, "its run was abandoned while it ran")
            })
    {
        notes.push(format!("could not record it in the history: {error}"));
    }
    let entry = retort_journal::Entry {
        formula: owner.formula.clone(),
        run_id: owner.run_id.clone(),
        started_at: owner.started_at,
        duration: (now - owner.started_at).to_std().unwrap_or_default(),
        phase: "abandoned".to_string(),
        reason: Some(reason.clone()),
        health: Vec::new(),
        steps: Vec::new(),
        decision: None,
        usage: None,
        notes: notes.clone(),
    };
    if let Err(error) = retort_journal::append(journal_dir, &entry) {
        notes.push(error.to_string());
    }
    // The phase file, unless something newer than the run wrote it since.
    let stale = std::fs::metadata(&owner.phase_file)
        .and_then(|m| m.modified())
        .map(|modified| DateTime::<Utc>::from(modified) <= owner.started_at)
        .unwrap_or(true);
    if stale && let Err(error) = write_phase_file(&owner.phase_file, Phase::Failed, Some(&reason)) {
        notes.push(format!(
            "could not write the phase file {}: {error}",
            owner.phase_file.display()
        ));
    }
    let _ = write_atomic(
        &run.path().join(ABANDONED_FILE),
        format!("{reason}\n").as_bytes(),
    );
    match notes.is_empty() {
        true => reason,
        false => format!("{reason} ({})", notes.join("; ")),
    }
}

/// Ends what an abandoned run left: its tmux sessions, by name, on its
/// server, and its process groups (SIGTERM, a second, SIGKILL).
async fn end_leftovers(run: &RunDir, owner: &Owner) {
    for session in &owner.sessions {
        let mut command = tokio::process::Command::new("tmux");
        if let Some(socket) = &owner.tmux_socket {
            command.arg("-S").arg(socket);
        }
        match &owner.tmux_tmpdir {
            Some(dir) => command.env("TMUX_TMPDIR", dir),
            None => command.env_remove("TMUX_TMPDIR"),
        };
        let _ = command
            .env_remove("TMUX")
            .args(["kill-session", "-t", &format!("={session}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
    let logged = std::fs::read_to_string(run.preflight_groups_file()).unwrap_or_default();
    let preflight = logged
        .lines()
        .filter_map(|line| line.trim().parse::<i32>().ok());
    for group in owner.groups.iter().copied().chain(preflight) {
        if let Some(group) = retort_os::process::group_of(u32::try_from(group).ok()) {
            retort_os::process::terminate_group(
                group,
                Duration::from_secs(1),
                std::future::pending::<()>(),
            )
            .await;
        }
    }
}
