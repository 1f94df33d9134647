//! The sections that list files matched by globs: phase files, lock files,
//! log tails and escalation notes.

use super::text::{
    duration, human_bytes, inline_code, one_line, push_capped_list, push_text_block,
};
use super::{MAX_LIST_ITEMS, open};
use crate::escalations::EscalationsSection;
use crate::locks::LocksSection;
use crate::logs::LogsSection;
use crate::phase_files::PhaseFilesSection;
use crate::snapshot::plural;
use std::fmt::Write as _;

/// `N files matching `g1`, `g2`:` or `No files match …`.
fn files_intro(out: &mut String, count: usize, omitted: u64, globs: &[String]) {
    let globs: Vec<String> = globs.iter().map(|g| inline_code(g)).collect();
    let globs = globs.join(", ");
    if count == 0 {
        let _ = writeln!(out, "No files match {globs}.");
    } else {
        let total = count + omitted as usize;
        let _ = writeln!(
            out,
            "{} matching {globs}{}:\n",
            plural(total, "file", "files"),
            if omitted > 0 {
                format!(" ({count} listed)")
            } else {
                String::new()
            }
        );
    }
}

pub(super) fn render_phase_files(out: &mut String, section: &PhaseFilesSection) {
    if !open(
        out,
        "Phase files",
        section.status,
        section.reason.as_deref(),
    ) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    let items: Vec<String> = section
        .files
        .iter()
        .map(|f| {
            let line = if f.first_line.is_empty() {
                "(empty)".to_owned()
            } else {
                inline_code(&f.first_line)
            };
            format!(
                "{}: {line} (modified {} ago)",
                f.path,
                duration(f.age_seconds)
            )
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}

pub(super) fn render_locks(out: &mut String, section: &LocksSection) {
    if !open(out, "Lock files", section.status, section.reason.as_deref()) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    let items: Vec<String> = section
        .files
        .iter()
        .map(|f| {
            let holder = match f.pid {
                Some(pid) if f.alive => format!("PID {pid}, alive"),
                Some(pid) => format!("PID {pid}, **dead**"),
                None if f.content.is_empty() => "**no PID** (empty)".to_owned(),
                None => format!("**no PID** ({})", inline_code(&f.content)),
            };
            format!(
                "{}: {holder} (modified {} ago)",
                f.path,
                duration(f.age_seconds)
            )
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}

pub(super) fn render_logs(out: &mut String, section: &LogsSection) {
    if !open(out, "Logs", section.status, section.reason.as_deref()) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    for file in section.files.iter().take(MAX_LIST_ITEMS) {
        let _ = writeln!(
            out,
            "**{}** — {}, modified {} ago{}",
            file.path,
            human_bytes(file.size_bytes),
            duration(file.age_seconds),
            if file.last_lines.is_empty() {
                ", empty.\n".to_owned()
            } else {
                format!(
                    "; last {}:\n",
                    plural(file.last_lines.len(), "line", "lines")
                )
            }
        );
        if !file.last_lines.is_empty() {
            push_text_block(out, &file.last_lines);
        }
    }
    if section.files.len() > MAX_LIST_ITEMS {
        let _ = writeln!(
            out,
            "… and {} more files\n",
            section.files.len() - MAX_LIST_ITEMS
        );
    }
}

pub(super) fn render_escalations(out: &mut String, section: &EscalationsSection) {
    if !open(
        out,
        "Escalations",
        section.status,
        section.reason.as_deref(),
    ) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    let items: Vec<String> = section
        .files
        .iter()
        .map(|f| {
            let heading = f
                .heading
                .as_deref()
                .map(|h| format!("\"{}\"", one_line(h)))
                .unwrap_or_else(|| "(no heading)".to_owned());
            format!(
                "{}: {heading} (modified {} ago)",
                f.path,
                duration(f.age_seconds)
            )
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}
