//! Template analysis: what `retort check` knows about a Tera template
//! without rendering it.
//!
//! - Syntax errors come from Tera's own parser, with its position.
//! - Variable paths (`preflight.system.memory.available_mb`) are read from
//!   the template's `{{ … }}` and `{% … %}` expressions and checked against
//!   the [`Shape`] of the context retort renders it with ([`check_paths`]),
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

use std::ops::Range;

use crate::shape::{Kind, NodeId, Shape, closest};

/// One segment of a variable path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `.name`, or `["name"]`.
    Field(String),
    /// `[0]`.
    Index,
}

/// A variable path as written in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariablePath {
    /// The segments, the first being the root name.
    pub segments: Vec<Segment>,
    /// The byte range of the whole path in the template.
    pub range: Range<usize>,
    /// The byte range of each segment's end, for pointing at a prefix.
    pub ends: Vec<usize>,
}

impl VariablePath {
    /// The root name (`preflight`).
    pub fn root(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Field(name)) => name,
            _ => "",
        }
    }

    /// The byte range in the template of the path's first `count` segments
    /// (`preflight.system` of `preflight.system.memroy` for 2); the whole
    /// path when it has fewer.
    pub fn prefix(&self, count: usize) -> Range<usize> {
        let end = match count.checked_sub(1) {
            None => self.range.start,
            Some(last) => self.ends.get(last).copied().unwrap_or(self.range.end),
        };
        self.range.start..end.max(self.range.start)
    }
}

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

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "elif",
    "else",
    "endif",
    "for",
    "endfor",
    "set",
    "set_global",
    "true",
    "false",
    "True",
    "False",
    "none",
    "None",
    "macro",
    "endmacro",
    "block",
    "endblock",
    "extends",
    "include",
    "import",
    "as",
    "filter",
    "endfilter",
    "raw",
    "endraw",
    "break",
    "continue",
    "loop",
    "super",
    "self",
    "with",
    "endwith",
    "component",
    "endcomponent",
    "ignore",
    "missing",
];

#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    Ident(&'a str, usize),
    Literal,
    Punct(&'a str, usize),
}

/// Every variable path in `template`, in order.
pub fn variable_paths(template: &str) -> Vec<VariablePath> {
    let regions = expression_regions(template);
    let mut bound: Vec<&str> = Vec::new();
    let tokenized: Vec<Vec<Token<'_>>> = regions
        .iter()
        .map(|(range, is_statement)| {
            let tokens = tokens(template, range.clone());
            if *is_statement {
                bound.extend(bindings(&tokens));
            }
            tokens
        })
        .collect();
    let mut paths = Vec::new();
    for tokens in &tokenized {
        paths.extend(
            paths_in(tokens, template)
                .into_iter()
                .filter(|p| !bound.contains(&p.root())),
        );
    }
    paths
}

/// The byte ranges of the insides of `{{ … }}` (false) and `{% … %}` (true)
/// regions, skipping comments and `{% raw %}` blocks.
fn expression_regions(template: &str) -> Vec<(Range<usize>, bool)> {
    let bytes = template.as_bytes();
    let mut regions = Vec::new();
    let mut at = 0;
    let mut in_raw = false;
    while let Some(found) = template[at..].find('{') {
        let open = at + found;
        let Some(&kind) = bytes.get(open + 1) else {
            break;
        };
        let close = match kind {
            b'{' => "}}",
            b'%' => "%}",
            b'#' => "#}",
            _ => {
                at = open + 1;
                continue;
            }
        };
        let inner_start = open + 2;
        let Some(length) = template[inner_start..].find(close) else {
            break;
        };
        let inner = inner_start..inner_start + length;
        at = inner.end + 2;
        if kind == b'#' {
            continue;
        }
        let words: Vec<&str> = template[inner.clone()]
            .trim_matches(|c: char| c == '-' || c.is_whitespace())
            .split_whitespace()
            .collect();
        if kind == b'%' && words.first() == Some(&"raw") {
            in_raw = true;
            continue;
        }
        if kind == b'%' && words.first() == Some(&"endraw") {
            in_raw = false;
            continue;
        }
        if !in_raw {
            regions.push((inner, kind == b'%'));
        }
    }
    regions
}

fn tokens(template: &str, range: Range<usize>) -> Vec<Token<'_>> {
    let text = &template[range.clone()];
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' || c == b'\'' || c == b'`' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != c {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push(Token::Literal);
            i = j + 1;
        } else if c.is_ascii_digit() {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                // `1.5` is one number, but `x.0` never starts here.
                i += 1;
            }
            out.push(Token::Literal);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token::Ident(&text[start..i], range.start + start));
        } else {
            let two = text.get(i..i + 2);
            let width = match two {
                Some("==" | "!=" | "<=" | ">=" | "//" | "**") => 2,
                _ => text[i..].chars().next().map_or(1, char::len_utf8),
            };
            out.push(Token::Punct(&text[i..i + width], range.start + i));
            i += width;
        }
    }
    out
}

/// Names a statement binds: `for a, b in`, `set x =`, `macro m(a, b=1)`.
fn bindings<'a>(tokens: &[Token<'a>]) -> Vec<&'a str> {
    let mut names = Vec::new();
    match tokens.first() {
        Some(Token::Ident("for", _)) => {
            for token in &tokens[1..] {
                match token {
                    Token::Ident("in", _) => break,
                    Token::Ident(name, _) => names.push(*name),
                    _ => {}
                }
            }
        }
        Some(Token::Ident("set" | "set_global", _)) => {
            if let Some(Token::Ident(name, _)) = tokens.get(1) {
                names.push(*name);
            }
        }
        Some(Token::Ident("macro", _)) => {
            let mut expect_name = false;
            for token in &tokens[2..] {
                match token {
                    Token::Punct("(" | ",", _) => expect_name = true,
                    Token::Ident(name, _) if expect_name => {
                        names.push(*name);
                        expect_name = false;
                    }
                    _ => expect_name = false,
                }
            }
        }
        _ => {}
    }
    names
}

fn paths_in(tokens: &[Token<'_>], template: &str) -> Vec<VariablePath> {
    let mut paths = Vec::new();
    let mut i = 0;
    // A statement's first word (`if`, `for`, `filter`) is not a variable.
    while i < tokens.len() {
        let Token::Ident(name, start) = tokens[i] else {
            i += 1;
            continue;
        };
        let previous = i.checked_sub(1).map(|p| &tokens[p]);
        let next = tokens.get(i + 1);
        let skip = KEYWORDS.contains(&name)
            || matches!(previous, Some(Token::Punct(".", _) | Token::Punct("|", _)))
            || matches!(
                previous,
                Some(Token::Ident(
                    "is" | "filter" | "macro" | "include" | "import" | "block" | "component",
                    _
                ))
            )
            || matches!(previous, Some(Token::Ident("not", _)) if i >= 2 && matches!(tokens[i - 2], Token::Ident("is", _)))
            || matches!(next, Some(Token::Punct("(", _)))
            || matches!(next, Some(Token::Punct("=", _)));
        if skip {
            i += 1;
            continue;
        }
        let mut segments = vec![Segment::Field(name.to_string())];
        let mut end = start + name.len();
        let mut ends = vec![end];
        let mut j = i + 1;
        loop {
            match (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2)) {
                (Some(Token::Punct(".", _)), Some(Token::Ident(field, at)), _) => {
                    segments.push(Segment::Field((*field).to_string()));
                    end = at + field.len();
                    j += 2;
                }
                (Some(Token::Punct("[", _)), Some(Token::Literal), Some(Token::Punct("]", at))) => {
                    let inner = template[end..*at].trim_start_matches('[').trim();
                    let quoted = inner.starts_with(['"', '\'', '`']);
                    segments.push(if quoted {
                        Segment::Field(inner[1..inner.len().saturating_sub(1)].to_string())
                    } else {
                        Segment::Index
                    });
                    end = at + 1;
                    j += 3;
                }
                _ => break,
            }
            ends.push(end);
        }
        paths.push(VariablePath {
            segments,
            range: start..end,
            ends,
        });
        i = j;
    }
    paths
}

/// Why a path does not resolve in a shape: the byte range of the failing
/// prefix in the template, the prefix as text, and the help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// The failing prefix's byte range in the template.
    pub range: Range<usize>,
    /// The failing prefix, as written: `preflight.system.memroy`.
    pub text: String,
    /// The likely intended name, or what is there.
    pub help: String,
}

/// Checks `path` against `shape` (the template context's shape), with
/// `vars` the names a `vars.NAME` may use when the context has `vars`.
pub fn resolve(
    path: &VariablePath,
    shape: &Shape,
    vars: &[&str],
    template: &str,
) -> Option<PathError> {
    if path.root() == "vars" && shape.property(shape.root(), "vars").is_some() {
        return resolve_var(path, vars, template);
    }
    resolve_below(path, shape, shape.root(), 0, template)
}

/// Checks `path` from its segment `from` on, starting at `node` of `shape`,
/// the node its first `from` segments stand for. [`resolve`] starts at the
/// shape's root with `from = 0`; a name that stands for a part of a shape,
/// such as a rule's `item` (an element of `system.disks`), is checked with
/// that part's node and `from = 1`.
pub fn resolve_below(
    path: &VariablePath,
    shape: &Shape,
    node: NodeId,
    from: usize,
    template: &str,
) -> Option<PathError> {
    let mut node = node;
    for (index, segment) in path.segments.iter().enumerate().skip(from) {
        let fail = |help: String| Some(path_error(path, index + 1, template, help));
        // What the segment is looked up in, as written: `preflight.system`.
        let owner = written(template, path.prefix(index));
        match segment {
            Segment::Field(name) => match shape.property(node, name) {
                Some(child) => node = child,
                None => {
                    let keys = shape.keys(node);
                    let is_list = shape
                        .present(node)
                        .iter()
                        .any(|&n| matches!(shape.node(n).kind, Kind::Array { .. }));
                    let help = if is_list && index > 0 {
                        format!(
                            "`{owner}` is a list: index it (`[0]`) or loop over it ({{% for item in {owner} %}})"
                        )
                    } else if keys.is_empty() && index > 0 {
                        format!("`{owner}` is {} and has no fields", shape.describe(node))
                    } else {
                        match closest(name, keys.iter().copied()) {
                            Some(guess) => format!("did you mean `{guess}`?"),
                            None => format!("the names here are: {}", keys.join(", ")),
                        }
                    };
                    return fail(help);
                }
            },
            Segment::Index => match shape.items(node) {
                Some(items) => node = items,
                None => {
                    return fail(format!("`{owner}` is {}, not a list", shape.describe(node)));
                }
            },
        }
    }
    None
}

/// Checks the `NAME` of a `vars.NAME` path against `vars`, the declared
/// names. What follows `NAME` is not checked.
pub fn resolve_var(path: &VariablePath, vars: &[&str], template: &str) -> Option<PathError> {
    let Some(Segment::Field(name)) = path.segments.get(1) else {
        return None;
    };
    if vars.contains(&name.as_str()) {
        return None;
    }
    let help = match closest(name, vars.iter().copied()) {
        Some(guess) => format!("did you mean `vars.{guess}`?"),
        None => format!("declare it in [vars]: {name} = \"default value\""),
    };
    Some(path_error(path, 2, template, help))
}

/// Checks `path`, whose root stands for a value without fields or items,
/// such as a string; `kind` says what it is (`a string`). The root alone is
/// fine; any segment below it is an error.
pub fn resolve_leaf(path: &VariablePath, kind: &str, template: &str) -> Option<PathError> {
    let segment = path.segments.get(1)?;
    let root = written(template, path.prefix(1));
    let help = match segment {
        Segment::Field(_) => format!("`{root}` is {kind} and has no fields"),
        Segment::Index => format!("`{root}` is {kind}, not a list"),
    };
    Some(path_error(path, 2, template, help))
}

/// The error for the first `count` segments of `path`.
fn path_error(path: &VariablePath, count: usize, template: &str, help: String) -> PathError {
    let range = path.prefix(count);
    PathError {
        text: written(template, range.clone()),
        range,
        help,
    }
}

/// The text of `range` of `template`, as written.
fn written(template: &str, range: Range<usize>) -> String {
    template.get(range).unwrap_or_default().to_string()
}

/// A template's variables, checked against its context by [`check_paths`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedPaths {
    /// Every variable path in the template, in order ([`variable_paths`]).
    pub paths: Vec<VariablePath>,
    /// Every variable the context does not have, in the order found.
    pub errors: Vec<PathError>,
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

/// Maps positions in a TOML string value back to the formula file.
#[derive(Debug, Clone)]
pub struct StringSource<'a> {
    value: &'a str,
    raw: &'a str,
    raw_start: usize,
    verbatim: bool,
    /// A basic string (`"…"`, `"""…"""`), whose escapes TOML decodes.
    basic: bool,
}

impl<'a> StringSource<'a> {
    /// The string literal at `span` of `source`, whose parsed value is `value`.
    pub fn new(source: &'a str, span: Range<usize>, value: &'a str) -> Self {
        let literal = source.get(span.clone()).unwrap_or("");
        let (open, close) = if literal.starts_with("\"\"\"") || literal.starts_with("'''") {
            (3, 3)
        } else if literal.starts_with('"') || literal.starts_with('\'') {
            (1, 1)
        } else {
            (0, 0)
        };
        let mut start = open.min(literal.len());
        // A newline right after `"""` or `'''` is not part of the value.
        if open == 3 {
            if literal[start..].starts_with("\r\n") {
                start += 2;
            } else if literal[start..].starts_with('\n') {
                start += 1;
            }
        }
        let end = literal.len().saturating_sub(close).max(start);
        let raw = &literal[start..end];
        StringSource {
            value,
            raw,
            raw_start: span.start + start,
            verbatim: raw == value,
            basic: literal.starts_with('"'),
        }
    }

    /// The file offset of byte `offset` of the value: exact when the
    /// literal holds the value verbatim or with TOML's escapes (`\"`,
    /// `\t`, `\u00e9`, a line-ending backslash, …), pointing at an escape
    /// for a byte of what it stands for; else (a literal the value does not
    /// follow, such as one whose line endings the parser changed) the same
    /// line of the literal, at the same column when that line reads the same.
    pub fn offset(&self, offset: usize) -> usize {
        let offset = offset.min(self.value.len());
        if self.verbatim {
            return self.raw_start + offset;
        }
        if let Some(at) = self.unescaped_offset(offset) {
            return self.raw_start + at;
        }
        let line = self.value[..offset].matches('\n').count();
        let column = offset - self.value[..offset].rfind('\n').map_or(0, |at| at + 1);
        let value_line = self.value.split('\n').nth(line).unwrap_or("");
        let mut raw_line_start = 0;
        for _ in 0..line {
            match self.raw[raw_line_start..].find('\n') {
                Some(at) => raw_line_start += at + 1,
                None => break,
            }
        }
        let raw_line = self.raw[raw_line_start..].split('\n').next().unwrap_or("");
        let column = if raw_line == value_line { column } else { 0 };
        self.raw_start + raw_line_start + column.min(raw_line.len())
    }

    /// The file range of a byte range of the value.
    pub fn range(&self, range: Range<usize>) -> Range<usize> {
        let start = self.offset(range.start);
        start..self.offset(range.end).max(start)
    }

    /// The offset in the literal of byte `offset` of the value, read by
    /// decoding the literal's escapes alongside the value; `None` when the
    /// literal does not decode to the value.
    fn unescaped_offset(&self, offset: usize) -> Option<usize> {
        let (mut raw, mut value) = (0, 0);
        while raw < self.raw.len() {
            let (raw_length, value_length) = self.step(raw, value)?;
            // The character at `offset`, or the escape that stands for it;
            // a line-ending backslash before it is passed over.
            if value + value_length > offset || (value == offset && value_length > 0) {
                return Some(raw);
            }
            raw += raw_length;
            value += value_length;
        }
        (value == offset).then_some(raw)
    }

    /// The lengths in the literal and in the value of the character (or
    /// escape) at `raw` of the literal and `value` of the value; `None`
    /// when they differ.
    fn step(&self, raw: usize, value: usize) -> Option<(usize, usize)> {
        let rest = self.value.get(value..)?;
        match self.raw.get(raw..)?.strip_prefix('\\') {
            Some(escape) if self.basic => {
                let (length, decoded) = decode_escape(escape)?;
                if decoded.is_some_and(|c| !rest.starts_with(c)) {
                    return None;
                }
                Some((1 + length, decoded.map_or(0, char::len_utf8)))
            }
            _ => {
                let c = self.raw.get(raw..)?.chars().next()?;
                rest.starts_with(c).then_some((c.len_utf8(), c.len_utf8()))
            }
        }
    }
}

/// The escape of a TOML basic string that starts `escape` (the text after
/// its backslash): its length in bytes after the backslash, and the
/// character it stands for, or `None` for a line-ending backslash, which
/// stands for nothing (it trims the whitespace and newlines after it).
/// `None` when it is not a valid escape.
fn decode_escape(escape: &str) -> Option<(usize, Option<char>)> {
    let hex = |digits: usize| -> Option<(usize, Option<char>)> {
        let code = u32::from_str_radix(escape.get(1..1 + digits)?, 16).ok()?;
        Some((1 + digits, Some(char::from_u32(code)?)))
    };
    let simple = |c: char| Some((1, Some(c)));
    match escape.chars().next()? {
        'b' => simple('\u{8}'),
        't' => simple('\t'),
        'n' => simple('\n'),
        'f' => simple('\u{c}'),
        'r' => simple('\r'),
        'e' => simple('\u{1b}'),
        '"' => simple('"'),
        '\\' => simple('\\'),
        'x' => hex(2),
        'u' => hex(4),
        'U' => hex(8),
        ' ' | '\t' | '\r' | '\n' => {
            let rest = escape.trim_start_matches([' ', '\t', '\r', '\n']);
            let skipped = &escape[..escape.len() - rest.len()];
            // Only whitespace up to a newline ends a line this way.
            skipped.contains('\n').then_some((skipped.len(), None))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(template: &str) -> Vec<String> {
        variable_paths(template)
            .iter()
            .map(|p| template[p.range.clone()].to_string())
            .collect()
    }

    #[test]
    fn paths_are_read_from_expressions_and_statements() {
        assert_eq!(
            roots(
                "RAM {{ preflight.system.memory.available_mb }} MB, disk {{ preflight.system.disks[0].used_percent | round }}"
            ),
            [
                "preflight.system.memory.available_mb",
                "preflight.system.disks[0].used_percent"
            ]
        );
        assert_eq!(
            roots("{% if preflight.system.load.one > 4 and not vars.quiet %}busy{% endif %}"),
            ["preflight.system.load.one", "vars.quiet"]
        );
        assert_eq!(roots("{{ step_ids | join(sep=\", \") }}"), ["step_ids"]);
        assert_eq!(roots("{{ x is defined }} {{ y is not none }}"), ["x", "y"]);
        assert_eq!(
            roots("{{ range(end=3) }} {{ \"a.b\" }} {{ 1.5 }}"),
            Vec::<String>::new()
        );
        assert_eq!(roots("{{ a[\"b\"].c }}"), ["a[\"b\"].c"]);
    }

    #[test]
    fn names_the_template_binds_are_not_context_variables() {
        assert_eq!(
            roots(
                "{% for s in preflight.tmux.sessions %}{{ s.name }} {{ loop.index }}{% endfor %}{% set n = 3 %}{{ n }}"
            ),
            ["preflight.tmux.sessions"]
        );
    }

    #[test]
    fn comments_raw_blocks_and_plain_braces_are_skipped() {
        assert_eq!(
            roots("{# {{ nope }} #} ${HOME} {a,b} {% raw %}{{ .Names }}{% endraw %}"),
            Vec::<String>::new()
        );
    }

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
    fn positions_map_back_into_the_toml_literal() {
        let source = "d = \"\"\"\nfirst\nsecond {{ x }}\n\"\"\"\n";
        let span = 4..source.len() - 1;
        let value = "first\nsecond {{ x }}\n";
        let map = StringSource::new(source, span, value);
        let x = value.find('x').unwrap();
        assert_eq!(&source[map.offset(x)..map.offset(x) + 1], "x");

        let escaped = "d = \"a\\tb {{ y }}\"\n";
        let value = "a\tb {{ y }}";
        let map = StringSource::new(escaped, 4..escaped.len() - 1, value);
        let y = value.find('y').unwrap();
        assert_eq!(
            &escaped[map.offset(y)..map.offset(y) + 1],
            "y",
            "past an escape"
        );
        assert_eq!(map.offset(1), 6, "an escaped character is its escape");
    }

    #[test]
    fn positions_map_back_through_every_kind_of_escape() {
        let source = "d = \"\"\"\n\\\"q\\\" \\u00e9\\U0001F600 \\x41 \\e \\\n   {{ here }}\\\\\n  {{ too }}\"\"\"\n";
        let value = "\"q\" é😀 A \u{1b} {{ here }}\\\n  {{ too }}";
        let map = StringSource::new(source, 4..source.len() - 1, value);
        for word in ["here", "too", "q"] {
            let at = value.find(word).unwrap();
            assert_eq!(
                &source[map.offset(at)..map.offset(at) + word.len()],
                word,
                "{word}"
            );
        }
        let brace = map.offset(value.find("{{ here").unwrap());
        assert_eq!(
            &source[brace..brace + 2],
            "{{",
            "past a line-ending backslash"
        );
        let a = map.offset(value.find('A').unwrap());
        assert_eq!(
            &source[a..a + 4],
            "\\x41",
            "an escaped character is its escape"
        );
        // A literal the value does not follow falls back to the line.
        let odd = "d = \"a\\q {{ x }}\"";
        let map = StringSource::new(odd, 4..odd.len(), "a\u{7}q {{ x }}");
        assert_eq!(map.offset(8), 5);
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

        #[test]
        fn positions_map_back_through_escapes_as_toml_reads_them(
            characters in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        'a', ' ', '{', '}', 'é', '😀', '"', '\\', '\t', '\n', '\u{1b}', '\u{7f}',
                    ]),
                    0u8..4,
                ),
                0..24,
            ),
            multi_line in proptest::bool::ANY,
        ) {
            // Each character written as itself where TOML allows, or as one
            // of its escapes; in a multi-line string, now and then after a
            // line-ending backslash, which stands for nothing.
            let (mut raw, mut value) = (String::from("a"), String::from("a"));
            for (c, how) in characters {
                // (Whitespace after it would be trimmed with it.)
                if multi_line && how == 3 && !c.is_whitespace() {
                    raw.push_str("\\  \n\t ");
                }
                let short = match c {
                    '"' => Some("\\\""),
                    '\\' => Some("\\\\"),
                    '\t' => Some("\\t"),
                    '\n' => Some("\\n"),
                    '\u{1b}' => Some("\\e"),
                    _ => None,
                };
                let plain = match c {
                    '"' | '\\' | '\u{1b}' | '\u{7f}' => false,
                    '\n' => multi_line,
                    _ => true,
                };
                let written = match (how, short) {
                    (0 | 3, _) if plain => c.to_string(),
                    (1, Some(short)) => short.to_string(),
                    (2, _) if (c as u32) < 0x100 => format!("\\x{:02X}", c as u32),
                    _ if (c as u32) > 0xFFFF => format!("\\U{:08X}", c as u32),
                    _ => format!("\\u{:04x}", c as u32),
                };
                raw.push_str(&written);
                value.push(c);
            }
            raw.push_str("{{ mark }}");
            value.push_str("{{ mark }}");
            let quote = if multi_line { "\"\"\"" } else { "\"" };
            let source = format!("d = {quote}{raw}{quote}\n");
            let parsed: toml::Table = toml::from_str(&source).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{source:?}: {e}"))
            })?;
            proptest::prop_assert_eq!(parsed["d"].as_str(), Some(value.as_str()), "{:?}", source);
            let map = StringSource::new(&source, 4..source.len() - 1, &value);
            let mark = value.rfind("mark").unwrap_or(0);
            let at = map.offset(mark);
            proptest::prop_assert_eq!(source.get(at..at + 4), Some("mark"), "{:?}", source);
        }
    }
}
