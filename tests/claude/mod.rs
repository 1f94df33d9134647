//! The real Claude Code CLI in tmux, shared by `tests/claude_tmux.rs` (runs
//! and sessions) and `tests/claude_tmux_watchdog.rs` (dialogs, permission
//! requests, idle agents, rate limits): one test's [`World`] (the testkit's
//! scripted model server on 127.0.0.1, which `ANTHROPIC_BASE_URL` points the
//! CLI at through `Machine::env`; a machine of its own with the pinned CLI
//! first on PATH, retort's state and a tmux server of its own), the
//! scripted model most tests use, and how a finished `retort` is shown.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use retort_testkit::{ClaudeCode, Machine, ModelServer, Reply, Rule, Scenario, Setup, Usage, When};
use serde_json::Value;

use crate::support::{self, stderr, stdout};

/// One test's world: the scripted model, the machine, and retort's state.
pub struct World {
    /// The scripted model server on 127.0.0.1.
    pub server: ModelServer,
    /// The machine: HOME, working folder, `bin/` with `claude`.
    pub machine: Machine,
}

impl World {
    pub fn new(scenario: Scenario, setup: Setup) -> World {
        let claude = ClaudeCode::find().expect("the pinned Claude Code CLI");
        let server = ModelServer::start(scenario).expect("model server");
        let machine = Machine::new(setup).expect("machine");
        std::os::unix::fs::symlink(claude.bin(), machine.bin_dir().join("claude"))
            .expect("claude on PATH");
        for dir in ["state", "tmux"] {
            std::fs::create_dir_all(machine.root().join(dir)).unwrap();
        }
        World { server, machine }
    }

    pub fn state(&self) -> PathBuf {
        self.machine.root().join("state")
    }

    /// `retort run FORMULA` in the machine's working folder, with exactly
    /// the machine's environment (HOME, PATH with `claude`, the model
    /// server, the key) and its own tmux server.
    pub fn run(&self, formula: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(support::retort());
        command
            .arg("run")
            .arg(formula)
            .arg("--state-dir")
            .arg(self.state())
            .args(extra)
            .current_dir(self.machine.work_dir())
            .env_clear()
            .envs(self.machine.env(&self.server))
            .env("TMUX_TMPDIR", self.machine.root().join("tmux"));
        command
    }

    pub fn formula(&self, text: &str) -> PathBuf {
        let path = self.machine.root().join("formula.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn summary(&self) -> Value {
        let runs = self.state().join("runs");
        let dir = std::fs::read_dir(&runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
    }

    /// The prompts the model got (the last user entry's text), main
    /// requests only.
    pub fn prompts(&self) -> Vec<String> {
        self.server
            .message_requests()
            .iter()
            .filter(|r| !r.messages().is_side())
            .map(|r| r.messages().last_user_text())
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("kill-server")
            .env("TMUX_TMPDIR", self.machine.root().join("tmux"))
            .env_remove("TMUX")
            .output();
    }
}

/// A model that ends every step with `command` and answers the tool's
/// result with a short text.
pub fn signalling(command: &str) -> Scenario {
    Scenario::new()
        .when(When::SideRequest, Reply::text("Supervisor run"))
        .rule(
            Rule::new(When::AfterToolResult, Reply::text("Step done.")).usage(Usage::new(1200, 40)),
        )
        .rule(Rule::new(When::Any, Reply::bash(command)).usage(Usage::new(3000, 60)))
}

/// What a finished `retort` printed, for an assertion's message.
pub fn finished(output: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", stdout(output), stderr(output))
}
