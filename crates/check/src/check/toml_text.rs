//! The formula's TOML text before it has a shape: a long text that is not
//! a formula at all, the parser's errors as problems, and the byte spans
//! of values and keys that the typed model does not keep.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use retort_formula::diagnostic::{Problem, span};

/// Texts longer than this (1 MiB) have their first [`SAMPLE_BYTES`] parsed
/// on their own first, to tell a long text that is not a formula early.
pub const SAMPLE_ABOVE: usize = 1024 * 1024;

/// How much of a long text is parsed first: 64 KiB.
pub const SAMPLE_BYTES: usize = 64 * 1024;

/// The syntax errors in the first [`SAMPLE_BYTES`] that make a long text
/// "not a formula": 100, about one every 650 bytes. (A formula cut there
/// has at most a few: an unclosed string or array at the cut.)
pub const SAMPLE_ERRORS: usize = 100;

/// When `text` is longer than [`SAMPLE_ABOVE`] and its first
/// [`SAMPLE_BYTES`] (up to a line's end) hold at least [`SAMPLE_ERRORS`]
/// syntax errors: the first `SAMPLE_ERRORS - 1` of them, and one more
/// saying that the check stopped there and how many the sample had. The `toml` crate keeps a token and an event per token of the
/// whole text in memory, so a 50 MB log passed by mistake cost 1 GB and
/// 680,000 errors; this costs a parse of 64 KiB.
pub(super) fn not_a_formula(text: &str) -> Option<Vec<Problem>> {
    if text.len() <= SAMPLE_ABOVE {
        return None;
    }
    let mut cut = SAMPLE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = text[..cut].rfind('\n').map_or(cut, |at| at + 1);
    let (_, errors) = toml::de::DeTable::parse_recoverable(&text[..cut]);
    if errors.len() < SAMPLE_ERRORS {
        return None;
    }
    let lines = text[..cut].matches('\n').count();
    // The first errors and the note: as many problems as `retort check`
    // prints of a file, so that the note is among them.
    let mut problems: Vec<Problem> = errors
        .iter()
        .take(SAMPLE_ERRORS - 1)
        .map(toml_problem)
        .collect();
    problems.push(Problem::Toml {
        message: format!(
            "the check stopped at line {}: the first {lines} lines have {} syntax errors, so \
             this file ({} bytes) is not read as a formula",
            lines + 1,
            errors.len(),
            text.len()
        ),
        span: span(cut..cut),
        help: Some(
            "check the path: a formula is a TOML file with [[steps]] or [[rules]]".to_string(),
        ),
    });
    Some(problems)
}

/// The byte spans of every value in `document` that is not a table (an
/// array of tables is looked into, other arrays are one value).
pub(super) fn leaf_spans(document: &toml::Spanned<DeTable<'_>>) -> Vec<Range<usize>> {
    fn walk(value: &toml::Spanned<DeValue<'_>>, out: &mut Vec<Range<usize>>) {
        match value.get_ref() {
            DeValue::Table(table) => table.values().for_each(|v| walk(v, out)),
            DeValue::Array(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|i| matches!(i.get_ref(), DeValue::Table(_))) =>
            {
                items.iter().for_each(|v| walk(v, out));
            }
            _ => out.push(value.span()),
        }
    }
    let mut out = Vec::new();
    for value in document.get_ref().values() {
        walk(value, &mut out);
    }
    out
}

pub(super) fn toml_problem(error: &toml::de::Error) -> Problem {
    let message = error.message().trim().to_string();
    let help = if message.contains("escape") {
        Some(
            "TOML basic strings (\"...\", \"\"\"...\"\"\") allow only the escapes \\\\ \\\" \\n \\t \\r \\b \\f \\e \\uXXXX \\UXXXXXXXX \\xHH; double the backslash (\\\\), or use a literal string '''...''' where backslashes are plain text"
                .to_string(),
        )
    } else {
        None
    };
    Problem::Toml {
        message,
        span: span(error.span().unwrap_or(0..0)),
        help,
    }
}

pub(super) fn value_problem(error: &toml::de::Error) -> Problem {
    Problem::BadValue {
        message: error.message().trim().to_string(),
        span: span(error.span().unwrap_or(0..0)),
        help: None,
    }
}

/// The span of each key of the top-level table `table` (`[vars]`,
/// `[meta]`), which the typed model does not keep.
pub(super) fn key_spans(
    document: &toml::Spanned<DeTable<'_>>,
    table: &str,
) -> BTreeMap<String, Range<usize>> {
    document
        .get_ref()
        .get(table)
        .and_then(|vars| vars.get_ref().as_table())
        .map(|table| {
            table
                .iter()
                .map(|(key, _)| (key.get_ref().to_string(), key.span()))
                .collect()
        })
        .unwrap_or_default()
}
