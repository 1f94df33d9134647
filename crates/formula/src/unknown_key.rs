//! Unknown keys, judged the way cargo judges unused manifest keys: a key
//! that is a likely typo of one the table has (`need` for `needs`) is an
//! error with "did you mean", since what the author meant would otherwise
//! be dropped without a word; any other unknown key (`stack_script`, a
//! `[project]` table, keys meant for another tool or for the formula's
//! readers) is a warning saying it is ignored. `retort check --deny
//! warnings` refuses those too.
//!
//! A few keys from neighbouring formula dialects get a hint of their own:
//! `formula = "…"` (gastown's name key) is `name`, and `allowed_tools` /
//! `disallowed_tools` at the top level belong in `[agent]`.

use std::ops::Range;

use crate::diagnostic::{Problem, span};

/// How the structure check names the root table.
pub const TOP_LEVEL: &str = "the top level";

/// The problem for unknown key `key` in table `table` (as a reader names
/// it: "the top level", `[[steps]] "report"`), whose known keys are
/// `known`, at byte range `place` of the formula.
pub fn problem(key: &str, known: &[&str], table: &str, place: Range<usize>) -> Problem {
    let error = |help: String| Problem::UnknownKey {
        key: key.to_string(),
        table: table.to_string(),
        span: span(place.clone()),
        help,
    };
    if table == TOP_LEVEL
        && let Some(help) = dialect_hint(key)
    {
        return error(help);
    }
    if let Some(guess) = typo_of(key, known.iter().copied()) {
        return error(format!("did you mean `{guess}`?"));
    }
    let help = if table == TOP_LEVEL {
        "retort does not read it; keep a formula's own data under [meta], which templates see as `meta`, or remove it".to_string()
    } else if known.is_empty() {
        "this table takes no keys; remove it".to_string()
    } else {
        format!(
            "retort does not read it; the keys {table} takes are: {}",
            known.join(", ")
        )
    };
    Problem::IgnoredKey {
        key: key.to_string(),
        table: table.to_string(),
        span: span(place),
        help,
    }
}

/// The hint for a top-level key from a neighbouring formula dialect.
fn dialect_hint(key: &str) -> Option<String> {
    match key {
        "formula" => Some(
            "did you mean `name`? retort names a formula with `name = \"…\"` (`formula = \"…\"` is another engine's spelling)".to_string(),
        ),
        "allowed_tools" | "disallowed_tools" => Some(format!(
            "did you mean `[agent] {key}`? the formula's tool lists live in its [agent] table (and a step's in its [[steps]] entry)"
        )),
        _ => None,
    }
}

/// The candidate `word` is a likely typo of: the nearest by optimal string
/// alignment distance (an insertion, deletion, substitution or swap of two
/// neighbours each counts 1), when that distance is at most a quarter of
/// `word`'s length (and at least 1). Tighter than rustc's third, so that a
/// different key sharing a long prefix (`disallowed_commands`,
/// `timeout_minutes`) is not taken for a typo.
pub fn typo_of<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 4).max(1);
    candidates
        .into_iter()
        .map(|candidate| (strsim::osa_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: &[&str] = &[
        "allowed_tools",
        "description",
        "disallowed_tools",
        "id",
        "model",
        "needs",
        "raw",
        "timeout",
        "title",
    ];

    fn judged(key: &str, known: &[&str], table: &str) -> (bool, String) {
        let problem = problem(key, known, table, 0..1);
        let help = miette::Diagnostic::help(&problem)
            .map(|h| h.to_string())
            .unwrap_or_default();
        (problem.is_error(), format!("{problem}: {help}"))
    }

    #[test]
    fn typos_are_errors_and_other_keys_are_ignored_with_a_warning() {
        for (typo, meant) in [
            ("need", "needs"),
            ("descripton", "description"),
            ("tittle", "title"),
            ("modle", "model"),
            ("allowed_tool", "allowed_tools"),
        ] {
            let (error, text) = judged(typo, STEP, "[[steps]] \"a\"");
            assert!(error, "{text}");
            assert!(text.contains(&format!("did you mean `{meant}`?")), "{text}");
        }
        for other in [
            "stack_script",
            "timeout_minutes",
            "disallowed_commands",
            "tools",
            "depends_on",
        ] {
            let (error, text) = judged(other, STEP, "[[steps]] \"a\"");
            assert!(!error, "{text}");
            assert!(
                text.starts_with(&format!(
                    "unknown key `{other}` in [[steps]] \"a\" is ignored"
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn neighbouring_dialects_get_their_own_hint() {
        let top = ["name", "description", "agent", "steps"];
        let (error, text) = judged("formula", &top, TOP_LEVEL);
        assert!(error && text.contains("did you mean `name`?"), "{text}");
        let (error, text) = judged("allowed_tools", &top, TOP_LEVEL);
        assert!(error && text.contains("`[agent] allowed_tools`"), "{text}");
        let (error, text) = judged("project", &top, TOP_LEVEL);
        assert!(!error && text.contains("[meta]"), "{text}");
    }
}
