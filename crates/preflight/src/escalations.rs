//! The escalation collector: markdown notes waiting for a human (a vault or
//! an escalation queue), with their first `#` heading and age.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::FilesConfig;
use crate::files::{Kind, cap, cap_chars, expand, mtime_and_age, read_prefix};
use crate::snapshot::{CollectorStatus, Section, impl_section, plural, status_from};

/// How much of each file is searched for a heading: 64 KiB.
const MAX_READ: usize = 64 * 1024;
/// Longest heading kept, in characters.
const MAX_HEADING_CHARS: usize = 200;

/// Escalation notes matching the configured globs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct EscalationsSection {
    /// How the collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// The globs searched, as configured.
    pub globs: Vec<String>,
    /// The matching files, by path (at most `max_files`).
    pub files: Vec<Escalation>,
    /// How many more files matched than are listed.
    pub omitted: u64,
}

impl_section!(EscalationsSection);

/// One escalation note.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Escalation {
    /// Its path.
    pub path: String,
    /// The text of its first ATX heading (a line starting with one to six
    /// `#`), without the `#`s; YAML front matter and fenced code blocks are
    /// skipped. `null` when it has none.
    pub heading: Option<String>,
    /// Last modification time, UTC.
    pub modified: DateTime<Utc>,
    /// Seconds since the last modification.
    pub age_seconds: u64,
}

pub(crate) async fn collect(
    config: FilesConfig,
    cwd: PathBuf,
    now: DateTime<Utc>,
) -> EscalationsSection {
    crate::off_thread("escalations", move || collect_blocking(&config, &cwd, now))
        .await
        .unwrap_or_else(|reason| EscalationsSection::failed(CollectorStatus::Error, reason))
}

fn collect_blocking(config: &FilesConfig, cwd: &Path, now: DateTime<Utc>) -> EscalationsSection {
    if config.globs.is_empty() {
        return EscalationsSection::failed(
            CollectorStatus::Unavailable,
            "no globs configured ([preflight.escalations] globs)",
        );
    }
    let matches = expand(&config.globs, cwd, Kind::File);
    let mut problems = matches.problems;
    let mut files = Vec::new();
    for found in matches.found {
        let (modified, age_seconds) = mtime_and_age(&found.metadata, now);
        match read_prefix(&found.path, MAX_READ) {
            Ok(bytes) => files.push(Escalation {
                path: found.path.display().to_string(),
                heading: first_heading(&String::from_utf8_lossy(&bytes))
                    .map(|h| cap_chars(&h, MAX_HEADING_CHARS)),
                modified,
                age_seconds,
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => problems.push(format!("{}: {err}", found.path.display())),
        }
    }
    let omitted = cap(&mut files, config.max_files);
    let (status, reason) = status_from(problems);
    EscalationsSection {
        status,
        reason,
        duration_ms: 0,
        globs: config.globs.clone(),
        files,
        omitted,
    }
}

/// The first ATX heading of a markdown text, outside front matter and code fences.
fn first_heading(text: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    if lines.peek().map(|l| l.trim_end()) == Some("---") {
        lines.next();
        for line in lines.by_ref() {
            if matches!(line.trim_end(), "---" | "...") {
                break;
            }
        }
    }
    let mut fence: Option<&str> = None;
    for line in lines {
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") {
            fence = Some("```");
            continue;
        }
        if trimmed.starts_with("~~~") {
            fence = Some("~~~");
            continue;
        }
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line.len() - trimmed.len() < 4 {
            let rest = &trimmed[hashes..];
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                let text = rest.trim().trim_end_matches('#').trim_end();
                return Some(text.to_owned());
            }
        }
    }
    None
}

impl EscalationsSection {
    /// `1 pending` (for the journal).
    pub(crate) fn summary(&self) -> String {
        let total = self.files.len() + usize::try_from(self.omitted).unwrap_or(usize::MAX);
        format!("{} pending", plural(total, "note", "notes"))
    }
}

#[cfg(test)]
mod tests {
    use super::first_heading;

    #[test]
    fn finds_the_first_real_heading() {
        assert_eq!(first_heading("# Disk full\nbody"), Some("Disk full".into()));
        assert_eq!(
            first_heading("---\ntitle: x\n# yaml comment\n---\n\n## CI stuck ##\n"),
            Some("CI stuck".into())
        );
        assert_eq!(
            first_heading("```sh\n# not a heading\n```\n### Real\n"),
            Some("Real".into())
        );
        assert_eq!(first_heading("#hashtag\ntext\n"), None);
        assert_eq!(first_heading("    # indented code\n"), None);
        assert_eq!(first_heading(""), None);
    }
}
