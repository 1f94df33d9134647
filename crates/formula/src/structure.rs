//! The structure check: a formula's TOML, as parsed, walked against the
//! formula's [`Shape`] (its JSON Schema), reporting every unknown key
//! (with the likely intended one), wrong type and missing key at once, each
//! at its place in the file.
//!
//! So that the later stages (the DAG, the templates, the rules) can still
//! report their problems in the same run, the check also says how to
//! repair the document: drop each offending key, or, for a value outside an
//! enumeration, put an allowed value in its place (so that a required key
//! stays). [`repair`] does that; serde, which stops at the first problem,
//! then gets well-shaped input, unless a required key is missing
//! ([`Structure::complete`] is false).

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Problem, span};
use crate::shape::{Kind, NodeId, Shape, closest};
use crate::unknown_key;

/// One repair of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Drop the key at this path.
    Remove(Vec<PathStep>),
    /// Put this string in place of the value at this path.
    Replace(Vec<PathStep>, String),
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathStep {
    /// A key of a table.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// What the structure check found.
#[derive(Debug, Default)]
pub struct Structure {
    /// Every problem, in walking order.
    pub problems: Vec<Problem>,
    /// The repairs that make the document well-shaped (paths from the root).
    pub repairs: Vec<Repair>,
    /// Whether every required key would be there after the repair.
    pub complete: bool,
}

/// Every structural problem of `document` against `shape`, and its repair.
pub fn check(document: &Spanned<DeTable<'_>>, shape: &Shape) -> Structure {
    check_with(document, shape, PARALLEL_ELEMENTS)
}

/// [`check`], with arrays of `parallel_from` or more elements checked on
/// every core.
fn check_with(document: &Spanned<DeTable<'_>>, shape: &Shape, parallel_from: usize) -> Structure {
    let mut walker = Walker {
        shape,
        problems: Vec::new(),
        repairs: Vec::new(),
        complete: true,
        patched: false,
        in_array: 0,
        parallel_from,
    };
    let whole = document.span();
    walker.table(
        document.get_ref(),
        whole.start..whole.start,
        shape.root(),
        &[],
        unknown_key::TOP_LEVEL,
    );
    Structure {
        problems: walker.problems,
        repairs: walker.repairs,
        complete: walker.complete,
    }
}

/// Applies `repairs` to `document`.
pub fn repair(document: &mut Spanned<DeTable<'_>>, repairs: &[Repair]) {
    for repair in repairs {
        match repair {
            Repair::Remove(path) => edit_in_table(document.get_mut(), path, None),
            Repair::Replace(path, text) => edit_in_table(document.get_mut(), path, Some(text)),
        }
    }
}

/// Removes the key at `path` (or, with `replacement`, sets it to that string).
fn edit_in_table(table: &mut DeTable<'_>, path: &[PathStep], replacement: Option<&String>) {
    match path {
        [PathStep::Key(last)] => match replacement {
            None => {
                table.remove(last.as_str());
            }
            Some(text) => {
                if let Some(value) = table.get_mut(last.as_str()) {
                    *value.get_mut() = DeValue::String(text.clone().into());
                }
            }
        },
        [PathStep::Key(key), rest @ ..] => {
            if let Some(value) = table.get_mut(key.as_str()) {
                edit_in_value(value.get_mut(), rest, replacement);
            }
        }
        _ => {}
    }
}

fn edit_in_value(value: &mut DeValue<'_>, path: &[PathStep], replacement: Option<&String>) {
    match (value, path) {
        (DeValue::Array(array), [PathStep::Index(index), rest @ ..]) => {
            if let Some(element) = array.get_mut(*index) {
                edit_in_value(element.get_mut(), rest, replacement);
            }
        }
        (DeValue::Table(table), rest) => edit_in_table(table, rest, replacement),
        _ => {}
    }
}

/// Arrays with at least this many elements (`[[steps]]`, mostly) are
/// checked on every core; for fewer, starting threads costs more than it
/// saves.
const PARALLEL_ELEMENTS: usize = 512;

/// An array being checked: its elements' shape, and where it is.
struct ArraySite<'a> {
    items: NodeId,
    key: &'a str,
    trail: &'a [PathStep],
    label: &'a str,
}

struct Walker<'s> {
    shape: &'s Shape,
    problems: Vec<Problem>,
    repairs: Vec<Repair>,
    complete: bool,
    /// Whether the value just checked was repaired by replacement.
    patched: bool,
    /// How many arrays deep the walk is inside the current key's value.
    in_array: usize,
    /// Arrays with at least this many elements are checked on every core.
    parallel_from: usize,
}

impl<'s> Walker<'s> {
    /// Checks `table` (at `place`; `trail` is its key path) against `node`.
    fn table(
        &mut self,
        table: &DeTable<'_>,
        place: Range<usize>,
        node: NodeId,
        trail: &[PathStep],
        label: &str,
    ) {
        let Some((properties, required, additional)) = self
            .shape
            .present(node)
            .iter()
            .copied()
            .find_map(|n| match &self.shape.node(n).kind {
                Kind::Object {
                    properties,
                    required,
                    additional,
                } => Some((properties, required, *additional)),
                _ => None,
            })
        else {
            return;
        };
        let mut child_trail = trail.to_vec();
        child_trail.push(PathStep::Key(String::new()));
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            if let Some(PathStep::Key(last)) = child_trail.last_mut() {
                last.clear();
                last.push_str(name);
            }
            let problems_before = self.problems.len();
            match properties.get(name).copied().or(additional) {
                Some(child) => self.value(value, child, name, &child_trail, label),
                None => {
                    let keys: Vec<&str> = properties.keys().map(String::as_str).collect();
                    self.problems
                        .push(unknown_key::problem(name, &keys, label, key.span()));
                }
            }
            // A problem in a value that is not a table of its own is
            // repaired by dropping the key.
            let is_table = matches!(value.get_ref(), DeValue::Table(_) | DeValue::Array(_))
                && self.repairs.last().is_some_and(|r| match r {
                    Repair::Remove(path) | Repair::Replace(path, _) => {
                        path.len() > child_trail.len() && path.starts_with(&child_trail)
                    }
                });
            let patched = std::mem::take(&mut self.patched);
            if self.problems.len() > problems_before && !is_table && !patched {
                if required.contains(&name.to_string()) {
                    self.complete = false;
                }
                self.repairs.push(Repair::Remove(child_trail.clone()));
            }
        }
        for key in required {
            if !table.contains_key(key.as_str()) {
                let help = properties
                    .get(key)
                    .and_then(|&n| self.shape.node(n).description.clone())
                    .map_or_else(
                        || format!("add `{key} = ...`"),
                        |d| format!("`{key}`: {}", one_line(&d)),
                    );
                self.complete = false;
                // Removing a key that is not there changes nothing, but
                // marks the problem as repaired inside this table, so that
                // the table is kept (`crate::stand_in` fills the key).
                let mut missing = trail.to_vec();
                missing.push(PathStep::Key(key.clone()));
                self.repairs.push(Repair::Remove(missing));
                self.problems.push(Problem::MissingKey {
                    key: key.clone(),
                    table: label.to_string(),
                    span: span(place.clone()),
                    help,
                });
            }
        }
    }

    /// Checks `value` (the value of `key` in table `label`) against `node`.
    fn value(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        node: NodeId,
        key: &str,
        trail: &[PathStep],
        label: &str,
    ) {
        let alternatives = self.shape.present(node);
        if alternatives
            .iter()
            .any(|&n| matches!(self.shape.node(n).kind, Kind::Any))
        {
            return;
        }
        let fits = |n: &&NodeId| accepts(&self.shape.node(**n).kind, value.get_ref());
        // Almost always exactly one shape fits; collect only when several do.
        let mut fitting = alternatives.iter().filter(fits);
        let first = fitting.next().copied();
        if let (Some(only), None) = (first, fitting.next()) {
            self.value_as(value, only, key, trail, label);
            return;
        }
        let candidates: Vec<NodeId> = alternatives.iter().filter(fits).copied().collect();
        match candidates.as_slice() {
            [] => {
                let found = article(value.get_ref().type_str());
                let expected = self.shape.describe(node);
                let help = match value.get_ref() {
                    DeValue::String(text) if expected.starts_with("a list") => {
                        Some(format!("write a list: {key} = [\"{text}\"]"))
                    }
                    _ => None,
                };
                self.problems.push(Problem::WrongType {
                    key: key.to_string(),
                    table: label.to_string(),
                    expected,
                    found,
                    span: span(value.span()),
                    help,
                });
            }
            [only] => self.value_as(value, *only, key, trail, label),
            several => {
                // Several shapes fit the type (a table of one form or
                // another): the first that fits without problems wins; if
                // none does, report against the first.
                for &candidate in several {
                    let mut trial = self.fresh();
                    trial.value_as(value, candidate, key, trail, label);
                    if trial.problems.is_empty() {
                        return;
                    }
                }
                self.value_as(value, several[0], key, trail, label);
            }
        }
    }

    fn value_as(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        node: NodeId,
        key: &str,
        trail: &[PathStep],
        label: &str,
    ) {
        match (&self.shape.node(node).kind, value.get_ref()) {
            (
                Kind::String {
                    allowed: Some(allowed),
                },
                DeValue::String(text),
            ) if !allowed.iter().any(|a| a == text.as_ref()) => {
                let help = closest(text, allowed.iter().map(String::as_str))
                    .map(|guess| format!("did you mean \"{guess}\"?"));
                self.problems.push(Problem::BadValue {
                    message: format!(
                        "`{key}` in {label} must be {}, not \"{text}\"",
                        self.shape.describe(node)
                    ),
                    span: span(value.span()),
                    help,
                });
                // A key's own value is replaced by an allowed one, so that a
                // required key stays and the later stages still run.
                if self.in_array == 0
                    && let Some(first) = allowed.first()
                {
                    self.repairs
                        .push(Repair::Replace(trail.to_vec(), first.clone()));
                    self.patched = true;
                }
            }
            (Kind::Integer { min, max }, DeValue::Integer(integer)) => {
                let number =
                    i128::from_str_radix(&integer.as_str().replace('_', ""), integer.radix())
                        .map(|n| n as f64);
                let out_of_range = number
                    .map(|n| min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m))
                    .unwrap_or(true);
                if out_of_range {
                    self.problems.push(Problem::BadValue {
                        message: format!(
                            "`{key}` in {label} must be {}, not {}",
                            self.shape.describe(node),
                            integer.as_str()
                        ),
                        span: span(value.span()),
                        help: None,
                    });
                }
            }
            (Kind::Array { items }, DeValue::Array(array)) => {
                let site = ArraySite {
                    items: *items,
                    key,
                    trail,
                    label,
                };
                if array.len() >= self.parallel_from {
                    self.elements_in_parallel(array, &site);
                } else {
                    self.elements(array, 0, &site);
                }
            }
            (Kind::Object { .. }, DeValue::Table(table)) => {
                let child_label = format!("[{}]", dotted(trail));
                self.table(table, value.span(), node, trail, &child_label);
            }
            _ => {}
        }
    }

    /// Checks `elements`, the elements of an array from index `first` on.
    fn elements(&mut self, elements: &[Spanned<DeValue<'_>>], first: usize, site: &ArraySite<'_>) {
        for (index, element) in (first..).zip(elements) {
            match element.get_ref() {
                DeValue::Table(table) if self.is_table_node(site.items) => {
                    let mut element_trail = site.trail.to_vec();
                    element_trail.push(PathStep::Index(index));
                    let element_label = array_table_label(site.trail, index, table);
                    self.table(
                        table,
                        element.span(),
                        site.items,
                        &element_trail,
                        &element_label,
                    );
                }
                // A bad element drops the whole list (the caller's key).
                _ => {
                    self.in_array += 1;
                    self.value(element, site.items, site.key, site.trail, site.label);
                    self.in_array -= 1;
                }
            }
        }
    }

    /// [`Walker::elements`] on every core, one run of elements each; the
    /// problems and repairs are the same, in the same order.
    fn elements_in_parallel(&mut self, elements: &[Spanned<DeValue<'_>>], site: &ArraySite<'_>) {
        let cores = crate::cores::count();
        let size = elements.len().div_ceil(cores.max(1));
        let walkers: Vec<Walker<'_>> = std::thread::scope(|scope| {
            let handles: Vec<_> = elements
                .chunks(size.max(1))
                .enumerate()
                .map(|(part, run)| {
                    let mut walker = self.fresh();
                    scope.spawn(move || {
                        walker.elements(run, part * size, site);
                        walker
                    })
                })
                .collect();
            handles.into_iter().map(crate::cores::join).collect()
        });
        for walker in walkers {
            self.problems.extend(walker.problems);
            self.repairs.extend(walker.repairs);
            self.complete &= walker.complete;
            self.patched = walker.patched;
        }
    }

    /// A walker at the same depth as this one, with nothing found yet.
    fn fresh(&self) -> Walker<'s> {
        Walker {
            shape: self.shape,
            problems: Vec::new(),
            repairs: Vec::new(),
            complete: true,
            patched: false,
            in_array: self.in_array,
            parallel_from: self.parallel_from,
        }
    }

    fn is_table_node(&self, node: NodeId) -> bool {
        self.shape
            .present(node)
            .iter()
            .any(|&n| matches!(self.shape.node(n).kind, Kind::Object { .. }))
    }
}

/// Whether a value of `kind` can be this TOML value's type.
fn accepts(kind: &Kind, value: &DeValue<'_>) -> bool {
    matches!(
        (kind, value),
        (Kind::Any, _)
            | (Kind::Boolean, DeValue::Boolean(_))
            | (Kind::Integer { .. }, DeValue::Integer(_))
            | (Kind::Number, DeValue::Integer(_) | DeValue::Float(_))
            | (Kind::String { .. }, DeValue::String(_))
            | (Kind::Array { .. }, DeValue::Array(_))
            | (Kind::Object { .. }, DeValue::Table(_))
    )
}

/// A key path as TOML writes table names: `preflight.commands`.
fn dotted(trail: &[PathStep]) -> String {
    trail
        .iter()
        .filter_map(|step| match step {
            PathStep::Key(key) => Some(key.as_str()),
            PathStep::Index(_) => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// `[[steps]] "report"` for an element with an `id`, else `[[steps]] #3`.
fn array_table_label(trail: &[PathStep], index: usize, table: &DeTable<'_>) -> String {
    let name = dotted(trail);
    match table.get("id").and_then(|id| id.get_ref().as_str()) {
        Some(id) => format!("[[{name}]] \"{id}\""),
        None => format!("[[{name}]] #{}", index + 1),
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" => "an integer".to_string(),
        "array" => "a list".to_string(),
        other => format!("a {other}"),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formula::formula_shape;

    #[test]
    fn a_long_array_checked_on_every_core_finds_what_one_core_finds() {
        let mut text = String::from("name = \"n\"\n");
        for i in 0..700 {
            text.push_str(&format!("[[steps]]\nid = \"s{i}\"\ndescription = \"d\"\n"));
            match i % 9 {
                0 => text.push_str("need = [\"s0\"]\n"),
                3 => text.push_str("needs = \"s0\"\n"),
                5 => text.push_str("timeout = 5\n"),
                7 => text.push_str("[steps.extra]\n"),
                _ => {}
            }
            if i % 50 == 13 {
                text = text.replace(&format!("id = \"s{i}\"\n"), "");
            }
        }
        let (document, errors) = DeTable::parse_recoverable(&text);
        assert!(errors.is_empty(), "{errors:?}");
        let serial = check_with(&document, formula_shape(), usize::MAX);
        let parallel = check_with(&document, formula_shape(), 2);
        assert!(serial.problems.len() > 300, "{}", serial.problems.len());
        assert_eq!(
            format!("{:?}", parallel.problems),
            format!("{:?}", serial.problems)
        );
        assert_eq!(parallel.repairs, serial.repairs);
        assert_eq!(parallel.complete, serial.complete);
        assert!(!parallel.complete, "ids are missing");
    }
}
