//! What the engine's tests share.

#![allow(dead_code)]

use miette::Diagnostic;
use retort_formula::diagnostic::Problem;

/// `LINE:COLUMN: MESSAGE [MARKED TEXT] (HELP)` for a problem of `text`: where
/// it points, what it says and what it suggests, in one comparable line.
pub fn describe(text: &str, problem: &Problem) -> String {
    let label = problem
        .labels()
        .and_then(|mut labels| labels.next())
        .expect("a located problem");
    let offset = label.offset();
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    let marked = &text[offset..offset + label.len()];
    let help = problem
        .help()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    format!("{line}:{column}: {problem} [{marked}]{help}")
}
