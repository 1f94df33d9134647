//! `retort run --dry-run --format json`: the plan as one JSON object.

use serde_json::json;

use retort_runner::run::{Plan, RunOptions};

use super::history::print_json;

/// Prints what a run of `plan` would do: run id, backend, sessions and
/// their agent commands, paths, health, the gate's decision, findings,
/// actions, and each step in topological order with its prompt's size.
/// Returns the exit status (0).
pub fn print(plan: &Plan, options: &RunOptions) -> u8 {
    let formula = &plan.loaded.formula;
    let steps: Vec<_> = plan
        .dag
        .order()
        .iter()
        .enumerate()
        .map(|(position, &index)| {
            let step = &formula.steps[index];
            json!({
                "id": step.id(),
                "title": step.title(),
                "needs": plan.dag.needs(index).into_iter().map(|i| formula.steps[i].id()).collect::<Vec<_>>(),
                "timeout_ms": u64::try_from(step.timeout().as_millis()).unwrap_or(u64::MAX),
                "prompt_bytes": plan.prompts.get(position).map_or(0, |p| p.text.len()),
            })
        })
        .collect();
    print_json(&json!({
        "formula": formula.name(),
        "formula_path": plan.loaded.path,
        "run_id": plan.run_id,
        "backend": plan.backend,
        "sessions": plan.sessions.iter().map(|s| json!({
            "name": s.name,
            "model": s.model,
            "agent_command": s.agent_command,
        })).collect::<Vec<_>>(),
        "state_dir": options.state.path(),
        "run_dir": plan.run_dir.path(),
        "phase_file": plan.phase_file,
        "journal_dir": plan.journal_dir,
        "health": plan.snapshot.health_summary(),
        "gate": plan.decision.gate,
        "findings": plan.decision.findings,
        "actions": plan.decision.actions,
        "problems": plan.decision.problems,
        "steps": steps,
        "dry_run": true,
    }))
}
