//! Renders a [`Snapshot`] as Markdown for an agent prompt.
//!
//! Output shape (headings are level 3 so the block nests under a prompt's own
//! `## Preflight snapshot` heading):
//!
//! ```text
//! Host `build-01`, collected 2025-01-01 12:00:00 UTC. Sizes in MB are MiB (2^20 bytes).
//!
//! ### System
//!
//! - RAM: 23823 MB available of 24105 MB
//! - Swap: 0 MB used of 0 MB
//! - Disk /: 13% used (11034 MB of 257844 MB)
//! - Load: 0.10 0.20 0.30 (1, 5, 15 min)
//!
//! ### tmux
//!
//! 2 sessions:
//!
//! - alpha: 1 window, detached, created 2025-01-01 11:00:00 UTC, last activity 2025-01-01 11:30:00 UTC (idle 30m)
//! - beta: …
//! ```

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::snapshot::{
    CollectorStatus, Load, Snapshot, SystemSection, TmuxSection, TmuxSession, disk_line, load_line,
    memory_line, session_count, swap_line,
};

/// Longest list (disks, sessions) rendered in full; the rest is summarised as
/// `… and N more`.
pub(crate) const MAX_LIST_ITEMS: usize = 50;

/// Renders the whole snapshot. See the module docs for the shape.
pub(crate) fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let host = if snapshot.hostname.is_empty() {
        "(unknown host)".to_owned()
    } else {
        format!("`{}`", snapshot.hostname)
    };
    let _ = writeln!(
        out,
        "Host {host}, collected {}. Sizes in MB are MiB (2^20 bytes).",
        timestamp(snapshot.collected_at)
    );
    out.push('\n');
    render_system(&mut out, &snapshot.system);
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    render_tmux(&mut out, &snapshot.tmux, snapshot.collected_at);
    out
}

fn render_system(out: &mut String, system: &SystemSection) {
    out.push_str("### System\n\n");
    if let Some(line) = status_paragraph(system.status, system.reason.as_deref()) {
        out.push_str(&line);
        if system.status == CollectorStatus::Unavailable {
            return;
        }
    }

    // In an Error section, failed parts read as zero: show only what was collected.
    let ok = system.status == CollectorStatus::Ok;
    let mut shown = 0;
    if ok || system.memory.total_mb > 0 {
        let _ = writeln!(out, "- {}", memory_line(&system.memory));
        let _ = writeln!(out, "- {}", swap_line(&system.swap));
        shown += 2;
    }
    let disks: Vec<String> = system.disks.iter().map(disk_line).collect();
    push_capped_list(out, &disks);
    shown += disks.len();
    if ok || system.load != Load::default() {
        let _ = writeln!(out, "- {} (1, 5, 15 min)", load_line(&system.load));
        shown += 1;
    }
    if shown == 0 {
        out.push_str("No figures were collected.\n");
    }
}

fn render_tmux(out: &mut String, tmux: &TmuxSection, now: DateTime<Utc>) {
    out.push_str("### tmux\n\n");
    if tmux.status != CollectorStatus::Ok {
        if let Some(line) = status_paragraph(tmux.status, tmux.reason.as_deref()) {
            out.push_str(&line);
        }
        return;
    }
    if tmux.sessions.is_empty() {
        out.push_str("No sessions.\n");
    } else {
        let _ = writeln!(out, "{}:\n", session_count(tmux.sessions.len()));
        let lines: Vec<String> = tmux
            .sessions
            .iter()
            .map(|session| session_item(session, now))
            .collect();
        push_capped_list(out, &lines);
    }
    if let Some(note) = &tmux.reason {
        let _ = writeln!(out, "\nNote: {note}");
    }
}

/// `**Status: error** — reason` paragraph for a non-Ok section (or an Ok one with a note).
fn status_paragraph(status: CollectorStatus, reason: Option<&str>) -> Option<String> {
    let reason = reason.unwrap_or("no reason given");
    match status {
        CollectorStatus::Ok if reason == "no reason given" => None,
        CollectorStatus::Ok => Some(format!("Note: {reason}\n\n")),
        status => Some(format!("**Status: {status}** — {reason}\n\n")),
    }
}

/// Writes `- item` lines, at most [`MAX_LIST_ITEMS`], then `- … and N more`.
fn push_capped_list(out: &mut String, items: &[String]) {
    for item in items.iter().take(MAX_LIST_ITEMS) {
        let _ = writeln!(out, "- {item}");
    }
    if items.len() > MAX_LIST_ITEMS {
        let _ = writeln!(out, "- … and {} more", items.len() - MAX_LIST_ITEMS);
    }
}

/// `alpha: 1 window, detached, created …, last activity … (idle 30m)`.
fn session_item(session: &TmuxSession, now: DateTime<Utc>) -> String {
    let windows = if session.windows == 1 {
        "1 window".to_owned()
    } else {
        format!("{} windows", session.windows)
    };
    let attached = if session.attached {
        "attached"
    } else {
        "detached"
    };
    let mut item = format!(
        "{}: {windows}, {attached}, created {}, last activity {}",
        session.name,
        timestamp(session.created),
        timestamp(session.last_activity)
    );
    let idle = (now - session.last_activity).num_seconds();
    if idle >= 0 {
        let _ = write!(item, " (idle {})", duration(idle.unsigned_abs()));
    }
    item
}

/// `2025-01-01 12:00:00 UTC`.
fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Compact duration: `45s`, `12m`, `3h 05m`, `2d 4h`.
fn duration(secs: u64) -> String {
    let (days, hours, mins) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins:02}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(12 * 60 + 5), "12m");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(duration(2 * 86_400 + 4 * 3600 + 59), "2d 4h");
    }
}
