//! Preflight: a snapshot of machine health taken before a supervisor run prompts
//! an agent.
//!
//! A supervisor formula step needs to know the state of the machine it is about
//! to act on: how much memory and disk is left, how loaded the machine is, which
//! tmux sessions (agent sessions, usually) exist. [`collect`] gathers that into a
//! [`Snapshot`], which is used three ways:
//!
//! - **Templates** get it as JSON-shaped data, e.g.
//!   `{{ preflight.system.memory.available_mb }}`,
//!   `{{ preflight.system.disks[0].used_percent }}`, `{% for s in preflight.tmux.sessions %}`.
//!   The serde field names are therefore a stable contract; see [`Snapshot`] for
//!   the full JSON shape. Every field is always present (`reason` is `null` when
//!   there is nothing to say), so the shape never depends on what succeeded.
//! - **Prompts** embed [`Snapshot::to_markdown`].
//! - **Journals** record [`Snapshot::health_summary`].
//!
//! Collecting never fails. Each collector (system, tmux) runs concurrently under
//! [`Config::collector_timeout`]; one that cannot do its job reports it in its
//! section's [`CollectorStatus`] and human-readable `reason` instead.
//!
//! Units: sizes are whole MiB (2^20 bytes), truncated, as `free -m` and `df -m`
//! report them and label them "MB"; load averages are `/proc/loadavg`'s; times
//! are UTC.
//!
//! ```no_run
//! # async fn demo() {
//! let snapshot = retort_preflight::collect(&retort_preflight::Config::default()).await;
//! println!("{}", snapshot.to_markdown());
//! # }
//! ```

#![warn(missing_docs)]

mod markdown;
mod snapshot;
mod system;
mod tmux;

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

pub use snapshot::{
    CollectorStatus, Disk, Load, Memory, Snapshot, Swap, SystemSection, TmuxSection, TmuxSession,
};

/// Settings for a preflight run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Paths whose file systems to measure, each reported as one [`Disk`] with
    /// `mount` set to the path as given. Default: `["/"]`.
    pub disks: Vec<PathBuf>,
    /// tmux server socket to query (`tmux -S PATH`). `None` (the default) means
    /// tmux's own default server: the one in `$TMUX` when running inside tmux,
    /// otherwise `$TMUX_TMPDIR` (or `/tmp`) `/tmux-UID/default`. The path must be
    /// valid UTF-8.
    pub tmux_socket: Option<PathBuf>,
    /// How long each collector may take before its section is reported as an
    /// error. Collectors run concurrently, so this also bounds the whole run
    /// (roughly). Default: 5 seconds.
    pub collector_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            disks: vec![PathBuf::from("/")],
            tmux_socket: None,
            collector_timeout: Duration::from_secs(5),
        }
    }
}

/// Takes a [`Snapshot`] of this machine.
///
/// Runs the system and tmux collectors concurrently, each bounded by
/// `config.collector_timeout`. Never fails: a collector that fails or times out
/// yields its section with status [`CollectorStatus::Error`] or
/// [`CollectorStatus::Unavailable`] and a human-readable `reason` (a timeout is an
/// `Error` whose reason says "timed out"). `collected_at` is the time the run
/// started.
///
/// Blocking work (`/proc` reads, `statvfs`) runs on a separate thread and tmux
/// runs as an async child process, so the runtime is never blocked; a timed-out
/// tmux child is killed.
///
/// # Panics
///
/// Like any tokio timer/process user, panics if called outside a tokio runtime
/// with the time and I/O drivers enabled (`#[tokio::main]` and
/// `#[tokio::test]` enable them).
pub async fn collect(config: &Config) -> Snapshot {
    let collected_at = Utc::now();
    let limit = config.collector_timeout;

    let system = async {
        match tokio::time::timeout(limit, system::collect(config.disks.clone())).await {
            Ok(section) => section,
            Err(_) => {
                system::failed_section(format!("the system collector timed out after {limit:?}"))
            }
        }
    };
    let tmux = async {
        match tokio::time::timeout(limit, tmux::collect(config.tmux_socket.as_deref())).await {
            Ok(section) => section,
            Err(_) => tmux::section(
                CollectorStatus::Error,
                format!("tmux list-sessions timed out after {limit:?}"),
            ),
        }
    };
    let (system, tmux) = tokio::join!(system, tmux);

    Snapshot {
        collected_at,
        hostname: system::hostname(),
        system,
        tmux,
    }
}
