//! A corrupt history moved aside, and a new one started in its place.
//!
//! SQLite answers a damaged file (`SQLITE_CORRUPT`) or one that is not a
//! database at all (`SQLITE_NOTADB`) with an error at every run; without
//! recovery every cron run failed until a human found the file. A run
//! renames it (with its `-wal` and `-shm`) to
//! `history.sqlite.corrupt-YYYYMMDDTHHMMSSZ` (UTC), where it stays for a
//! human or `sqlite3 .recover`, and starts a new, empty history.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::ErrorCode;

use super::read_only::sibling;
use super::{History, HistoryError};

/// A corrupt history that was moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The history's path.
    pub path: PathBuf,
    /// Where the corrupt file went.
    pub moved_to: PathBuf,
    /// SQLite's error.
    pub error: String,
}

impl fmt::Display for Recovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run history {} was corrupt ({}): moved aside as {}, and a new history started \
             (every finding is new again and action cooldowns start over)",
            self.path.display(),
            self.error,
            self.moved_to.display()
        )
    }
}

impl HistoryError {
    /// Whether SQLite found the file damaged or not a database at all: the
    /// errors [`History::open_or_recover`] recovers from. A locked, newer
    /// or unreadable history is not corrupt.
    pub fn is_corrupt(&self) -> bool {
        match self {
            HistoryError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            ),
            _ => false,
        }
    }
}

/// Where a corrupt history at `path` goes when moved aside at `at`:
/// `PATH.corrupt-YYYYMMDDTHHMMSSZ`.
pub fn corrupt_name(path: &Path, at: DateTime<Utc>) -> PathBuf {
    sibling(path, &format!(".corrupt-{}", at.format("%Y%m%dT%H%M%SZ")))
}

impl History {
    /// [`History::open`], and when the file is corrupt
    /// ([`HistoryError::is_corrupt`]): moves it (and its `-wal` and `-shm`)
    /// aside as [`corrupt_name`] and opens a new history, saying so in the
    /// [`Recovered`].
    ///
    /// # Errors
    /// As [`History::open`]; [`HistoryError::Io`] when the corrupt file
    /// cannot be moved aside.
    pub fn open_or_recover(path: &Path) -> Result<(History, Option<Recovered>), HistoryError> {
        let error = match History::open(path) {
            Ok(history) => return Ok((history, None)),
            Err(error) if error.is_corrupt() => error,
            Err(error) => return Err(error),
        };
        let mut moved_to = corrupt_name(path, Utc::now());
        let mut n = 1;
        while moved_to.exists() {
            n += 1;
            moved_to = sibling(&corrupt_name(path, Utc::now()), &format!("-{n}"));
        }
        let io = |source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::rename(path, &moved_to).map_err(io)?;
        for suffix in ["-wal", "-shm"] {
            let from = sibling(path, suffix);
            if from.exists() {
                std::fs::rename(&from, sibling(&moved_to, suffix)).map_err(io)?;
            }
        }
        let history = History::open(path)?;
        let source = match &error {
            HistoryError::Sqlite { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        Ok((
            history,
            Some(Recovered {
                path: path.to_path_buf(),
                moved_to,
                error: source,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_database_is_moved_aside_and_a_new_history_started() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let error = History::open(&path).unwrap_err();
        assert!(error.is_corrupt(), "{error}");
        assert!(error.to_string().contains("history.sqlite"), "{error}");

        let (history, recovered) = History::open_or_recover(&path).unwrap();
        let recovered = recovered.expect("recovered");
        assert!(
            recovered
                .moved_to
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("history.sqlite.corrupt-"),
            "{recovered:?}"
        );
        assert_eq!(
            std::fs::read(&recovered.moved_to).unwrap(),
            vec![b'x'; 8192]
        );
        assert!(recovered.to_string().contains("moved aside"), "{recovered}");
        assert_eq!(history.state("f").unwrap().next_seq, 1);
        drop(history);
        // Healthy now: nothing more is moved.
        let (_, again) = History::open_or_recover(&path).unwrap();
        assert_eq!(again, None);
    }
}
