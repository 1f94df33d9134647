//! Shared pieces of the end-to-end tests: a private tmux server per test,
//! the scripted agent, and the seed formula.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `retort` binary under test.
pub fn retort() -> &'static str {
    env!("CARGO_BIN_EXE_retort")
}

/// The seed supervisor formula shipped in `formulas/`.
pub fn seed_formula() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("formulas/run-supervisor.toml")
}

/// The command line of the scripted agent.
pub fn scripted_agent() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/scripted-agent.sh");
    format!("bash {}", script.display())
}

/// A test's sandbox: its own working, state and transcript directories and
/// its own tmux server (through `TMUX_TMPDIR`), killed when dropped.
pub struct Sandbox {
    pub root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("rt")
            .tempdir_in("/tmp")
            .expect("temp dir");
        for dir in ["work", "state", "transcript", "tmux"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("sandbox dir");
        }
        Sandbox { root }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    pub fn work(&self) -> PathBuf {
        self.path("work")
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    pub fn transcript(&self) -> PathBuf {
        self.path("transcript")
    }

    /// `retort ARGS` in the sandbox's working directory, with its tmux server.
    pub fn retort(&self, args: &[&str]) -> Command {
        let mut command = Command::new(retort());
        command
            .args(args)
            .current_dir(self.work())
            .env("TMUX_TMPDIR", self.path("tmux"))
            .env("AGENT_TRANSCRIPT", self.transcript())
            .env_remove("TMUX")
            .env_remove("RETORT_RUN_DIR")
            .env_remove("RETORT_STATE_DIR");
        command
    }

    /// Runs `retort ARGS --state-dir STATE`, asserts it exits 0, and returns
    /// its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        let state = self.state();
        all.extend(["--state-dir", state.to_str().unwrap()]);
        let output = self.retort(&all).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    }

    /// `tmux ARGS` against the sandbox's tmux server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(args)
            .env("TMUX_TMPDIR", self.path("tmux"))
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    }

    /// Names of the sessions on the sandbox's tmux server (none when no server runs).
    pub fn tmux_sessions(&self) -> Vec<String> {
        let output = self.tmux(&["list-sessions", "-F", "#{session_name}"]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The prompts the scripted agent received, as (file name, text), in order.
    pub fn received(&self) -> Vec<(String, String)> {
        let mut files: Vec<(usize, String, String)> = std::fs::read_dir(self.transcript())
            .expect("transcript dir")
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let (number, _) = name.split_once('-')?;
                let number = number.parse().ok()?;
                let text = std::fs::read_to_string(entry.path()).ok()?;
                Some((number, name, text))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, name, text)| (name, text))
            .collect()
    }

    /// The text of formula `name`'s phase file in the state directory.
    pub fn phase(&self, name: &str) -> String {
        let path = self.state().join(format!("{name}.phase"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("phase file {}: {e}", path.display()))
    }

    /// `retort check ARGS --format json`, which must find errors (exit
    /// status 1): the diagnostics it prints.
    pub fn check_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let output = self.retort(&all).output().expect("retort runs");
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        serde_json::from_str(&stdout(&output)).expect("a JSON array")
    }

    /// The only run directory under the state directory.
    pub fn run_dir(&self) -> PathBuf {
        let runs: Vec<PathBuf> = std::fs::read_dir(self.state().join("runs"))
            .expect("runs dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(runs.len(), 1, "exactly one run directory: {runs:?}");
        runs[0].clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// Every file under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(
                path.strip_prefix(base)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
            );
            if path.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A whole `snapshot.json`: every section of an empty snapshot (each
/// `unavailable`), with `patch` laid over it object by object.
pub fn snapshot_json(patch: serde_json::Value) -> serde_json::Value {
    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(base.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (base, patch) => *base = patch,
        }
    }
    let mut base = serde_json::to_value(retort_preflight::Snapshot::default()).expect("snapshot");
    merge(&mut base, patch);
    base
}
