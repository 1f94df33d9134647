//! The lock-file collector: lock files, the PID written inside each, and
//! whether that process is still alive (`kill -0`, with zombies counted as
//! dead).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::FilesConfig;
use crate::files::{Kind, cap, expand, first_line, mtime_and_age, read_prefix};
use crate::snapshot::{CollectorStatus, Section, impl_section, plural, status_from};

/// Longest content line kept, in characters.
const MAX_LINE_CHARS: usize = 200;

/// Lock files matching the configured globs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct LocksSection {
    /// How the collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// The globs searched, as configured.
    pub globs: Vec<String>,
    /// The matching files, by path (at most `max_files`).
    pub files: Vec<LockFile>,
    /// How many more files matched than are listed.
    pub omitted: u64,
}

impl_section!(LocksSection);

/// One lock file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct LockFile {
    /// Its path.
    pub path: String,
    /// The PID written in it: the first line when it is a number, else the
    /// first whitespace-separated word of that line that is one (`pid=…` and
    /// `PID: …` work too). `null` when there is none.
    pub pid: Option<u32>,
    /// Whether process `pid` exists and is not a zombie (`kill -0 PID`
    /// succeeds, or fails only for lack of permission). `false` when there is no PID.
    pub alive: bool,
    /// The file's first line, trimmed (at most 200 characters).
    pub content: String,
    /// Last modification time, UTC.
    pub modified: DateTime<Utc>,
    /// Seconds since the last modification.
    pub age_seconds: u64,
}

pub(crate) async fn collect(config: FilesConfig, cwd: PathBuf, now: DateTime<Utc>) -> LocksSection {
    crate::off_thread("locks", move || collect_blocking(&config, &cwd, now))
        .await
        .unwrap_or_else(|reason| LocksSection::failed(CollectorStatus::Error, reason))
}

fn collect_blocking(config: &FilesConfig, cwd: &Path, now: DateTime<Utc>) -> LocksSection {
    if config.globs.is_empty() {
        return LocksSection::failed(
            CollectorStatus::Unavailable,
            "no globs configured ([preflight.locks] globs)",
        );
    }
    let matches = expand(&config.globs, cwd, Kind::File);
    let mut problems = matches.problems;
    let mut files = Vec::new();
    for found in matches.found {
        let (modified, age_seconds) = mtime_and_age(&found.metadata, now);
        match read_prefix(&found.path, 4096) {
            Ok(bytes) => {
                let content = first_line(&bytes, MAX_LINE_CHARS);
                let pid = parse_pid(&content);
                files.push(LockFile {
                    path: found.path.display().to_string(),
                    alive: pid.is_some_and(is_alive),
                    pid,
                    content,
                    modified,
                    age_seconds,
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => problems.push(format!("{}: {err}", found.path.display())),
        }
    }
    let omitted = cap(&mut files, config.max_files);
    let (status, reason) = status_from(problems);
    LocksSection {
        status,
        reason,
        duration_ms: 0,
        globs: config.globs.clone(),
        files,
        omitted,
    }
}

/// The PID in a lock file's first line (see [`LockFile::pid`]).
fn parse_pid(line: &str) -> Option<u32> {
    let valid = |word: &str| word.parse::<u32>().ok().filter(|pid| *pid > 0);
    valid(line.trim()).or_else(|| {
        line.split(|c: char| c.is_whitespace() || matches!(c, '=' | ':' | ',' | ';'))
            .find_map(valid)
    })
}

/// Whether process `pid` exists and is not a zombie.
pub(crate) fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let Some(pid) = rustix::process::Pid::from_raw(raw) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) | Err(rustix::io::Errno::PERM) => !is_zombie(raw),
        Err(_) => false,
    }
}

/// Whether `/proc/PID/stat` says the process is a zombie (state `Z`) or dead (`X`).
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain any byte.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| matches!(state, "Z" | "X"))
}

impl LocksSection {
    /// `2 (1 dead)` (for the journal).
    pub(crate) fn summary(&self) -> String {
        let dead = self.files.iter().filter(|f| !f.alive).count();
        let mut line = plural(
            self.files.len() + usize::try_from(self.omitted).unwrap_or(usize::MAX),
            "file",
            "files",
        );
        if dead > 0 {
            line.push_str(&format!(" ({dead} without a live process)"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pids_in_common_shapes() {
        assert_eq!(parse_pid("1234"), Some(1234));
        assert_eq!(parse_pid(" 1234 host-a"), Some(1234));
        assert_eq!(parse_pid("pid=77"), Some(77));
        assert_eq!(parse_pid("PID: 88 since 2025"), Some(88));
        assert_eq!(parse_pid("locked"), None);
        assert_eq!(parse_pid("0"), None);
        assert_eq!(parse_pid(""), None);
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(0));
        assert!(!is_alive(u32::MAX));
    }
}
