//! The step DAG drawn for people: as layers of text, as Graphviz DOT, or
//! as a Mermaid flowchart (which forges render in markdown).
//!
//! A step's layer is one more than the deepest step it needs, so every
//! step of a layer can start once the layers above it are done.

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

/// The DAG as text, one line per layer, then each step's needs:
///
/// ```text
/// run-supervisor: 5 steps in 5 layers
///
/// layer 1  preflight
/// layer 2  health-assessment  (needs preflight)
/// ```
pub fn text(formula: &Formula, dag: &StepDag) -> String {
    let layer = layers(formula, dag);
    let depth = layer.iter().max().map_or(0, |d| d + 1);
    let mut out = format!(
        "{}: {} step{} in {} layer{}\n\n",
        formula.name(),
        formula.steps.len(),
        if formula.steps.len() == 1 { "" } else { "s" },
        depth,
        if depth == 1 { "" } else { "s" }
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
            out.push('\n');
        }
    }
    out
}

/// The DAG in Graphviz DOT: `retort graph F --format dot | dot -Tsvg`.
pub fn dot(formula: &Formula, dag: &StepDag) -> String {
    let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box];\n",
        quote(formula.name())
    );
    for &index in dag.order() {
        let step = &formula.steps[index];
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\"];",
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
/// reserves); labels escape quotes as `#quot;`.
pub fn mermaid(formula: &Formula, dag: &StepDag) -> String {
    let label = |text: &str| text.replace('"', "#quot;");
    let mut out = String::from("flowchart TD\n");
    for &index in dag.order() {
        let step = &formula.steps[index];
        let _ = writeln!(
            out,
            "  s{index}[\"{}<br/>{}\"]",
            label(step.id()),
            label(step.title())
        );
    }
    for &index in dag.order() {
        for need in dag.needs(index) {
            let _ = writeln!(out, "  s{need} --> s{index}");
        }
    }
    out
}
