//! The log collector: log files with their size, age and last lines.
//!
//! Tails are read backwards from the end of each file, in blocks, so a
//! multi-gigabyte log costs no more than its last lines.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::LogsConfig;
use crate::files::{Kind, cap, cap_chars, expand, mtime_and_age};
use crate::snapshot::{CollectorStatus, Section, impl_section, plural, status_from};

/// Longest line kept, in characters.
const MAX_LINE_CHARS: usize = 500;
/// At most this much of a file's end is read for its tail: 1 MiB.
const MAX_TAIL_BYTES: u64 = 1 << 20;
/// The block size tails are read in.
const BLOCK: u64 = 16 * 1024;

/// Log files matching the configured globs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct LogsSection {
    /// How the collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// The globs searched, as configured.
    pub globs: Vec<String>,
    /// The matching files, most recently modified first (at most `max_files`).
    pub files: Vec<LogFile>,
    /// How many more files matched than are listed.
    pub omitted: u64,
}

impl_section!(LogsSection);

/// One log file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct LogFile {
    /// Its path.
    pub path: String,
    /// Its size, in bytes.
    pub size_bytes: u64,
    /// Last modification time, UTC.
    pub modified: DateTime<Utc>,
    /// Seconds since the last modification.
    pub age_seconds: u64,
    /// Its last lines, oldest first (at most `[preflight.logs] lines`, default
    /// 15; each at most 500 characters; invalid UTF-8 replaced). A final line
    /// without a newline counts; only the last 1 MiB of the file is searched.
    pub last_lines: Vec<String>,
}

pub(crate) async fn collect(config: LogsConfig, cwd: PathBuf, now: DateTime<Utc>) -> LogsSection {
    crate::off_thread("logs", move || collect_blocking(&config, &cwd, now))
        .await
        .unwrap_or_else(|reason| LogsSection::failed(CollectorStatus::Error, reason))
}

fn collect_blocking(config: &LogsConfig, cwd: &Path, now: DateTime<Utc>) -> LogsSection {
    if config.globs.is_empty() {
        return LogsSection::failed(
            CollectorStatus::Unavailable,
            "no globs configured ([preflight.logs] globs)",
        );
    }
    let matches = expand(&config.globs, cwd, Kind::File);
    let mut problems = matches.problems;
    let mut found = matches.found;
    // Newest first, then by path; keep only what will be reported before reading.
    found.sort_by(|a, b| {
        b.metadata
            .modified()
            .ok()
            .cmp(&a.metadata.modified().ok())
            .then_with(|| a.path.cmp(&b.path))
    });
    let omitted = cap(&mut found, config.max_files);
    let mut files = Vec::with_capacity(found.len());
    for found in found {
        let (modified, age_seconds) = mtime_and_age(&found.metadata, now);
        match tail(&found.path, config.lines) {
            Ok(last_lines) => files.push(LogFile {
                path: found.path.display().to_string(),
                size_bytes: found.metadata.len(),
                modified,
                age_seconds,
                last_lines,
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => problems.push(format!("{}: {err}", found.path.display())),
        }
    }
    let (status, reason) = status_from(problems);
    LogsSection {
        status,
        reason,
        duration_ms: 0,
        globs: config.globs.clone(),
        files,
        omitted,
    }
}

/// The last `n` lines of the file (see [`LogFile::last_lines`]).
pub(crate) fn tail(path: &Path, n: usize) -> io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut file = File::open(path)?;
    let len = file.seek(SeekFrom::End(0))?;
    let floor = len.saturating_sub(MAX_TAIL_BYTES);
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    // Read blocks backwards until the buffer holds n full lines (n + 1 newlines
    // not counting a trailing one) or the floor is reached.
    loop {
        let newlines = buf.iter().filter(|b| **b == b'\n').count();
        let trailing = usize::from(buf.last() == Some(&b'\n'));
        if start == floor || newlines >= n + trailing {
            break;
        }
        let next = start.saturating_sub(BLOCK).max(floor);
        let mut block = vec![0; usize::try_from(start - next).unwrap_or(0)];
        file.seek(SeekFrom::Start(next))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
        start = next;
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    // A first line cut by the block boundary (not at the file's start) is partial.
    if start > 0 && lines.len() > n {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..]
        .iter()
        .map(|line| cap_chars(line, MAX_LINE_CHARS))
        .collect())
}

impl LogsSection {
    /// `3 files` (for the journal).
    pub(crate) fn summary(&self) -> String {
        plural(
            self.files.len() + usize::try_from(self.omitted).unwrap_or(usize::MAX),
            "file",
            "files",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_file(count: usize, trailing_newline: bool) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for i in 0..count {
            write!(file, "line {i} {}", "x".repeat(i % 97)).unwrap();
            if i + 1 < count || trailing_newline {
                writeln!(file).unwrap();
            }
        }
        file.flush().unwrap();
        file
    }

    #[test]
    fn tails_match_the_last_lines_of_the_file() {
        for (count, trailing) in [
            (0, true),
            (3, true),
            (3, false),
            (20_000, true),
            (20_000, false),
        ] {
            let file = lines_file(count, trailing);
            let text = std::fs::read_to_string(file.path()).unwrap();
            let all: Vec<&str> = text.lines().collect();
            let want: Vec<String> = all[all.len().saturating_sub(15)..]
                .iter()
                .map(|l| (*l).to_owned())
                .collect();
            assert_eq!(
                tail(file.path(), 15).unwrap(),
                want,
                "{count} lines, {trailing}"
            );
        }
    }

    #[test]
    fn long_lines_are_capped_and_the_read_is_bounded() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&vec![b'a'; 3 << 20]).unwrap();
        file.write_all(b"\nend\n").unwrap();
        let lines = tail(file.path(), 5).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].chars().count(), MAX_LINE_CHARS + 1);
        assert_eq!(lines[1], "end");
    }
}
