//! Formula errors as compiler-style diagnostics: what is wrong, where (the
//! file, line and column, with the excerpt underlined) and how to fix it.
//! They are `miette` diagnostics; the CLI renders them.
//!
//! Here: the errors that stop a formula being used ([`FormulaError`],
//! [`InvalidFormula`]). Beside it: the source text and its excerpts
//! (`source`), and the catalogues of problems, [`Problem`] (`problem`) and
//! [`RuleProblem`] (`rule_problem`).

mod problem;
mod rule_problem;
mod source;

use std::ops::Range;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

pub use problem::{NOT_IN_CONTEXT, Problem};
pub use rule_problem::RuleProblem;
pub use source::{EXCERPT_REACH, EXCERPT_SPAN_MAX, FormulaText, SourceFile, position};

/// Why a formula cannot be used.
#[derive(Debug, Error, Diagnostic)]
pub enum FormulaError {
    /// The file could not be read.
    #[error("cannot read formula `{}`: {source}", path.display())]
    #[diagnostic(
        code(retort::formula::read),
        help("give the path of a formula TOML file, such as formulas/run-supervisor.toml")
    )]
    Read {
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The file is not UTF-8 (TOML files are): where its first invalid
    /// byte is.
    #[error(
        "formula `{}` is not UTF-8: line {line}, column {column} (byte {offset}) starts an invalid sequence",
        path.display()
    )]
    #[diagnostic(
        code(retort::formula::utf8),
        help(
            "TOML files are UTF-8: re-encode the file (`iconv -f LATIN1 -t UTF-8`), or check that the path names a formula and not a binary file"
        )
    )]
    NotUtf8 {
        /// The path given.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column, in characters of the valid text before it.
        column: usize,
        /// Its byte offset, from 0.
        offset: usize,
    },

    /// The formula has errors: every problem found, warnings included.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidFormula>),
}

/// Reads the formula file at `path` as text.
///
/// # Errors
/// [`FormulaError::Read`] when it cannot be read; [`FormulaError::NotUtf8`],
/// with the line and column of the first invalid byte, when it is not UTF-8.
pub fn read_formula_text(path: &Path) -> Result<String, FormulaError> {
    let bytes = std::fs::read(path).map_err(|source| FormulaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&error.as_bytes()[..offset]).unwrap_or_default();
        let (line, column) = position(valid, offset);
        FormulaError::NotUtf8 {
            path: path.to_path_buf(),
            line,
            column,
            offset,
        }
    })
}

/// A formula with errors, and every problem found in it.
#[derive(Debug, Error, Diagnostic)]
#[error("{name}: {}", count(problems))]
#[diagnostic(code(retort::formula::invalid))]
pub struct InvalidFormula {
    /// The formula's file name.
    pub name: String,
    /// The formula source.
    #[source_code]
    pub src: NamedSource<FormulaText>,
    /// Every problem found, each with its own location.
    #[related]
    pub problems: Vec<Problem>,
}

/// "2 errors and 1 warning".
fn count(problems: &[Problem]) -> String {
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match warnings {
        0 => plural(errors, "error"),
        _ => format!(
            "{} and {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    }
}

/// Converts a byte range of the formula text into a miette span.
pub fn span(range: Range<usize>) -> SourceSpan {
    SourceSpan::from(range)
}
