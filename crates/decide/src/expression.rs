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
//!
//! Here: compiling (with limits on nesting that keep the parser's and the
//! interpreter's stack bounded), checking and evaluating. The walk of the
//! type check is in `expression/typecheck.rs`; the tokenizer that locates
//! names and parser errors in the text is in `expression/locate.rs`.

mod locate;
mod typecheck;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};

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
    /// A table whose fields are known: `steps` in a step's `when`, each
    /// ancestor's id with its `outcome` and `output`.
    Record {
        /// Each field and its type.
        fields: BTreeMap<String, Ty>,
        /// What introduces the fields in help ("its fields are").
        listing: String,
        /// Fields that exist but may not be used here, each with the help
        /// to show (a step that is not an ancestor).
        refused: BTreeMap<String, String>,
    },
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
                    range: locate::offset_of(text, error.pos),
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
        let inferred = typecheck::infer(self.program.expression(), shape, roots);
        let mut seen: HashMap<String, usize> = HashMap::new();
        let tokens = locate::tokenize(text);
        let issues = inferred
            .issues
            .into_iter()
            .map(|(written, kind)| {
                let nth = seen.entry(written.join(".")).or_insert(0);
                let range = locate::locate(&tokens, &written, *nth).unwrap_or(0..text.len());
                *nth += 1;
                ExpressionIssue { range, kind }
            })
            .collect();
        Analysis {
            issues,
            sections: inferred.sections,
            vars: inferred.vars,
            ty: Some(inferred.ty),
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
                i = locate::skip_string(bytes, i, false);
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
}
