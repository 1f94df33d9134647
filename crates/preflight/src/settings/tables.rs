//! The tables of `[preflight]` as a formula writes them: [`Settings`] and
//! one type per collector's table, each rejecting keys it does not know.

use schemars::JsonSchema;
use serde::Deserialize;

use super::HumanDuration;

/// The `[preflight]` table of a formula.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How long each collector may take unless its own table says otherwise. Default: "5s".
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// `[preflight.system]`: memory, swap, disks, load, uptime, CPUs, processes.
    #[serde(default)]
    pub system: Option<SystemSettings>,
    /// `[preflight.docker]`: containers through the Docker CLI.
    #[serde(default)]
    pub docker: Option<DockerSettings>,
    /// `[preflight.tmux]`: sessions and panes.
    #[serde(default)]
    pub tmux: Option<TmuxSettings>,
    /// `[preflight.phase_files]`: phase files. Default glob: `/tmp/*-session-*.phase`.
    #[serde(default)]
    pub phase_files: Option<FilesSettings>,
    /// `[preflight.locks]`: lock files. Default globs: `/tmp/*-poll.lock`, `/tmp/*-run.lock`.
    #[serde(default)]
    pub locks: Option<FilesSettings>,
    /// `[preflight.logs]`: log files and their last lines. Default globs: none.
    #[serde(default)]
    pub logs: Option<LogsSettings>,
    /// `[preflight.git]`: repositories and worktrees.
    #[serde(default)]
    pub git: Option<GitSettings>,
    /// `[preflight.escalations]`: markdown escalation notes. Default globs: none.
    #[serde(default)]
    pub escalations: Option<FilesSettings>,
    /// `[preflight.forge]`: a Forgejo or Gitea repository; runs only when present.
    #[serde(default)]
    pub forge: Option<ForgeSettings>,
    /// `[preflight.ci]`: a Woodpecker repository; runs only when present.
    #[serde(default)]
    pub ci: Option<CiSettings>,
    /// `[[preflight.commands]]`: the formula's own collectors.
    #[serde(default)]
    pub commands: Vec<CommandSettings>,
}

/// `[preflight.system]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemSettings {
    /// Whether the collector runs. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Paths whose file systems to measure (`df PATH`). Default: `["/"]`.
    #[serde(default)]
    pub disks: Option<Vec<String>>,
    /// How many processes to list, largest resident memory first. Default: 10.
    #[serde(default)]
    pub top_processes: Option<usize>,
}

/// `[preflight.docker]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerSettings {
    /// Whether the collector runs. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// The Docker CLI to run. Default: "docker".
    #[serde(default)]
    pub command: Option<String>,
    /// The daemon to ask (`docker --host`), e.g. "unix:///run/docker.sock".
    /// Default: the CLI's own choice.
    #[serde(default)]
    pub host: Option<String>,
    /// Whether to collect CPU and memory figures (`docker stats`, about 2 s). Default: true.
    #[serde(default)]
    pub stats: Option<bool>,
}

/// `[preflight.tmux]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TmuxSettings {
    /// Whether the collector runs. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// The tmux server's socket (`tmux -S`). Default: tmux's default server.
    #[serde(default)]
    pub socket: Option<String>,
}

/// `[preflight.phase_files]`, `[preflight.locks]` and `[preflight.escalations]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesSettings {
    /// Whether the collector runs. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Shell-style globs; `~/` is the home directory, relative globs are
    /// relative to the working directory.
    #[serde(default)]
    pub globs: Option<Vec<String>>,
    /// At most this many files are reported. Default: 200.
    #[serde(default)]
    pub max_files: Option<usize>,
}

/// `[preflight.logs]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsSettings {
    /// Whether the collector runs. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Shell-style globs of log files. Default: none.
    #[serde(default)]
    pub globs: Option<Vec<String>>,
    /// How many last lines of each file to keep. Default: 15.
    #[serde(default)]
    pub lines: Option<usize>,
    /// At most this many files are reported, most recently modified first. Default: 20.
    #[serde(default)]
    pub max_files: Option<usize>,
}

/// `[preflight.git]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSettings {
    /// Whether the collector runs. Default: true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// The repositories to report. Default: the one holding the working directory.
    #[serde(default)]
    pub repos: Option<Vec<RepoSettings>>,
    /// Globs of worktree directories to list with their age. Default: `/tmp/*-worktree-*`.
    #[serde(default)]
    pub worktree_globs: Option<Vec<String>>,
}

/// One entry of `[preflight.git] repos`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoSettings {
    /// The repository's path (any directory of its working tree).
    pub path: String,
    /// The branch it is expected to be on.
    #[serde(default)]
    pub branch: Option<String>,
}

/// `[preflight.forge]`: a Forgejo or Gitea repository (API v1).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgeSettings {
    /// Whether the collector runs. Default: true when the table is present.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout, which bounds every request too. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// The forge's base URL, e.g. `https://forge.example.org`.
    pub url: String,
    /// The repository, "owner/name".
    pub repo: String,
    /// The environment variable holding the API token. Default: anonymous requests.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Labels whose open issues are counted. Default: ["backlog", "in-progress", "blocked"].
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// The label whose open issues are listed one by one. Default: "blocked".
    #[serde(default)]
    pub blocked_label: Option<String>,
}

/// `[preflight.ci]`: a Woodpecker repository.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CiSettings {
    /// Whether the collector runs. Default: true when the table is present.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its timeout, which bounds every request too. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// The Woodpecker server's base URL, e.g. `https://ci.example.org`.
    pub url: String,
    /// The repository's numeric Woodpecker id.
    pub repo_id: u64,
    /// The environment variable holding the API token. Default: anonymous requests.
    #[serde(default)]
    pub token_env: Option<String>,
    /// How far back to list pipelines. Default: "24h".
    #[serde(default)]
    pub window: Option<HumanDuration>,
    /// A pipeline running longer than this is stuck. Default: "20m".
    #[serde(default)]
    pub running_over: Option<HumanDuration>,
    /// A pipeline pending longer than this is stuck. Default: "30m".
    #[serde(default)]
    pub pending_over: Option<HumanDuration>,
}

/// One `[[preflight.commands]]` entry: a command run without a shell.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSettings {
    /// Its name, unique among the commands.
    pub name: String,
    /// The program and its arguments, e.g. ["redis-cli", "llen", "jobs"].
    pub run: Vec<String>,
    /// How long it may run before it is killed. Default: `[preflight] timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// How many bytes of its standard output are kept. Default: 16384.
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
}
