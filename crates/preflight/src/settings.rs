//! [`Settings`]: the formula's `[preflight]` table, as written.
//!
//! Every table rejects keys it does not know. Every key is optional: what a
//! formula leaves out keeps the default of [`Config`]. Durations are humane
//! strings (`"5s"`, `"20m"`, `"1h 30m"`).
//!
//! ```toml
//! [preflight]
//! timeout = "5s"                       # each collector's default timeout
//!
//! [preflight.system]
//! disks = ["/", "/var/lib/docker"]
//! top_processes = 10
//!
//! [preflight.docker]
//! enabled = false                      # every collector can be switched off
//!
//! [preflight.tmux]
//! socket = "/tmp/tmux-1000/factory"
//!
//! [preflight.phase_files]
//! globs = ["/tmp/*-session-*.phase"]
//!
//! [preflight.locks]
//! globs = ["/tmp/*-poll.lock", "/tmp/*-run.lock"]
//!
//! [preflight.logs]
//! globs = ["~/factory/*/*.log"]
//! lines = 15
//!
//! [preflight.git]
//! repos = [{ path = "~/factory/repo", branch = "main" }]
//! worktree_globs = ["/tmp/*-worktree-*"]
//!
//! [preflight.escalations]
//! globs = ["~/vault/escalations/*.md"]
//!
//! [preflight.forge]
//! url = "https://forge.example.org"
//! repo = "factory/app"
//! token_env = "FORGE_TOKEN"
//! labels = ["backlog", "in-progress", "blocked"]
//!
//! [preflight.ci]
//! url = "https://ci.example.org"
//! repo_id = 3
//! token_env = "WOODPECKER_TOKEN"
//!
//! [[preflight.commands]]
//! name = "queue"
//! run = ["redis-cli", "llen", "jobs"]
//! timeout = "2s"
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::config::{
    CiConfig, CommandConfig, Config, DEFAULT_MAX_OUTPUT_BYTES, FilesConfig, ForgeConfig, RepoConfig,
};

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

/// A positive duration written the way people write them: `"90s"`, `"5m"`,
/// `"1h 30m"` (parsed by the `humantime` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match humantime::parse_duration(&text) {
            Ok(duration) if duration.is_zero() => Err(serde::de::Error::custom(format!(
                "a duration of `{text}` leaves no time at all; give a positive duration such as \"5s\""
            ))),
            Ok(duration) => Ok(HumanDuration(duration)),
            Err(error) => Err(serde::de::Error::custom(format!(
                "`{text}` is not a duration ({error}); write it like \"5s\", \"20m\" or \"1h 30m\""
            ))),
        }
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PreflightDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A positive duration such as \"5s\", \"20m\" or \"1h 30m\" (humantime syntax).",
            "examples": ["5s"]
        })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

fn duration(value: Option<HumanDuration>) -> Option<Duration> {
    value.map(|d| d.0)
}

impl Config {
    /// This configuration with a formula's `[preflight]` table laid over it:
    /// every key the table sets replaces the value here, everything else is
    /// kept. `cwd` becomes [`Config::cwd`]: relative paths and globs in the
    /// formula, and the git collector's default repository, refer to it.
    pub fn configure(mut self, settings: &Settings, cwd: &Path) -> Config {
        self.cwd = Some(cwd.to_path_buf());
        if let Some(timeout) = settings.timeout {
            self.collector_timeout = timeout.0;
        }
        if let Some(s) = &settings.system {
            set(&mut self.system.enabled, s.enabled);
            set_opt(&mut self.system.timeout, s.timeout);
            if let Some(disks) = &s.disks {
                self.system.disks = disks.iter().map(PathBuf::from).collect();
            }
            set(&mut self.system.top_processes, s.top_processes);
        }
        if let Some(s) = &settings.docker {
            set(&mut self.docker.enabled, s.enabled);
            set_opt(&mut self.docker.timeout, s.timeout);
            if let Some(command) = &s.command {
                self.docker.command = PathBuf::from(command);
            }
            if s.host.is_some() {
                self.docker.host.clone_from(&s.host);
            }
            set(&mut self.docker.stats, s.stats);
        }
        if let Some(s) = &settings.tmux {
            set(&mut self.tmux.enabled, s.enabled);
            set_opt(&mut self.tmux.timeout, s.timeout);
            if let Some(socket) = &s.socket {
                self.tmux.socket = Some(PathBuf::from(socket));
            }
        }
        for (config, settings) in [
            (&mut self.phase_files, &settings.phase_files),
            (&mut self.locks, &settings.locks),
            (&mut self.escalations, &settings.escalations),
        ] {
            if let Some(s) = settings {
                apply_files(config, s);
            }
        }
        if let Some(s) = &settings.logs {
            set(&mut self.logs.enabled, s.enabled);
            set_opt(&mut self.logs.timeout, s.timeout);
            if let Some(globs) = &s.globs {
                self.logs.globs.clone_from(globs);
            }
            set(&mut self.logs.lines, s.lines);
            set(&mut self.logs.max_files, s.max_files);
        }
        if let Some(s) = &settings.git {
            set(&mut self.git.enabled, s.enabled);
            set_opt(&mut self.git.timeout, s.timeout);
            if let Some(repos) = &s.repos {
                self.git.repos = Some(
                    repos
                        .iter()
                        .map(|r| RepoConfig {
                            path: PathBuf::from(&r.path),
                            branch: r.branch.clone(),
                        })
                        .collect(),
                );
            }
            if let Some(globs) = &s.worktree_globs {
                self.git.worktree_globs.clone_from(globs);
            }
        }
        if let Some(s) = &settings.forge {
            self.forge = (s.enabled != Some(false)).then(|| ForgeConfig {
                timeout: duration(s.timeout),
                url: s.url.clone(),
                repo: s.repo.clone(),
                token_env: s.token_env.clone(),
                labels: s.labels.clone().unwrap_or_else(|| {
                    ["backlog", "in-progress", "blocked"]
                        .map(str::to_owned)
                        .to_vec()
                }),
                blocked_label: s
                    .blocked_label
                    .clone()
                    .unwrap_or_else(|| "blocked".to_owned()),
            });
        }
        if let Some(s) = &settings.ci {
            self.ci = (s.enabled != Some(false)).then(|| CiConfig {
                timeout: duration(s.timeout),
                url: s.url.clone(),
                repo_id: s.repo_id,
                token_env: s.token_env.clone(),
                window: duration(s.window).unwrap_or(Duration::from_secs(24 * 3600)),
                running_over: duration(s.running_over).unwrap_or(Duration::from_secs(20 * 60)),
                pending_over: duration(s.pending_over).unwrap_or(Duration::from_secs(30 * 60)),
            });
        }
        if !settings.commands.is_empty() {
            self.commands = settings
                .commands
                .iter()
                .map(|c| CommandConfig {
                    name: c.name.clone(),
                    run: c.run.clone(),
                    timeout: duration(c.timeout),
                    max_output_bytes: c.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES),
                })
                .collect();
        }
        self
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

fn set_opt(target: &mut Option<Duration>, value: Option<HumanDuration>) {
    if let Some(value) = value {
        *target = Some(value.0);
    }
}

fn apply_files(config: &mut FilesConfig, s: &FilesSettings) {
    set(&mut config.enabled, s.enabled);
    set_opt(&mut config.timeout, s.timeout);
    if let Some(globs) = &s.globs {
        config.globs.clone_from(globs);
    }
    set(&mut config.max_files, s.max_files);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn an_empty_table_keeps_every_default() {
        let config = Config::default().configure(&parse("").unwrap(), Path::new("/work"));
        assert_eq!(
            config,
            Config {
                cwd: Some(PathBuf::from("/work")),
                ..Config::default()
            }
        );
    }

    #[test]
    fn keys_override_defaults_and_leave_the_rest() {
        let settings = parse(
            r#"
timeout = "2s"
[system]
disks = ["/", "/var"]
[docker]
enabled = false
[locks]
globs = ["/run/*.lock"]
[logs]
globs = ["*.log"]
lines = 5
[git]
repos = [{ path = "repo", branch = "main" }]
[forge]
url = "http://127.0.0.1:3000"
repo = "o/r"
token_env = "T"
[ci]
url = "http://127.0.0.1:8000"
repo_id = 7
running_over = "10m"
[[commands]]
name = "x"
run = ["true"]
timeout = "1s"
"#,
        )
        .unwrap();
        let config = Config::default().configure(&settings, Path::new("/w"));
        assert_eq!(config.collector_timeout, Duration::from_secs(2));
        assert_eq!(
            config.system.disks,
            vec![PathBuf::from("/"), PathBuf::from("/var")]
        );
        assert_eq!(config.system.top_processes, 10);
        assert!(!config.docker.enabled);
        assert_eq!(config.locks.globs, vec!["/run/*.lock".to_owned()]);
        assert_eq!(config.phase_files, Config::default().phase_files);
        assert_eq!(config.logs.lines, 5);
        assert_eq!(config.logs.max_files, 20);
        let repos = config.git.repos.unwrap();
        assert_eq!(repos[0].branch.as_deref(), Some("main"));
        let forge = config.forge.unwrap();
        assert_eq!(forge.labels, vec!["backlog", "in-progress", "blocked"]);
        assert_eq!(forge.blocked_label, "blocked");
        let ci = config.ci.unwrap();
        assert_eq!(ci.running_over, Duration::from_secs(600));
        assert_eq!(ci.pending_over, Duration::from_secs(1800));
        assert_eq!(ci.window, Duration::from_secs(86_400));
        assert_eq!(config.commands[0].timeout, Some(Duration::from_secs(1)));
        assert_eq!(config.commands[0].max_output_bytes, 16 * 1024);
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_errors() {
        let error = parse("[logs]\nglob = [\"x\"]\n").unwrap_err().to_string();
        assert!(error.contains("unknown field `glob`"), "{error}");
        let error = parse("timeout = \"soon\"\n").unwrap_err().to_string();
        assert!(error.contains("`soon` is not a duration"), "{error}");
        let error = parse("timeout = \"0s\"\n").unwrap_err().to_string();
        assert!(error.contains("leaves no time at all"), "{error}");
        let error = parse("[forge]\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field `repo`"), "{error}");
    }

    #[test]
    fn a_disabled_forge_is_left_out() {
        let settings =
            parse("[forge]\nenabled = false\nurl = \"http://x\"\nrepo = \"o/r\"\n").unwrap();
        assert_eq!(
            Config::default().configure(&settings, Path::new("/")).forge,
            None
        );
    }
}
