//! The [`Snapshot`] type: what one preflight run found, and its JSON shape.
//!
//! Every type here serialises with serde to a fixed shape (field names are a
//! contract with formula templates), so renaming a field is a breaking change.
//! Sizes are whole mebibytes (2^20 bytes, "MB" as `free -m` and `df -m` print
//! them), truncated; timestamps are RFC 3339 strings in UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything one preflight run gathered about the machine.
///
/// JSON shape (the contract templates rely on):
///
/// ```json
/// {
///   "collected_at": "2025-01-01T12:00:00Z",
///   "hostname": "build-01",
///   "system": {
///     "status": "ok", "reason": null,
///     "memory": { "available_mb": 23823, "total_mb": 24105 },
///     "swap": { "used_mb": 0, "total_mb": 0 },
///     "disks": [ { "mount": "/", "used_percent": 13, "used_mb": 11034, "total_mb": 257844 } ],
///     "load": { "one": 0.1, "five": 0.2, "fifteen": 0.3 }
///   },
///   "tmux": {
///     "status": "ok", "reason": null,
///     "sessions": [ { "name": "alpha", "windows": 1, "attached": false,
///                     "created": "2025-01-01T11:00:00Z", "last_activity": "2025-01-01T11:30:00Z" } ]
///   }
/// }
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Snapshot {
    /// When the run started (UTC).
    pub collected_at: DateTime<Utc>,
    /// The machine's host name as `gethostname(2)` reports it; empty when unknown.
    pub hostname: String,
    /// Memory, swap, disk and load figures.
    pub system: SystemSection,
    /// The tmux sessions on the configured server.
    pub tmux: TmuxSection,
}

/// How a collector fared. Serialised in lowercase: `"ok"`, `"unavailable"`, `"error"`.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum CollectorStatus {
    /// Everything in the section was collected. `reason` is normally `None`,
    /// but may carry a note about data that was skipped (e.g. an unparsable tmux line).
    Ok,
    /// The source does not exist here (tmux not installed, no tmux server running)
    /// or nothing was collected; the section's figures are empty/zero and `reason` says why.
    /// This is also the [`Default`]: a section nobody filled in.
    #[default]
    Unavailable,
    /// Something went wrong (a failing disk path, a tmux error, a timeout); `reason`
    /// says what. Parts that were collected are still filled in; failed parts read as
    /// zero, and a disk that failed is left out of `disks`.
    Error,
}

impl CollectorStatus {
    /// The lowercase word used in JSON and in rendered text: `ok`, `unavailable`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectorStatus::Ok => "ok",
            CollectorStatus::Unavailable => "unavailable",
            CollectorStatus::Error => "error",
        }
    }
}

impl std::fmt::Display for CollectorStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Memory, swap, disks and load average of the machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct SystemSection {
    /// How the system collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (always serialised; `null` when absent).
    pub reason: Option<String>,
    /// RAM figures.
    pub memory: Memory,
    /// Swap figures.
    pub swap: Swap,
    /// One entry per configured disk path that could be measured, in configuration order.
    pub disks: Vec<Disk>,
    /// Load averages.
    pub load: Load,
}

/// RAM, in MiB (2^20 bytes), truncated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Memory {
    /// Memory available for starting new work without swapping: Linux's `MemAvailable`
    /// from `/proc/meminfo` (the "available" column of `free -m`), in MiB.
    pub available_mb: u64,
    /// Total usable RAM (`MemTotal`), in MiB.
    pub total_mb: u64,
}

/// Swap space, in MiB (2^20 bytes), truncated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Swap {
    /// Swap in use (`SwapTotal - SwapFree`), in MiB.
    pub used_mb: u64,
    /// Total swap (`SwapTotal`), in MiB; 0 when the machine has no swap.
    pub total_mb: u64,
}

/// Usage of the file system holding one configured path, as `df -m PATH` reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Disk {
    /// The configured path, exactly as given (not necessarily a mount point).
    pub mount: String,
    /// Percentage of the space available to unprivileged users that is used, rounded
    /// up: df's `Use%` column (0–100; may exceed 100 when root's reserve is in use).
    pub used_percent: u32,
    /// Space used (`(f_blocks - f_bfree) * f_frsize`), in MiB.
    pub used_mb: u64,
    /// File-system size (`f_blocks * f_frsize`), in MiB.
    pub total_mb: u64,
}

/// System load averages: the first three fields of Linux's `/proc/loadavg`, the
/// number of runnable or uninterruptibly sleeping tasks averaged (exponentially
/// damped) over 1, 5 and 15 minutes. Not normalised by CPU count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Load {
    /// 1-minute load average.
    pub one: f64,
    /// 5-minute load average.
    pub five: f64,
    /// 15-minute load average.
    pub fifteen: f64,
}

/// The sessions of one tmux server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct TmuxSection {
    /// How the tmux collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok`, or a note about skipped
    /// output lines (always serialised; `null` when absent).
    pub reason: Option<String>,
    /// Sessions in the order tmux lists them (by name).
    pub sessions: Vec<TmuxSession>,
}

/// One tmux session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct TmuxSession {
    /// Session name (`#{session_name}`).
    pub name: String,
    /// Number of windows (`#{session_windows}`).
    pub windows: u32,
    /// Whether at least one client is attached (`#{session_attached}` > 0).
    pub attached: bool,
    /// When the session was created (`#{session_created}`), UTC, whole seconds.
    pub created: DateTime<Utc>,
    /// Last activity in the session (`#{session_activity}`), UTC, whole seconds.
    pub last_activity: DateTime<Utc>,
}

impl Snapshot {
    /// Renders the snapshot as Markdown for an agent prompt.
    ///
    /// Starts with a one-line header (host and time), then a `### System` and a
    /// `### tmux` section, so it nests under a prompt's `## Preflight snapshot`
    /// heading. Sizes are printed as `N MB` (MiB); lists (disks, sessions) show at
    /// most 50 entries followed by `… and N more`.
    pub fn to_markdown(&self) -> String {
        crate::markdown::render(self)
    }

    /// Short one-line health facts for a journal, in this order:
    ///
    /// - `RAM: 23823 MB available of 24105 MB`
    /// - `Swap: 0 MB used of 0 MB`
    /// - `Disk /: 13% used (11034 MB of 257844 MB)` (one per disk)
    /// - `Load: 0.10 0.20 0.30` (1, 5, 15 minutes)
    /// - `tmux: 2 sessions`
    ///
    /// A section whose status is `Unavailable` or `Error` contributes exactly one
    /// line instead, e.g. `System: error: disk /nope: No such file or directory` or
    /// `tmux: unavailable: no tmux server is running`. An `Ok` section with a note
    /// appends it in parentheses.
    pub fn health_summary(&self) -> Vec<String> {
        let mut lines = Vec::new();

        let system = &self.system;
        match system.status {
            CollectorStatus::Ok => {
                lines.push(memory_line(&system.memory));
                lines.push(swap_line(&system.swap));
                lines.extend(system.disks.iter().map(disk_line));
                lines.push(load_line(&system.load));
                if let Some(note) = &system.reason {
                    lines.push(format!("System note: {note}"));
                }
            }
            status => lines.push(status_line("System", status, system.reason.as_deref())),
        }

        let tmux = &self.tmux;
        match tmux.status {
            CollectorStatus::Ok => {
                let mut line = format!("tmux: {}", session_count(tmux.sessions.len()));
                if let Some(note) = &tmux.reason {
                    line.push_str(&format!(" ({note})"));
                }
                lines.push(line);
            }
            status => lines.push(status_line("tmux", status, tmux.reason.as_deref())),
        }

        lines
    }
}

/// `RAM: A MB available of T MB`.
pub(crate) fn memory_line(memory: &Memory) -> String {
    format!(
        "RAM: {} MB available of {} MB",
        memory.available_mb, memory.total_mb
    )
}

/// `Swap: U MB used of T MB`.
pub(crate) fn swap_line(swap: &Swap) -> String {
    format!("Swap: {} MB used of {} MB", swap.used_mb, swap.total_mb)
}

/// `Disk /: 13% used (11034 MB of 257844 MB)`.
pub(crate) fn disk_line(disk: &Disk) -> String {
    format!(
        "Disk {}: {}% used ({} MB of {} MB)",
        disk.mount, disk.used_percent, disk.used_mb, disk.total_mb
    )
}

/// `Load: 0.10 0.20 0.30`.
pub(crate) fn load_line(load: &Load) -> String {
    format!("Load: {:.2} {:.2} {:.2}", load.one, load.five, load.fifteen)
}

/// `1 session` / `N sessions`.
pub(crate) fn session_count(n: usize) -> String {
    if n == 1 {
        "1 session".to_owned()
    } else {
        format!("{n} sessions")
    }
}

/// `Label: status: reason` (or `Label: status (no reason given)`).
pub(crate) fn status_line(label: &str, status: CollectorStatus, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("{label}: {status}: {reason}"),
        None => format!("{label}: {status} (no reason given)"),
    }
}
