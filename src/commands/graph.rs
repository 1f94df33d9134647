//! `retort graph`: a formula's step DAG, drawn.

use std::path::Path;

use retort_formula::graph;

use crate::EXIT_INVALID;
use crate::cli::GraphFormat;

/// Prints the DAG of the formula at `path` in `format`. Returns the exit
/// status: 0, or 2 when the formula has errors.
pub fn graph(path: &Path, format: GraphFormat) -> u8 {
    let loaded = match retort_check::load(path) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{:?}", miette::Report::new(error));
            return EXIT_INVALID;
        }
    };
    let Ok(dag) = retort_formula::dag::StepDag::check(&loaded.formula) else {
        // `load` has already refused formulas whose steps are no DAG.
        return EXIT_INVALID;
    };
    let text = match format {
        GraphFormat::Text => graph::text(&loaded.formula, &dag),
        GraphFormat::Dot => graph::dot(&loaded.formula, &dag),
        GraphFormat::Mermaid => graph::mermaid(&loaded.formula, &dag),
    };
    crate::out(&text);
    0
}
