//! Renders a [`Snapshot`] as Markdown: what a prompt gets, and what an
//! operator reads at a glance from `retort preflight`.
//!
//! One `###` heading per section (level 3, so the block nests under a
//! prompt's own `## Preflight snapshot` heading), in the order of the JSON;
//! numbers with units; every list capped at [`MAX_LIST_ITEMS`] with
//! `… and N more`, every text block (log tails, command output) at
//! [`MAX_TEXT_LINES`] lines with a note of how many were left out. A section
//! that is not `ok` opens with `**Status: error** — reason`; an unavailable
//! one says only that.
//!
//! ```text
//! Host `build-01`, collected 2025-01-01 12:00:00 UTC in 9 ms. Sizes in MB are MiB (2^20 bytes).
//!
//! ### System
//!
//! - RAM: 23823 MB available of 24105 MB
//! - Swap: 0 MB used of 0 MB
//! - Disk /: 13% used (11034 MB of 257844 MB)
//! - Load: 0.10 0.20 0.30 (1, 5, 15 min) on 2 CPUs
//! - Uptime: 3d 4h
//!
//! ### Docker
//!
//! **Status: unavailable** — no Docker daemon: nothing at /var/run/docker.sock (is dockerd running?)
//!
//! ### tmux
//! …
//! ```

mod commands;
mod files;
mod forge;
mod git;
mod host;
mod text;

use std::fmt::Write as _;

use crate::snapshot::{CollectorStatus, Snapshot};
pub(crate) use text::span;
use text::timestamp;

use commands::render_commands;
use files::{render_escalations, render_locks, render_logs, render_phase_files};
use forge::{render_ci, render_forge};
use git::render_git;
use host::{render_docker, render_system, render_tmux};

/// Longest list (disks, sessions, files, …) rendered in full; the rest is
/// summarised as `… and N more`.
pub const MAX_LIST_ITEMS: usize = 50;

/// Longest text block (a log tail, a command's output) rendered in full, in
/// lines; the rest is summarised as `(N more lines)`.
pub const MAX_TEXT_LINES: usize = 40;

/// Renders the whole snapshot. See the module docs for the shape.
pub(crate) fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let host = if snapshot.hostname.is_empty() {
        "(unknown host)".to_owned()
    } else {
        format!("`{}`", snapshot.hostname)
    };
    let took = if snapshot.duration_ms > 0 {
        format!(" in {} ms", snapshot.duration_ms)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Host {host}, collected {}{took}. Sizes in MB are MiB (2^20 bytes).",
        timestamp(snapshot.collected_at)
    );
    let renderers: [&dyn Fn(&mut String); 11] = [
        &|out| render_system(out, &snapshot.system),
        &|out| render_docker(out, &snapshot.docker),
        &|out| render_tmux(out, &snapshot.tmux),
        &|out| render_phase_files(out, &snapshot.phase_files),
        &|out| render_locks(out, &snapshot.locks),
        &|out| render_logs(out, &snapshot.logs),
        &|out| render_git(out, &snapshot.git),
        &|out| render_escalations(out, &snapshot.escalations),
        &|out| render_forge(out, &snapshot.forge),
        &|out| render_ci(out, &snapshot.ci),
        &|out| render_commands(out, &snapshot.commands),
    ];
    for render in renderers {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        render(&mut out);
    }
    out
}

/// Writes `### TITLE` and, unless the section is plainly `ok`, its status
/// paragraph. Returns whether the section's figures should follow (not when
/// it is unavailable: nothing was collected).
fn open(out: &mut String, title: &str, status: CollectorStatus, reason: Option<&str>) -> bool {
    let _ = writeln!(out, "### {title}\n");
    match (status, reason) {
        (CollectorStatus::Ok, None) => true,
        (CollectorStatus::Ok, Some(note)) => {
            let _ = writeln!(out, "Note: {note}\n");
            true
        }
        (status, reason) => {
            let _ = writeln!(
                out,
                "**Status: {status}** — {}\n",
                reason.unwrap_or("no reason given")
            );
            status != CollectorStatus::Unavailable
        }
    }
}
