//! `retort rerun RUN_ID [--from STEP | --only STEP]`: a new run of a past
//! run's formula, with its saved snapshot, that runs `STEP` and its
//! descendants again (`--only`: `STEP` alone) and takes every other step's
//! outcome and output from the past run.
//!
//! In: the past run's directory (`run.json` for the formula file and the
//! steps' outcomes, `steps/ID.output` for their outputs, `snapshot.json`).
//! Out: [`Rerun::reused`], the steps the new run does not run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;

use retort_decide::condition::StepValue;
use retort_formula::dag::StepDag;
use retort_formula::formula::Formula;
use retort_prompt::prompt::dag_ancestors;

use crate::run::RunError;
use crate::state::{RunDir, StateDir};

/// What `retort rerun` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerun {
    /// The run to rerun.
    pub of: String,
    /// Run this step and its descendants again (default: every step).
    pub from: Option<String>,
    /// Run only this step again.
    pub only: Option<String>,
}

/// The parts of a past run's `run.json` a rerun reads.
#[derive(Debug, Deserialize)]
struct PastRun {
    formula_path: Option<PathBuf>,
    #[serde(default)]
    steps: Vec<PastStep>,
}

#[derive(Debug, Deserialize)]
struct PastStep {
    id: String,
    outcome: String,
}

/// The formula file of run `run_id` (from its `run.json`).
///
/// # Errors
/// [`RunError::Rerun`] when the run, or its `run.json`, is missing, or
/// the run was made before retort recorded formula files.
pub fn formula_of(state: &StateDir, run_id: &str) -> Result<PathBuf, RunError> {
    past(state, run_id)?.formula_path.ok_or_else(|| RunError::Rerun {
        run: run_id.to_string(),
        reason: "its run.json does not name the formula file (it is older than `retort rerun`); run `retort run FORMULA --snapshot RUN/snapshot.json` instead".to_string(),
    })
}

fn past(state: &StateDir, run_id: &str) -> Result<PastRun, RunError> {
    let fail = |reason: String| RunError::Rerun {
        run: run_id.to_string(),
        reason,
    };
    let path = state.runs_dir().join(run_id).join("run.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        fail(format!(
            "cannot read {}: {e}; `ls {}` lists the runs kept",
            path.display(),
            state.runs_dir().display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("{} is not a run summary: {e}", path.display())))
}

impl Rerun {
    /// The steps the new run takes from the past one: all but the step
    /// asked for and (without `--only`) its descendants, each with its
    /// outcome and output there.
    ///
    /// # Errors
    /// [`RunError::Rerun`] when the step is not in the formula, or a step
    /// it needs did not end done or skipped in the past run (rerun from
    /// that one instead).
    pub fn reused(
        &self,
        state: &StateDir,
        formula: &Formula,
        dag: &StepDag,
    ) -> Result<BTreeMap<String, StepValue>, RunError> {
        let fail = |reason: String| RunError::Rerun {
            run: self.of.clone(),
            reason,
        };
        let past = past(state, &self.of)?;
        let Some(target) = self.only.as_ref().or(self.from.as_ref()) else {
            return Ok(BTreeMap::new());
        };
        let Some(index) = formula.steps.iter().position(|s| s.id() == target) else {
            let known: Vec<&str> = formula.steps.iter().map(|s| s.id()).collect();
            return Err(fail(format!(
                "formula `{}` has no step `{target}`; its steps are: {}",
                formula.name(),
                known.join(", ")
            )));
        };
        let ancestors = dag_ancestors(dag);
        let again: BTreeSet<usize> = match &self.only {
            Some(_) => BTreeSet::from([index]),
            None => (0..formula.steps.len())
                .filter(|&i| i == index || ancestors[i].contains(&index))
                .collect(),
        };
        let outcomes: BTreeMap<&str, &str> = past
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.outcome.as_str()))
            .collect();
        for &need in &ancestors[index] {
            let id = formula.steps[need].id();
            match outcomes.get(id) {
                Some(&"done" | &"skipped") => {}
                Some(outcome) => {
                    return Err(fail(format!(
                        "step `{target}` needs `{id}`, which ended {outcome} in that run: rerun with --from {id}"
                    )));
                }
                None => {
                    return Err(fail(format!(
                        "step `{target}` needs `{id}`, which that run does not record: rerun with --from {id}"
                    )));
                }
            }
        }
        let run = RunDir::new(state.runs_dir().join(&self.of));
        Ok(formula
            .steps
            .iter()
            .enumerate()
            .filter(|(i, _)| !again.contains(i))
            .map(|(_, step)| {
                let outcome = outcomes.get(step.id()).copied().unwrap_or("skipped");
                let value = StepValue {
                    outcome: outcome.to_string(),
                    output: retort_agent::output::read(&run, step.id()),
                };
                (step.id().to_string(), value)
            })
            .collect())
    }
}
