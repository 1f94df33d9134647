//! `retort rerun RUN_ID [--from STEP | --only STEP]`: a past run's
//! formula run again with its saved snapshot, reusing the steps not asked
//! for (see `retort_runner::rerun`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use retort_formula::formula::Backend;
use retort_runner::rerun::{Rerun, formula_of};
use retort_runner::state::StateDir;

use crate::commands::run::{RunArgs, run};
use crate::invalid;

/// What `retort rerun` was asked.
#[derive(Debug)]
pub struct RerunArgs {
    /// The run to rerun.
    pub run_id: String,
    /// `--from STEP`.
    pub from: Option<String>,
    /// `--only STEP`.
    pub only: Option<String>,
    /// `--agent`.
    pub agent: Option<String>,
    /// `--backend`.
    pub backend: Option<Backend>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--var`s.
    pub vars: BTreeMap<String, String>,
    /// `--quiet`.
    pub quiet: bool,
}

/// Reruns run `RUN_ID`. Returns the exit status, as `retort run` does; 2
/// when the run cannot be rerun as asked (no such run or step, or a step
/// the one asked for needs did not end done there).
pub async fn rerun(args: RerunArgs) -> u8 {
    let state = match StateDir::resolve(args.state_dir.as_deref()) {
        Ok(state) => state,
        Err(error) => return invalid(&error.to_string()),
    };
    let formula = match formula_of(&state, &args.run_id) {
        Ok(formula) => formula,
        Err(error) => return invalid(&error.to_string()),
    };
    run(RunArgs {
        formula,
        agent: args.agent,
        ready: None,
        backend: args.backend,
        state_dir: Some(state.path().to_path_buf()),
        phase_file: None,
        dry_run: false,
        json: false,
        vars: args.vars,
        // The past run's snapshot: no preflight.
        snapshot: Some(state.runs_dir().join(&args.run_id).join("snapshot.json")),
        quiet: args.quiet,
        rerun: Some(Rerun {
            of: args.run_id,
            from: args.from,
            only: args.only,
        }),
    })
    .await
}
