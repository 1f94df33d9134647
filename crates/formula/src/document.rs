//! A formula's TOML document: parsed with spans and error recovery, large
//! files on every core.
//!
//! [`parse`] returns exactly what [`DeTable::parse_recoverable`] returns
//! for the same text: the same tables, values and byte spans, the same
//! errors. Below [`PARALLEL_BYTES`] it is that call. Above, the text is cut
//! into one part per core, each cut just before a line that starts with
//! `[[steps]]`, and the parts are parsed at once, their spans moved by the
//! part's offset, and their top-level tables merged.
//!
//! A cut is only right where `[[steps]]` is a table header, not a line
//! inside a multi-line string or array. That needs no lexing up front: a
//! part that parses without error ends outside every string, array and
//! inline table (an unclosed one is an error), so the next part starts
//! where the whole document's parser would be at the start of a line at
//! the top level too. Whatever the parts cannot settle on their own falls
//! back to parsing the whole text on one core: any syntax error (so errors
//! are always the whole document's, never a part's), a top-level key other
//! than `steps` defined in two parts (a duplicate, or a table extended from
//! two places), and a `steps` the later parts cannot append to (the first
//! part wrote `steps = [...]`, or `[steps]`).

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, Error};

/// Texts shorter than this (256 KiB, about 300 steps of typical length) are
/// parsed on one core: below it, starting threads costs more than it saves.
pub const PARALLEL_BYTES: usize = 256 * 1024;

/// The most parts a text is cut into, however many cores there are.
const MAX_PARTS: usize = 16;

/// The line that starts every `[[steps]]` entry; the text is cut before it.
const STEP_HEADER: &str = "\n[[steps]]";

/// Parses `text` as a TOML document, keeping every value's byte span and
/// recovering after errors: the document as far as it could be read, and
/// every syntax error. The same as [`DeTable::parse_recoverable`], on every
/// core (up to 16) for texts of [`PARALLEL_BYTES`] or more.
pub fn parse(text: &str) -> (Spanned<DeTable<'_>>, Vec<Error>) {
    let cores = crate::cores::count();
    let parts = cores.min(text.len() / PARALLEL_BYTES).min(MAX_PARTS);
    parse_in_parts(text, parts)
}

/// [`parse`], cutting `text` into at most `parts` parts.
pub(crate) fn parse_in_parts(text: &str, parts: usize) -> (Spanned<DeTable<'_>>, Vec<Error>) {
    let cuts = cuts(text, parts);
    if cuts.len() > 2
        && let Some(document) = parse_parts(text, &cuts)
    {
        return (document, Vec::new());
    }
    DeTable::parse_recoverable(text)
}

/// The offsets that cut `text` into at most `parts` parts of about equal
/// length, each cut at the start of a `[[steps]]` line; the first is 0 and
/// the last `text.len()`.
fn cuts(text: &str, parts: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    let finder = memchr::memmem::Finder::new(STEP_HEADER);
    for part in 1..parts.max(1) {
        let target = (text.len() / parts * part).max(cuts.last().copied().unwrap_or(0));
        let Some(found) = text
            .get(target..)
            .and_then(|rest| finder.find(rest.as_bytes()))
        else {
            break;
        };
        // After the newline, at the `[[`.
        let cut = target + found + 1;
        if cuts.last().is_some_and(|&last| last < cut) {
            cuts.push(cut);
        }
    }
    cuts.push(text.len());
    cuts.dedup();
    cuts
}

/// Parses each part on its own thread and merges them; `None` when a part
/// has a syntax error or the parts cannot be merged (see the module docs).
fn parse_parts<'i>(text: &'i str, cuts: &[usize]) -> Option<Spanned<DeTable<'i>>> {
    let ranges: Vec<Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
    let (first, rest) = ranges.split_first()?;
    let tables: Vec<Option<DeTable<'i>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rest
            .iter()
            .map(|range| scope.spawn(|| parse_part(text, range.clone())))
            .collect();
        let mut tables = vec![parse_part(text, first.clone())];
        for handle in handles {
            tables.push(crate::cores::join(handle));
        }
        tables
    });
    let mut tables = tables.into_iter();
    let mut root = tables.next()??;
    if root
        .get("steps")
        .is_some_and(|steps| !is_array_of_tables(text, &root, steps))
    {
        return None;
    }
    for table in tables {
        for (key, value) in table? {
            if key.get_ref() != "steps" {
                if root.contains_key(key.get_ref().as_ref()) {
                    return None;
                }
                root.insert(key, value);
                continue;
            }
            if !value.get_ref().is_array() {
                return None;
            }
            match root.get_mut("steps").map(Spanned::get_mut) {
                Some(DeValue::Array(steps)) => {
                    let DeValue::Array(items) = value.into_inner() else {
                        return None;
                    };
                    append(steps, items);
                }
                Some(_) => return None,
                None => {
                    root.insert(key, value);
                }
            }
        }
    }
    Some(Spanned::new(0..0, root))
}

/// Parses `text[range]`; its spans are moved to be offsets into `text`.
fn parse_part(text: &str, range: Range<usize>) -> Option<DeTable<'_>> {
    let part = text.get(range.clone())?;
    let (document, errors) = DeTable::parse_recoverable(part);
    if !errors.is_empty() {
        return None;
    }
    let mut table = document.into_inner();
    if range.start > 0 {
        table = shift_table(table, range.start);
    }
    Some(table)
}

/// Whether the top-level `steps` of `root` was made by `[[steps]]` headers
/// (so that later `[[steps]]` headers append to it), not written as
/// `steps = [...]`: an array whose key stands right after `[[`.
fn is_array_of_tables(text: &str, root: &DeTable<'_>, steps: &Spanned<DeValue<'_>>) -> bool {
    let Some((key, _)) = root.get_key_value("steps") else {
        return false;
    };
    matches!(steps.get_ref(), DeValue::Array(_))
        && text
            .get(..key.span().start)
            .is_some_and(|before| before.trim_end_matches([' ', '\t']).ends_with("[["))
}

/// Appends `items` to `steps`.
fn append<'i>(steps: &mut DeArray<'i>, items: DeArray<'i>) {
    for item in items {
        steps.push(item);
    }
}

/// `table` with every span moved `by` bytes later.
fn shift_table(table: DeTable<'_>, by: usize) -> DeTable<'_> {
    table
        .into_iter()
        .map(|(key, value)| {
            (
                shift(key, by, |k| k),
                shift(value, by, |v| shift_value(v, by)),
            )
        })
        .collect()
}

fn shift_value(value: DeValue<'_>, by: usize) -> DeValue<'_> {
    match value {
        DeValue::Table(table) => DeValue::Table(shift_table(table, by)),
        DeValue::Array(array) => DeValue::Array(
            array
                .into_iter()
                .map(|item| shift(item, by, |v| shift_value(v, by)))
                .collect(),
        ),
        scalar => scalar,
    }
}

fn shift<T>(spanned: Spanned<T>, by: usize, inner: impl FnOnce(T) -> T) -> Spanned<T> {
    let span = spanned.span();
    Spanned::new(span.start + by..span.end + by, inner(spanned.into_inner()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Both parses, as text: `DeTable` has no `PartialEq`, and its `Debug`
    /// shows every key, value and span.
    fn both(text: &str, parts: usize) -> (String, String) {
        (
            format!("{:?}", parse_in_parts(text, parts)),
            format!("{:?}", DeTable::parse_recoverable(text)),
        )
    }

    fn assert_same(text: &str) {
        for parts in 2..=5 {
            let (parallel, serial) = both(text, parts);
            assert_eq!(parallel, serial, "{parts} parts of:\n{text}");
        }
    }

    fn steps(range: std::ops::Range<usize>) -> String {
        range
            .map(|i| {
                format!(
                    "\n[[steps]]\nid = \"s{i}\"\ndescription = \"\"\"\nstep {i}\n\"\"\"\nneeds = [\"s{}\"]\n",
                    i.saturating_sub(1)
                )
            })
            .collect()
    }

    #[test]
    fn a_formula_in_parts_is_the_formula_in_one() {
        let text = format!("name = \"n\"\n[vars]\nA = 1\n{}", steps(0..40));
        assert_same(&text);
        let (document, errors) = parse_in_parts(&text, 4);
        assert!(errors.is_empty());
        let steps = document
            .get_ref()
            .get("steps")
            .and_then(|s| s.get_ref().as_array());
        assert_eq!(steps.map(|s| s.len()), Some(40));
        // A step in the last part points at its own text.
        let last = &steps
            .and_then(|s| s.last())
            .and_then(|s| s.get_ref().get("id"));
        let span = last.map(|id| id.span()).unwrap_or_default();
        assert_eq!(&text[span], "\"s39\"");
    }

    #[test]
    fn tables_after_the_steps_join_the_top_level() {
        let text = format!(
            "name = \"n\"\n{}\n[[rules]]\nid = \"r\"\n[preflight.git]\nrepos = []\n",
            steps(0..20)
        );
        assert_same(&text);
    }

    #[test]
    fn a_steps_header_inside_a_string_is_not_a_cut() {
        let inside = "\n[[steps]]\nid = \"fake\"\n".repeat(30);
        for quote in ["\"\"\"", "'''"] {
            let text = format!(
                "name = \"n\"\n[[steps]]\nid = \"a\"\ndescription = {quote}{inside}{quote}\n{}",
                steps(0..3)
            );
            assert_same(&text);
        }
    }

    #[test]
    fn conflicts_between_parts_are_the_whole_document_s() {
        // A table defined twice: an error, the same one.
        let twice = format!("[vars]\nA = 1\n{}\n[vars]\nB = 2\n", steps(0..20));
        assert_same(&twice);
        assert!(!parse_in_parts(&twice, 2).1.is_empty());
        // One table extended from two places: valid TOML, the same tables.
        let extended = format!(
            "[preflight.docker]\nstats = false\n{}\n[preflight.git]\nrepos = []\n",
            steps(0..20)
        );
        assert_same(&extended);
        assert!(parse_in_parts(&extended, 2).1.is_empty());
        // Steps written inline cannot take `[[steps]]` entries after them,
        // even when the first part, long enough to end just before the
        // first `[[steps]]`, is fine on its own.
        let filler = format!("description = '''{}'''\n", "text ".repeat(400));
        let inline = format!(
            "steps = [{{ id = \"x\", description = \"d\" }}]\n{filler}{}",
            steps(0..4)
        );
        assert_same(&inline);
        assert!(!parse_in_parts(&inline, 2).1.is_empty());
        // Nor can a `[steps]` table.
        let table = format!("[steps]\nx = 1\n{filler}{}", steps(0..4));
        assert_same(&table);
        assert!(!parse_in_parts(&table, 2).1.is_empty());
    }

    #[test]
    fn syntax_errors_are_the_whole_document_s() {
        let text = format!(
            "{}\n[[steps]]\nid = \"bad\ndescription = 'x'\n{}",
            steps(0..10),
            steps(10..20)
        );
        assert_same(&text);
        assert!(!parse_in_parts(&text, 3).1.is_empty());
    }

    #[test]
    fn windows_line_ends_cut_the_same() {
        let text = format!("name = \"n\"\r\n{}", steps(0..30).replace('\n', "\r\n"));
        assert_same(&text);
    }

    /// Lines formulas are made of, including the ones that make a cut
    /// wrong: string openers, tables that conflict, inline steps.
    fn line() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "[[steps]]",
            "[[steps]]",
            "[[steps]]",
            "[[ steps ]]",
            "[[steps]] # c",
            "[steps]",
            "[steps.x]",
            "steps = []",
            "steps = [{ id = \"i\" }]",
            "[vars]",
            "[vars.A]",
            "[preflight.git]",
            "[preflight.docker]",
            "[[rules]]",
            "id = \"a\"",
            "id = \"b\"",
            "x = 1",
            "y = [",
            "]",
            "description = \"\"\"",
            "description = '''",
            "\"\"\"",
            "'''",
            "text {{ x }}",
            "# comment",
            "",
            "\r",
            "name = \"n\"",
        ])
    }

    proptest! {
        #[test]
        fn any_lines_parse_the_same_in_parts(lines in prop::collection::vec(line(), 0..60), parts in 2usize..6) {
            let text = lines.join("\n");
            let (parallel, serial) = both(&text, parts);
            prop_assert_eq!(parallel, serial);
        }
    }
}
