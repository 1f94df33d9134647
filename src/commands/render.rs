//! `retort render`: every step's prompt, as a run would send it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use retort_runner::state::StateDir;

use super::{options, prepare};
use crate::invalid;

/// Prints the prompts of `formula` (only `step`'s, when given) under
/// `==> step ID: TITLE` lines, against `snapshot` when given, else a live
/// preflight. Findings are judged against the run history of `state_dir`
/// (read, never written). Writes nothing. Returns the exit status.
pub async fn render(
    formula: PathBuf,
    step: Option<String>,
    vars: BTreeMap<String, String>,
    snapshot: Option<PathBuf>,
    state_dir: Option<PathBuf>,
) -> u8 {
    // Without a state directory there is no history: every finding is new.
    let state = StateDir::resolve(state_dir.as_deref()).unwrap_or_else(|_| StateDir::placeholder());
    let options = options(formula, None, state, None, vars, snapshot);
    let plan = match prepare(&options, true, false).await {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let prompts = match &step {
        Some(id) => match plan.prompt(id) {
            Ok(prompt) => vec![prompt],
            Err(error) => return invalid(&error.to_string()),
        },
        None => plan.prompts.iter().collect(),
    };
    let mut out = String::new();
    for (i, prompt) in prompts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("==> step {}: {}\n", prompt.step, prompt.title));
        out.push_str(&prompt.text);
        if !prompt.text.ends_with('\n') {
            out.push('\n');
        }
    }
    crate::out(&out);
    0
}
