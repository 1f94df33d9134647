//! One module per subcommand, plus what they share.

pub mod approve;
pub mod check;
pub mod completions;
pub mod graph;
pub mod history;
pub mod hook;
pub mod man;
pub mod plan_json;
pub mod preflight;
pub mod proposals;
pub mod reject;
pub mod render;
pub mod report;
pub mod rerun;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod show;
pub mod signal;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;

use retort_agent::session::TmuxServer;
use retort_runner::run::{self as engine_run, Plan, RunError, RunOptions};
use retort_runner::state::StateDir;

use crate::{EXIT_INVALID, invalid};

/// Run options for `formula`, in the current directory, on tmux's default
/// server, with `retort` itself put on the agent's `PATH`; `snapshot` is
/// `--snapshot`.
pub fn options(
    formula: PathBuf,
    agent: Option<String>,
    state: StateDir,
    phase_file: Option<PathBuf>,
    vars: BTreeMap<String, String>,
    snapshot: Option<PathBuf>,
) -> RunOptions {
    // A formula that declares the var `report` gets the report in it.
    let mut vars = vars;
    report::fill_report_var(&formula, &state, &mut vars);
    RunOptions {
        formula,
        agent,
        ready: None,
        backend: None,
        vars,
        state,
        phase_file,
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        tmux: TmuxServer::default(),
        preflight: retort_preflight::Config::default(),
        bin_dir: std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from)),
        snapshot,
        rerun: None,
        interrupt: retort_os::interrupt::Interrupt::never(),
    }
}

/// The state directory of `--state-dir` and the environment, or the exit
/// status for a missing one.
pub fn state_dir(explicit: Option<&std::path::Path>) -> Result<StateDir, u8> {
    StateDir::resolve(explicit).map_err(|error| invalid(&error.to_string()))
}

/// Runs `run::prepare`, printing warnings (unless `quiet`), and turns
/// errors into exit statuses.
pub async fn prepare(options: &RunOptions, placeholder_run: bool, quiet: bool) -> Result<Plan, u8> {
    reported(engine_run::prepare(options, placeholder_run).await, quiet)
}

/// Runs `run::prepare_run` (no prompts rendered: a run renders them when
/// its gate opens), as [`prepare`].
pub async fn prepare_run(options: &RunOptions, quiet: bool) -> Result<Plan, u8> {
    reported(engine_run::prepare_run(options).await, quiet)
}

fn reported(prepared: Result<Plan, RunError>, quiet: bool) -> Result<Plan, u8> {
    match prepared {
        Ok(plan) => {
            if !quiet {
                for warning in &plan.warnings {
                    eprintln!("warning: {warning}");
                }
            }
            Ok(plan)
        }
        Err(RunError::Formula(error)) => {
            eprintln!("{:?}", miette::Report::new(error));
            Err(EXIT_INVALID)
        }
        Err(error @ (RunError::Locked(_) | RunError::Interrupted { .. })) => {
            Err(run::run_error(&error))
        }
        Err(error) => Err(invalid(&error.to_string())),
    }
}
