//! The formula's `[context] files`: read from the working directory and
//! carried by the first prompt.

use std::path::{Path, PathBuf};

use serde::Serialize;

use retort_formula::formula::Formula;

/// A context file as the first prompt carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextFile {
    /// The path as the formula gives it.
    pub path: String,
    /// The file's text (invalid UTF-8 replaced by U+FFFD).
    pub content: String,
    /// A markdown code fence longer than any run of backticks in `content`,
    /// so that the file cannot close its own fence.
    pub fence: String,
}

/// Reads the formula's `[context] files` relative to `dir`.
///
/// Returns the files read and one warning for each file that could not be
/// read (a missing context file is a warning, not an error).
pub fn read_context_files(formula: &Formula, dir: &Path) -> (Vec<ContextFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for entry in &formula.context.files {
        let relative = entry.get_ref();
        let path: PathBuf = dir.join(relative);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let content = String::from_utf8_lossy(&bytes).trim_end().to_string();
                let fence = fence_for(&content);
                files.push(ContextFile {
                    path: relative.clone(),
                    content,
                    fence,
                });
            }
            Err(error) => warnings.push(format!(
                "context file `{relative}` is left out of the prompt: cannot read {}: {error}",
                path.display()
            )),
        }
    }
    (files, warnings)
}

fn fence_for(content: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::fence_for;

    #[test]
    fn fence_outgrows_the_longest_backtick_run() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("`````"), "``````");
    }
}
