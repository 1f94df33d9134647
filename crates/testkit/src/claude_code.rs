//! The real Claude Code CLI as a test fixture: where it is, a private
//! machine (HOME, `~/.claude.json`, a working folder, a `bin/` on PATH) per
//! test, and the environment a child gets.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::model_server::ModelServer;

impl Drop for Machine {
    /// Removes the folder, retrying for up to 1 s: a CLI that is still
    /// exiting may write its transcript while the folder is being removed.
    fn drop(&mut self) {
        for _ in 0..10 {
            match fs::remove_dir_all(self.dir.path()) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                _ => return,
            }
        }
    }
}

/// The environment variable that names the CLI to drive, overriding the
/// install script's path.
pub const BIN_ENV: &str = "RETORT_CLAUDE_BIN";

/// The Claude Code version the tests pin (tests/claude-code/package.json).
pub const PINNED_VERSION: &str = "2.1.197";

/// The fake API key every child gets in `ANTHROPIC_API_KEY`; the scripted
/// server accepts any key. Never put it on a command line.
pub const FAKE_API_KEY: &str = "sk-ant-api03-retort-testkit-fake-key-0000000000000000AA";

/// The CLI could not be found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// No executable at the path tried.
    #[error(
        "Claude Code not found at {path} ({source}); run tests/claude-code/install.sh, or set {BIN_ENV} to a claude executable"
    )]
    Missing {
        /// The path tried.
        path: PathBuf,
        /// Why it is not usable.
        source: io::Error,
    },
}

/// The Claude Code CLI to drive.
#[derive(Debug, Clone)]
pub struct ClaudeCode {
    bin: PathBuf,
}

impl ClaudeCode {
    /// Finds the CLI: `$RETORT_CLAUDE_BIN`, else
    /// `<workspace>/target/claude-code/node_modules/.bin/claude` (where
    /// tests/claude-code/install.sh puts it; `$CARGO_TARGET_DIR/claude-code/…`
    /// when that is set at build time).
    ///
    /// # Errors
    /// [`FindError::Missing`], naming the path and install.sh.
    pub fn find() -> Result<ClaudeCode, FindError> {
        let bin = match std::env::var_os(BIN_ENV) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => default_bin(),
        };
        match fs::metadata(&bin) {
            Ok(metadata) if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 => {
                Ok(ClaudeCode { bin })
            }
            Ok(_) => Err(FindError::Missing {
                path: bin,
                source: io::Error::other("not an executable file"),
            }),
            Err(source) => Err(FindError::Missing { path: bin, source }),
        }
    }

    /// The executable's path.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A command running the CLI with `args` in `machine`'s working folder,
    /// with exactly [`Machine::env`] as its environment (nothing inherited).
    pub fn command<I, S>(&self, machine: &Machine, server: &ModelServer, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut command = Command::new(&self.bin);
        command
            .args(args.into_iter().map(Into::into))
            .env_clear()
            .envs(machine.env(server))
            .current_dir(machine.work_dir());
        command
    }
}

fn default_bin() -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("claude-code/node_modules/.bin/claude")
}

/// What `~/.claude.json` says before the CLI starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Write `~/.claude.json` at all (`false`: no file, first start ever).
    pub file: bool,
    /// `hasCompletedOnboarding: true` (skips the theme/login onboarding).
    pub onboarded: bool,
    /// The fake key approved: `customApiKeyResponses.approved` holds its last
    /// 20 characters (else the CLI asks whether to use it).
    pub key_approved: bool,
    /// The working folder trusted: `projects[<dir>].hasTrustDialogAccepted`
    /// (else the folder-trust dialog opens first).
    pub trusted: bool,
}

impl Setup {
    /// A machine where Claude Code was used before: onboarded, key approved,
    /// working folder trusted. The CLI opens straight at its input box.
    pub const fn used_before() -> Setup {
        Setup {
            file: true,
            onboarded: true,
            key_approved: true,
            trusted: true,
        }
    }

    /// No `~/.claude.json` at all. The CLI then starts onboarding and tries
    /// the vendor's servers directly (not `ANTHROPIC_BASE_URL`): run it only
    /// where the network is closed.
    pub const fn nothing() -> Setup {
        Setup {
            file: false,
            onboarded: false,
            key_approved: false,
            trusted: false,
        }
    }

    /// The same without the working folder trusted.
    pub const fn without_trust(self) -> Setup {
        Setup {
            trusted: false,
            ..self
        }
    }

    /// The same without the key approved.
    pub const fn without_key_approval(self) -> Setup {
        Setup {
            key_approved: false,
            ..self
        }
    }
}

/// A private machine for one CLI: a temporary folder holding `home/` (HOME,
/// with `.claude.json` per [`Setup`]), `work/` (the working folder) and
/// `bin/` (first on PATH, for stub commands). Removed when dropped.
#[derive(Debug)]
pub struct Machine {
    dir: tempfile::TempDir,
    home: PathBuf,
    work: PathBuf,
    bin: PathBuf,
}

impl Machine {
    /// Creates the folders and writes `~/.claude.json` per `setup`.
    ///
    /// # Errors
    /// I/O errors creating the folders or writing the file.
    pub fn new(setup: Setup) -> io::Result<Machine> {
        let dir = tempfile::Builder::new()
            .prefix("retort-claude-")
            .tempdir()?;
        let root = dir.path().canonicalize()?;
        let (home, work, bin) = (root.join("home"), root.join("work"), root.join("bin"));
        for path in [&home, &work, &bin] {
            fs::create_dir_all(path)?;
        }
        let machine = Machine {
            dir,
            home,
            work,
            bin,
        };
        if setup.file {
            let json = machine.claude_json_for(setup);
            fs::write(
                machine.claude_json_path(),
                serde_json::to_vec_pretty(&json)?,
            )?;
        }
        Ok(machine)
    }

    fn claude_json_for(&self, setup: Setup) -> Value {
        let mut json = json!({"theme": "dark"});
        if setup.onboarded {
            json["hasCompletedOnboarding"] = json!(true);
        }
        if setup.key_approved {
            let tail = &FAKE_API_KEY[FAKE_API_KEY.len() - 20..];
            json["customApiKeyResponses"] = json!({"approved": [tail], "rejected": []});
        }
        if setup.trusted {
            let work = self.work.to_string_lossy();
            json["projects"] = json!({ work.as_ref(): {"hasTrustDialogAccepted": true} });
        }
        json
    }

    /// The temporary folder holding it all.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// HOME.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The working folder (canonical path; the CLI's `cwd`).
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// The folder first on the child's PATH.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// `~/.claude.json`.
    pub fn claude_json_path(&self) -> PathBuf {
        self.home.join(".claude.json")
    }

    /// `~/.claude.json` as the CLI left it (`Value::Null` when missing or
    /// not JSON).
    pub fn claude_json(&self) -> Value {
        fs::read(self.claude_json_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    }

    /// Writes an executable script `bin/<name>` (first on PATH) with `body`
    /// (start it with a `#!` line). Returns its path.
    ///
    /// # Errors
    /// I/O errors writing it or setting its mode.
    pub fn add_command(&self, name: &str, body: &str) -> io::Result<PathBuf> {
        let path = self.bin.join(name);
        fs::write(&path, body)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }

    /// The whole environment of a child CLI, nothing inherited:
    /// `HOME`, `PATH` (`bin/`, then `/usr/local/bin:/usr/bin:/bin`),
    /// `TERM=xterm-256color`, `LANG=C.UTF-8`, `SHELL=/bin/bash`,
    /// `ANTHROPIC_BASE_URL` (the server), `ANTHROPIC_API_KEY` ([`FAKE_API_KEY`]),
    /// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (no telemetry, error
    /// reports or update checks) and `DISABLE_AUTOUPDATER=1`. No proxy
    /// variables, no credentials of the test's own environment.
    pub fn env(&self, server: &ModelServer) -> Vec<(String, String)> {
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display());
        [
            ("HOME", self.home.display().to_string()),
            ("PATH", path),
            ("TERM", "xterm-256color".to_owned()),
            ("LANG", "C.UTF-8".to_owned()),
            ("SHELL", "/bin/bash".to_owned()),
            ("ANTHROPIC_BASE_URL", server.url()),
            ("ANTHROPIC_API_KEY", FAKE_API_KEY.to_owned()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
            ("DISABLE_AUTOUPDATER", "1".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

impl ClaudeCode {
    /// Starts the CLI with `args` in a private tmux server (200×50), in
    /// `machine`'s working folder with [`Machine::env`].
    ///
    /// # Errors
    /// tmux's failure to start.
    pub fn tmux(
        &self,
        machine: &Machine,
        server: &ModelServer,
        args: &[&str],
    ) -> io::Result<crate::tmux::TmuxSession> {
        crate::tmux::TmuxSession::start(&self.bin, args, &machine.env(server), machine.work_dir())
    }
}
