//! Stand-ins for missing required keys, so that one missing key (a
//! formula without `name`, a step without `id`) does not hide the
//! problems of everything else.
//!
//! The structure check reports every missing required key; serde, which
//! reads the typed [`crate::formula::Formula`], would stop at the first.
//! [`fill`] puts an empty value of the right type in each one's place
//! (`""`, the first allowed value of an enumeration, `[]`, `0`, `false`,
//! `{}`), at a zero-length span at the start of the table that lacks it,
//! and returns those offsets: the later stages' problems there are about
//! the stand-in, not the file, and `retort-check` leaves them out. A
//! formula read with stand-ins always has errors (the missing keys), so it
//! never runs.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::shape::{Kind, NodeId, Shape};

/// Puts a stand-in in `document` for every required key of `shape` that
/// is missing; returns the byte offset each stand-in's span starts at.
pub fn fill(document: &mut Spanned<DeTable<'_>>, shape: &Shape) -> Vec<usize> {
    let at = document.span().start;
    let mut offsets = Vec::new();
    table(document.get_mut(), at, shape, shape.root(), &mut offsets);
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

fn object(shape: &Shape, node: NodeId) -> Option<(&Kind, NodeId)> {
    shape
        .present(node)
        .iter()
        .map(|&n| (&shape.node(n).kind, n))
        .find(|(kind, _)| matches!(kind, Kind::Object { .. }))
}

fn table(
    table: &mut DeTable<'_>,
    at: usize,
    shape: &Shape,
    node: NodeId,
    offsets: &mut Vec<usize>,
) {
    let Some((
        Kind::Object {
            properties,
            required,
            ..
        },
        _,
    )) = object(shape, node)
    else {
        return;
    };
    for key in required {
        if table.contains_key(key.as_str()) {
            continue;
        }
        let Some(&child) = properties.get(key) else {
            continue;
        };
        let mut value = stand_in(shape, child);
        if let DeValue::Table(inner) = &mut value {
            self::table(inner, at, shape, child, offsets);
        }
        table.insert(
            Spanned::new(at..at, Cow::Owned(key.clone())),
            Spanned::new(at..at, value),
        );
        offsets.push(at);
    }
    for (key, value) in table.iter_mut() {
        let Some(&child) = properties.get(key.get_ref().as_ref()) else {
            continue;
        };
        let start = value.span().start;
        match value.get_mut() {
            DeValue::Table(inner) => self::table(inner, start, shape, child, offsets),
            DeValue::Array(items) => {
                if let Some(element) = shape.items(child) {
                    for item in items.iter_mut() {
                        let start = item.span().start;
                        if let DeValue::Table(inner) = item.get_mut() {
                            self::table(inner, start, shape, element, offsets);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// An empty value of the shape `node`.
fn stand_in(shape: &Shape, node: NodeId) -> DeValue<'static> {
    let kind = shape.present(node).first().map(|&n| &shape.node(n).kind);
    match kind {
        Some(Kind::String {
            allowed: Some(allowed),
        }) => DeValue::String(Cow::Owned(allowed.first().cloned().unwrap_or_default())),
        Some(Kind::Boolean) => DeValue::Boolean(false),
        Some(Kind::Integer { .. } | Kind::Number) => {
            let (zero, _) = DeValue::parse_recoverable("0");
            zero.into_inner()
        }
        Some(Kind::Array { .. }) => DeValue::Array(DeArray::new()),
        Some(Kind::Object { .. }) => DeValue::Table(DeTable::new()),
        _ => DeValue::String(Cow::Borrowed("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formula::{Formula, formula_shape};

    #[test]
    fn missing_required_keys_get_stand_ins_and_the_formula_reads() {
        let text = "description = \"d\"\n[[steps]]\ntitle = \"no id, no description\"\n[[steps]]\nid = \"b\"\ndescription = \"B\"\n[[rules]]\nid = \"r\"\n";
        let (mut document, errors) = DeTable::parse_recoverable(text);
        assert!(errors.is_empty());
        let offsets = fill(&mut document, formula_shape());
        let formula = Formula::from_document(document).expect("a formula with stand-ins");
        assert_eq!(formula.name(), "");
        assert_eq!(formula.steps.len(), 2);
        assert_eq!(formula.steps[0].id(), "");
        assert_eq!(formula.steps[0].id.span(), offsets[1]..offsets[1]);
        assert_eq!(formula.steps[1].id(), "b");
        assert_eq!(formula.rules.len(), 1);
        // The top level, the first step, the rule.
        assert_eq!(offsets.len(), 3, "{offsets:?}");
        assert_eq!(offsets[0], 0);
    }
}
