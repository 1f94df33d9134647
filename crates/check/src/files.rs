//! Which files `retort check` checks: each file it is given, and the
//! formula files in each directory it is given (recursively), told from
//! other TOML (`Cargo.toml`, tool configuration) by their `[[steps]]` or
//! `[[rules]]`.

use std::path::{Path, PathBuf};

/// Every file to check under `paths`: each path that is a file, and the
/// formula files below each directory, sorted within it; with how many
/// other `*.toml` files were skipped.
///
/// # Errors
/// The path that could not be read (a path that does not exist, a
/// directory that cannot be listed), with the operating system's error.
pub fn formula_files(paths: &[PathBuf]) -> Result<Found, (PathBuf, std::io::Error)> {
    let mut found = Found::default();
    for path in paths {
        collect(path, &mut found).map_err(|error| (path.clone(), error))?;
    }
    Ok(found)
}

/// The files a check covers.
#[derive(Debug, Default)]
pub struct Found {
    /// Formula files: those named, and the formulas found in directories.
    pub formulas: Vec<PathBuf>,
    /// How many `*.toml` files in directories were not formulas.
    pub skipped: usize,
}

/// `path` itself if a file (always checked), else every formula file
/// below it, sorted; hidden directories and cache directories (with a
/// `CACHEDIR.TAG`, as cargo's `target/` has) are not searched.
fn collect(path: &Path, found: &mut Found) -> std::io::Result<()> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        found.formulas.push(path.to_path_buf());
        return Ok(());
    }
    walk(path, found)
}

fn walk(dir: &Path, found: &mut Found) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if entry.is_dir() {
            if !hidden && !entry.join("CACHEDIR.TAG").exists() {
                walk(&entry, found)?;
            }
        } else if entry.extension().is_some_and(|e| e == "toml") {
            // A file that cannot be read is checked, so that the check says so.
            let is_formula = std::fs::read_to_string(&entry)
                .map(|text| is_formula(&text))
                .unwrap_or(true);
            if is_formula {
                found.formulas.push(entry);
            } else {
                found.skipped += 1;
            }
        }
    }
    Ok(())
}

/// Whether `text` is a formula: TOML whose top level has `steps` or
/// `rules` as an array of tables (`[[steps]]`, `[[rules]]`). Text that
/// does not parse is a formula when a line starts with one of those
/// headers, so that its syntax errors are reported.
pub fn is_formula(text: &str) -> bool {
    let (document, errors) = toml::de::DeTable::parse_recoverable(text);
    let has = |key: &str| {
        document
            .get_ref()
            .get(key)
            .and_then(|value| value.get_ref().as_array())
            .is_some_and(|items| items.iter().any(|item| item.get_ref().is_table()))
    };
    if has("steps") || has("rules") {
        return true;
    }
    !errors.is_empty()
        && text.lines().any(|line| {
            let header: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            header.starts_with("[[steps]]") || header.starts_with("[[rules]]")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_told_from_other_toml() {
        assert!(is_formula("name = \"n\"\n[[steps]]\nid = \"a\"\n"));
        assert!(is_formula("[[rules]]\nid = \"r\"\n"));
        assert!(is_formula(
            "formula = \"gastown style\"\n[[steps]]\nid = \"a\"\n"
        ));
        assert!(!is_formula(
            "[package]\nname = \"retort\"\n[dependencies]\nserde = \"1\"\n"
        ));
        assert!(!is_formula("[project]\nname = \"factory\"\nsteps = 3\n"));
        // Broken TOML with a steps header is a formula, to report its errors.
        assert!(is_formula("name = \"n\n[[steps]]\nid = \"a\"\n"));
        assert!(!is_formula("name = \"n\n"));
    }
}
