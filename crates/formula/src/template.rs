//! Template analysis: what `retort check` knows about a Tera template
//! without rendering it.
//!
//! - Syntax errors come from Tera's own parser, with its position.
//! - Variable paths (`preflight.system.memory.available_mb`) are read from
//!   the template's `{{ … }}` and `{% … %}` expressions and checked against
//!   the [`Shape`](crate::shape::Shape) of the context retort renders it with ([`check_paths`]),
//!   from its root ([`resolve`]) or from the node a name stands for, such as
//!   a rule's `item` ([`resolve_below`]). Tera 2 exposes
//!   only the top-level names it finds (`Tera::get_template_variables`), so
//!   the paths are extracted here: identifiers, `.field` and `[index]`
//!   chains, skipping filter, test and function names, keywords, keyword
//!   arguments and names the template binds itself (`for`, `set`, macro
//!   arguments, `loop`).
//! - Positions inside a TOML string value are mapped back to byte offsets
//!   in the formula file, through its escapes, so diagnostics point at the
//!   formula's own line and column.
//!
//! This module is the analysis; its `paths` module reads and resolves
//! variable paths, its `source` module maps positions back into the file.

mod paths;
mod source;

pub use paths::{
    CheckedPaths, PathError, Segment, VariablePath, resolve, resolve_below, resolve_leaf,
    resolve_var, variable_paths,
};
pub use source::StringSource;

use std::ops::Range;

/// A syntax error Tera found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Tera's message.
    pub message: String,
    /// The byte offset in the template where it points.
    pub offset: usize,
}

/// Parses `template` with Tera: its first syntax error, or the top-level
/// variable names Tera's own analysis finds in it
/// (`Tera::get_template_variables`; names the template binds itself are
/// not among them).
///
/// # Errors
/// The [`SyntaxError`] Tera reports, with its offset in `template`.
pub fn analyse(template: &str) -> Result<Vec<String>, SyntaxError> {
    // Tera spends most of its time on the text between tags, which cannot
    // hold a syntax error or a variable. Its outline, that text cut down,
    // is parsed first; only when the outline fails is the whole template
    // parsed, so that an error is always Tera's own, at its real place.
    if let Some(outline) = outline(template)
        && let Ok(names) = analyse_whole(&outline)
    {
        return Ok(names);
    }
    analyse_whole(template)
}

/// Templates shorter than this (bytes) are parsed whole: their outline
/// saves less than it costs.
const OUTLINE_FROM: usize = 256;

/// `template` with every run of text outside its tags cut to one byte
/// (`x`, or a space when the run is all whitespace, which Tera treats
/// differently in places), and every `{{ … }}`, `{% … %}` and `{# … #}`
/// kept as written: the same template to Tera's parser, only shorter.
/// Tags end where Tera's lexer ends them: at the first `}}` or `%}`
/// outside a string literal (`"…"`, `'…'` or `` `…` ``, with `\`
/// escapes), and comments at the first `#}` after their `{#`.
///
/// `None` when the outline is not worth it, or when the template has a
/// `{% raw %}` block, whose end only Tera's lexer should judge, or a tag
/// that does not end, which is an error Tera should report.
fn outline(template: &str) -> Option<String> {
    if template.len() < OUTLINE_FROM {
        return None;
    }
    let bytes = template.as_bytes();
    let mut outline = String::with_capacity(template.len() / 8);
    let mut text_start = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'{', &bytes[at..]) {
        let open = at + found;
        let kind = bytes.get(open + 1).copied();
        let end = match kind {
            // As Tera does, the `#}` is looked for after the `{#`.
            Some(b'#') => template[open + 2..]
                .find("#}")
                .map(|end| open + 2 + end + 2)?,
            Some(b'{') => open + 2 + tag_length(&bytes[open + 2..], b'}')?,
            Some(b'%') => {
                let inside = template[open + 2..].trim_start_matches('-').trim_start();
                if inside.starts_with("raw") {
                    return None;
                }
                open + 2 + tag_length(&bytes[open + 2..], b'%')?
            }
            _ => {
                at = open + 1;
                continue;
            }
        };
        push_text_run(&mut outline, &template[text_start..open]);
        outline.push_str(&template[open..end]);
        text_start = end;
        at = end;
    }
    push_text_run(&mut outline, &template[text_start..]);
    Some(outline)
}

/// The length of a tag's inside up to and including its closing
/// `{closing}}`, skipping string literals; `None` when it does not close.
fn tag_length(inside: &[u8], closing: u8) -> Option<usize> {
    let mut i = 0;
    while i < inside.len() {
        match inside[i] {
            quote @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < inside.len() && inside[i] != quote {
                    i += if inside[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if c == closing && inside.get(i + 1) == Some(&b'}') => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

/// Appends a run of text outside tags, cut to one byte.
fn push_text_run(outline: &mut String, run: &str) {
    if run.is_empty() {
    } else if run.chars().all(char::is_whitespace) {
        outline.push(' ');
    } else {
        outline.push('x');
    }
}

/// [`analyse`] on exactly `template`.
fn analyse_whole(template: &str) -> Result<Vec<String>, SyntaxError> {
    thread_local! {
        // One parser per thread: building a `Tera` registers every built-in
        // filter, which costs more than parsing a short template.
        static TERA: std::cell::RefCell<tera::Tera> = std::cell::RefCell::new(tera::Tera::new());
    }
    TERA.with(|tera| {
        let mut tera = tera.borrow_mut();
        if let Err(error) = tera.add_raw_template("template", template) {
            return Err(match error.kind() {
                tera::ErrorKind::SyntaxError(report) => {
                    let span = report.span();
                    SyntaxError {
                        message: report.message().to_string(),
                        offset: offset_of(template, span.start_line, span.start_col),
                    }
                }
                other => SyntaxError {
                    message: other.to_string(),
                    offset: 0,
                },
            });
        }
        let mut names: Vec<String> = tera
            .get_template_variables("template")
            .map(|names| names.into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        names.sort_unstable();
        Ok(names)
    })
}

/// Parses `template` with Tera and returns its first syntax error, if any.
pub fn syntax_error(template: &str) -> Option<SyntaxError> {
    analyse(template).err()
}

/// The byte range of the first use of `name` as a whole word in `template`.
pub fn find_name(template: &str, name: &str) -> Option<Range<usize>> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    template
        .match_indices(name)
        .map(|(at, _)| at)
        .find(|&at| {
            let before = template[..at].chars().next_back();
            let after = template[at + name.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word) && before != Some('.')
        })
        .map(|at| at..at + name.len())
}

/// The byte offset of `line` (1-based) and `column` (0-based, in
/// characters) in `text`, clamped to the text.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match text[start..].find('\n') {
            Some(at) => start += at + 1,
            None => return text.len(),
        }
    }
    let rest = &text[start..];
    let end_of_line = rest.find('\n').unwrap_or(rest.len());
    start
        + rest[..end_of_line]
            .char_indices()
            .nth(column)
            .map_or(end_of_line, |(at, _)| at)
}

/// Parses `template` with Tera and checks every variable in it with
/// `resolve`, which knows the context: each path [`variable_paths`] reads,
/// and each top-level name Tera's own analysis finds that the path reader
/// missed, as a path of that name alone at its first use (see [`analyse`]).
/// A text without a Tera delimiter has nothing to check.
///
/// # Errors
/// The template's [`SyntaxError`], when it does not parse; nothing is
/// checked then.
pub fn check_paths(
    template: &str,
    mut resolve: impl FnMut(&VariablePath) -> Option<PathError>,
) -> Result<CheckedPaths, SyntaxError> {
    if !has_syntax(template) {
        return Ok(CheckedPaths::default());
    }
    let top_level = analyse(template)?;
    let paths = variable_paths(template);
    let mut errors = Vec::new();
    for name in &top_level {
        if paths.iter().any(|p| p.root() == name) {
            continue;
        }
        if let Some(range) = find_name(template, name) {
            let alone = VariablePath {
                segments: vec![Segment::Field(name.clone())],
                ends: vec![range.end],
                range,
            };
            errors.extend(resolve(&alone));
        }
    }
    for path in &paths {
        errors.extend(resolve(path));
    }
    Ok(CheckedPaths { paths, errors })
}

/// Whether `text` has any Tera delimiter (`{{`, `{%`, `{#`); text without
/// one is plain text to Tera, with nothing to check.
pub fn has_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'{', bytes).any(|at| matches!(bytes.get(at + 1), Some(b'{' | b'%' | b'#')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tera_names_the_top_level_variables_and_they_can_be_found() {
        let template = "{{ xs.a }} {% for x in xs %}{{ x }}{% endfor %} {{ x2 | join(sep=sep) }}";
        assert_eq!(analyse(template).unwrap(), ["sep", "x2", "xs"]);
        // The first whole-word use, never a field after a dot.
        assert_eq!(find_name(template, "x"), Some(18..19));
        assert_eq!(find_name(template, "a"), None);
        assert_eq!(find_name(template, "sep"), Some(61..64));
    }

    #[test]
    fn tera_syntax_errors_carry_their_offset() {
        let error = syntax_error("line one\nline {{ two ").unwrap();
        assert!(error.offset >= 9, "{error:?}");
        assert!(syntax_error("fine {{ x }}").is_none());
        assert!(syntax_error("docker ps --format '{{.Names}}'").is_some());
    }

    #[test]
    fn the_outline_keeps_every_tag_and_cuts_the_text() {
        let text = "plain words ".repeat(30);
        let template = format!(
            "{text}{{{{ a.b }}}}\n{text}{{% if x %}}{{{{ \"s }}}} t\" }}}}{{% endif %}}{{# c #}}   {{{{ y }}}}"
        );
        assert_eq!(
            outline(&template).as_deref(),
            Some("x{{ a.b }}x{% if x %}{{ \"s }} t\" }}{% endif %}{# c #} {{ y }}")
        );
        assert_eq!(analyse(&template), analyse_whole(&template));
        // Raw blocks, unclosed tags and short templates are parsed whole.
        let raw = format!("{text}{{% raw %}}{{{{ x }}}}{{% endraw %}}");
        assert_eq!(outline(&raw), None);
        assert_eq!(outline(&format!("{text}{{{{ x ")), None);
        assert_eq!(outline("{{ x }}"), None);
    }

    #[test]
    fn an_error_is_reported_at_its_place_in_the_whole_template() {
        let text = "plain words\n".repeat(30);
        let template = format!("{text}{{{{ a + }}}}");
        let error = analyse(&template).unwrap_err();
        assert_eq!(Err(error.clone()), analyse_whole(&template));
        assert!(error.offset >= text.len(), "{error:?}");
    }

    /// Pieces of templates, including the ones that could fool a scanner
    /// that does not end tags where Tera does.
    fn piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "plain text, and more plain text ",
            "ünïcödé ",
            "\n",
            "   ",
            "{",
            "}",
            "}}",
            "%}",
            "#}",
            "{ {",
            "{{ x }}",
            "{{ a.b[0] | join(sep=\", \") }}",
            "{{ \"a }} b\" }}",
            "{{ 'it' }}",
            "{{ `%}` }}",
            "{{ \"\\\"}}\" }}",
            "{{ {\"a\": {\"b\": 1}} }}",
            "{{- x -}}",
            "{{",
            "{{ ",
            "{%",
            "{% if x %}",
            "{%- if x -%}",
            "{% elif y %}",
            "{% else %}",
            "{% endif %}",
            "{% for a in b %}",
            "{% endfor %}",
            "{% set y = 1 %}",
            "{{ y }}",
            "{% raw %}",
            "{% endraw %}",
            "{# comment {{ x }} #}",
            "{#}",
            "{#",
            "{% extends \"base\" %}",
            "{% block b %}",
            "{% endblock %}",
            "{% macro m(a) %}",
            "{% endmacro %}",
            "{{ a + }}",
            "{% if %}",
        ])
    }

    proptest::proptest! {
        #[test]
        fn the_outline_never_changes_what_tera_says(
            lead in proptest::sample::select(vec!["lead text ", "          ", "\n  \n    "]),
            pieces in proptest::collection::vec(piece(), 0..40),
        ) {
            // Long enough to be outlined.
            let template = format!("{}{}", lead.repeat(26), pieces.concat());
            proptest::prop_assert_eq!(analyse(&template), analyse_whole(&template));
        }

    }
}
