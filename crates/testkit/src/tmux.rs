//! A tmux server of its own (socket `-L retort-testkit-<pid>-<n>`) running
//! one program in one 200×50 window; killed when dropped.
//!
//! The program's environment is the environment of the tmux server, set on
//! the process that starts it (never on a command line), so secrets stay off
//! `ps`.

use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Columns of the window.
pub const WIDTH: u16 = 200;
/// Rows of the window.
pub const HEIGHT: u16 = 50;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A program running in a private tmux server.
#[derive(Debug)]
pub struct TmuxSession {
    socket: String,
    /// The program's process id, to wait for its exit when dropped.
    pid: Option<u32>,
    /// The server's socket file, removed when dropped (tmux 3.x can leave it).
    socket_path: Option<std::path::PathBuf>,
}

/// A wait that ran out of time, with the last screen seen.
#[derive(Debug, thiserror::Error)]
#[error("waited {waited_ms} ms for {what}; the screen was:\n{screen}")]
pub struct Timeout {
    /// What was waited for.
    pub what: String,
    /// How long, in ms.
    pub waited_ms: u128,
    /// The last capture.
    pub screen: String,
}

impl TmuxSession {
    /// Starts `program args…` in `cwd` with exactly `env` (nothing else of
    /// this process's environment but `TMUX_TMPDIR` when set, plus what tmux
    /// adds: `TMUX`, `TMUX_PANE`), in a detached 200×50 session named `main`.
    ///
    /// # Errors
    /// I/O errors running tmux, or `Other` with tmux's stderr when it fails.
    pub fn start(
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        cwd: &Path,
    ) -> io::Result<TmuxSession> {
        let socket = format!(
            "retort-testkit-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut session = TmuxSession {
            socket,
            pid: None,
            socket_path: None,
        };
        let (width, height) = (WIDTH.to_string(), HEIGHT.to_string());
        let mut command = Command::new("tmux");
        command
            .args([
                "-L",
                &session.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
            ])
            .args(["-s", "main", "-x", &width, "-y", &height])
            .arg("-c")
            .arg(cwd)
            .arg("--")
            .arg(program)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(name, value)| (name, value)));
        // Later tmux calls inherit this process's environment; the server must
        // be where they look for it.
        if let Some(dir) = std::env::var_os("TMUX_TMPDIR") {
            command.env("TMUX_TMPDIR", dir);
        }
        check(command.output()?)?;
        // Keep the pane after the program exits, so its last screen can be read.
        let _ = session.tmux(&["set-option", "-t", "main", "remain-on-exit", "on"]);
        session.pid = session
            .tmux(&["display-message", "-p", "-t", "main", "#{pane_pid}"])
            .ok()
            .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok());
        session.socket_path = session
            .tmux(&["display-message", "-p", "#{socket_path}"])
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().into())
            .filter(|path: &std::path::PathBuf| !path.as_os_str().is_empty());
        Ok(session)
    }

    fn tmux(&self, args: &[&str]) -> io::Result<Output> {
        check(
            Command::new("tmux")
                .args(["-L", &self.socket])
                .args(args)
                .output()?,
        )
    }

    /// The visible screen, `tmux capture-pane -p` (no colours; the input
    /// line's `❯` is followed by U+00A0, not a space).
    ///
    /// # Errors
    /// tmux's failure (e.g. the server is gone).
    pub fn screen(&self) -> io::Result<String> {
        let output = self.tmux(&["capture-pane", "-p", "-t", "main"])?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Pastes `text` as a bracketed paste (through a tmux buffer fed on
    /// stdin, so it is on no command line). Does not press Enter.
    ///
    /// # Errors
    /// tmux's failure.
    pub fn paste(&self, text: &str) -> io::Result<()> {
        let mut child = Command::new("tmux")
            .args(["-L", &self.socket, "load-buffer", "-b", "paste", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes())?;
        }
        check(child.wait_with_output()?)?;
        self.tmux(&["paste-buffer", "-p", "-d", "-b", "paste", "-t", "main"])?;
        Ok(())
    }

    /// Sends tmux key names (`Enter`, `Escape`, `Down`, `1`, …).
    ///
    /// # Errors
    /// tmux's failure.
    pub fn keys(&self, keys: &[&str]) -> io::Result<()> {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux(&args).map(drop)
    }

    /// Polls the screen every 100 ms until `done` holds, for at most
    /// `timeout`; returns that screen.
    ///
    /// # Errors
    /// [`Timeout`] with the last screen, naming `what`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, Timeout> {
        let start = Instant::now();
        let mut screen = String::new();
        loop {
            if let Ok(now) = self.screen() {
                screen = now;
                if done(&screen) {
                    return Ok(screen);
                }
            }
            if start.elapsed() >= timeout {
                return Err(Timeout {
                    what: what.to_owned(),
                    waited_ms: start.elapsed().as_millis(),
                    screen,
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen contains `text`; see [`TmuxSession::wait_until`].
    ///
    /// # Errors
    /// [`Timeout`].
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> Result<String, Timeout> {
        self.wait_until(&format!("{text:?}"), timeout, |screen| {
            screen.contains(text)
        })
    }
}

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The program gets SIGHUP; wait (up to 3 s) until it has exited, so
        // it writes nothing into a folder being removed after this.
        if let Some(pid) = self.pid {
            let proc = format!("/proc/{pid}");
            let deadline = Instant::now() + Duration::from_secs(3);
            while Path::new(&proc).exists() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn check(output: Output) -> io::Result<Output> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(io::Error::other(format!(
            "tmux failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
