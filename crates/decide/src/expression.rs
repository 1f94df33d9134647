//! CEL expressions in formulas: compiled with the `cel` crate, and checked
//! against the snapshot's [`Shape`] before any run.
//!
//! The check walks the expression's syntax tree with the variables in scope
//! (the snapshot's sections, `vars`, `now`, `item` in a rule over a list,
//! and the variables of macros such as `exists(d, …)`), infers the type of
//! each field selection from the snapshot's [`Shape`], and reports each
//! name the snapshot (or `[vars]`) does not have, with the closest known
//! name. Problems carry the byte range, within the
//! expression's text, of the offending name, so that diagnostics can point
//! into the formula file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cel::common::ast::{ComprehensionExpr, EntryExpr, Expr, IdedExpr};

use retort_formula::shape::{NodeId, Shape};

/// Fields every collector section has besides its figures: reading only
/// these does not need the section to have been collected.
pub const STATUS_FIELDS: [&str; 2] = ["status", "reason"];

/// How deep brackets may nest in an expression's text: 32.
pub const MAX_BRACKETS: usize = 32;

/// How deep an expression's syntax tree may be: 64. Checking and evaluating
/// recurse over the tree; this bounds their stack. (CEL builds `&&` and
/// `||` chains as balanced trees, so a long chain is shallow.)
pub const MAX_DEPTH: usize = 64;

/// Names CEL gives to types, usable as values (`type(x) == int`).
const TYPE_NAMES: [&str; 11] = [
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
    "dyn",
];

/// A compiled CEL expression.
#[derive(Debug)]
pub struct Expression {
    program: cel::Program,
}

/// What is wrong with an expression, and where in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpressionIssue {
    /// Byte range in the expression's text; the whole text when unknown.
    pub range: Range<usize>,
    /// What is wrong.
    pub kind: IssueKind,
}

/// The kinds of [`ExpressionIssue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueKind {
    /// The text is not CEL.
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A name that is no variable: neither a snapshot section, `vars`,
    /// `now`, `item`, nor a macro's variable.
    UnknownVariable {
        /// The name.
        name: String,
        /// `did you mean …?`, or the names there are.
        help: String,
    },
    /// A field the value does not have.
    UnknownField {
        /// The path as written, `system.memory.availble_mb`.
        path: String,
        /// The field.
        field: String,
        /// `did you mean …?`, or the fields there are.
        help: String,
    },
    /// A field selected on something that has no fields (a number, a list).
    NotAnObject {
        /// The path as written.
        path: String,
        /// What the value is: `a list of tables`, `a non-negative integer`, …
        kind: String,
        /// How to fix it.
        help: String,
    },
}

/// What a name or field holds, as far as the check can tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// A value of the snapshot, whose schema node is known.
    Node(NodeId),
    /// A list of these (what `filter` gives).
    ListOf(Box<Ty>),
    /// The formula's `vars`: these names, each a string.
    Vars(Vec<String>),
    /// A timestamp (`now`).
    Timestamp,
    /// A string.
    String,
    /// Anything: not checked further.
    Any,
}

/// What the check learnt of an expression.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Everything wrong with it.
    pub issues: Vec<ExpressionIssue>,
    /// The snapshot sections whose figures it reads (fields besides
    /// [`STATUS_FIELDS`]): the rule can only be evaluated when they were
    /// collected.
    pub sections: BTreeSet<String>,
    /// The names of the `vars` it reads.
    pub vars: BTreeSet<String>,
    /// The type of its value, as far as it can be told.
    pub ty: Option<Ty>,
}

impl Expression {
    /// Compiles `text`.
    ///
    /// # Errors
    /// One [`IssueKind::Syntax`] per error the parser reports, located.
    pub fn compile(text: &str) -> Result<Expression, Vec<ExpressionIssue>> {
        // The parser recurses deeply for each bracket: refuse what could
        // overflow the stack before it runs.
        if let Some(at) = too_deeply_bracketed(text) {
            return Err(vec![ExpressionIssue {
                range: at..at + 1,
                kind: IssueKind::Syntax {
                    message: format!(
                        "brackets nest more than {MAX_BRACKETS} deep here; split the expression into several rules"
                    ),
                },
            }]);
        }
        // The parser is generated code; a panic in it must not take retort down.
        let compiled = catch_unwind(AssertUnwindSafe(|| cel::Program::compile(text)));
        match compiled {
            Ok(Ok(program)) => {
                let depth = depth(program.expression());
                if depth > MAX_DEPTH {
                    return Err(vec![ExpressionIssue {
                        range: 0..text.len(),
                        kind: IssueKind::Syntax {
                            message: format!(
                                "the expression nests {depth} operations deep; at most {MAX_DEPTH} are allowed, so split it into several rules"
                            ),
                        },
                    }]);
                }
                Ok(Expression { program })
            }
            Ok(Err(errors)) => Err(errors
                .errors
                .iter()
                .map(|error| ExpressionIssue {
                    range: offset_of(text, error.pos),
                    kind: IssueKind::Syntax {
                        message: error
                            .msg
                            .strip_prefix("Syntax error: ")
                            .unwrap_or(&error.msg)
                            .to_string(),
                    },
                })
                .collect()),
            Err(_) => Err(vec![ExpressionIssue {
                range: 0..text.len(),
                kind: IssueKind::Syntax {
                    message: "the CEL parser could not read this expression".to_string(),
                },
            }]),
        }
    }

    /// Checks the names the expression uses against `roots` (each variable
    /// in scope and its type), the snapshot's being nodes of `shape`.
    pub fn check(&self, text: &str, shape: &Shape, roots: &BTreeMap<String, Ty>) -> Analysis {
        let mut checker = Checker {
            shape,
            roots,
            issues: Vec::new(),
            sections: BTreeSet::new(),
            vars: BTreeSet::new(),
        };
        let ty = checker.infer(self.program.expression(), &Scope::default());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let tokens = tokenize(text);
        let issues = checker
            .issues
            .into_iter()
            .map(|(written, kind)| {
                let nth = seen.entry(written.join(".")).or_insert(0);
                let range = locate(&tokens, &written, *nth).unwrap_or(0..text.len());
                *nth += 1;
                ExpressionIssue { range, kind }
            })
            .collect();
        Analysis {
            issues,
            sections: checker.sections,
            vars: checker.vars,
            ty: Some(ty),
        }
    }

    /// Evaluates the expression in `context`.
    ///
    /// # Errors
    /// CEL's error, as text (a missing key, a type mismatch, …).
    pub fn evaluate(&self, context: &cel::Context<'_>) -> Result<cel::Value, String> {
        match catch_unwind(AssertUnwindSafe(|| self.program.execute(context))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("the CEL interpreter failed on this expression".to_string()),
        }
    }
}

/// Variables bound by macros (`exists(d, …)`), innermost last.
#[derive(Debug, Clone, Default)]
struct Scope {
    bound: Vec<(String, Ty)>,
}

impl Scope {
    fn get(&self, name: &str) -> Option<&Ty> {
        self.bound
            .iter()
            .rev()
            .find(|(bound, _)| bound == name)
            .map(|(_, ty)| ty)
    }

    fn with(&self, names: impl IntoIterator<Item = (String, Ty)>) -> Scope {
        let mut inner = self.clone();
        inner.bound.extend(names);
        inner
    }
}

struct Checker<'a> {
    shape: &'a Shape,
    roots: &'a BTreeMap<String, Ty>,
    /// Each issue with the path as written (`["system", "memory", "availble_mb"]`).
    issues: Vec<(Vec<String>, IssueKind)>,
    sections: BTreeSet<String>,
    vars: BTreeSet<String>,
}

impl Checker<'_> {
    fn infer(&mut self, expr: &IdedExpr, scope: &Scope) -> Ty {
        match &expr.expr {
            Expr::Ident(name) => self.ident(name, scope, true),
            Expr::Select(select) => {
                // A section's status fields can be read whatever its status.
                if let Expr::Ident(root) = &select.operand.expr
                    && scope.get(root).is_none()
                    && self.is_section(root)
                {
                    let base = self.ident(root, scope, false);
                    if !STATUS_FIELDS.contains(&select.field.as_str()) {
                        self.sections.insert(root.clone());
                    }
                    return self.field(&base, &select.operand, &select.field);
                }
                let base = self.infer(&select.operand, scope);
                self.field(&base, &select.operand, &select.field)
            }
            Expr::Call(call) => {
                let target = call.target.as_ref().map(|t| self.infer(t, scope));
                let args: Vec<Ty> = call.args.iter().map(|a| self.infer(a, scope)).collect();
                match (call.func_name.as_str(), target, args.as_slice()) {
                    ("_[_]", None, [base, _]) => self.element(base),
                    _ => Ty::Any,
                }
            }
            Expr::Comprehension(comprehension) => self.comprehension(comprehension, scope),
            Expr::List(list) => {
                for element in &list.elements {
                    self.infer(element, scope);
                }
                Ty::ListOf(Box::new(Ty::Any))
            }
            Expr::Map(map) => {
                self.entries(&map.entries, scope);
                Ty::Any
            }
            Expr::Struct(structure) => {
                self.entries(&structure.entries, scope);
                Ty::Any
            }
            Expr::Literal(_) | Expr::Unspecified => Ty::Any,
        }
    }

    fn entries(&mut self, entries: &[cel::common::ast::IdedEntryExpr], scope: &Scope) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::StructField(field) => {
                    self.infer(&field.value, scope);
                }
                EntryExpr::MapEntry(entry) => {
                    self.infer(&entry.key, scope);
                    self.infer(&entry.value, scope);
                }
            }
        }
    }

    fn is_section(&self, name: &str) -> bool {
        matches!(self.roots.get(name), Some(Ty::Node(id)) if self.shape.keys(*id).contains(&"status"))
    }

    fn ident(&mut self, name: &str, scope: &Scope, whole: bool) -> Ty {
        if let Some(ty) = scope.get(name) {
            return ty.clone();
        }
        if let Some(ty) = self.roots.get(name) {
            if whole && self.is_section(name) {
                // The whole section handed to a function: it reads its figures.
                self.sections.insert(name.to_string());
            }
            return ty.clone();
        }
        if TYPE_NAMES.contains(&name) {
            return Ty::Any;
        }
        let mut names: Vec<&str> = self.roots.keys().map(String::as_str).collect();
        names.extend(scope.bound.iter().map(|(n, _)| n.as_str()));
        self.issues.push((
            vec![name.to_string()],
            IssueKind::UnknownVariable {
                name: name.to_string(),
                help: suggest(name, names, "the variables are"),
            },
        ));
        Ty::Any
    }

    /// The type of an element of `base` (`base[i]`, or a macro's variable).
    fn element(&self, base: &Ty) -> Ty {
        match base {
            Ty::ListOf(item) => item.as_ref().clone(),
            Ty::Node(id) if self.shape.is_any(*id) => Ty::Any,
            Ty::Node(id) => match self.shape.items(*id) {
                Some(items) => Ty::Node(items),
                // A map's values.
                None => self.shape.property(*id, "\u{0}").map_or(Ty::Any, Ty::Node),
            },
            Ty::Vars(_) => Ty::String,
            _ => Ty::Any,
        }
    }

    fn field(&mut self, base: &Ty, operand: &IdedExpr, field: &str) -> Ty {
        let mut written = written_path(operand).unwrap_or_default();
        written.push(field.to_string());
        let path = written.join(".");
        let owner = written[..written.len() - 1].join(".");
        let unknown = |help: String| IssueKind::UnknownField {
            field: field.to_string(),
            path: path.clone(),
            help,
        };
        let issue = match base {
            Ty::Any => return Ty::Any,
            Ty::Vars(declared) => {
                if written.len() == 2 {
                    self.vars.insert(field.to_string());
                }
                if declared.iter().any(|d| d == field) {
                    return Ty::String;
                }
                unknown(if declared.is_empty() {
                    format!("the formula declares no vars: add `[vars] {field} = \"…\"`")
                } else {
                    suggest(
                        field,
                        declared.iter().map(String::as_str).collect(),
                        "the formula declares",
                    )
                })
            }
            Ty::Node(id) if self.shape.is_any(*id) => return Ty::Any,
            Ty::Node(id) => {
                if let Some(child) = self.shape.property(*id, field) {
                    return Ty::Node(child);
                }
                let keys = self.shape.keys(*id);
                if !keys.is_empty() {
                    unknown(suggest(field, keys, "its fields are"))
                } else if self.shape.is_list(*id) {
                    list_field(&path, &owner, field, self.shape.describe(*id))
                } else {
                    let kind = self.shape.describe(*id);
                    IssueKind::NotAnObject {
                        help: format!("`{owner}` is {kind}: it has no fields"),
                        path: path.clone(),
                        kind,
                    }
                }
            }
            Ty::ListOf(_) => list_field(&path, &owner, field, "a list".to_string()),
            Ty::Timestamp | Ty::String => {
                let kind = if *base == Ty::Timestamp {
                    "a timestamp"
                } else {
                    "a string"
                };
                IssueKind::NotAnObject {
                    help: format!("`{owner}` is {kind}: it has no fields"),
                    path: path.clone(),
                    kind: kind.to_string(),
                }
            }
        };
        self.issues.push((written, issue));
        Ty::Any
    }

    fn comprehension(&mut self, c: &ComprehensionExpr, scope: &Scope) -> Ty {
        let range = self.infer(&c.iter_range, scope);
        let is_list = match &range {
            Ty::ListOf(_) => true,
            Ty::Node(id) => self.shape.is_list(*id),
            _ => false,
        };
        let (first, second) = if is_list {
            match &c.iter_var2 {
                Some(_) => (Ty::Any, self.element(&range)),
                None => (self.element(&range), Ty::Any),
            }
        } else {
            match &range {
                Ty::Any => (Ty::Any, Ty::Any),
                // Maps and objects iterate over their keys.
                other => (Ty::String, self.element(other)),
            }
        };
        let mut names = vec![(c.iter_var.clone(), first.clone())];
        if let Some(second_var) = &c.iter_var2 {
            names.push((second_var.clone(), second));
        }
        self.infer(&c.accu_init, scope);
        names.push((c.accu_var.clone(), Ty::Any));
        let inner = scope.with(names);
        self.infer(&c.loop_cond, &inner);
        self.infer(&c.loop_step, &inner);
        self.infer(&c.result, &inner);
        // `filter` keeps items of the range: it accumulates `[item]` lists.
        let keeps_items = matches!(&c.accu_init.expr, Expr::List(l) if l.elements.is_empty())
            && collects_var(&c.loop_step, &c.iter_var);
        if keeps_items && is_list {
            Ty::ListOf(Box::new(first))
        } else {
            Ty::Any
        }
    }
}

/// A field selected on a list: how to test its items instead.
fn list_field(path: &str, list: &str, field: &str, kind: String) -> IssueKind {
    IssueKind::NotAnObject {
        path: path.to_string(),
        kind,
        help: format!(
            "`{list}` is a list: test its items with `{list}.exists(x, x.{field} …)` or `{list}.all(x, …)`, or write a rule over it with `each = \"{list}\"` and `item.{field}`"
        ),
    }
}

/// Whether `expr` contains a one-element list literal `[var]`.
fn collects_var(expr: &IdedExpr, var: &str) -> bool {
    match &expr.expr {
        Expr::List(list) => {
            matches!(list.elements.as_slice(), [IdedExpr { expr: Expr::Ident(name), .. }] if name == var)
                || list.elements.iter().any(|e| collects_var(e, var))
        }
        Expr::Call(call) => {
            call.args.iter().any(|a| collects_var(a, var))
                || call.target.as_ref().is_some_and(|t| collects_var(t, var))
        }
        _ => false,
    }
}

/// The depth of the syntax tree, counted without recursion.
fn depth(root: &IdedExpr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((expr, level)) = stack.pop() {
        deepest = deepest.max(level);
        let next = level + 1;
        match &expr.expr {
            Expr::Select(select) => stack.push((&select.operand, next)),
            Expr::Call(call) => {
                stack.extend(call.target.iter().map(|t| (t.as_ref(), next)));
                stack.extend(call.args.iter().map(|a| (a, next)));
            }
            Expr::Comprehension(c) => {
                for child in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    stack.push((child, next));
                }
            }
            Expr::List(list) => stack.extend(list.elements.iter().map(|e| (e, next))),
            Expr::Map(map) => stack.extend(
                map.entries
                    .iter()
                    .flat_map(|entry| entry_children(entry, next)),
            ),
            Expr::Struct(structure) => stack.extend(
                structure
                    .entries
                    .iter()
                    .flat_map(|entry| entry_children(entry, next)),
            ),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    deepest
}

fn entry_children(
    entry: &cel::common::ast::IdedEntryExpr,
    level: usize,
) -> Vec<(&IdedExpr, usize)> {
    match &entry.expr {
        EntryExpr::StructField(field) => vec![(&field.value, level)],
        EntryExpr::MapEntry(entry) => vec![(&entry.key, level), (&entry.value, level)],
    }
}

/// The offset of the first bracket nested deeper than [`MAX_BRACKETS`],
/// outside string literals.
fn too_deeply_bracketed(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut level = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                i = skip_string(bytes, i, false);
                continue;
            }
            b'(' | b'[' | b'{' => {
                level += 1;
                if level > MAX_BRACKETS {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => level = level.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `a.b.c` as `["a", "b", "c"]`, when `expr` is a plain chain of names.
fn written_path(expr: &IdedExpr) -> Option<Vec<String>> {
    match &expr.expr {
        Expr::Ident(name) => Some(vec![name.clone()]),
        Expr::Select(select) => {
            let mut path = written_path(&select.operand)?;
            path.push(select.field.clone());
            Some(path)
        }
        _ => None,
    }
}

/// `did you mean `x`?` when a known name is close, else the list of names
/// after `listing` ("the actions are: none" when there are none).
pub fn suggest(name: &str, mut known: Vec<&str>, listing: &str) -> String {
    known.sort_unstable();
    known.dedup();
    match retort_formula::shape::closest(name, known.iter().copied()) {
        Some(k) => format!("did you mean `{k}`?"),
        None if known.is_empty() => format!("{listing}: none"),
        None => format!("{listing}: {}", known.join(", ")),
    }
}

/// A name or a dot in an expression's text, with its byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String, Range<usize>),
    Dot,
    Other,
}

/// Splits CEL text into names, dots and everything else, skipping string
/// literals (so that a name inside quotes is never blamed).
fn tokenize(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let raw = (i - start == 1) && matches!(c, b'r' | b'R');
            if i < bytes.len() && matches!(bytes[i], b'\'' | b'"') && i - start <= 2 {
                // A prefixed literal: r'…', b"…", rb'…'.
                i = skip_string(bytes, i, raw || text[start..i].contains(['r', 'R']));
                tokens.push(Token::Other);
                continue;
            }
            tokens.push(Token::Name(text[start..i].to_string(), start..i));
        } else if c == b'\'' || c == b'"' {
            i = skip_string(bytes, i, false);
            tokens.push(Token::Other);
        } else if c == b'.' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            tokens.push(Token::Dot);
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == b'.' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            tokens.push(Token::Other);
        } else {
            // One character, however many bytes it takes.
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            tokens.push(Token::Other);
        }
    }
    tokens
}

/// The index just past the string literal that starts at `start`.
fn skip_string(bytes: &[u8], start: usize, raw: bool) -> usize {
    let quote = bytes[start];
    let triple = bytes.len() >= start + 3 && bytes[start + 1] == quote && bytes[start + 2] == quote;
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        if bytes[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if !triple {
                return i + 1;
            }
            if bytes.len() >= i + 3 && bytes[i + 1] == quote && bytes[i + 2] == quote {
                return i + 3;
            }
        }
        i += 1;
    }
    bytes.len()
}

/// The range of the last name of the `nth` occurrence of `path` written as
/// `a.b.c`; failing that, of its last name after a dot (or alone).
fn locate(tokens: &[Token], path: &[String], nth: usize) -> Option<Range<usize>> {
    let last = path.last()?;
    let mut found = Vec::new();
    'start: for start in 0..tokens.len() {
        if start > 0 && tokens[start - 1] == Token::Dot {
            continue;
        }
        let mut at = start;
        let mut range = None;
        for (k, name) in path.iter().enumerate() {
            if k > 0 {
                if tokens.get(at) != Some(&Token::Dot) {
                    continue 'start;
                }
                at += 1;
            }
            match tokens.get(at) {
                Some(Token::Name(text, r)) if text == name => range = Some(r.clone()),
                _ => continue 'start,
            }
            at += 1;
        }
        found.extend(range);
    }
    if let Some(range) = found.get(nth).or(found.first()) {
        return Some(range.clone());
    }
    let dotted = path.len() > 1;
    tokens
        .iter()
        .enumerate()
        .find_map(|(i, token)| match token {
            Token::Name(text, r)
                if text == last && (!dotted || (i > 0 && tokens[i - 1] == Token::Dot)) =>
            {
                Some(r.clone())
            }
            _ => None,
        })
}

/// The byte range of the character at the parser's `(line, column)` (both
/// from 1, column in characters), or the end of the text.
fn offset_of(text: &str, (line, column): (isize, isize)) -> Range<usize> {
    let line = usize::try_from(line.max(1) - 1).unwrap_or(0);
    let column = usize::try_from(column.max(1) - 1).unwrap_or(0);
    let mut start = 0;
    for (number, content) in text.split_inclusive('\n').enumerate() {
        if number == line {
            let offset = content
                .char_indices()
                .nth(column)
                .map_or(content.trim_end_matches('\n').len(), |(i, _)| i);
            let at = start + offset;
            let width = text[at..].chars().next().map_or(0, char::len_utf8);
            return at..at + width;
        }
        start += content.len();
    }
    text.len()..text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> BTreeMap<String, Ty> {
        let shape = crate::cel_value::snapshot_shape();
        let mut roots: BTreeMap<String, Ty> = shape
            .keys(shape.root())
            .into_iter()
            .filter_map(|k| Some((k.to_string(), Ty::Node(shape.property(shape.root(), k)?))))
            .collect();
        roots.insert("vars".into(), Ty::Vars(vec!["x".into()]));
        roots.insert("now".into(), Ty::Timestamp);
        roots
    }

    fn issues(text: &str) -> Vec<(String, String)> {
        let expression = Expression::compile(text).unwrap();
        expression
            .check(text, crate::cel_value::snapshot_shape(), &roots())
            .issues
            .into_iter()
            .map(|issue| {
                let what = match issue.kind {
                    IssueKind::UnknownVariable { name, help } => format!("variable {name}: {help}"),
                    IssueKind::UnknownField { path, help, .. } => format!("field {path}: {help}"),
                    IssueKind::NotAnObject { path, kind, .. } => format!("{path}: {kind}"),
                    IssueKind::Syntax { message } => message,
                };
                (text[issue.range].to_string(), what)
            })
            .collect()
    }

    #[test]
    fn a_misspelt_field_is_located_and_the_right_one_suggested() {
        assert_eq!(
            issues("system.swap.used_mb > 3072 && system.memory.availble_mb < 2000"),
            [(
                "availble_mb".to_string(),
                "field system.memory.availble_mb: did you mean `available_mb`?".to_string()
            )]
        );
    }

    #[test]
    fn unknown_variables_and_fields_of_list_items_are_found() {
        assert_eq!(
            issues("sytem.memory.available_mb < 500"),
            [(
                "sytem".to_string(),
                "variable sytem: did you mean `system`?".to_string()
            )]
        );
        assert_eq!(
            issues("system.disks.exists(d, d.used_percnt > 80)"),
            [(
                "used_percnt".to_string(),
                "field d.used_percnt: did you mean `used_percent`?".to_string()
            )]
        );
        assert_eq!(
            issues("system.disks.used_percent > 80"),
            [(
                "used_percent".to_string(),
                "system.disks.used_percent: a list of tables".to_string()
            )]
        );
        assert_eq!(
            issues("tmux.sessions.filter(s, s.attached)[0].nme == 'x'"),
            [(
                "nme".to_string(),
                "field nme: did you mean `name`?".to_string()
            )]
        );
    }

    #[test]
    fn valid_expressions_have_no_issues_and_name_the_sections_they_read() {
        let text = "now - tmux.sessions[0].last_activity > duration('2h') && vars.x == 'y' && system.status != 'ok' && 'sytem.x' != ''";
        let expression = Expression::compile(text).unwrap();
        let analysis = expression.check(text, crate::cel_value::snapshot_shape(), &roots());
        assert_eq!(analysis.issues, []);
        assert_eq!(
            analysis.sections.into_iter().collect::<Vec<_>>(),
            ["tmux"],
            "system is read only for its status"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_offending_character() {
        let text = "system.memory.available_mb <\n  < 500";
        let errors = Expression::compile(text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(&text[errors[0].range.clone()], "<");
        assert_eq!(errors[0].range.start, 31);
        let errors = Expression::compile("x < ").unwrap_err();
        assert_eq!(errors[0].range, 4..4, "the end of the text");
    }

    #[test]
    fn deep_nesting_is_refused_before_it_can_overflow_the_stack() {
        let brackets = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        let errors = Expression::compile(&brackets).unwrap_err();
        assert_eq!(errors[0].range, 32..33, "the 33rd bracket");
        let chain = format!("a{}", ".b".repeat(100));
        let errors = Expression::compile(&chain).unwrap_err();
        assert!(
            matches!(&errors[0].kind, IssueKind::Syntax { message } if message.starts_with("the expression nests 101 operations deep")),
            "{errors:?}"
        );
        let long_or = vec!["system.load.one > 1.0"; 500].join(" || ");
        assert!(
            Expression::compile(&long_or).is_ok(),
            "|| chains are balanced"
        );
        assert!(Expression::compile("'((((((((((((((((((((((((((((((((((' == ''").is_ok());
    }

    #[test]
    fn the_tokenizer_skips_strings_and_numbers() {
        let tokens = tokenize(r#"a.b == "x.y\"z" && 'q' + r'\' + 1.5 > c"#);
        let names: Vec<&str> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Name(n, _) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
