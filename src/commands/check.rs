//! `retort check`: every problem of every formula, in one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde::Serialize;

use retort_check::check::{CheckOptions, Checked, Purpose, check_file};
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
    severity: &'static str,
    code: String,
    message: String,
    help: Option<String>,
}

/// Checks every formula under `paths` and prints every diagnostic. Returns
/// the exit status: 1 when any error, else 0 (2 when a path does not exist).
pub fn check(paths: &[PathBuf], format: CheckFormat, vars: BTreeMap<String, String>) -> u8 {
    let mut files = Vec::new();
    for path in paths {
        if let Err(error) = super::formula_files(path, &mut files) {
            return crate::invalid(&format!("cannot read {}: {error}", path.display()));
        }
    }
    let options = CheckOptions {
        vars,
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        purpose: Purpose::Authoring,
    };
    let mut json = Vec::new();
    let (mut errors, mut warnings) = (0, 0);
    for file in &files {
        match check_file(file, &options) {
            Ok(checked) => {
                for problem in &checked.problems {
                    if problem.is_error() {
                        errors += 1;
                    } else {
                        warnings += 1;
                    }
                }
                match format {
                    CheckFormat::Text => print_text(checked),
                    CheckFormat::Json => json.extend(to_json(&checked)),
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
    match format {
        CheckFormat::Json => match serde_json::to_string_pretty(&json) {
            Ok(text) => crate::out(&format!("{text}\n")),
            Err(error) => eprintln!("error: {error}"),
        },
        CheckFormat::Text => eprintln!(
            "checked {} formula{}: {errors} error{}, {warnings} warning{}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
        ),
    }
    u8::from(errors > 0)
}

fn print_text(checked: Checked) {
    let source = checked.source.named();
    for problem in checked.problems {
        let report = miette::Report::new(problem).with_source_code(source.clone());
        eprintln!("{report:?}");
    }
}

fn to_json(checked: &Checked) -> Vec<JsonDiagnostic> {
    let text = checked.source.text();
    checked
        .problems
        .iter()
        .map(|problem: &Problem| {
            let offset = problem
                .primary_span()
                .map_or(0, |s| s.offset())
                .min(text.len());
            let before = text.get(..offset).unwrap_or("");
            let line_start = before.rfind('\n').map_or(0, |at| at + 1);
            JsonDiagnostic {
                file: checked.path.display().to_string(),
                line: before.matches('\n').count() + 1,
                column: before[line_start..].chars().count() + 1,
                severity: if problem.is_error() {
                    "error"
                } else {
                    "warning"
                },
                code: problem.code().map(|c| c.to_string()).unwrap_or_default(),
                message: problem.to_string(),
                help: problem.help().map(|h| h.to_string()),
            }
        })
        .collect()
}

fn read_error(file: &Path, error: &FormulaError) -> JsonDiagnostic {
    JsonDiagnostic {
        file: file.display().to_string(),
        line: 0,
        column: 0,
        severity: "error",
        code: error.code().map(|c| c.to_string()).unwrap_or_default(),
        message: error.to_string(),
        help: error.help().map(|h| h.to_string()),
    }
}
