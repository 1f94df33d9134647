//! `retort check`: every problem of every formula, in one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde::Serialize;

use retort_check::check::{CheckOptions, Checked, Purpose, check_file};
use retort_check::files::formula_files;
use retort_formula::diagnostic::{FormulaError, Problem};

use crate::cli::CheckFormat;

/// One diagnostic as `--format json` prints it.
#[derive(Debug, Serialize)]
struct JsonDiagnostic {
    file: String,
    /// 1-based.
    line: usize,
    /// 1-based, in characters.
    column: usize,
    /// 1-based: the line of the position just after the primary place.
    end_line: usize,
    /// 1-based, in characters: the position just after the primary place.
    end_column: usize,
    severity: &'static str,
    code: String,
    message: String,
    help: Option<String>,
    /// Every labelled place, the primary one first.
    labels: Vec<JsonLabel>,
}

/// One labelled place of a diagnostic.
#[derive(Debug, Serialize)]
struct JsonLabel {
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    message: String,
}

/// The most problems `retort check` prints for one file unless `--all`:
/// 100. A file that is not a formula at all (a log passed by mistake) has
/// one per line; the count of the rest is printed instead.
pub const SHOWN_PER_FILE: usize = 100;

/// Checks every formula under `paths` and prints its diagnostics: all of
/// them, or the first `shown` (in file order) of each file and how many
/// more there are. Returns the exit status: 1 when any error (or, with
/// `deny_warnings`, any warning), else 0 (2 when a path does not exist).
/// The counts in the closing line are of every problem, shown or not.
pub fn check(
    paths: &[PathBuf],
    format: CheckFormat,
    deny_warnings: bool,
    vars: BTreeMap<String, String>,
    shown: Option<usize>,
) -> u8 {
    let found = match formula_files(paths) {
        Ok(found) => found,
        Err((path, error)) => {
            return crate::invalid(&format!("cannot read {}: {error}", path.display()));
        }
    };
    let files = found.formulas;
    let options = CheckOptions {
        vars,
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        purpose: Purpose::Authoring,
    };
    let mut json = Vec::new();
    let (mut errors, mut warnings) = (0, 0);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    for file in &files {
        match check_file(file, &options) {
            Ok(mut checked) => {
                for problem in &checked.problems {
                    if problem.is_error() {
                        errors += 1;
                    } else {
                        warnings += 1;
                    }
                }
                let total = checked.problems.len();
                let kept = shown.unwrap_or(total).min(total);
                checked.problems.truncate(kept);
                match format {
                    CheckFormat::Text => print_text(checked),
                    CheckFormat::Json => json.extend(to_json(&checked)),
                }
                if total > kept {
                    let more = total - kept;
                    eprintln!(
                        "… and {more} more {} in {} (--all prints every one)",
                        if more == 1 { "problem" } else { "problems" },
                        file.display()
                    );
                }
            }
            Err(error) => {
                errors += 1;
                match format {
                    CheckFormat::Text => eprintln!("{:?}", miette::Report::new(error)),
                    CheckFormat::Json => json.push(read_error(file, &error)),
                }
            }
        }
    }
    let skipped = match found.skipped {
        0 => String::new(),
        n => format!(", skipped {}", plural(n, "other TOML file")),
    };
    let denied = if deny_warnings && warnings > 0 {
        " (denied)"
    } else {
        ""
    };
    match format {
        CheckFormat::Json => {
            match serde_json::to_string_pretty(&json) {
                Ok(text) => crate::out(&format!("{text}\n")),
                Err(error) => eprintln!("error: {error}"),
            }
            if found.skipped > 0 {
                eprintln!(
                    "skipped {} (not formulas)",
                    plural(found.skipped, "TOML file")
                );
            }
        }
        CheckFormat::Text => eprintln!(
            "checked {}{skipped}: {}, {}{denied}",
            plural(files.len(), "formula"),
            plural(errors, "error"),
            plural(warnings, "warning"),
        ),
    }
    u8::from(errors > 0 || (deny_warnings && warnings > 0))
}

fn print_text(checked: Checked) {
    let source = checked.source.named();
    for problem in checked.problems {
        let report = miette::Report::new(problem).with_source_code(source.clone());
        eprintln!("{report:?}");
    }
}

fn to_json(checked: &Checked) -> Vec<JsonDiagnostic> {
    let source = &checked.source;
    let place = |offset: usize, length: usize| {
        let (line, column) = source.position(offset);
        let (end_line, end_column) = source.position(offset + length);
        (line, column, end_line, end_column)
    };
    checked
        .problems
        .iter()
        .map(|problem: &Problem| {
            let labels: Vec<JsonLabel> = problem
                .labels()
                .into_iter()
                .flatten()
                .map(|label| {
                    let (line, column, end_line, end_column) = place(label.offset(), label.len());
                    JsonLabel {
                        line,
                        column,
                        end_line,
                        end_column,
                        message: label.label().unwrap_or_default().to_string(),
                    }
                })
                .collect();
            let (line, column, end_line, end_column) = labels.first().map_or((1, 1, 1, 1), |l| {
                (l.line, l.column, l.end_line, l.end_column)
            });
            JsonDiagnostic {
                file: checked.path.display().to_string(),
                line,
                column,
                end_line,
                end_column,
                severity: if problem.is_error() {
                    "error"
                } else {
                    "warning"
                },
                code: problem.code().map(|c| c.to_string()).unwrap_or_default(),
                message: problem.to_string(),
                help: problem.help().map(|h| h.to_string()),
                labels,
            }
        })
        .collect()
}

fn read_error(file: &Path, error: &FormulaError) -> JsonDiagnostic {
    let (line, column) = match error {
        FormulaError::NotUtf8 { line, column, .. } => (*line, *column),
        _ => (0, 0),
    };
    JsonDiagnostic {
        file: file.display().to_string(),
        line,
        column,
        severity: "error",
        code: error.code().map(|c| c.to_string()).unwrap_or_default(),
        message: error.to_string(),
        help: error.help().map(|h| h.to_string()),
        end_line: line,
        end_column: column,
        labels: Vec::new(),
    }
}
