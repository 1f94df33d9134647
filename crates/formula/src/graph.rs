//! The step DAG drawn for people: as layers of text, as Graphviz DOT, or
//! as a Mermaid flowchart (which forges render in markdown).
//!
//! A step's layer is one more than the deepest step it needs, so every
//! step of a layer can start once the layers above it are done: the text
//! drawing says how many run at once, and each step's session (when there
//! are several), `when` condition and retries; the DOT and Mermaid
//! drawings carry the same notes in each step's box ([`notes`]), and draw
//! a step with a `when` dashed.

use std::fmt::Write as _;

use crate::dag::StepDag;
use crate::formula::Formula;

/// The layer of each step (indexed like `formula.steps`), from 0.
pub fn layers(formula: &Formula, dag: &StepDag) -> Vec<usize> {
    let mut layer = vec![0; formula.steps.len()];
    for &index in dag.order() {
        layer[index] = dag
            .needs(index)
            .into_iter()
            .map(|need| layer[need] + 1)
            .max()
            .unwrap_or(0);
    }
    layer
}

/// What each step's box says besides its id and title (indexed like
/// `formula.steps`): `session N` (`session NAME, N` for a named one; only
/// when the steps run in more than one session), `when EXPR` (its
/// whitespace folded to single spaces), `retries N`.
pub fn notes(formula: &Formula, dag: &StepDag) -> Vec<Vec<String>> {
    let sessions = crate::sessions::plan_sessions(formula, dag);
    let several = sessions.iter().any(|&s| s > 0);
    let mut notes = vec![Vec::new(); formula.steps.len()];
    for (position, &index) in dag.order().iter().enumerate() {
        let step = &formula.steps[index];
        let mine = &mut notes[index];
        if several {
            let number = sessions[position] + 1;
            mine.push(match step.session() {
                Some(name) => format!("session {name}, {number}"),
                None => format!("session {number}"),
            });
        }
        if let Some(when) = step.when() {
            mine.push(format!(
                "when {}",
                when.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
        if step.retries > 0 {
            mine.push(format!("retries {}", step.retries));
        }
    }
    notes
}

/// The DAG as text, one line per layer, then each step's needs:
///
/// ```text
/// run-supervisor: 5 steps in 5 layers, one at a time, 1 session, on_failure = stop
///
/// layer 1  preflight
/// layer 2  health-assessment  (needs preflight)
/// ```
pub fn text(formula: &Formula, dag: &StepDag) -> String {
    let layer = layers(formula, dag);
    let depth = layer.iter().max().map_or(0, |d| d + 1);
    let sessions = crate::sessions::plan_sessions(formula, dag);
    let mut session_of = vec![0; formula.steps.len()];
    for (position, &index) in dag.order().iter().enumerate() {
        session_of[index] = sessions[position];
    }
    let session_count = sessions.iter().max().map_or(0, |s| s + 1);
    let at_once = match formula.max_parallel() {
        1 => "one at a time".to_string(),
        n => format!("up to {n} at once"),
    };
    let mut out = format!(
        "{}: {} step{} in {} layer{}, {at_once}, {} session{}, on_failure = {}\n\n",
        formula.name(),
        formula.steps.len(),
        if formula.steps.len() == 1 { "" } else { "s" },
        depth,
        if depth == 1 { "" } else { "s" },
        session_count,
        if session_count == 1 { "" } else { "s" },
        formula.on_failure.as_str(),
    );
    for current in 0..depth {
        let members: Vec<usize> = dag
            .order()
            .iter()
            .copied()
            .filter(|&i| layer[i] == current)
            .collect();
        for (k, &index) in members.iter().enumerate() {
            let label = if k == 0 {
                format!("layer {}", current + 1)
            } else {
                String::new()
            };
            let step = &formula.steps[index];
            let needs: Vec<&str> = dag
                .needs(index)
                .into_iter()
                .map(|n| formula.steps[n].id())
                .collect();
            let _ = write!(out, "{label:<9}{}  {}", step.id(), step.title());
            if !needs.is_empty() {
                let _ = write!(out, "  (needs {})", needs.join(", "));
            }
            if session_count > 1 {
                let session = match step.session() {
                    Some(name) => format!("{name}, {}", session_of[index] + 1),
                    None => (session_of[index] + 1).to_string(),
                };
                let _ = write!(out, "  [session {session}]");
            }
            if let Some(when) = step.when() {
                let _ = write!(
                    out,
                    "  when {}",
                    when.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
            if step.retries > 0 {
                let _ = write!(out, "  retries {}", step.retries);
            }
            out.push('\n');
        }
    }
    out
}

/// The DAG in Graphviz DOT: `retort graph F --format dot | dot -Tsvg`.
/// Each box holds the step's id, title and [`notes`], one a line; a step
/// with a `when` is dashed.
pub fn dot(formula: &Formula, dag: &StepDag) -> String {
    let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    let notes = notes(formula, dag);
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box];\n",
        quote(formula.name())
    );
    for &index in dag.order() {
        let step = &formula.steps[index];
        let lines: String = notes[index]
            .iter()
            .map(|note| format!("\\n{}", quote(note)))
            .collect();
        let dashed = match step.when() {
            Some(_) => ", style=dashed",
            None => "",
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}{lines}\"{dashed}];",
            quote(step.id()),
            quote(step.id()),
            quote(step.title())
        );
    }
    for &index in dag.order() {
        for need in dag.needs(index) {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                quote(formula.steps[need].id()),
                quote(formula.steps[index].id())
            );
        }
    }
    out.push_str("}\n");
    out
}

/// The DAG as a Mermaid flowchart, ready for a fenced `mermaid` block.
/// Node ids are `s0`, `s1`, … (step ids may hold characters Mermaid
/// reserves); each box holds the step's id, title and [`notes`], one a
/// line; labels escape `"`, `&`, `<` and `>` as Mermaid's entity codes
/// (`#quot;`, `#amp;`, `#lt;`, `#gt;`). A step with a `when` is dashed
/// (class `when`).
pub fn mermaid(formula: &Formula, dag: &StepDag) -> String {
    let label = |text: &str| {
        text.replace('&', "#amp;")
            .replace('"', "#quot;")
            .replace('<', "#lt;")
            .replace('>', "#gt;")
    };
    let notes = notes(formula, dag);
    let mut out = String::from("flowchart TD\n");
    let mut conditional = Vec::new();
    for &index in dag.order() {
        let step = &formula.steps[index];
        let lines: String = notes[index]
            .iter()
            .map(|note| format!("<br/>{}", label(note)))
            .collect();
        let _ = writeln!(
            out,
            "  s{index}[\"{}<br/>{}{lines}\"]",
            label(step.id()),
            label(step.title())
        );
        if step.when().is_some() {
            conditional.push(format!("s{index}"));
        }
    }
    for &index in dag.order() {
        for need in dag.needs(index) {
            let _ = writeln!(out, "  s{need} --> s{index}");
        }
    }
    if !conditional.is_empty() {
        out.push_str("  classDef when stroke-dasharray: 5 5\n");
        let _ = writeln!(out, "  class {} when", conditional.join(","));
    }
    out
}
