//! Expression issues as rule problems, located in the formula file.

use std::ops::Range;

use super::one_line;
use crate::expression::{ExpressionIssue, IssueKind};
use retort_formula::diagnostic::{RuleProblem, span};

/// The help for `item` in a rule without `each`.
pub(super) const ITEM_HELP: &str = "`item` is the list item of a rule with `each`; add `each = \"…\"` to check a list item by item";

/// An expression as a diagnostic quotes it: on one line, cut after 80
/// characters.
pub(super) fn shown(expression: &str) -> String {
    let line = one_line(expression);
    match line.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

pub(super) fn expression_problem(
    rule: &str,
    key: &'static str,
    issue: ExpressionIssue,
    at: Range<usize>,
) -> RuleProblem {
    let rule = rule.to_string();
    let span = span(at);
    match issue.kind {
        IssueKind::Syntax { message } => RuleProblem::CelSyntax {
            rule,
            key,
            message,
            span,
        },
        IssueKind::UnknownVariable { name, help } => RuleProblem::UnknownVariable {
            help: if name == "item" {
                ITEM_HELP.to_string()
            } else {
                help
            },
            rule,
            key,
            name,
            span,
        },
        IssueKind::UnknownField { path, help, .. } => RuleProblem::UnknownField {
            rule,
            owner: if path.starts_with("vars.") {
                "the formula's `[vars]`"
            } else {
                "the snapshot"
            },
            path,
            span,
            help,
        },
        IssueKind::NotAnObject { path, kind, help } => RuleProblem::NotAnObject {
            rule,
            path,
            kind,
            span,
            help,
        },
    }
}

/// The file range of `inner` (a range of the value's text) when the value
/// is written in the file exactly as it reads (a literal string, or a basic
/// string without escapes); else the whole value.
pub(crate) fn locate(
    source: &str,
    value: &toml::Spanned<String>,
    inner: &Range<usize>,
) -> Range<usize> {
    let whole = value.span();
    let Some(raw) = source.get(whole.clone()) else {
        return whole;
    };
    let quote = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        3
    } else if raw.starts_with('\'') || raw.starts_with('"') {
        1
    } else {
        return whole;
    };
    if raw.len() < 2 * quote {
        return whole;
    }
    let mut start = quote;
    let mut text = &raw[quote..raw.len() - quote];
    if quote == 3 {
        // TOML drops a newline right after the opening delimiter.
        for newline in ["\r\n", "\n"] {
            if let Some(rest) = text.strip_prefix(newline) {
                start += newline.len();
                text = rest;
                break;
            }
        }
    }
    if text != value.get_ref() || inner.end > text.len() {
        return whole;
    }
    let base = whole.start + start;
    base + inner.start..base + inner.end
}
