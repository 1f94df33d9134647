//! The run lock: one run of a formula at a time.
//!
//! Cron starts a supervisor every 20 minutes whether or not the last run
//! has finished; two agents acting on the same factory at once would undo
//! each other's fixes. A run holds an exclusive `flock(2)` on
//! `STATE/FORMULA.lock` for its whole life. The kernel releases it when
//! the process exits, however it exits, so a crashed run never leaves a
//! stale lock. The file holds the holder's pid and start time, for the
//! message the next run prints.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use thiserror::Error;

/// The lock could not be taken.
#[derive(Debug, Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("another run of this formula is in progress ({holder}); lock file {}", path.display())]
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the lock file says of its holder: `pid N since TIME`.
        holder: String,
    },
    /// The lock file could not be opened or written.
    #[error("cannot take the run lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A held run lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock at `path` without waiting, creating the file and its
    /// directory when missing, and records this process in it.
    ///
    /// # Errors
    /// [`LockError::Held`] naming the holder when another process has it;
    /// [`LockError::Io`] when the file cannot be opened or written.
    pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if let Err(error) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if error == rustix::io::Errno::WOULDBLOCK {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            return Err(io(error.into()));
        }
        let note = format!(
            "pid {} since {}\n",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(note.as_bytes()).map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/f.lock");
        let first = RunLock::acquire(&path).unwrap();
        let error = RunLock::acquire(&path).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("another run of this formula is in progress (pid "),
            "{message}"
        );
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
        drop(first);
        RunLock::acquire(&path).expect("free again once dropped");
    }
}
