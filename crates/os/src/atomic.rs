//! Atomic file replacement: readers see the old content or the new, never
//! a half-written file.
//!
//! Two strengths. [`write_atomic`] protects readers: it writes a temporary
//! file and renames it over the target, and syncs nothing, so after a
//! crash of the machine (not of retort) the file may hold the old content
//! or, on some file systems, be empty. [`write_durable`] also survives
//! that: it syncs the new file before the rename and the directory after,
//! at the price of two `fsync(2)`s (milliseconds on a busy disk). retort
//! makes durable only what the next run or a supervisor reads to decide:
//! a run's outcome in the phase file. The run history's commits are
//! SQLite's own business; run-directory files (`snapshot.json`,
//! `decision.json`, `run.json`, prompts, signals) describe a run that a
//! crash ends anyway.

use std::io::Write;
use std::path::Path;

/// Writes `content` to `path` by writing a temporary file in the same
/// directory and renaming it over `path` (`rename(2)` is atomic within a
/// file system). Creates the parent directory when missing. Syncs nothing
/// (see [`write_durable`]).
///
/// # Errors
/// The I/O error of creating the directory, writing or renaming.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    write(path, content, false)
}

/// [`write_atomic`], and durable: the file's content is synced to disk
/// before the rename and its directory after it, so that once this returns
/// the new content survives a crash of the machine.
///
/// # Errors
/// The I/O error of creating the directory, writing, syncing or renaming.
pub fn write_durable(path: &Path, content: &[u8]) -> std::io::Result<()> {
    write(path, content, true)
}

fn write(path: &Path, content: &[u8], durable: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::Builder::new()
        .prefix(".retort-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.write_all(content)?;
    if durable {
        file.as_file().sync_all()?;
    }
    file.persist(path).map_err(|e| e.error)?;
    if durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_strengths_replace_the_whole_file_and_leave_no_temporary() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("sub/phase");
        write_atomic(&path, b"PHASE:working\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"PHASE:working\n");
        write_durable(&path, b"PHASE:done\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"PHASE:done\n");
        let names: Vec<_> = std::fs::read_dir(temp.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["phase"]);
    }
}
