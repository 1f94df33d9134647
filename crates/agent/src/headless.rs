//! The headless backend: no terminal and no tmux. Each step runs the agent
//! command once (`/bin/sh -c COMMAND`, in its own process group) with the
//! step's prompt file as its standard input, and its standard output and
//! error going to `RUN/agent-output/STEP.log`. This suits agents' print
//! modes (`claude -p`) and hosts without tmux.
//!
//! The contract is the tmux backend's: the agent ends the step with
//! `retort signal` (it gets the same environment, plus `RETORT_STEP`, the
//! step's id, and `RETORT_SESSION_STEP`, the step's position in its
//! session from 1, so that a command can continue the conversation of the
//! steps before: `claude -p $([ "$RETORT_SESSION_STEP" -gt 1 ] && echo
//! --continue)`). An agent that exits without signalling fails the step,
//! with its exit status. One that has signalled gets [`EXIT_GRACE`] to
//! finish and exit by itself before the next step starts; then its process
//! group gets SIGTERM, and SIGKILL after [`KILL_GRACE`]. A step that ends
//! any other way (timeout, interrupt) ends its process group at once.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use retort_os::process::terminate_group;
use rustix::process::Pid;
use thiserror::Error;
use tokio::sync::watch;

use crate::session::{AgentExit, SessionSpec};

/// How long an agent that has signalled may take to exit by itself: 30 s.
pub const EXIT_GRACE: Duration = Duration::from_secs(30);

/// How long a process group has between SIGTERM and SIGKILL: 5 s.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// A step's agent process could not be started.
#[derive(Debug, Error)]
pub enum HeadlessError {
    /// The prompt could not be opened, or the output file created.
    #[error("cannot open {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `/bin/sh` could not be started.
    #[error("cannot start the agent command with /bin/sh: {0}")]
    Spawn(std::io::Error),
}

/// The agent of one session of a run, on the headless backend: the
/// command, and the process of the current step, if one has started.
#[derive(Debug)]
pub struct HeadlessAgent {
    spec: SessionSpec,
    steps_started: usize,
    current: Option<StepProcess>,
}

/// One step's agent process.
#[derive(Debug)]
struct StepProcess {
    /// Its process group (its own pid).
    group: Option<Pid>,
    /// Its exit status once it has exited (128 + N when killed by signal
    /// N, as the shell reports it).
    exit: watch::Receiver<Option<i32>>,
}

impl HeadlessAgent {
    /// The agent of a session described by `spec` (its `exit_file` is not
    /// used: the backend has the exit status itself). Starts nothing.
    pub fn new(spec: SessionSpec) -> Self {
        HeadlessAgent {
            spec,
            steps_started: 0,
            current: None,
        }
    }

    /// The agent command.
    pub fn command(&self) -> &str {
        &self.spec.command
    }

    /// Starts the agent on a step: `/bin/sh -c COMMAND` with `prompt` as
    /// its standard input and `output` (created, with its directory) as
    /// its standard output and error, with `RETORT_STEP=step`. The process
    /// of the step before, if any, is ended first, gracefully
    /// ([`HeadlessAgent::end`]).
    ///
    /// # Errors
    /// [`HeadlessError`] when the prompt cannot be read, the output file
    /// cannot be created, or `/bin/sh` cannot be started.
    pub async fn deliver(
        &mut self,
        step: &str,
        prompt: &Path,
        output: &Path,
    ) -> Result<(), HeadlessError> {
        self.end(true).await;
        let file_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HeadlessError::File { path, source }
        };
        let stdin = std::fs::File::open(prompt).map_err(file_error(prompt))?;
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir).map_err(file_error(dir))?;
        }
        let stdout = std::fs::File::create(output).map_err(file_error(output))?;
        let stderr = stdout.try_clone().map_err(file_error(output))?;
        self.steps_started += 1;
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(&self.spec.command)
            .current_dir(&self.spec.cwd)
            .env_clear()
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .env("RETORT_STEP", step)
            .env("RETORT_SESSION_STEP", self.steps_started.to_string())
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        let mut child = command.spawn().map_err(HeadlessError::Spawn)?;
        let group = child
            .id()
            .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?));
        let (sender, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => exit_status(status),
                Err(_) => 128 + 9,
            };
            let _ = sender.send(Some(status));
        });
        self.current = Some(StepProcess { group, exit });
        Ok(())
    }

    /// How the current step's process ended, if it has.
    pub fn agent_exit(&self) -> Option<AgentExit> {
        let current = self.current.as_ref()?;
        let status = *current.exit.borrow();
        status.map(AgentExit::Exited)
    }

    /// Waits until the current step's process has exited; never, when no
    /// step has started.
    pub async fn gone(&self) {
        match &self.current {
            Some(current) => {
                let mut exit = current.exit.clone();
                let _ = exit.wait_for(Option::is_some).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Ends the current step's process group: `graceful` (the agent has
    /// signalled) gives its leader [`EXIT_GRACE`] to exit first. Then
    /// whatever is left of the group gets SIGTERM, and SIGKILL after
    /// [`KILL_GRACE`]. Does nothing when no step has started.
    pub async fn end(&mut self, graceful: bool) {
        let Some(current) = self.current.take() else {
            return;
        };
        let mut exit = current.exit.clone();
        if graceful {
            let _ = tokio::time::timeout(EXIT_GRACE, exit.wait_for(Option::is_some)).await;
        }
        let Some(group) = current.group else {
            return;
        };
        // The leader may be gone while what it started lives on in its
        // group.
        terminate_group(group, KILL_GRACE, exit.wait_for(Option::is_some)).await;
    }
}

/// An exit status as the shell reports it: the code, or 128 + the signal.
fn exit_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 128,
    }
}
