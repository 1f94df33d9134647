//! The `[agent]` table: which agent CLI a formula starts and how (its
//! command, kind, readiness, permissions, the patterns of a generic
//! agent's screen), and what runs it (the backend), with their defaults.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::duration::HumanDuration;

/// The `[agent]` table.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The shell command that starts the agent, a Tera template over
    /// `model` and `vars`. Default: `claude --model {{ model }}`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub command: Option<Spanned<String>>,
    /// Text the agent's screen shows once it waits for input (its prompt
    /// marker, such as `❯`). A new session's first prompt is pasted only
    /// once the screen shows it; if it does not within `ready_timeout`, the
    /// run fails. Without it, retort waits for the screen to settle
    /// instead (see `retort_agent::ready`). Applies to the formula's own
    /// agent command, not to one given with `--agent` (which has `--ready`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ready: Option<Spanned<String>>,
    /// How long a new agent may take to become ready, as a humane
    /// duration. Default: 60 seconds.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub ready_timeout: Option<Spanned<HumanDuration>>,
    /// The pause between pasting a prompt and pressing Enter, so that agents
    /// that detect pastes read Enter as a key press of its own, as a
    /// humane duration (`"300ms"`). Default: 300 milliseconds.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub submit_delay: Option<Spanned<HumanDuration>>,
    /// What runs the agent: `"tmux"` (default), one terminal session per
    /// run that each prompt is pasted into, or `"headless"`, one process
    /// per step with the prompt on its standard input (see
    /// `retort_agent::headless`). `retort run --backend` overrides it.
    #[serde(default)]
    pub backend: Backend,
    /// Which agent CLI the command starts, so that retort knows its command
    /// lines, screen and structured channels: `"claude-code"` (the default
    /// when the command starts with `claude`) or `"generic"` (any other
    /// CLI; see `screen`).
    #[serde(default)]
    pub kind: Option<AgentKind>,
    /// Tools the agent may use without asking, in the agent's own rule
    /// syntax (Claude Code: `"Bash(git status)"`, `"Read"`). retort always
    /// grants `retort signal` and the seed formula's `$PHASE_FILE` echo;
    /// nothing more unless listed here.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allowed_tools: Vec<Spanned<String>>,
    /// Tools the agent must never use, in the same syntax.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub disallowed_tools: Vec<Spanned<String>>,
    /// The agent's permission mode, passed through (Claude Code's
    /// `--permission-mode`: `default`, `acceptEdits`, `plan`, …). Default:
    /// the agent's own default.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub permission_mode: Option<Spanned<String>>,
    /// Lets the agent run every tool without asking (Claude Code's
    /// `--dangerously-skip-permissions`). Never set by retort on its own.
    /// Default: false.
    #[serde(default)]
    pub skip_permissions: bool,
    /// How long the agent may sit idle, its turn ended without signalling
    /// the step, before the step fails ("the agent stopped without
    /// signalling"); retort reminds it once, with the signal command,
    /// first. Default: 90 seconds.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub idle_timeout: Option<Spanned<HumanDuration>>,
    /// What a permission request ends the step with: `"fail"` (default) or
    /// `"escalate"`. retort never answers it.
    #[serde(default)]
    pub on_permission: OnPermission,
    /// What the screen of a `generic` agent shows: its input prompt, that
    /// it is busy, its dialogs and errors (substrings of the screen).
    #[serde(default)]
    pub screen: ScreenSection,
}

/// Which agent CLI an `[agent] command` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Anthropic's Claude Code CLI (`claude`): retort generates its
    /// settings (hooks, permissions), reads its screen and, headless, its
    /// stream-json.
    ClaudeCode,
    /// Any other CLI: prompts are pasted (tmux) or piped (headless), and
    /// the screen is read with the patterns of `[agent.screen]`.
    Generic,
}

impl AgentKind {
    /// `claude-code` or `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::ClaudeCode => "claude-code",
            AgentKind::Generic => "generic",
        }
    }

    /// The kind an agent command line starts when the formula does not
    /// say: `claude-code` when its first word is `claude` (or a path ending
    /// in `/claude`), else `generic`.
    pub fn of_command(command: &str) -> AgentKind {
        let first = command.split_whitespace().next().unwrap_or_default();
        match first.rsplit('/').next() {
            Some("claude") => AgentKind::ClaudeCode,
            _ => AgentKind::Generic,
        }
    }
}

/// What a permission request ends a step with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnPermission {
    /// The step fails, naming the tool and command.
    #[default]
    Fail,
    /// The step escalates, naming the tool and command.
    Escalate,
}

/// `[agent.screen]`: substrings of a generic agent's screen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenSection {
    /// Shown while the agent works on a prompt (Claude Code: `esc to
    /// interrupt`). With `idle`, tells a turn that has ended.
    #[serde(default)]
    pub busy: Vec<String>,
    /// Shown when the agent waits for input after a turn.
    #[serde(default)]
    pub idle: Vec<String>,
    /// Shown when the agent asks for a permission; the step then ends as
    /// `on_permission` says.
    #[serde(default)]
    pub permission: Vec<String>,
    /// Shown when the agent asks anything else (a dialog retort never
    /// answers): the step fails.
    #[serde(default)]
    pub dialog: Vec<String>,
    /// Shown when the agent is rate-limited: the step ends rate-limited.
    #[serde(default)]
    pub rate_limit: Vec<String>,
    /// Shown when the agent's model API fails: the step fails.
    #[serde(default)]
    pub error: Vec<String>,
}

/// What runs the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A detached tmux session per run (a new one when the model changes):
    /// each step's prompt is pasted into the agent's terminal, and the
    /// agent works on, step after step, in one conversation.
    #[default]
    Tmux,
    /// No terminal: each step runs the agent command once, with the step's
    /// prompt on its standard input and its output saved in the run
    /// directory. For agents' print modes (`claude -p`) and hosts without
    /// tmux.
    Headless,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Tmux => "tmux",
            Backend::Headless => "headless",
        })
    }
}

/// How long a new agent may take to become ready when `[agent]
/// ready_timeout` does not say: 60 seconds.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an agent may sit idle without signalling when `[agent]
/// idle_timeout` does not say: 90 seconds.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The agent command used when neither `--agent` nor `[agent] command` is given.
pub const DEFAULT_AGENT_COMMAND: &str = "claude{% if model %} --model {{ model }}{% endif %}";
