//! A run's plan: everything decided before anything is started.
//!
//! [`prepare`] checks the formula (every problem, `--var`s included), takes
//! the preflight snapshot (or reads a saved one), previews the decide phase
//! against a read-only view of the run history, and renders every prompt
//! and agent command. It writes nothing; `retort render` and
//! `retort run --dry-run` stop there, and [`crate::run::execute`] carries
//! the plan out.
//!
//! Here: what a plan holds ([`RunOptions`] in, [`Plan`] and its
//! [`SessionPlan`]s out). Beside it: preparing one (`prepare`) and planning
//! its agent sessions (`sessions`).

mod prepare;
mod sessions;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use retort_preflight::Snapshot;

use crate::claim::Claim;
use crate::run::RunError;
use crate::state::{RunDir, StateDir};
use retort_agent::profile::Profile;
use retort_agent::ready::Readiness;
use retort_agent::session::TmuxServer;
use retort_decide::decide::Decision;
use retort_decide::ruleset::{Evaluation, RuleSet};
use retort_formula::dag::StepDag;
use retort_formula::formula::{Backend, LoadedFormula};
use retort_os::interrupt::Interrupt;
use retort_prompt::context::ContextFile;
use retort_prompt::prompt::{Prompt, RunInfo};

pub use prepare::{PREFLIGHT_GRACE, prepare, prepare_run, read_snapshot};

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The formula file.
    pub formula: PathBuf,
    /// The agent command from `--agent`, overriding the formula's.
    pub agent: Option<String>,
    /// The backend from `--backend`, overriding the formula's.
    pub backend: Option<Backend>,
    /// The text the `--agent` command's screen shows once it is ready
    /// (`--ready`); see [`retort_agent::ready`]. Ignored without `agent`.
    pub ready: Option<String>,
    /// `--var NAME=VALUE` values.
    pub vars: BTreeMap<String, String>,
    /// Where state goes.
    pub state: StateDir,
    /// The phase file; default `STATE/FORMULA.phase`.
    pub phase_file: Option<PathBuf>,
    /// The working directory: context files are read from here and the agent starts here.
    pub cwd: PathBuf,
    /// The tmux server to use.
    pub tmux: TmuxServer,
    /// Preflight settings, before the formula's `[preflight]` table is laid
    /// over them (see [`retort_preflight::Config::configure`]).
    pub preflight: retort_preflight::Config,
    /// A directory put first on the session's `PATH`, so that the agent
    /// finds this `retort` (normally the directory of the running binary).
    pub bin_dir: Option<PathBuf>,
    /// A saved `snapshot.json` to use instead of a live preflight
    /// (`--snapshot`): how a past run is replayed.
    pub snapshot: Option<PathBuf>,
    /// `retort rerun`: the run this one reruns, and from which step.
    pub rerun: Option<crate::rerun::Rerun>,
    /// SIGINT, SIGTERM and SIGHUP of retort, as the run listens for them
    /// in every phase ([`Interrupt::listen`]); [`Interrupt::never`] for a
    /// run that leaves them their default action.
    pub interrupt: Interrupt,
}

/// One agent session of a run: consecutive steps on the same model, with
/// the same tools.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    /// The tmux session's name: `retort-FORMULA-RUN_ID`, then `…-2`, `…-3`
    /// for the sessions after a change of model.
    pub name: String,
    /// The model, if any.
    pub model: Option<String>,
    /// The rendered agent command.
    pub agent_command: String,
    /// The positions (in topological order) of its steps.
    pub steps: Range<usize>,
    /// What retort knows of its agent CLI, and grants it.
    pub profile: Profile,
}

/// Everything decided before anything is started.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The formula.
    pub loaded: LoadedFormula,
    /// Its DAG.
    pub dag: StepDag,
    /// The value of every declared var.
    pub vars: BTreeMap<String, String>,
    /// The preflight snapshot.
    pub snapshot: Snapshot,
    /// The formula's rules, actions and gate, compiled.
    pub rules: Arc<RuleSet>,
    /// The rules evaluated against the snapshot.
    pub evaluation: Evaluation,
    /// The decision as the history stands now (a preview: [`crate::run::execute`]
    /// decides again, inside the history's transaction, and acts on it).
    pub decision: Decision,
    /// The `[context] files` read.
    pub context_files: Vec<ContextFile>,
    /// What templates know of the run.
    pub run_info: RunInfo,
    /// Each step's prompt, in topological order, rendered with the preview
    /// decision; empty from [`prepare_run`] (a run renders its prompts when
    /// its gate opens).
    pub prompts: Vec<Prompt>,
    /// The agent sessions, in order (one unless steps change model).
    pub sessions: Vec<SessionPlan>,
    /// What runs the agent.
    pub backend: Backend,
    /// How a new session's agent is known to be ready for its first prompt
    /// (tmux backend).
    pub readiness: Readiness,
    /// The pause between pasting a prompt and pressing Enter.
    pub submit_delay: Duration,
    /// Warnings (problems that do not stop the run, missing context files).
    pub warnings: Vec<String>,
    /// The run id.
    pub run_id: String,
    /// The start time (UTC).
    pub started_at: DateTime<Utc>,
    /// The run directory (not created by [`prepare`]).
    pub run_dir: RunDir,
    /// The phase file.
    pub phase_file: PathBuf,
    /// The journal directory.
    pub journal_dir: PathBuf,
    /// The steps this run does not run but takes from the run it reruns,
    /// by id, with their outcome and output there.
    pub reused: BTreeMap<String, retort_decide::condition::StepValue>,
    /// The run this one reruns (`retort rerun`), if any.
    pub rerun_of: Option<String>,
    /// The run's claim on its formula (the run lock, what recovery did),
    /// taken by [`prepare_run`] before the preflight; none from
    /// [`prepare`], which claims nothing.
    pub claim: Option<Arc<Claim>>,
}

impl Plan {
    /// The prompt of step `id`.
    ///
    /// # Errors
    /// [`RunError::UnknownStep`] listing the steps there are.
    pub fn prompt(&self, id: &str) -> Result<&Prompt, RunError> {
        self.prompts
            .iter()
            .find(|p| p.step == id)
            .ok_or_else(|| RunError::UnknownStep {
                formula: self.loaded.formula.name().to_string(),
                step: id.to_string(),
                known: self
                    .prompts
                    .iter()
                    .map(|p| p.step.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}
