//! Variable paths in a template (`preflight.system.memory.available_mb`):
//! read from its `{{ … }}` and `{% … %}` expressions ([`variable_paths`])
//! and checked against the [`Shape`] of its context ([`resolve`],
//! [`resolve_below`], [`resolve_var`], [`resolve_leaf`]).

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

/// A template's variables, checked against its context by
/// [`check_paths`](super::check_paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedPaths {
    /// Every variable path in the template, in order ([`variable_paths`]).
    pub paths: Vec<VariablePath>,
    /// Every variable the context does not have, in the order found.
    pub errors: Vec<PathError>,
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
}
