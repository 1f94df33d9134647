//! The phase-file collector: the one-line state files (`PHASE:done`,
//! `PHASE:escalate`, …) that agent sessions leave behind, with their first
//! line and age.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::FilesConfig;
use crate::files::{Kind, cap, expand, first_line, mtime_and_age, read_prefix};
use crate::snapshot::{CollectorStatus, Section, impl_section, plural, status_from};

/// Longest first line kept, in characters.
const MAX_LINE_CHARS: usize = 200;

/// Phase files matching the configured globs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct PhaseFilesSection {
    /// How the collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// The globs searched, as configured.
    pub globs: Vec<String>,
    /// The matching files, by path (at most `max_files`).
    pub files: Vec<PhaseFile>,
    /// How many more files matched than are listed.
    pub omitted: u64,
}

impl_section!(PhaseFilesSection);

/// One phase file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct PhaseFile {
    /// Its path.
    pub path: String,
    /// Its first line, trimmed (at most 200 characters; `""` when empty),
    /// e.g. `PHASE:escalate`.
    pub first_line: String,
    /// Last modification time, UTC.
    pub modified: DateTime<Utc>,
    /// Seconds since the last modification.
    pub age_seconds: u64,
}

pub(crate) async fn collect(
    config: FilesConfig,
    cwd: PathBuf,
    now: DateTime<Utc>,
) -> PhaseFilesSection {
    crate::off_thread("phase_files", move || collect_blocking(&config, &cwd, now))
        .await
        .unwrap_or_else(|reason| PhaseFilesSection::failed(CollectorStatus::Error, reason))
}

fn collect_blocking(
    config: &FilesConfig,
    cwd: &std::path::Path,
    now: DateTime<Utc>,
) -> PhaseFilesSection {
    if config.globs.is_empty() {
        return PhaseFilesSection::failed(
            CollectorStatus::Unavailable,
            "no globs configured ([preflight.phase_files] globs)",
        );
    }
    let matches = expand(&config.globs, cwd, Kind::File);
    let mut problems = matches.problems;
    let mut files = Vec::new();
    for found in matches.found {
        let (modified, age_seconds) = mtime_and_age(&found.metadata, now);
        match read_prefix(&found.path, 4096) {
            Ok(bytes) => files.push(PhaseFile {
                path: found.path.display().to_string(),
                first_line: first_line(&bytes, MAX_LINE_CHARS),
                modified,
                age_seconds,
            }),
            // Removed between the match and the read: it is simply gone.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => problems.push(format!("{}: {err}", found.path.display())),
        }
    }
    let omitted = cap(&mut files, config.max_files);
    let (status, reason) = status_from(problems);
    PhaseFilesSection {
        status,
        reason,
        duration_ms: 0,
        globs: config.globs.clone(),
        files,
        omitted,
    }
}

impl PhaseFilesSection {
    /// `4 files` (for the journal).
    pub(crate) fn summary(&self) -> String {
        let total = self.files.len() + usize::try_from(self.omitted).unwrap_or(usize::MAX);
        plural(total, "file", "files")
    }
}
