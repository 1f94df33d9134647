//! [`Config`]: which collectors run, and their settings, for one preflight.
//!
//! A formula's `[preflight]` table ([`Settings`](crate::Settings)) is turned
//! into a `Config` with [`Config::configure`]; without one, [`Config::default`]
//! runs every local collector with the defaults documented on each field, and
//! neither the forge nor the CI collector.

use std::path::PathBuf;
use std::time::Duration;

/// How long each collector may take when nothing else is said: 5 seconds.
pub const DEFAULT_COLLECTOR_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for a preflight run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long each collector may take before its section is reported as an
    /// error ("timed out"), unless its own `timeout` says otherwise.
    /// Collectors run concurrently, so this also bounds the whole run
    /// (roughly). Default: [`DEFAULT_COLLECTOR_TIMEOUT`].
    pub collector_timeout: Duration,
    /// The directory relative paths and globs are resolved against, git
    /// commands start in, and whose repository the git collector reports by
    /// default. `None`: the process's working directory.
    pub cwd: Option<PathBuf>,
    /// The system collector.
    pub system: SystemConfig,
    /// The Docker collector.
    pub docker: DockerConfig,
    /// The tmux collector.
    pub tmux: TmuxConfig,
    /// The phase-file collector. Default globs: `/tmp/*-session-*.phase`.
    pub phase_files: FilesConfig,
    /// The lock-file collector. Default globs: `/tmp/*-poll.lock`, `/tmp/*-run.lock`.
    pub locks: FilesConfig,
    /// The log collector.
    pub logs: LogsConfig,
    /// The git collector.
    pub git: GitConfig,
    /// The escalation collector. Default globs: none (the section says it is
    /// not configured).
    pub escalations: FilesConfig,
    /// The forge collector; `None` (the default) leaves it out.
    pub forge: Option<ForgeConfig>,
    /// The CI collector; `None` (the default) leaves it out.
    pub ci: Option<CiConfig>,
    /// The formula's own commands, run in this order. Default: none.
    pub commands: Vec<CommandConfig>,
    /// Names of environment variables whose values are secret, besides
    /// those whose names say so (`retort_os::redact`): the formula's
    /// `[secrets] env`. Default: none.
    pub secret_env: Vec<String>,
    /// A file to which the process group of each of the formula's
    /// commands is appended as it starts (its id, a decimal line each,
    /// created 0600), so that whoever supervises the run can end them
    /// should retort itself be killed (SIGKILL) before they end: the
    /// runner names `RUN/preflight-groups`. Default: none.
    pub group_log: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            collector_timeout: DEFAULT_COLLECTOR_TIMEOUT,
            cwd: None,
            system: SystemConfig::default(),
            docker: DockerConfig::default(),
            tmux: TmuxConfig::default(),
            phase_files: FilesConfig::with_globs(&["/tmp/*-session-*.phase"], 200),
            locks: FilesConfig::with_globs(&["/tmp/*-poll.lock", "/tmp/*-run.lock"], 200),
            logs: LogsConfig::default(),
            git: GitConfig::default(),
            escalations: FilesConfig::with_globs(&[], 200),
            forge: None,
            ci: None,
            commands: Vec::new(),
            secret_env: Vec::new(),
            group_log: None,
        }
    }
}

/// The system collector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    /// Whether it runs. Default: true.
    pub enabled: bool,
    /// Its own timeout; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// Paths whose file systems to measure, each reported as one
    /// [`Disk`](crate::Disk) with `mount` set to the path as given. Default: `["/"]`.
    pub disks: Vec<PathBuf>,
    /// How many processes to list, largest resident memory first. Default: 10.
    pub top_processes: usize,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            enabled: true,
            timeout: None,
            disks: vec![PathBuf::from("/")],
            top_processes: 10,
        }
    }
}

/// The Docker collector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// Whether it runs. Default: true.
    pub enabled: bool,
    /// Its own timeout; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// The Docker CLI to run. Default: `docker` (found on `PATH`).
    pub command: PathBuf,
    /// The daemon to ask (`docker --host`, e.g. `unix:///run/docker.sock`);
    /// `None` (the default): the CLI's own choice (`DOCKER_HOST`, the current
    /// context, else `unix:///var/run/docker.sock`).
    pub host: Option<String>,
    /// Whether to ask for CPU and memory figures (`docker stats --no-stream`,
    /// which samples for about two seconds). Default: true.
    pub stats: bool,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            enabled: true,
            timeout: None,
            command: PathBuf::from("docker"),
            host: None,
            stats: true,
        }
    }
}

/// The tmux collector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmuxConfig {
    /// Whether it runs. Default: true.
    pub enabled: bool,
    /// Its own timeout; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// tmux server socket to query (`tmux -S PATH`). `None` (the default) means
    /// tmux's own default server: the one in `$TMUX` when running inside tmux,
    /// otherwise `$TMUX_TMPDIR` (or `/tmp`) `/tmux-UID/default`. The path must be
    /// valid UTF-8.
    pub socket: Option<PathBuf>,
}

impl Default for TmuxConfig {
    fn default() -> Self {
        TmuxConfig {
            enabled: true,
            timeout: None,
            socket: None,
        }
    }
}

/// Settings of a collector that reports files matching globs (phase files,
/// locks, escalations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesConfig {
    /// Whether it runs. Default: true.
    pub enabled: bool,
    /// Its own timeout; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// Shell-style globs (`*`, `?`, `[…]`, `**`); a leading `~/` is the home
    /// directory, a relative glob is relative to [`Config::cwd`]. A `*` does
    /// not match a leading dot, as in a shell.
    pub globs: Vec<String>,
    /// At most this many files are reported (the rest are counted in the
    /// section's `omitted`). Default: 200.
    pub max_files: usize,
}

impl FilesConfig {
    /// Enabled, with these globs and cap.
    pub fn with_globs(globs: &[&str], max_files: usize) -> Self {
        FilesConfig {
            enabled: true,
            timeout: None,
            globs: globs.iter().map(|g| (*g).to_owned()).collect(),
            max_files,
        }
    }
}

/// The log collector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsConfig {
    /// Whether it runs. Default: true.
    pub enabled: bool,
    /// Its own timeout; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// Globs of the log files, as in [`FilesConfig::globs`]. Default: none.
    pub globs: Vec<String>,
    /// How many last lines of each file to keep. Default: 15.
    pub lines: usize,
    /// At most this many files are reported, most recently modified first.
    /// Default: 20.
    pub max_files: usize,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: true,
            timeout: None,
            globs: Vec::new(),
            lines: 15,
            max_files: 20,
        }
    }
}

/// The git collector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitConfig {
    /// Whether it runs. Default: true.
    pub enabled: bool,
    /// Its own timeout; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// The repositories to report. `None` (the default): the repository
    /// holding [`Config::cwd`], when there is one.
    pub repos: Option<Vec<RepoConfig>>,
    /// Globs of worktree directories to list with their age, as in
    /// [`FilesConfig::globs`]. Default: `/tmp/*-worktree-*`.
    pub worktree_globs: Vec<String>,
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig {
            enabled: true,
            timeout: None,
            repos: None,
            worktree_globs: vec!["/tmp/*-worktree-*".to_owned()],
        }
    }
}

/// One repository for the git collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    /// Its path (any directory inside its working tree); relative to [`Config::cwd`].
    pub path: PathBuf,
    /// The branch it is expected to be on, if any.
    pub branch: Option<String>,
}

/// The forge collector's settings (Forgejo or Gitea, API v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeConfig {
    /// Its own timeout; `None`: [`Config::collector_timeout`]. Every request
    /// is bounded by it too.
    pub timeout: Option<Duration>,
    /// The forge's base URL, e.g. `https://forge.example.org`.
    pub url: String,
    /// The repository, `owner/name`.
    pub repo: String,
    /// The environment variable holding the API token, if any (sent as
    /// `Authorization: token …`, never printed). `None`: anonymous requests.
    pub token_env: Option<String>,
    /// The labels whose open issues are counted. Default:
    /// `backlog`, `in-progress`, `blocked`.
    pub labels: Vec<String>,
    /// The label whose open issues are listed one by one. Default: `blocked`.
    pub blocked_label: String,
}

/// The CI collector's settings (Woodpecker, API of 2.x and 3.x).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiConfig {
    /// Its own timeout; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// The Woodpecker server's base URL, e.g. `https://ci.example.org`.
    pub url: String,
    /// The repository's numeric Woodpecker id.
    pub repo_id: u64,
    /// The environment variable holding the API token, if any (sent as
    /// `Authorization: Bearer …`, never printed).
    pub token_env: Option<String>,
    /// How far back to list pipelines. Default: 24 hours.
    pub window: Duration,
    /// A pipeline running longer than this counts as stuck. Default: 20 minutes.
    pub running_over: Duration,
    /// A pipeline pending longer than this counts as stuck. Default: 30 minutes.
    pub pending_over: Duration,
}

/// One formula-declared command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    /// Its name, unique in the formula; names its entry in the snapshot.
    pub name: String,
    /// The program and its arguments, run without a shell.
    pub run: Vec<String>,
    /// How long it may run before it is killed; `None`: [`Config::collector_timeout`].
    pub timeout: Option<Duration>,
    /// How many bytes of its standard output are kept. Default: 16 KiB.
    pub max_output_bytes: usize,
}

/// Bytes of a command's standard output kept by default: 16 KiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 * 1024;

impl Config {
    /// The timeout for a collector whose own timeout is `own`.
    pub(crate) fn limit(&self, own: Option<Duration>) -> Duration {
        own.unwrap_or(self.collector_timeout)
    }

    /// [`Config::cwd`], or the process's working directory (or `/` when even that is unknown).
    pub(crate) fn base_dir(&self) -> PathBuf {
        self.cwd
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"))
    }
}
