//! Atomic file replacement: readers see the old content or the new, never
//! a half-written file.

use std::io::Write;
use std::path::Path;

/// Writes `content` to `path` by writing a temporary file in the same
/// directory and renaming it over `path` (`rename(2)` is atomic within a
/// file system). Creates the parent directory when missing.
///
/// # Errors
/// The I/O error of creating the directory, writing, syncing or renaming.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
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
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
