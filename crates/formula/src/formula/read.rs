//! Reading a formula from a parsed TOML document: [`Formula::from_document`],
//! whose steps, for a formula of [`PARALLEL_STEPS`] or more, are read in
//! parts on every core, with the error serde would meet first in the file.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Formula, Step};

impl Formula {
    /// The formula in a parsed TOML document, as serde reads it: the same
    /// as `Formula::deserialize(Deserializer::from(document))`, with the
    /// steps of a formula of [`PARALLEL_STEPS`] or more read on every core.
    ///
    /// # Errors
    /// The first value that does not fit the model. Read on one core, that
    /// is the first serde meets (top-level keys in alphabetical order);
    /// on several, the first in the file among those the parts meet.
    pub fn from_document(document: Spanned<DeTable<'_>>) -> Result<Formula, toml::de::Error> {
        let many = document
            .get_ref()
            .get("steps")
            .and_then(|steps| steps.get_ref().as_array())
            .is_some_and(|steps| steps.len() >= PARALLEL_STEPS);
        let parts = match many {
            true => crate::cores::count(),
            false => 1,
        };
        Formula::from_document_in(document, parts)
    }

    /// [`Formula::from_document`], its steps read in `parts` parts, each on
    /// its own thread.
    fn from_document_in(
        mut document: Spanned<DeTable<'_>>,
        parts: usize,
    ) -> Result<Formula, toml::de::Error> {
        let whole = |document| Formula::deserialize(toml::de::Deserializer::from(document));
        if parts < 2 {
            return whole(document);
        }
        let Some((key, steps)) = document.get_mut().remove_entry("steps") else {
            return whole(document);
        };
        if !steps.get_ref().is_array() {
            // Not a list: serde says so, as it would have.
            document.get_mut().insert(key, steps);
            return whole(document);
        }
        let span = steps.span();
        let DeValue::Array(steps) = steps.into_inner() else {
            return whole(document);
        };
        let size = steps.len().div_ceil(parts).max(1);
        let mut items = steps.into_iter();
        let runs: Vec<Vec<Spanned<DeValue<'_>>>> = std::iter::from_fn(|| {
            let run: Vec<_> = items.by_ref().take(size).collect();
            (!run.is_empty()).then_some(run)
        })
        .collect();
        let (head, runs) = std::thread::scope(|scope| {
            let handles: Vec<_> = runs
                .into_iter()
                .map(|run| scope.spawn(|| steps_of(key.clone(), span.clone(), run)))
                .collect();
            let head = whole(document);
            let runs: Vec<_> = handles.into_iter().map(crate::cores::join).collect();
            (head, runs)
        });
        let mut steps = Vec::new();
        let mut first_error = head.as_ref().err().cloned();
        for run in runs {
            match run {
                Ok(run) => steps.extend(run),
                Err(error) => first_error = Some(earlier(first_error, error)),
            }
        }
        match (head, first_error) {
            (Ok(mut formula), None) => {
                formula.steps = steps;
                Ok(formula)
            }
            (_, Some(error)) => Err(error),
            (Err(error), None) => Err(error),
        }
    }
}

/// Formulas with at least this many steps are read and checked on every
/// core (steps read by [`Formula::from_document`], DAG and templates checked
/// by `retort_check::check`); for fewer, starting threads costs more than it
/// saves.
pub const PARALLEL_STEPS: usize = 512;

/// Of an error found so far and another, the one that points earlier
/// into the file.
fn earlier(first: Option<toml::de::Error>, other: toml::de::Error) -> toml::de::Error {
    let at = |error: &toml::de::Error| error.span().map_or(usize::MAX, |span| span.start);
    match first {
        Some(first) if at(&first) <= at(&other) => first,
        _ => other,
    }
}

/// Some `[[steps]]` entries, read as serde reads them inside a formula
/// (`key` and `span` are those of the formula's `steps`).
fn steps_of<'i>(
    key: Spanned<std::borrow::Cow<'i, str>>,
    span: std::ops::Range<usize>,
    items: Vec<Spanned<DeValue<'i>>>,
) -> Result<Vec<Step>, toml::de::Error> {
    #[derive(Deserialize)]
    struct Steps {
        steps: Vec<Step>,
    }
    let mut table = DeTable::new();
    table.insert(
        key,
        Spanned::new(span, DeValue::Array(items.into_iter().collect())),
    );
    Steps::deserialize(toml::de::Deserializer::from(Spanned::new(0..0, table))).map(|s| s.steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formula_text(steps: usize, bad_timeouts: &[usize]) -> String {
        let mut text = String::from("name = \"n\"\nmodel = \"m\"\n[vars]\nA = 1\n");
        for i in 0..steps {
            let timeout = if bad_timeouts.contains(&i) {
                "soon"
            } else {
                "5m"
            };
            text.push_str(&format!(
                "[[steps]]\nid = \"s{i}\"\ndescription = \"step {i}\"\ntimeout = \"{timeout}\"\nneeds = [\"s0\"]\n"
            ));
        }
        text
    }

    fn read(text: &str, parts: usize) -> String {
        let (document, errors) = DeTable::parse_recoverable(text);
        assert!(errors.is_empty());
        format!("{:?}", Formula::from_document_in(document, parts))
    }

    #[test]
    fn steps_read_in_parts_are_the_steps_read_at_once() {
        let text = formula_text(50, &[]);
        let whole = read(&text, 1);
        assert!(whole.starts_with("Ok("), "{whole}");
        assert!(whole.contains("\"s49\""));
        for parts in [2, 3, 7, 50, 80] {
            assert_eq!(read(&text, parts), whole, "{parts} parts");
        }
    }

    #[test]
    fn a_bad_value_in_any_part_is_the_error() {
        // One bad value: the same error, however the steps are cut.
        let text = formula_text(50, &[37]);
        let whole = read(&text, 1);
        assert!(whole.contains("soon"), "{whole}");
        for parts in [2, 3, 7] {
            assert_eq!(read(&text, parts), whole, "{parts} parts");
        }
        // Several: the first in the file.
        let text = formula_text(50, &[45, 12, 30]);
        let (document, _) = DeTable::parse_recoverable(&text);
        let error = Formula::from_document_in(document, 3).err();
        let at = error.and_then(|e| e.span()).map(|s| s.start);
        let step_12 = text.find("id = \"s12\"");
        assert!(at > step_12 && at < text.find("id = \"s13\""), "{at:?}");
    }
}
