//! Preflight: a snapshot of everything a supervisor needs to know, taken
//! before a run prompts an agent.
//!
//! A supervisor formula step needs to know the state of the factory it is
//! about to act on: memory, disk and load; containers; agent sessions in tmux
//! and whether their panes are alive; phase and lock files; the tails of
//! logs; the state of git repositories and worktrees; pending escalations;
//! open pull requests and stuck CI pipelines; and whatever the formula's own
//! commands print. [`collect`] gathers all of it into a typed [`Snapshot`],
//! which is used three ways:
//!
//! - **Templates** get it as JSON-shaped data, e.g.
//!   `{{ preflight.system.memory.available_mb }}`,
//!   `{% for s in preflight.tmux.sessions %}`. The serde field names are a
//!   stable contract, documented field by field in `docs/snapshot-reference.md`.
//!   Every field is always present (`reason` is `null` when there is nothing
//!   to say), so the shape never depends on what succeeded.
//! - **Prompts** embed [`Snapshot::to_markdown`].
//! - **Journals** record [`Snapshot::health_summary`].
//!
//! Collecting never fails. Every collector (one module each) runs
//! concurrently under its own timeout (default 5 seconds); one that cannot do
//! its job reports it in its section's [`CollectorStatus`] and human-readable
//! `reason` instead, so a whole preflight takes about as long as its slowest
//! collector and no broken source takes the run down.
//!
//! Units: sizes are whole MiB (2^20 bytes), truncated, as `free -m` and `df -m`
//! report them and label them "MB" (files and outputs are in bytes,
//! `*_bytes`); load averages are `/proc/loadavg`'s; times are UTC; ages and
//! durations are whole seconds (`*_seconds`) or milliseconds (`*_ms`).
//!
//! ```no_run
//! # async fn demo() {
//! let snapshot = retort_preflight::collect(&retort_preflight::Config::default()).await;
//! println!("{}", snapshot.to_markdown());
//! # }
//! ```

#![warn(missing_docs)]

mod ci;
mod commands;
mod config;
mod docker;
mod escalations;
mod files;
mod forge;
mod git;
mod http;
mod locks;
mod logs;
mod markdown;
mod phase_files;
mod settings;
mod snapshot;
mod system;
mod tmux;

use retort_os::interrupt::Interrupt;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::Utc;
use retort_os::redact::Redactor;
use tokio::sync::oneshot;

pub use ci::{CiSection, Pipeline};
pub use commands::{CommandResult, CommandsSection};
pub use config::{
    CiConfig, CommandConfig, Config, DEFAULT_COLLECTOR_TIMEOUT, DEFAULT_MAX_OUTPUT_BYTES,
    DockerConfig, FilesConfig, ForgeConfig, GitConfig, LogsConfig, RepoConfig, SystemConfig,
    TmuxConfig,
};
pub use docker::{Container, DockerSection};
pub use escalations::{Escalation, EscalationsSection};
pub use forge::{ForgeIssue, ForgeSection, LabelCount, PullRequest};
pub use git::{GitSection, Repo, Worktree, WorktreeDir};
pub use locks::{LockFile, LocksSection};
pub use logs::{LogFile, LogsSection};
pub use markdown::{MAX_LIST_ITEMS, MAX_TEXT_LINES};
pub use phase_files::{PhaseFile, PhaseFilesSection};
pub use settings::{
    CiSettings, CommandSettings, DockerSettings, FilesSettings, ForgeSettings, GitSettings,
    HumanDuration, LogsSettings, RepoSettings, Settings, SystemSettings, TmuxSettings,
};
pub use snapshot::{CollectorStatus, Snapshot};
pub use system::{Disk, Load, Memory, Process, Swap, SystemSection};
pub use tmux::{TmuxPane, TmuxSection, TmuxSession};

use snapshot::Section;

/// Takes a [`Snapshot`] of this machine, as `config` says.
///
/// Runs every collector concurrently, each bounded by its own timeout
/// ([`Config::collector_timeout`] unless its settings give one). Never
/// fails: a collector that fails or times out yields its section with status
/// [`CollectorStatus::Error`] or [`CollectorStatus::Unavailable`] and a
/// human-readable `reason` (a timeout is an `Error` whose reason says "timed
/// out"); a disabled or unconfigured collector yields `Unavailable` saying
/// so. `collected_at` is the time the run started; `duration_ms` how long it
/// took.
///
/// Blocking work (`/proc` reads, `statvfs`, file reads, HTTP) runs on
/// separate, detached threads and external programs (tmux, git, docker, the
/// formula's commands) run as async child processes, so the runtime is
/// never blocked and a timed-out collector never holds up the caller; a
/// timed-out child process is killed.
///
/// # Panics
///
/// Like any tokio timer/process user, panics if called outside a tokio runtime
/// with the time and I/O drivers enabled (`#[tokio::main]` and
/// `#[tokio::test]` enable them).
pub async fn collect(config: &Config) -> Snapshot {
    collect_until(config, &Interrupt::never()).await
}

/// [`collect`], ending early when `interrupt` comes: the formula's
/// commands still running get SIGTERM, up to 2 seconds to exit, then
/// SIGKILL, to their whole
/// process group ([`retort_os::process::terminate_group`]), and are
/// reported as errors ("interrupted by SIGTERM"). The other collectors run
/// to their end or timeout as usual; the caller decides whether to wait.
///
/// # Panics
/// As [`collect`].
pub async fn collect_until(config: &Config, interrupt: &Interrupt) -> Snapshot {
    let collected_at = Utc::now();
    let started = Instant::now();
    let cwd = config.base_dir();

    let system = run(
        "system",
        config.system.enabled.then_some(()),
        config.limit(config.system.timeout),
        |()| system::collect(config.system.clone()),
    );
    let docker = run(
        "docker",
        config.docker.enabled.then_some(()),
        config.limit(config.docker.timeout),
        |()| docker::collect(config.docker.clone()),
    );
    let tmux = run(
        "tmux",
        config.tmux.enabled.then_some(()),
        config.limit(config.tmux.timeout),
        |()| tmux::collect(config.tmux.socket.clone(), collected_at),
    );
    let phase_files = run(
        "phase_files",
        config.phase_files.enabled.then_some(()),
        config.limit(config.phase_files.timeout),
        |()| phase_files::collect(config.phase_files.clone(), cwd.clone(), collected_at),
    );
    let locks = run(
        "locks",
        config.locks.enabled.then_some(()),
        config.limit(config.locks.timeout),
        |()| locks::collect(config.locks.clone(), cwd.clone(), collected_at),
    );
    let logs = run(
        "logs",
        config.logs.enabled.then_some(()),
        config.limit(config.logs.timeout),
        |()| logs::collect(config.logs.clone(), cwd.clone(), collected_at),
    );
    let git = run(
        "git",
        config.git.enabled.then_some(()),
        config.limit(config.git.timeout),
        |()| git::collect(config.git.clone(), cwd.clone(), collected_at),
    );
    let escalations = run(
        "escalations",
        config.escalations.enabled.then_some(()),
        config.limit(config.escalations.timeout),
        |()| escalations::collect(config.escalations.clone(), cwd.clone(), collected_at),
    );
    let forge = run(
        "forge",
        config.forge.as_ref(),
        config.limit(config.forge.as_ref().and_then(|f| f.timeout)),
        |forge| {
            let limit = config.limit(forge.timeout);
            forge::collect(forge.clone(), limit)
        },
    );
    let ci = run(
        "ci",
        config.ci.as_ref(),
        config.limit(config.ci.as_ref().and_then(|c| c.timeout)),
        |ci| {
            let limit = config.limit(ci.timeout);
            ci::collect(ci.clone(), limit, collected_at)
        },
    );
    // Each command has its own timeout; the section waits for the slowest.
    let commands_limit = config
        .commands
        .iter()
        .map(|c| config.limit(c.timeout))
        .max()
        .unwrap_or(config.collector_timeout)
        + Duration::from_millis(500);
    let commands = run(
        "commands",
        (!config.commands.is_empty()).then_some(()),
        commands_limit,
        |()| {
            commands::collect(
                config.commands.clone(),
                config.collector_timeout,
                (cwd.clone(), config.group_log.clone()),
                interrupt.clone(),
            )
        },
    );

    let (system, docker, tmux, phase_files, locks, logs, git, escalations, forge, ci, commands) = tokio::join!(
        system,
        docker,
        tmux,
        phase_files,
        locks,
        logs,
        git,
        escalations,
        forge,
        ci,
        commands
    );

    let snapshot = Snapshot {
        collected_at,
        hostname: system::hostname(),
        duration_ms: millis(started.elapsed()),
        system,
        docker,
        tmux,
        phase_files,
        locks,
        logs,
        git,
        escalations,
        forge,
        ci,
        commands,
    };
    redact(snapshot, &Redactor::from_env(&config.secret_env))
}

/// `snapshot` with every secret value `redactor` knows and every URL's
/// user information replaced by `[redacted]`, in every string of it (the
/// forge's URL, the command lines of the largest processes, command
/// output, log lines, …): what is saved as `snapshot.json` and shown to
/// the agent never holds them. Through its JSON form; should that not read
/// back (it always does: `--snapshot` reads the same form), the strings
/// known to carry secrets are redacted one by one instead.
pub fn redact(snapshot: Snapshot, redactor: &Redactor) -> Snapshot {
    let Ok(mut json) = serde_json::to_value(&snapshot) else {
        return redact_known(snapshot, redactor);
    };
    redactor.redact_json(&mut json);
    match serde_json::from_value(json) {
        Ok(redacted) => redacted,
        Err(_) => redact_known(snapshot, redactor),
    }
}

fn redact_known(mut snapshot: Snapshot, redactor: &Redactor) -> Snapshot {
    let clean = |text: &mut String| {
        if let std::borrow::Cow::Owned(redacted) = redactor.redact(text) {
            *text = redacted;
        }
    };
    clean(&mut snapshot.forge.url);
    for process in &mut snapshot.system.top_processes {
        clean(&mut process.command);
    }
    snapshot
}

/// Runs one collector under `limit` and records how long it took. `enabled`
/// is `None` when the collector is switched off or not configured; its
/// section is then `Unavailable`, saying so.
async fn run<'a, T, S, F, Fut>(name: &str, enabled: Option<T>, limit: Duration, start: F) -> S
where
    S: Section,
    F: FnOnce(T) -> Fut,
    Fut: Future<Output = S> + 'a,
{
    let Some(arg) = enabled else {
        return S::failed(CollectorStatus::Unavailable, not_running(name));
    };
    let started = Instant::now();
    let mut section = match tokio::time::timeout(limit, start(arg)).await {
        Ok(section) => section,
        Err(_) => S::failed(
            CollectorStatus::Error,
            format!(
                "the {name} collector timed out after {}",
                humantime::format_duration(limit)
            ),
        ),
    };
    *section.header_mut().2 = millis(started.elapsed());
    section
}

/// Why a collector did not run.
fn not_running(name: &str) -> String {
    match name {
        "forge" => "not configured: the formula has no [preflight.forge] table".to_owned(),
        "ci" => "not configured: the formula has no [preflight.ci] table".to_owned(),
        "commands" => "no commands: the formula declares no [[preflight.commands]]".to_owned(),
        _ => format!("disabled: the formula's [preflight.{name}] table says enabled = false"),
    }
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Runs blocking `work` on a new, detached OS thread named `retort-preflight-NAME`
/// and waits for its result without blocking the runtime. If the caller
/// stops waiting (a timeout), the thread finishes on its own and its result
/// is dropped; a thread stuck in the kernel (a hung network mount) never
/// holds up the runtime or its shutdown, as `spawn_blocking` would.
///
/// # Errors
/// A message when the thread cannot be started or ends without a result (it panicked).
pub(crate) async fn off_thread<T, W>(name: &str, work: W) -> Result<T, String>
where
    T: Send + 'static,
    W: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("retort-preflight-{name}"))
        .spawn(move || {
            // The receiver may be gone if the caller timed out; nothing to do then.
            let _ = tx.send(work());
        });
    if let Err(err) = spawned {
        return Err(format!(
            "could not start the {name} collector thread: {err}"
        ));
    }
    rx.await
        .map_err(|_| format!("the {name} collector thread ended without a result"))
}

/// Runs `futures` concurrently as tasks and returns their outputs in order;
/// a task that panicked gives an error message instead. Dropping the
/// returned future (a timeout) aborts the tasks that are still running.
pub(crate) async fn join_all<T, F>(futures: Vec<F>) -> Vec<Result<T, String>>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let count = futures.len();
    for (index, future) in futures.into_iter().enumerate() {
        set.spawn(async move { (index, future.await) });
    }
    let mut outputs: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((index, output)) = joined {
            outputs[index] = Some(output);
        }
    }
    outputs
        .into_iter()
        .map(|output| output.ok_or_else(|| "the collector task panicked".to_owned()))
        .collect()
}
