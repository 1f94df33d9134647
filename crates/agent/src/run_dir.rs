//! The layout of a run directory: the files a run, its agent and
//! `retort signal` share.
//!
//! ```text
//! runs/RUN_ID/
//!   snapshot.json                  the preflight snapshot the prompts saw
//!   decision.json                  the decide phase: findings, actions, the gate's decision
//!   prompts/STEP.md                every prompt as sent (no prompts/ when the gate stayed closed)
//!   current_step                   the id of the step the agent is on
//!   current_step-2, …              the same for the agents of later sessions of a run whose steps run at once
//!   agent.exit                     the agent's exit status, once it has exited
//!   agent-pane.txt                 the agent pane's last lines, at the end
//!   agent-2.exit, agent-pane-2.txt the same for a second session (a step changed model), …
//!   agent-output/STEP.log          headless: what the agent wrote while on STEP
//!   agent.phase                    the agent's own $PHASE_FILE (PHASE:done|failed|escalate), cleared before each step
//!   agent-2.phase, …               the same for the agents of later sessions of a run whose steps run at once
//!   claude-settings.json           Claude Code's settings for the session (permissions, hooks); -2, … for later sessions
//!   agent-events.jsonl             Claude Code's hook events, one JSON object a line (`retort hook`)
//!   agent-events-2.jsonl, …        the same for later sessions of a run whose steps run at once
//!   nudge.md                       the reminder pasted to an agent idle without signalling; -2, … for later sessions
//!   steps/STEP.signal              the agent's signal for a step (JSON; no steps/ without an agent)
//!   steps/STEP.output              what the agent handed on (`retort signal done --output`), at most 64 KiB
//!   attempts.json                  runs through the DAG scheduler: every attempt of every step, with times
//!   run.json                       the run's outcome, per step, and what retention removed
//!   owner.json                     who runs it (pid, tmux sessions, process groups), from its claim until run.json is written
//!   preflight-groups               the process group of each preflight command as it started, a line each
//!   abandoned                      present once a later run found it abandoned
//! ```
//!
//! An agent finds its run directory in [`RUN_DIR_ENV`], its own phase
//! file (`agent.phase`) in [`PHASE_FILE_ENV`], and the file its hooks
//! append to (`agent-events.jsonl`) in [`EVENTS_FILE_ENV`].
//!
//! Sessions that run at the same time (a formula's independent branches,
//! each in a session of its own) must not share the files their agent
//! writes: one session's `PHASE:escalate` or permission request would end
//! another session's step. So the phase and events files are per session,
//! like `current_step`, `agent.exit` and `claude-settings.json`: session 0
//! keeps the plain names, session N (from 0) adds `-{N+1}`. A run whose
//! steps go one at a time (a chain) uses session 0's files in every
//! session, since only one of them works at a time.

use std::path::{Path, PathBuf};

use retort_os::paths::file_safe;

/// The file in a run directory naming its owner: retort's pid, its tmux
/// sessions and process groups (see [`RunDir::record_group`]).
pub const OWNER_FILE: &str = "owner.json";
/// The environment variable, set in an agent's session, naming its run directory.
pub const RUN_DIR_ENV: &str = "RETORT_RUN_DIR";
/// The environment variable, set in an agent's session, naming the agent's
/// own phase file (`RUN/agent.phase`, `agent-2.phase`, …; retort's phase
/// file stays retort's).
pub const PHASE_FILE_ENV: &str = "PHASE_FILE";
/// The environment variable, set in an agent's session, naming the file
/// that `retort hook` appends the session's hook events to
/// (`RUN/agent-events.jsonl`, `agent-events-2.jsonl`, …).
pub const EVENTS_FILE_ENV: &str = "RETORT_EVENTS_FILE";

/// The directory of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// The run directory at `path` (which need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        RunDir(path)
    }

    /// Creates `RUNS/RUN_ID/` (and `RUNS`, the state directory's `runs/`,
    /// when missing). `prompts/` and `steps/` wait for
    /// [`RunDir::create_agent_dirs`].
    ///
    /// # Errors
    /// The I/O error, including `AlreadyExists` when the run id is taken.
    pub fn create(runs: &Path, run_id: &str) -> std::io::Result<RunDir> {
        std::fs::create_dir_all(runs)?;
        let dir = RunDir(runs.join(run_id));
        std::fs::create_dir(dir.path())?;
        Ok(dir)
    }

    /// Creates `prompts/` and `steps/` (when missing): what a run needs once
    /// its gate has opened and an agent is about to start, and not before,
    /// so that a run without an agent leaves no empty directories.
    ///
    /// # Errors
    /// The I/O error.
    pub fn create_agent_dirs(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.prompts_dir())?;
        std::fs::create_dir_all(self.steps_dir())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `owner.json`: who runs it (the runner writes it; see
    /// `retort_runner::recovery`), removed once `run.json` is written.
    pub fn owner_file(&self) -> PathBuf {
        self.0.join(OWNER_FILE)
    }

    /// `preflight-groups`: the process group of each of the preflight's
    /// commands as it started, a decimal id a line (the preflight's
    /// `group_log`), which the next run ends should this one be killed.
    pub fn preflight_groups_file(&self) -> PathBuf {
        self.0.join("preflight-groups")
    }

    /// Adds process group `group` (its leader's pid) to the `groups` of
    /// `owner.json`, as it starts, so that the next run ends it should
    /// retort be killed (SIGKILL) meanwhile. Best effort: nothing happens
    /// when the file is missing or not an object; the process's own
    /// writers take turns (one lock for the process).
    pub fn record_group(&self, group: i32) {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.owner_file();
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let Ok(serde_json::Value::Object(mut owner)) = serde_json::from_slice(&bytes) else {
            return;
        };
        let groups = owner
            .entry("groups")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(groups) = groups
            && !groups.iter().any(|g| g.as_i64() == Some(i64::from(group)))
        {
            groups.push(group.into());
            if let Ok(json) = serde_json::to_vec_pretty(&owner) {
                let _ = retort_os::atomic::write_atomic(&path, &json);
            }
        }
    }

    /// `snapshot.json`.
    pub fn snapshot_file(&self) -> PathBuf {
        self.0.join("snapshot.json")
    }

    /// `prompts/`.
    pub fn prompts_dir(&self) -> PathBuf {
        self.0.join("prompts")
    }

    /// `prompts/STEP.md`.
    pub fn prompt_file(&self, step: &str) -> PathBuf {
        self.prompts_dir().join(format!("{}.md", file_safe(step)))
    }

    /// `steps/`.
    pub fn steps_dir(&self) -> PathBuf {
        self.0.join("steps")
    }

    /// `steps/STEP.signal`.
    pub fn signal_file(&self, step: &str) -> PathBuf {
        self.steps_dir().join(format!("{}.signal", file_safe(step)))
    }

    /// `current_step`.
    pub fn current_step_file(&self) -> PathBuf {
        self.0.join("current_step")
    }

    /// `agent.exit` (`agent-2.exit`, … for later sessions): the agent's
    /// exit status, written when it exits. `session` counts from 0.
    pub fn agent_exit_file(&self, session: usize) -> PathBuf {
        self.0.join(match session {
            0 => "agent.exit".to_string(),
            n => format!("agent-{}.exit", n + 1),
        })
    }

    /// `agent.env` (`agent-2.env`, …): the session's environment, from
    /// when tmux starts the session until its wrapper has read it (then
    /// removed). `session` counts from 0.
    pub fn agent_env_file(&self, session: usize) -> PathBuf {
        self.0.join(match session {
            0 => "agent.env".to_string(),
            n => format!("agent-{}.env", n + 1),
        })
    }

    /// `agent.phase` (`agent-2.phase`, …): the agent's own phase file,
    /// which its `$PHASE_FILE` names; what it writes there
    /// (`PHASE:done|failed|escalate`) signals its session's step in
    /// progress. `session` counts from 0 (see the module documentation).
    pub fn agent_phase_file(&self, session: usize) -> PathBuf {
        self.0.join(match session {
            0 => "agent.phase".to_string(),
            n => format!("agent-{}.phase", n + 1),
        })
    }

    /// `agent-events.jsonl` (`agent-events-2.jsonl`, …): the hook events of
    /// a session's agent, one JSON object a line, appended by `retort
    /// hook`. `session` counts from 0 (see the module documentation).
    pub fn events_file(&self, session: usize) -> PathBuf {
        self.0.join(match session {
            0 => crate::events::EVENTS_FILE.to_string(),
            n => format!("agent-events-{}.jsonl", n + 1),
        })
    }

    /// `nudge.md` (`nudge-2.md`, …): the reminder last pasted to session
    /// `session`'s agent (from 0) when it went idle without signalling.
    pub fn nudge_file(&self, session: usize) -> PathBuf {
        self.0.join(match session {
            0 => "nudge.md".to_string(),
            n => format!("nudge-{}.md", n + 1),
        })
    }

    /// `agent-output/`: with the headless backend, each step's agent
    /// output.
    pub fn agent_output_dir(&self) -> PathBuf {
        self.0.join("agent-output")
    }

    /// `agent-output/STEP.log`: what the headless agent wrote, standard
    /// output and standard error interleaved, while it worked on `step`.
    pub fn agent_output_file(&self, step: &str) -> PathBuf {
        self.agent_output_dir()
            .join(format!("{}.log", file_safe(step)))
    }

    /// `agent-pane.txt` (`agent-pane-2.txt`, …): the agent pane's last
    /// lines, captured when its session ends. `session` counts from 0.
    pub fn pane_capture_file(&self, session: usize) -> PathBuf {
        self.0.join(match session {
            0 => "agent-pane.txt".to_string(),
            n => format!("agent-pane-{}.txt", n + 1),
        })
    }

    /// `run.json`.
    pub fn summary_file(&self) -> PathBuf {
        self.0.join("run.json")
    }

    /// `decision.json`: the decide phase's findings, actions and gate.
    pub fn decision_file(&self) -> PathBuf {
        self.0.join("decision.json")
    }
}
