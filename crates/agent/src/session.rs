//! The tmux backend: one detached tmux session per run, running the agent,
//! into which each step's prompt is pasted.
//!
//! Commands are built with `tmux_interface` and run as child processes
//! through tokio, so the runtime never blocks on tmux.
//!
//! The pane runs the agent under a small `/bin/sh` wrapper ([`WRAPPER`]),
//! given to tmux as an argument vector so that nothing is re-quoted. When
//! the agent exits, the wrapper writes its exit status atomically to the
//! exit file (where the run's file-system watcher sees it at once), prints
//! a line saying so, and keeps the pane open, so that the agent's last
//! output can still be read and captured. tmux's own `remain-on-exit` is
//! not used: writing to a dead pane crashes tmux servers before 3.4 (tmux
//! issue #3830), and Debian 12 ships 3.3a. If the session itself goes away,
//! a pidfd on the wrapper (Linux ≥ 5.3) says so at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tmux_interface::{
    CapturePane, HasSession, KillSession, LoadBuffer, NewSession, PasteBuffer, SendKeys, Tmux,
};
use tokio::sync::watch;

/// The pane's program: reads the session's environment from the file `$3`
/// and removes it, runs the agent command (`$1`) with `/bin/sh -c`, writes
/// its exit status to the exit file (`$2`) through a rename, says so in the
/// pane, and then idles until the session is killed.
///
/// The environment travels in a file (mode 0600, see [`write_env_file`])
/// rather than as `new-session -e NAME=VALUE` arguments, which any user
/// can read in `ps` for as long as the tmux server lives.
pub const WRAPPER: &str = concat!(
    ". \"$3\"; rm -f \"$3\"; ",
    "/bin/sh -c \"$1\"; status=$?; ",
    "printf '%s\\n' \"$status\" > \"$2.tmp\" && mv -f \"$2.tmp\" \"$2\"; ",
    "printf '\\n[retort] the agent exited with status %s\\n' \"$status\"; ",
    "exec sleep 2147483647"
);

/// The pause between pasting a prompt and pressing Enter when `[agent]
/// submit_delay` does not say, so that terminal applications that detect
/// pastes (Claude Code among them) read Enter as a separate key press
/// rather than part of the pasted text: 300 ms.
pub const DEFAULT_SUBMIT_DELAY: Duration = Duration::from_millis(300);

/// The agent pane's size in columns × rows; wide enough for agent TUIs.
pub const PANE_SIZE: (usize, usize) = (200, 50);

/// A tmux command failed.
#[derive(Debug, Error)]
pub enum SessionError {
    /// tmux could not be started.
    #[error("cannot run tmux: {0}; install tmux (3.2 or newer), e.g. `apt-get install tmux`")]
    Spawn(std::io::Error),
    /// The session's environment file could not be written.
    #[error("cannot write the agent's environment to {}: {source}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// tmux ran and failed.
    #[error("`tmux {command}` failed: {stderr}")]
    Tmux {
        /// The tmux command.
        command: String,
        /// What tmux said.
        stderr: String,
    },
}

/// Which tmux server to talk to: the default one (honouring
/// `$TMUX_TMPDIR`), or the one listening on a given socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmuxServer {
    /// `-S SOCKET`, when set.
    pub socket: Option<PathBuf>,
}

impl TmuxServer {
    async fn run(&self, what: &str, tmux: Tmux<'_>) -> Result<String, SessionError> {
        self.run_with_path(what, tmux, None).await
    }

    /// Runs a tmux client, with `path` as the client's own `PATH` when given.
    async fn run_with_path(
        &self,
        what: &str,
        tmux: Tmux<'_>,
        path: Option<&str>,
    ) -> Result<String, SessionError> {
        let tmux = match &self.socket {
            Some(socket) => tmux.socket_path(socket.to_string_lossy().into_owned()),
            None => tmux,
        };
        let mut command = tokio::process::Command::from(tmux.into_command());
        command
            .env_remove("TMUX")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let output = command.output().await.map_err(SessionError::Spawn)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(SessionError::Tmux {
                command: what.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }
}

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// The session name (safe characters only: `[A-Za-z0-9_-]`).
    pub name: String,
    /// The agent's shell command line, run with `/bin/sh -c`.
    pub command: String,
    /// Where the wrapper writes the agent's exit status.
    pub exit_file: PathBuf,
    /// The agent's working directory.
    pub cwd: PathBuf,
    /// Variables set in the session's environment, through `env_file`.
    pub env: Vec<(String, String)>,
    /// Where the environment is written for the wrapper to read (and
    /// remove) as it starts: a file only the user can read.
    pub env_file: PathBuf,
}

/// How the agent's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentExit {
    /// It exited with this status (128 + N when signal N killed it, as
    /// the shell reports it).
    Exited(i32),
    /// Its session is gone (killed from outside, or the tmux server died).
    Gone,
}

impl fmt::Display for AgentExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentExit::Exited(status) => write!(f, "the agent exited with status {status}"),
            AgentExit::Gone => write!(f, "the agent's tmux session disappeared"),
        }
    }
}

/// A running agent session.
#[derive(Debug)]
pub struct AgentSession {
    server: TmuxServer,
    name: String,
    pane_pid: i32,
    exit_file: PathBuf,
    pidfd: Option<std::os::fd::OwnedFd>,
    gone: watch::Receiver<bool>,
}

impl AgentSession {
    /// Starts `spec` as a detached session and begins watching its pane.
    ///
    /// # Errors
    /// [`SessionError`] when tmux cannot be run or refuses (a session of
    /// that name exists, tmux is older than 3.2, …).
    pub async fn start(server: &TmuxServer, spec: &SessionSpec) -> Result<Self, SessionError> {
        let new_session = NewSession::new()
            .detached()
            .print()
            .format("#{pane_pid}")
            .session_name(spec.name.as_str())
            .start_directory(spec.cwd.to_string_lossy().into_owned())
            .width(PANE_SIZE.0)
            .height(PANE_SIZE.1);
        write_env_file(&spec.env_file, &spec.env).map_err(|source| SessionError::EnvFile {
            path: spec.env_file.clone(),
            source,
        })?;
        // Several words after the options: tmux runs them as an argument
        // vector, without a shell (tmux ≥ 3.0).
        let mut new_session = new_session.shell_command("/bin/sh").build();
        for word in [
            "-c".to_string(),
            WRAPPER.to_string(),
            "retort-agent".to_string(),
            spec.command.clone(),
            spec.exit_file.to_string_lossy().into_owned(),
            spec.env_file.to_string_lossy().into_owned(),
        ] {
            new_session.push_param(word);
        }
        // tmux gives a new pane the *client's* PATH, whatever `-e` says
        // (spawn.c, so that `tmux new-session prog` finds `prog`); so the
        // client carries the session's PATH too.
        let path = spec
            .env
            .iter()
            .find(|(key, _)| key == "PATH")
            .map(|(_, value)| value.as_str());
        // A client that reaches a server just as it exits (its last session
        // was killed a moment ago) gets "server exited unexpectedly"; the
        // next client starts a fresh server. Three tries, 100 ms apart.
        let mut attempt = 0;
        let stdout = loop {
            attempt += 1;
            match server
                .run_with_path("new-session", Tmux::with_command(new_session.clone()), path)
                .await
            {
                Err(SessionError::Tmux { stderr, .. })
                    if attempt < 3
                        && (stderr.contains("server exited unexpectedly")
                            || stderr.contains("lost server")) =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                result => {
                    if result.is_err() {
                        let _ = std::fs::remove_file(&spec.env_file);
                    }
                    break result?;
                }
            }
        };
        let pane_pid = stdout.trim().parse::<i32>().unwrap_or(0);
        let pidfd = open_pidfd(pane_pid);
        let watched = pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
        let (sender, gone) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_exit(pane_pid, watched).await;
            let _ = sender.send(true);
        });
        Ok(AgentSession {
            server: server.clone(),
            name: spec.name.clone(),
            pane_pid,
            exit_file: spec.exit_file.clone(),
            pidfd,
            gone,
        })
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid of the pane's process (the wrapper shell).
    pub fn pane_pid(&self) -> i32 {
        self.pane_pid
    }

    /// Pastes the file at `prompt` into the agent's pane through a tmux
    /// paste buffer (bracketed, when the agent asked for bracketed paste),
    /// waits `submit_delay` (see [`DEFAULT_SUBMIT_DELAY`]), and presses
    /// Enter. Sends nothing once the agent has exited.
    ///
    /// # Errors
    /// [`SessionError`] when tmux fails (the session is gone, …).
    pub async fn deliver(
        &self,
        prompt: &Path,
        buffer: &str,
        submit_delay: Duration,
    ) -> Result<(), SessionError> {
        if self.agent_exit().is_some() {
            return Ok(());
        }
        self.paste(prompt, buffer).await?;
        tokio::time::sleep(submit_delay).await;
        if self.agent_exit().is_some() {
            return Ok(());
        }
        self.press_enter().await
    }

    /// Pastes the file at `path` into the agent's pane through the tmux
    /// paste buffer `buffer` (bracketed, when the agent asked for bracketed
    /// paste), and deletes the buffer.
    ///
    /// # Errors
    /// [`SessionError`] when tmux fails (the session is gone, …).
    pub async fn paste(&self, path: &Path, buffer: &str) -> Result<(), SessionError> {
        let target = window_target(&self.name);
        let load = LoadBuffer::new()
            .buffer_name(buffer)
            .path(path.to_string_lossy().into_owned());
        let paste = PasteBuffer::new()
            .buffer_name(buffer)
            .delete()
            .bracket_codes()
            .target_pane(target.as_str());
        self.server
            .run(
                "load-buffer/paste-buffer",
                Tmux::new().add_command(load).add_command(paste),
            )
            .await?;
        Ok(())
    }

    /// Presses Enter in the agent's pane.
    ///
    /// # Errors
    /// [`SessionError`] when tmux fails.
    pub async fn press_enter(&self) -> Result<(), SessionError> {
        let target = window_target(&self.name);
        self.server
            .run(
                "send-keys",
                Tmux::with_command(SendKeys::new().target_pane(target.as_str()).key("Enter")),
            )
            .await?;
        Ok(())
    }

    /// How the agent ended, if it has: its exit status from the exit file,
    /// or [`AgentExit::Gone`] when the session's pane process is gone
    /// (asked of the kernel now, with a zero-timeout `poll(2)` on its pidfd).
    pub fn agent_exit(&self) -> Option<AgentExit> {
        if let Ok(text) = std::fs::read_to_string(&self.exit_file)
            && let Ok(status) = text.trim().parse::<i32>()
        {
            return Some(AgentExit::Exited(status));
        }
        self.pane_gone().then_some(AgentExit::Gone)
    }

    fn pane_gone(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        if *self.gone.borrow() {
            return true;
        }
        let Some(fd) = &self.pidfd else {
            return false;
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0)
    }

    /// Waits until the pane's process is gone: the session was killed, or
    /// the tmux server died (at once if it has). An agent that merely exits
    /// leaves the pane running; the exit file tells of that.
    pub async fn gone(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|gone| *gone).await;
    }

    /// Whether the session still exists.
    pub async fn exists(&self) -> bool {
        let target = format!("={}", self.name);
        self.server
            .run(
                "has-session",
                Tmux::with_command(HasSession::new().target_session(target.as_str())),
            )
            .await
            .is_ok()
    }

    /// What the agent's pane shows now: its visible lines, wrapped lines
    /// joined, trailing blanks trimmed. `None` when tmux cannot say (the
    /// session is gone).
    pub async fn screen(&self) -> Option<String> {
        let target = window_target(&self.name);
        let capture = CapturePane::new()
            .stdout()
            .join()
            .target_pane(target.as_str());
        let screen = self
            .server
            .run("capture-pane", Tmux::with_command(capture))
            .await
            .ok()?;
        Some(screen.trim_end().to_string())
    }

    /// The last `lines` lines of the agent's pane, for the run directory.
    pub async fn capture(&self, lines: u32) -> Option<String> {
        let target = window_target(&self.name);
        let start = format!("-{lines}");
        let capture = CapturePane::new()
            .stdout()
            .join()
            .start_line(start.as_str())
            .target_pane(target.as_str());
        self.server
            .run("capture-pane", Tmux::with_command(capture))
            .await
            .ok()
    }

    /// Kills the session. A session that is already gone is not an error.
    ///
    /// # Errors
    /// [`SessionError`] when the session exists and tmux fails to kill it.
    pub async fn kill(&self) -> Result<(), SessionError> {
        let target = format!("={}", self.name);
        match self
            .server
            .run(
                "kill-session",
                Tmux::with_command(KillSession::new().target_session(target.as_str())),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(_) if !self.exists().await => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Writes `env` to `path` as `/bin/sh` reads it (`export NAME='VALUE'`, a
/// quote in a value written `'\''`), creating the file with mode 0600 so
/// that only the user can read the secrets it may hold. Names a shell
/// cannot export (not `[A-Za-z_][A-Za-z0-9_]*`) are left out.
///
/// # Errors
/// The I/O error; an existing file at `path` is replaced.
pub fn write_env_file(path: &Path, env: &[(String, String)]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    for (key, value) in env {
        let name_ok = key
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
            && !key.is_empty();
        if name_ok {
            text.push_str(&format!(
                "export {key}='{}'\n",
                value.replace('\'', "'\\''")
            ));
        }
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// The exact-match target of a session's current window: `=NAME:`.
fn window_target(session: &str) -> String {
    format!("={session}:")
}

/// A pidfd for `pid` (Linux ≥ 5.3), or none where the kernel has none or
/// the process is already gone.
fn open_pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::NONBLOCK).ok()
}

/// Returns when the process `pid` has exited: when `pidfd` becomes
/// readable, or, without a pidfd, by checking every 250 ms.
async fn wait_for_exit(pid: i32, pidfd: Option<std::os::fd::OwnedFd>) {
    use rustix::process::{Pid, test_kill_process};
    let Some(pid) = Pid::from_raw(pid) else {
        return;
    };
    if let Some(fd) = pidfd {
        // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which keeps
        // it open, and unchanged, until both are dropped together.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        };
        if let Ok(fd) = registered {
            let _ = fd.readable().await;
            return;
        }
    }
    while test_kill_process(pid).is_ok() {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
