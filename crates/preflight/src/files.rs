//! Finding and reading the files the file-based collectors report: glob
//! expansion (with `~/` and relative globs), modification times and ages,
//! and bounded reads.

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// What a glob should match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Regular files (symlinks to them included).
    File,
    /// Directories (symlinks to them included).
    Dir,
}

/// One matched path and its metadata (following symlinks).
#[derive(Debug)]
pub(crate) struct Found {
    pub path: PathBuf,
    pub metadata: Metadata,
}

/// The paths matching some globs, and the problems met on the way.
#[derive(Debug, Default)]
pub(crate) struct Matches {
    /// Matched paths of the wanted kind, sorted by path, without duplicates.
    pub found: Vec<Found>,
    /// Invalid globs and unreadable directories, as human messages.
    pub problems: Vec<String>,
}

/// `path` with a leading `~/` (or a lone `~`) replaced by the home
/// directory ([`home`]), and made absolute against `cwd` when relative.
pub(crate) fn resolve(path: &str, cwd: &Path) -> PathBuf {
    resolve_with(path, cwd, home)
}

/// [`resolve`], with the home directory from `home`.
fn resolve_with(path: &str, cwd: &Path, home: impl FnOnce() -> Option<String>) -> PathBuf {
    let expanded = PathBuf::from(shellexpand::tilde_with_context(path, home).as_ref());
    if expanded.is_absolute() {
        expanded
    } else {
        cwd.join(expanded)
    }
}

/// The home directory `~` stands for: `$HOME`, else the user's entry in
/// the password database ([`std::env::home_dir`]); `None` when neither
/// gives one, or it is not UTF-8 (then `~` is left as written).
fn home() -> Option<String> {
    std::env::home_dir()
        .and_then(|home| home.into_os_string().into_string().ok())
        .filter(|home| !home.is_empty())
}

/// Expands shell-style `globs` (see [`resolve`] for `~/` and relative globs;
/// `*` does not match a leading dot) and keeps the matches of `kind`.
pub(crate) fn expand(globs: &[String], cwd: &Path, kind: Kind) -> Matches {
    let mut found = BTreeMap::new();
    let mut problems = Vec::new();
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    for raw in globs {
        let pattern = absolute_pattern(raw, cwd);
        let paths = match glob::glob_with(&pattern, options) {
            Ok(paths) => paths,
            Err(err) => {
                problems.push(format!("invalid glob `{raw}`: {err}"));
                continue;
            }
        };
        for entry in paths {
            match entry {
                Ok(path) => {
                    if found.contains_key(&path) {
                        continue;
                    }
                    // A file may vanish between the directory read and the stat: skip it.
                    let Ok(metadata) = std::fs::metadata(&path) else {
                        continue;
                    };
                    let wanted = match kind {
                        Kind::File => metadata.is_file(),
                        Kind::Dir => metadata.is_dir(),
                    };
                    if wanted {
                        found.insert(path, metadata);
                    }
                }
                Err(err) => problems.push(format!("glob `{raw}`: {err}")),
            }
        }
    }
    Matches {
        found: found
            .into_iter()
            .map(|(path, metadata)| Found { path, metadata })
            .collect(),
        problems,
    }
}

/// The glob as an absolute pattern: `~/` (or a lone `~`) expanded to the
/// home directory ([`home`], its glob characters escaped), a relative one
/// joined to `cwd` (whose own glob characters are escaped).
fn absolute_pattern(raw: &str, cwd: &Path) -> String {
    absolute_pattern_with(raw, cwd, home)
}

/// [`absolute_pattern`], with the home directory from `home`.
fn absolute_pattern_with(raw: &str, cwd: &Path, home: impl FnOnce() -> Option<String>) -> String {
    let expanded =
        shellexpand::tilde_with_context(raw, || home().map(|home| glob::Pattern::escape(&home)));
    if expanded.starts_with('/') {
        expanded.into_owned()
    } else {
        let base = glob::Pattern::escape(&cwd.to_string_lossy());
        format!("{}/{expanded}", base.trim_end_matches('/'))
    }
}

/// The file's modification time, UTC (`None` when the platform has none).
pub(crate) fn modified(metadata: &Metadata) -> Option<DateTime<Utc>> {
    metadata.modified().ok().map(DateTime::<Utc>::from)
}

/// Whole seconds from `then` to `now`; 0 when `then` is in the future.
pub(crate) fn age_seconds(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    u64::try_from((now - then).num_seconds()).unwrap_or(0)
}

/// Modification time (the Unix epoch when unknown) and its age at `now`.
pub(crate) fn mtime_and_age(metadata: &Metadata, now: DateTime<Utc>) -> (DateTime<Utc>, u64) {
    let modified = modified(metadata).unwrap_or_default();
    (modified, age_seconds(now, modified))
}

/// The first `max` bytes of the file (fewer when it is shorter).
pub(crate) fn read_prefix(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(max.min(64 * 1024));
    File::open(path)?
        .take(u64::try_from(max).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `text` cut to at most `max` characters, with `…` appended when cut.
pub(crate) fn cap_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The first line of `bytes` (lossy UTF-8, without `\r`), trimmed and capped
/// at `max` characters; `""` for an empty file.
pub(crate) fn first_line(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or("");
    cap_chars(line.trim(), max)
}

/// Keeps the first `max` items and returns how many were dropped.
pub(crate) fn cap<T>(items: &mut Vec<T>, max: usize) -> u64 {
    let omitted = items.len().saturating_sub(max);
    items.truncate(max);
    u64::try_from(omitted).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_characters_not_bytes() {
        assert_eq!(cap_chars("héllo", 2), "hé…");
        assert_eq!(cap_chars("hi", 2), "hi");
        assert_eq!(first_line(b"  PHASE:done \r\nmore", 50), "PHASE:done");
        assert_eq!(first_line(b"", 50), "");
    }

    #[test]
    fn relative_globs_escape_the_working_directory() {
        assert_eq!(
            absolute_pattern("*.log", Path::new("/w/[x]")),
            "/w/[[]x[]]/*.log"
        );
        assert_eq!(
            absolute_pattern("/tmp/*.lock", Path::new("/w")),
            "/tmp/*.lock"
        );
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = || Some("/home/op [1]".to_owned());
        let cwd = Path::new("/w");
        assert_eq!(
            resolve_with("~/run/x.phase", cwd, home),
            Path::new("/home/op [1]/run/x.phase")
        );
        assert_eq!(resolve_with("~", cwd, home), Path::new("/home/op [1]"));
        // Only `~` alone or before a slash: `~user` and a `~` later on are
        // names like any other, relative to the working directory.
        assert_eq!(resolve_with("~op/x", cwd, home), Path::new("/w/~op/x"));
        assert_eq!(resolve_with("a/~/x", cwd, home), Path::new("/w/a/~/x"));
        assert_eq!(resolve_with("~/x", cwd, || None), Path::new("/w/~/x"));

        assert_eq!(
            absolute_pattern_with("~/run/*.phase", cwd, home),
            "/home/op [[]1[]]/run/*.phase",
            "the home directory's glob characters are escaped"
        );
        assert_eq!(
            absolute_pattern_with("~/*.lock", cwd, || None),
            "/w/~/*.lock"
        );
    }

    #[test]
    fn expands_files_and_directories_apart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.lock"), "1").unwrap();
        std::fs::write(dir.path().join(".hidden.lock"), "1").unwrap();
        std::fs::create_dir(dir.path().join("d.lock")).unwrap();
        let globs = vec!["*.lock".to_owned(), "a.*".to_owned(), "[".to_owned()];
        let files = expand(&globs, dir.path(), Kind::File);
        let names: Vec<_> = files
            .found
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.lock"]);
        assert_eq!(files.problems.len(), 1, "{:?}", files.problems);
        assert!(files.problems[0].starts_with("invalid glob `[`"));
        let dirs = expand(&globs[..1], dir.path(), Kind::Dir);
        assert_eq!(dirs.found.len(), 1);
        assert!(dirs.found[0].path.ends_with("d.lock"));
    }
}
