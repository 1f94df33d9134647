//! The [`Snapshot`] type: what one preflight run found, and its JSON shape.
//!
//! Every type here serialises with serde to a fixed shape (field names are a
//! contract with formula templates and rules), so renaming a field is a
//! breaking change. `docs/snapshot-reference.md` documents every field; a test
//! checks that it names every field of the JSON Schema derived from these types.
//! Sizes are whole mebibytes (2^20 bytes, "MB" as `free -m` and `df -m` print
//! them), truncated; timestamps are RFC 3339 strings in UTC; ages and durations
//! are whole seconds (`*_seconds`) or milliseconds (`*_ms`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ci::CiSection;
use crate::commands::CommandsSection;
use crate::docker::DockerSection;
use crate::escalations::EscalationsSection;
use crate::forge::ForgeSection;
use crate::git::GitSection;
use crate::locks::LocksSection;
use crate::logs::LogsSection;
use crate::phase_files::PhaseFilesSection;
use crate::system::{Disk, Load, Memory, Swap, SystemSection};
use crate::tmux::TmuxSection;

/// Everything one preflight run gathered about the machine: one section per
/// collector, always all of them (a collector that did not run says so in its
/// `status` and `reason`), so the shape never depends on what succeeded.
///
/// ```json
/// {
///   "collected_at": "2025-01-01T12:00:00Z",
///   "hostname": "build-01",
///   "duration_ms": 9,
///   "system": { "status": "ok", "reason": null, "duration_ms": 3,
///               "memory": { "available_mb": 23823, "total_mb": 24105 }, "…": "…" },
///   "docker": { "status": "unavailable", "reason": "no Docker daemon: …", "…": "…" },
///   "tmux": { "status": "ok", "reason": null, "sessions": [ … ], "…": "…" },
///   "phase_files": { … }, "locks": { … }, "logs": { … }, "git": { … },
///   "escalations": { … }, "forge": { … }, "ci": { … }, "commands": { … }
/// }
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Snapshot {
    /// When the run started (UTC). Every `age_seconds` is measured from here.
    pub collected_at: DateTime<Utc>,
    /// The machine's host name as `gethostname(2)` reports it; empty when unknown.
    pub hostname: String,
    /// How long the whole preflight took, in milliseconds: about as long as
    /// its slowest collector, since they run concurrently.
    pub duration_ms: u64,
    /// Memory, swap, disks, load, uptime, CPUs and the largest processes.
    pub system: SystemSection,
    /// Docker containers.
    pub docker: DockerSection,
    /// The tmux sessions on the configured server, with their panes.
    pub tmux: TmuxSection,
    /// Phase files: the one-line state files agent sessions leave behind.
    pub phase_files: PhaseFilesSection,
    /// Lock files and whether the process named inside is alive.
    pub locks: LocksSection,
    /// Log files and their last lines.
    pub logs: LogsSection,
    /// Git repositories, their worktrees and stray worktree directories.
    pub git: GitSection,
    /// Escalation notes: markdown files waiting for a human.
    pub escalations: EscalationsSection,
    /// The forge (Forgejo or Gitea): open pull requests and issue counts.
    pub forge: ForgeSection,
    /// The CI (Woodpecker): pipelines of the last hours and stuck ones.
    pub ci: CiSection,
    /// The formula's own commands and what they printed.
    pub commands: CommandsSection,
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
    /// The source does not exist here (no tmux server, no Docker daemon, a
    /// forge that is not configured or cannot be reached, a rejected token)
    /// or the collector is disabled; the section's figures are empty/zero and
    /// `reason` says why. This is also the [`Default`]: a section nobody filled in.
    #[default]
    Unavailable,
    /// Something went wrong (a failing disk path, a tmux error, a malformed
    /// answer, a timeout); `reason` says what. Parts that were collected are
    /// still filled in; failed parts read as zero or are left out.
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

/// What every section has: a status, a reason and how long the collector took.
pub(crate) trait Section: Default + Send + 'static {
    /// The section's status, reason and duration, to fill in.
    fn header_mut(&mut self) -> (&mut CollectorStatus, &mut Option<String>, &mut u64);

    /// An empty section with this status and reason.
    fn failed(status: CollectorStatus, reason: impl Into<String>) -> Self {
        let mut section = Self::default();
        let (s, r, _) = section.header_mut();
        *s = status;
        *r = Some(reason.into());
        section
    }
}

/// Implements [`Section`] for structs with `status`, `reason` and `duration_ms` fields.
macro_rules! impl_section {
    ($($ty:ty),* $(,)?) => {$(
        impl $crate::snapshot::Section for $ty {
            fn header_mut(
                &mut self,
            ) -> (&mut $crate::snapshot::CollectorStatus, &mut Option<String>, &mut u64) {
                (&mut self.status, &mut self.reason, &mut self.duration_ms)
            }
        }
    )*};
}
pub(crate) use impl_section;

/// Status `Ok` with no reason when `problems` is empty, else status `Error`
/// with the problems joined by `; ` as the reason.
pub(crate) fn status_from(problems: Vec<String>) -> (CollectorStatus, Option<String>) {
    if problems.is_empty() {
        (CollectorStatus::Ok, None)
    } else {
        (CollectorStatus::Error, Some(problems.join("; ")))
    }
}

impl Snapshot {
    /// Renders the snapshot as Markdown for an agent prompt and for
    /// `retort preflight`.
    ///
    /// Starts with a one-line header (host, time, duration), then one `###`
    /// heading per section in the order of the JSON, so it nests under a
    /// prompt's `## Preflight snapshot` heading. Sizes are printed as `N MB`
    /// (MiB), ages as `3h 05m`; every list shows at most
    /// [`MAX_LIST_ITEMS`](crate::MAX_LIST_ITEMS) entries followed by
    /// `… and N more`, log tails and command output at most
    /// [`MAX_TEXT_LINES`](crate::MAX_TEXT_LINES) lines.
    pub fn to_markdown(&self) -> String {
        crate::markdown::render(self)
    }

    /// Short one-line health facts for a journal, in this order:
    ///
    /// - `RAM: 23823 MB available of 24105 MB`
    /// - `Swap: 0 MB used of 0 MB`
    /// - `Disk /: 13% used (11034 MB of 257844 MB)` (one per disk)
    /// - `Load: 0.10 0.20 0.30` (1, 5, 15 minutes)
    /// - `tmux: 2 sessions` (with `, 1 dead pane` when there are dead panes)
    /// - then one line for each other section that ran: `Docker: 3 containers, 2 running`,
    ///   `Phase files: 4`, `Locks: 2 (1 dead)`, `Logs: 3 files`,
    ///   `Git: 1 repository (1 not on its expected branch)`, `Escalations: 1`,
    ///   `Forge: 4 open pull requests, blocked 1`, `CI: 12 pipelines in 24h (1 running over 20m)`,
    ///   `Commands: 2 (1 failed)`.
    ///
    /// A section whose status is `Error` contributes exactly one line instead,
    /// e.g. `System: error: disk /nope: No such file or directory`; so does an
    /// `Unavailable` system or tmux section (`tmux: unavailable: no tmux server
    /// is running`). Other unavailable sections (not configured, disabled, no
    /// Docker daemon) are left out. An `Ok` section with a note appends it.
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
                let dead = tmux
                    .sessions
                    .iter()
                    .flat_map(|s| &s.panes)
                    .filter(|p| p.dead)
                    .count();
                if dead > 0 {
                    line.push_str(&format!(", {}", plural(dead, "dead pane", "dead panes")));
                }
                if let Some(note) = &tmux.reason {
                    line.push_str(&format!(" ({note})"));
                }
                lines.push(line);
            }
            status => lines.push(status_line("tmux", status, tmux.reason.as_deref())),
        }

        let others: [(&str, CollectorStatus, Option<&str>, Option<String>); 9] = [
            (
                "Docker",
                self.docker.status,
                self.docker.reason.as_deref(),
                Some(self.docker.summary()),
            ),
            (
                "Phase files",
                self.phase_files.status,
                self.phase_files.reason.as_deref(),
                Some(self.phase_files.summary()),
            ),
            (
                "Locks",
                self.locks.status,
                self.locks.reason.as_deref(),
                Some(self.locks.summary()),
            ),
            (
                "Logs",
                self.logs.status,
                self.logs.reason.as_deref(),
                Some(self.logs.summary()),
            ),
            (
                "Git",
                self.git.status,
                self.git.reason.as_deref(),
                Some(self.git.summary()),
            ),
            (
                "Escalations",
                self.escalations.status,
                self.escalations.reason.as_deref(),
                Some(self.escalations.summary()),
            ),
            (
                "Forge",
                self.forge.status,
                self.forge.reason.as_deref(),
                Some(self.forge.summary()),
            ),
            (
                "CI",
                self.ci.status,
                self.ci.reason.as_deref(),
                Some(self.ci.summary()),
            ),
            (
                "Commands",
                self.commands.status,
                self.commands.reason.as_deref(),
                Some(self.commands.summary()),
            ),
        ];
        for (label, status, reason, summary) in others {
            match status {
                CollectorStatus::Ok => {
                    let mut line = format!("{label}: {}", summary.unwrap_or_default());
                    if let Some(note) = reason {
                        line.push_str(&format!(" ({note})"));
                    }
                    lines.push(line);
                }
                CollectorStatus::Error => lines.push(status_line(label, status, reason)),
                CollectorStatus::Unavailable => {}
            }
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
    plural(n, "session", "sessions")
}

/// `1 thing` / `N things`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `Label: status: reason` (or `Label: status (no reason given)`).
pub(crate) fn status_line(label: &str, status: CollectorStatus, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("{label}: {status}: {reason}"),
        None => format!("{label}: {status} (no reason given)"),
    }
}
