//! What retort knows of an agent CLI: its kind, what it is allowed to do,
//! and the command line and settings it runs with.
//!
//! For Claude Code (`[agent] kind = "claude-code"`) retort writes a
//! settings file per session ([`Profile::claude_settings`]) and adds
//! `--settings FILE` to the command: it holds
//! - `permissions.allow`: `retort signal` (rule [`SIGNAL_RULE`]), the seed
//!   formula's exact `echo 'PHASE:…' > "$PHASE_FILE"` commands
//!   ([`phase_file_rules`]) and the formula's `allowed_tools`; nothing more.
//!   Claude Code 2.1.197 runs those with no dialog (seen in
//!   `crates/testkit/tests/print_mode.rs`); a prefix rule over a redirect,
//!   `Bash(echo 'PHASE:*)`, would still be denied, hence exact rules;
//! - `permissions.deny`: the formula's `disallowed_tools`;
//! - `permissions.defaultMode`: `[agent] permission_mode`, when given;
//! - `hooks`: `Stop` (a turn ended) and `Notification` (a permission is
//!   asked for) run `retort hook`, which appends the hook's JSON to the
//!   session's events file (`$RETORT_EVENTS_FILE`: `RUN/agent-events.jsonl`,
//!   `agent-events-2.jsonl`, … for sessions that run at once) for the wait
//!   to read.
//!
//! `--dangerously-skip-permissions` is added only with `[agent]
//! skip_permissions = true`. A `generic` agent's command runs as written.

use std::path::Path;
use std::time::Duration;

use retort_formula::formula::{
    AgentKind, AgentSection, DEFAULT_IDLE_TIMEOUT, OnPermission, ScreenSection, Step,
};
use serde_json::{Value, json};

/// The Claude Code permission rule that lets the agent run `retort signal
/// …` (any arguments) without asking.
pub const SIGNAL_RULE: &str = "Bash(retort signal:*)";

/// The exact Claude Code permission rules for the seed formula's phase
/// convention: `echo 'PHASE:done' > "$PHASE_FILE"`, and the same for
/// `failed` and `escalate`.
pub fn phase_file_rules() -> Vec<String> {
    ["done", "failed", "escalate"]
        .iter()
        .map(|phase| format!("Bash(echo 'PHASE:{phase}' > \"$PHASE_FILE\")"))
        .collect()
}

/// An agent CLI as one session of a run uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Which CLI.
    pub kind: AgentKind,
    /// Tools it may use without asking, retort's own grants first.
    pub allowed_tools: Vec<String>,
    /// Tools it must never use.
    pub disallowed_tools: Vec<String>,
    /// Its permission mode, passed through.
    pub permission_mode: Option<String>,
    /// Whether it runs every tool without asking (only when the formula
    /// says so).
    pub skip_permissions: bool,
    /// How long it may sit idle without signalling.
    pub idle_timeout: Duration,
    /// What a permission request ends a step with.
    pub on_permission: OnPermission,
    /// A generic agent's screen patterns.
    pub screen: ScreenSection,
}

impl Profile {
    /// The profile of the session whose agent command is `command`, for
    /// `[agent]` and the session's `steps` (their `allowed_tools` and
    /// `disallowed_tools` are added to the formula's).
    pub fn new(agent: &AgentSection, command: &str, steps: &[&Step]) -> Profile {
        let kind = agent.kind.unwrap_or_else(|| AgentKind::of_command(command));
        let mut allowed: Vec<String> = Vec::new();
        if kind == AgentKind::ClaudeCode {
            allowed.push(SIGNAL_RULE.to_string());
            allowed.extend(phase_file_rules());
        }
        let mut disallowed: Vec<String> = Vec::new();
        let formula_allowed = agent.allowed_tools.iter().map(|t| t.get_ref());
        let step_allowed = steps
            .iter()
            .flat_map(|s| s.allowed_tools.iter().map(|t| t.get_ref()));
        for tool in formula_allowed.chain(step_allowed) {
            if !allowed.contains(tool) {
                allowed.push(tool.clone());
            }
        }
        let formula_denied = agent.disallowed_tools.iter().map(|t| t.get_ref());
        let step_denied = steps
            .iter()
            .flat_map(|s| s.disallowed_tools.iter().map(|t| t.get_ref()));
        for tool in formula_denied.chain(step_denied) {
            if !disallowed.contains(tool) {
                disallowed.push(tool.clone());
            }
        }
        Profile {
            kind,
            allowed_tools: allowed,
            disallowed_tools: disallowed,
            permission_mode: agent.permission_mode.as_ref().map(|m| m.get_ref().clone()),
            skip_permissions: agent.skip_permissions,
            idle_timeout: agent
                .idle_timeout
                .as_ref()
                .map_or(DEFAULT_IDLE_TIMEOUT, |t| t.get_ref().0),
            on_permission: agent.on_permission,
            screen: agent.screen.clone(),
        }
    }

    /// Claude Code's settings for a session (see the module
    /// documentation): `hook_command` is the shell command line its hooks
    /// run (`'/abs/retort' hook`).
    pub fn claude_settings(&self, hook_command: &str) -> Value {
        let hook = json!([{ "hooks": [{ "type": "command", "command": hook_command }] }]);
        let mut permissions = json!({
            "allow": self.allowed_tools,
            "deny": self.disallowed_tools,
        });
        if let Some(mode) = &self.permission_mode {
            permissions["defaultMode"] = json!(mode);
        }
        json!({
            "permissions": permissions,
            "hooks": { "Stop": hook, "Notification": hook },
        })
    }

    /// The command line that runs the agent in a terminal: `command` as
    /// written for a generic agent; for Claude Code, with `--settings
    /// SETTINGS` (and `--dangerously-skip-permissions` only when the
    /// formula asks for it).
    pub fn tmux_command(&self, command: &str, settings: &Path) -> String {
        match self.kind {
            AgentKind::Generic => command.to_string(),
            AgentKind::ClaudeCode => {
                let mut line = format!(
                    "{command} --settings {}",
                    shell_quote(&settings.to_string_lossy())
                );
                if self.skip_permissions {
                    line.push_str(" --dangerously-skip-permissions");
                }
                line
            }
        }
    }

    /// The command line that runs the agent headless: `command` as written
    /// for a generic agent; for Claude Code, its print mode with stream-json
    /// in and out, one process for the whole session (`-p --input-format
    /// stream-json --output-format stream-json --verbose --settings
    /// SETTINGS`).
    pub fn headless_command(&self, command: &str, settings: &Path) -> String {
        match self.kind {
            AgentKind::Generic => command.to_string(),
            AgentKind::ClaudeCode => format!(
                "{} -p --input-format stream-json --output-format stream-json --verbose",
                self.tmux_command(command, settings)
            ),
        }
    }
}

/// `text` quoted for `/bin/sh`: in single quotes, a quote inside written
/// `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(toml_text: &str) -> AgentSection {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn claude_code_is_granted_the_signal_and_the_phase_file_and_nothing_else() {
        let profile = Profile::new(&agent(""), "claude --model sonnet", &[]);
        assert_eq!(profile.kind, AgentKind::ClaudeCode);
        assert_eq!(
            profile.allowed_tools,
            [
                "Bash(retort signal:*)",
                "Bash(echo 'PHASE:done' > \"$PHASE_FILE\")",
                "Bash(echo 'PHASE:failed' > \"$PHASE_FILE\")",
                "Bash(echo 'PHASE:escalate' > \"$PHASE_FILE\")",
            ]
        );
        let line = profile.tmux_command("claude --model sonnet", Path::new("/run/it's/s.json"));
        assert_eq!(
            line,
            "claude --model sonnet --settings '/run/it'\\''s/s.json'"
        );
        assert!(!line.contains("dangerously"));
    }

    #[test]
    fn a_generic_agent_runs_as_written() {
        let profile = Profile::new(&agent(""), "bash agent.sh", &[]);
        assert_eq!(profile.kind, AgentKind::Generic);
        assert!(profile.allowed_tools.is_empty());
        assert_eq!(
            profile.tmux_command("bash agent.sh", Path::new("/s")),
            "bash agent.sh"
        );
        assert_eq!(
            profile.headless_command("bash agent.sh", Path::new("/s")),
            "bash agent.sh"
        );
    }

    #[test]
    fn settings_carry_the_formulas_tools_mode_and_hooks() {
        let profile = Profile::new(
            &agent(
                "allowed_tools = [\"Read\"]\ndisallowed_tools = [\"WebFetch\"]\npermission_mode = \"acceptEdits\"\nskip_permissions = true",
            ),
            "/opt/bin/claude",
            &[],
        );
        let settings = profile.claude_settings("'/bin/retort' hook");
        assert_eq!(settings["permissions"]["allow"][4], "Read");
        assert_eq!(settings["permissions"]["deny"][0], "WebFetch");
        assert_eq!(settings["permissions"]["defaultMode"], "acceptEdits");
        assert_eq!(
            settings["hooks"]["Stop"][0]["hooks"][0]["command"],
            "'/bin/retort' hook"
        );
        assert_eq!(
            settings["hooks"]["Notification"][0]["hooks"][0]["type"],
            "command"
        );
        assert!(
            profile
                .headless_command("claude", Path::new("/s"))
                .ends_with("--dangerously-skip-permissions -p --input-format stream-json --output-format stream-json --verbose")
        );
    }
}
