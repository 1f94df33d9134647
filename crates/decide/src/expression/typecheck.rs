//! The type check of a CEL expression: a walk over its syntax tree with
//! the variables in scope, inferring what each name and field selection
//! holds from the snapshot's [`Shape`], and collecting each name the
//! snapshot (or `[vars]`) does not have with the path as written. Locating
//! those paths in the text is [`super::locate`]'s.

use std::collections::{BTreeMap, BTreeSet};

use cel::common::ast::{ComprehensionExpr, EntryExpr, Expr, IdedExpr};

use retort_formula::shape::Shape;

use super::{IssueKind, STATUS_FIELDS, Ty, suggest};

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

/// What the walk found: the expression's type, its issues (each with the
/// path as written, `["system", "memory", "availble_mb"]`), the sections
/// whose figures it reads and the `vars` it reads.
pub(super) struct Inferred {
    pub(super) ty: Ty,
    pub(super) issues: Vec<(Vec<String>, IssueKind)>,
    pub(super) sections: BTreeSet<String>,
    pub(super) vars: BTreeSet<String>,
}

/// Walks `expr` with `roots` (each variable in scope and its type) in
/// scope, the snapshot's being nodes of `shape`.
pub(super) fn infer(expr: &IdedExpr, shape: &Shape, roots: &BTreeMap<String, Ty>) -> Inferred {
    let mut checker = Checker {
        shape,
        roots,
        issues: Vec::new(),
        sections: BTreeSet::new(),
        vars: BTreeSet::new(),
    };
    let ty = checker.infer(expr, &Scope::default());
    Inferred {
        ty,
        issues: checker.issues,
        sections: checker.sections,
        vars: checker.vars,
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
            Ty::Record {
                fields,
                listing,
                refused,
            } => {
                if let Some(ty) = fields.get(field) {
                    return ty.clone();
                }
                unknown(refused.get(field).cloned().unwrap_or_else(|| {
                    suggest(field, fields.keys().map(String::as_str).collect(), listing)
                }))
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
