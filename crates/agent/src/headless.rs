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
//!
//! Claude Code ([`HeadlessAgent::stream_json`]) runs once per session
//! instead, in print mode with stream-json in and out: each step's prompt
//! is a user turn on its standard input, its output lines go to the
//! current step's log, and each turn's `result` frame
//! ([`crate::stream_json::TurnResult`]) is handed to the run
//! ([`HeadlessAgent::next_result`]), which reads from it how the turn
//! ended: tokens and cost, API errors, denied tool calls.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use retort_os::process::terminate_group;
use rustix::process::Pid;
use thiserror::Error;
use tokio::sync::{mpsc, watch};

use crate::session::{AgentExit, SessionSpec};
use crate::stream_json::{Reply, TurnResult, user_frame};

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
    /// A stream-json agent no longer reads its standard input.
    #[error("cannot write the next turn to the agent's standard input: {0}")]
    Input(std::io::Error),
}

/// The agent of one session of a run, on the headless backend: the
/// command, and its process, if one has started (the current step's, or
/// in stream-json mode the session's).
#[derive(Debug)]
pub struct HeadlessAgent {
    spec: SessionSpec,
    stream: bool,
    steps_started: usize,
    current: Option<Box<StepProcess>>,
}

/// An agent process: a step's, or a stream-json session's.
#[derive(Debug)]
struct StepProcess {
    /// Its process group (its own pid).
    group: Option<Pid>,
    /// Its exit status once it has exited (128 + N when killed by signal
    /// N, as the shell reports it); in stream-json mode set only once its
    /// output has been read to the end, so every result comes first.
    exit: watch::Receiver<Option<i32>>,
    /// Stream-json: its standard input, where each turn is written.
    stdin: Option<tokio::process::ChildStdin>,
    /// Stream-json: the file its output goes to (the current step's log).
    log: Arc<Mutex<Option<std::fs::File>>>,
    /// Stream-json: each turn's `result` frame, in order.
    results: Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<TurnResult>>>,
    /// Stream-json: each model reply as it starts (once per message id).
    replies: Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<Reply>>>,
}

impl HeadlessAgent {
    /// The agent of a session described by `spec`, one process per step
    /// (its `exit_file` is not used: the backend has the exit status
    /// itself). Starts nothing.
    pub fn new(spec: SessionSpec) -> Self {
        HeadlessAgent {
            spec,
            stream: false,
            steps_started: 0,
            current: None,
        }
    }

    /// The agent of a session described by `spec` that speaks Claude
    /// Code's stream-json ([`crate::stream_json`]): one process for the
    /// whole session, started with the first step, each step's prompt a
    /// user turn on its standard input. Starts nothing.
    pub fn stream_json(spec: SessionSpec) -> Self {
        HeadlessAgent {
            stream: true,
            ..HeadlessAgent::new(spec)
        }
    }

    /// Whether this agent speaks stream-json (one process a session).
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// The agent command.
    pub fn command(&self) -> &str {
        &self.spec.command
    }

    /// Starts the agent on a step, with `output` (created, with its
    /// directory) receiving what it writes while on the step.
    ///
    /// One process a step: `/bin/sh -c COMMAND` with `prompt` as its
    /// standard input and `output` as its standard output and error, with
    /// `RETORT_STEP=step`; the process of the step before, if any, is
    /// ended first, gracefully ([`HeadlessAgent::end`]).
    ///
    /// Stream-json: the session's process is started with the first step
    /// (its standard input and output are pipes); each step writes the
    /// prompt's text as one user turn ([`crate::stream_json::user_frame`]).
    ///
    /// # Errors
    /// [`HeadlessError`] when the prompt cannot be read, the output file
    /// cannot be created, `/bin/sh` cannot be started, or (stream-json) the
    /// agent no longer reads its input.
    pub async fn deliver(
        &mut self,
        step: &str,
        prompt: &Path,
        output: &Path,
    ) -> Result<(), HeadlessError> {
        if self.stream {
            return self.deliver_turn(step, prompt, output).await;
        }
        self.end(true).await;
        let stdin = std::fs::File::open(prompt).map_err(file_error(prompt))?;
        let stdout = create_log(output)?;
        let stderr = stdout.try_clone().map_err(file_error(output))?;
        self.steps_started += 1;
        let mut command = self.shell_command(step);
        command
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let mut child = command.spawn().map_err(HeadlessError::Spawn)?;
        let group = group_of(&child);
        self.record(group);
        let (sender, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => exit_status(status),
                Err(_) => 128 + 9,
            };
            let _ = sender.send(Some(status));
        });
        self.current = Some(Box::new(StepProcess {
            group,
            exit,
            stdin: None,
            log: Arc::new(Mutex::new(None)),
            results: None,
            replies: None,
        }));
        Ok(())
    }

    /// Records the agent's process group in its run's `owner.json`
    /// ([`crate::run_dir::RunDir::record_group`]), found through the
    /// session's [`crate::run_dir::RUN_DIR_ENV`], so that a run killed by
    /// SIGKILL does not leave it running: the next run ends it.
    fn record(&self, group: Option<Pid>) {
        let run_dir = self
            .spec
            .env
            .iter()
            .find(|(name, _)| name == crate::run_dir::RUN_DIR_ENV);
        if let (Some((_, dir)), Some(group)) = (run_dir, group) {
            crate::run_dir::RunDir::new(dir.into()).record_group(group.as_raw_nonzero().get());
        }
    }

    fn shell_command(&self, step: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(&self.spec.command)
            .current_dir(&self.spec.cwd)
            .env_clear()
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .env("RETORT_STEP", step)
            .env("RETORT_SESSION_STEP", self.steps_started.to_string())
            .process_group(0);
        command
    }

    async fn deliver_turn(
        &mut self,
        step: &str,
        prompt: &Path,
        output: &Path,
    ) -> Result<(), HeadlessError> {
        let text = std::fs::read_to_string(prompt).map_err(file_error(prompt))?;
        let log = create_log(output)?;
        self.steps_started += 1;
        if self.current.is_none() {
            self.current = Some(Box::new(self.start_stream(step, log)?));
        } else if let Some(current) = &self.current
            && let Ok(mut slot) = current.log.lock()
        {
            *slot = Some(log);
        }
        self.send_turn(&text).await
    }

    /// Writes `text` as a user turn to a stream-json agent (a step's prompt,
    /// or a reminder to signal).
    ///
    /// # Errors
    /// [`HeadlessError::Input`] when no process reads it any more.
    pub async fn send_turn(&mut self, text: &str) -> Result<(), HeadlessError> {
        use tokio::io::AsyncWriteExt;
        let stdin = self
            .current
            .as_mut()
            .and_then(|current| current.stdin.as_mut())
            .ok_or_else(|| HeadlessError::Input(std::io::ErrorKind::BrokenPipe.into()))?;
        stdin
            .write_all(user_frame(text).as_bytes())
            .await
            .map_err(HeadlessError::Input)?;
        stdin.flush().await.map_err(HeadlessError::Input)
    }

    fn start_stream(&self, step: &str, log: std::fs::File) -> Result<StepProcess, HeadlessError> {
        use tokio::io::AsyncBufReadExt;
        let mut command = self.shell_command(step);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(HeadlessError::Spawn)?;
        let group = group_of(&child);
        self.record(group);
        let log = Arc::new(Mutex::new(Some(log)));
        let (result_sender, results) = mpsc::unbounded_channel();
        let (reply_sender, replies) = mpsc::unbounded_channel();
        let stdout = child.stdout.take();
        let stdout_log = Arc::clone(&log);
        let reader = tokio::spawn(async move {
            let Some(stdout) = stdout else { return };
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            let mut last_reply = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                append_line(&stdout_log, &line);
                if let Some(result) = TurnResult::parse(&line) {
                    let _ = result_sender.send(result);
                } else if let Some(reply) = Reply::parse(&line)
                    && reply.id != last_reply
                {
                    last_reply.clone_from(&reply.id);
                    let _ = reply_sender.send(reply);
                }
            }
        });
        if let Some(stderr) = child.stderr.take() {
            let stderr_log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    append_line(&stderr_log, &line);
                }
            });
        }
        let stdin = child.stdin.take();
        let (sender, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => exit_status(status),
                Err(_) => 128 + 9,
            };
            // Every frame it wrote is read before its exit is told.
            let _ = tokio::time::timeout(OUTPUT_DRAIN, reader).await;
            let _ = sender.send(Some(status));
        });
        Ok(StepProcess {
            group,
            exit,
            stdin,
            log,
            results: Some(tokio::sync::Mutex::new(results)),
            replies: Some(tokio::sync::Mutex::new(replies)),
        })
    }

    /// The next turn's `result` frame of a stream-json agent; never, for a
    /// process-per-step agent or once the agent's output has ended.
    ///
    /// The replies of the turn it ends are dropped from
    /// [`HeadlessAgent::next_reply`]'s queue: they are in its usage.
    pub async fn next_result(&self) -> TurnResult {
        if let Some(results) = self.current.as_ref().and_then(|c| c.results.as_ref())
            && let Some(result) = results.lock().await.recv().await
        {
            self.drop_replies();
            return result;
        }
        std::future::pending().await
    }

    /// Drops the replies read so far (those of turns whose result is in).
    fn drop_replies(&self) {
        if let Some(replies) = self.current.as_ref().and_then(|c| c.replies.as_ref())
            && let Ok(mut replies) = replies.try_lock()
        {
            while replies.try_recv().is_ok() {}
        }
    }

    /// The next model reply of a stream-json agent as it starts (see
    /// [`Reply`]); never, for a process-per-step agent or once the agent's
    /// output has ended.
    pub async fn next_reply(&self) -> Reply {
        if let Some(replies) = self.current.as_ref().and_then(|c| c.replies.as_ref())
            && let Some(reply) = replies.lock().await.recv().await
        {
            return reply;
        }
        std::future::pending().await
    }

    /// A `result` frame already read and not yet taken, if any.
    pub fn try_next_result(&self) -> Option<TurnResult> {
        let results = self.current.as_ref()?.results.as_ref()?;
        let result = results.try_lock().ok()?.try_recv().ok()?;
        self.drop_replies();
        Some(result)
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

    /// Ends the agent's process group: `graceful` (the agent has
    /// signalled) gives its leader [`EXIT_GRACE`] to exit first (a
    /// stream-json agent has its input closed, which ends it). Then
    /// whatever is left of the group gets SIGTERM, and SIGKILL after
    /// [`KILL_GRACE`]. Does nothing when no step has started.
    pub async fn end(&mut self, graceful: bool) {
        let Some(mut current) = self.current.take() else {
            return;
        };
        drop(current.stdin.take());
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

/// How long a stream-json agent's output may still be read after it
/// exited (a child it left may hold the pipe): 2 s.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> HeadlessError + use<> {
    let path = path.to_path_buf();
    move |source| HeadlessError::File { path, source }
}

/// Creates a step's log file (and its directory).
fn create_log(output: &Path) -> Result<std::fs::File, HeadlessError> {
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    }
    std::fs::File::create(output).map_err(file_error(output))
}

/// Appends a line to the current log, if there is one; a failed write
/// loses only the log's copy.
fn append_line(log: &Mutex<Option<std::fs::File>>, line: &str) {
    use std::io::Write as _;
    if let Ok(mut slot) = log.lock()
        && let Some(file) = slot.as_mut()
    {
        let _ = writeln!(file, "{line}");
    }
}

fn group_of(child: &tokio::process::Child) -> Option<Pid> {
    child
        .id()
        .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
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
