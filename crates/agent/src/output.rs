//! Step outputs: what an agent hands on to later steps.
//!
//! `retort signal done --output TEXT` (or `--output-file PATH`) writes
//! `RETORT_RUN_DIR/steps/STEP.output` atomically, before the step's signal
//! file, so that the output is there when the run sees the signal. Later
//! steps' templates and `when` conditions see it as `steps.STEP.output`.
//! An output is text of at most [`MAX_OUTPUT_BYTES`].

use std::path::PathBuf;

use thiserror::Error;

use crate::run_dir::RunDir;
use retort_os::atomic::write_atomic;
use retort_os::paths::file_safe;

/// The most an output may hold: 64 KiB (65,536 bytes of UTF-8), enough
/// for a report or a list of findings, small enough for every later prompt.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// An output could not be kept.
#[derive(Debug, Error)]
pub enum OutputError {
    /// The output is larger than [`MAX_OUTPUT_BYTES`].
    #[error(
        "the output is {size} bytes; at most {MAX_OUTPUT_BYTES} (64 KiB) are kept: hand on a summary, or a path to a file with the rest"
    )]
    TooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// `--output-file` could not be read, or is not UTF-8 text.
    #[error("cannot read the output file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// `steps/STEP.output`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `steps/STEP.output` in the run directory `run`.
pub fn output_file(run: &RunDir, step: &str) -> PathBuf {
    run.steps_dir().join(format!("{}.output", file_safe(step)))
}

/// Reads an `--output-file`: its text, if it is UTF-8 and at most
/// [`MAX_OUTPUT_BYTES`].
///
/// # Errors
/// [`OutputError::Read`] or [`OutputError::TooLarge`].
pub fn read_output_file(path: &std::path::Path) -> Result<String, OutputError> {
    let fail = |reason: String| OutputError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if size > MAX_OUTPUT_BYTES {
        return Err(OutputError::TooLarge { size });
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".to_string()))
}

/// Keeps `text` as the output of `step`, atomically.
///
/// # Errors
/// [`OutputError::TooLarge`] beyond [`MAX_OUTPUT_BYTES`];
/// [`OutputError::Write`] with the I/O error.
pub fn write(run: &RunDir, step: &str, text: &str) -> Result<(), OutputError> {
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(OutputError::TooLarge { size: text.len() });
    }
    let path = output_file(run, step);
    write_atomic(&path, text.as_bytes()).map_err(|source| OutputError::Write { path, source })
}

/// The output of `step`, or `""` when it gave none (or it cannot be
/// read); cut to [`MAX_OUTPUT_BYTES`] at a character boundary should the
/// file have grown.
pub fn read(run: &RunDir, step: &str) -> String {
    let mut text = std::fs::read(output_file(run, step))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    if text.len() > MAX_OUTPUT_BYTES {
        let mut end = MAX_OUTPUT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_is_kept_and_read_back_and_a_large_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().to_path_buf());
        run.create_agent_dirs().unwrap();
        assert_eq!(read(&run, "triage"), "");
        write(&run, "triage", "disk: /var at 93%").unwrap();
        assert_eq!(read(&run, "triage"), "disk: /var at 93%");
        let large = "x".repeat(MAX_OUTPUT_BYTES + 1);
        let error = write(&run, "triage", &large).unwrap_err();
        assert!(error.to_string().contains("65537 bytes"), "{error}");
        assert_eq!(read(&run, "triage"), "disk: /var at 93%", "kept as it was");
        let file = dir.path().join("big.txt");
        std::fs::write(&file, &large).unwrap();
        assert!(matches!(
            read_output_file(&file),
            Err(OutputError::TooLarge { size: 65537 })
        ));
        std::fs::write(&file, "ok\n").unwrap();
        assert_eq!(read_output_file(&file).unwrap(), "ok\n");
    }
}
