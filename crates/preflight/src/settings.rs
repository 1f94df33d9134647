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
//!
//! The tables' types are in `tables`; here: their durations
//! ([`HumanDuration`]) and how a table is laid over a [`Config`]
//! ([`Config::configure`]).

mod tables;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::config::{
    CiConfig, CommandConfig, Config, DEFAULT_MAX_OUTPUT_BYTES, FilesConfig, ForgeConfig, RepoConfig,
};

pub use tables::{
    CiSettings, CommandSettings, DockerSettings, FilesSettings, ForgeSettings, GitSettings,
    LogsSettings, RepoSettings, Settings, SystemSettings, TmuxSettings,
};

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
