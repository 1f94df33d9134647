//! A run's plan: everything decided before anything is started.
//!
//! [`prepare`] checks the formula (every problem, `--var`s included), takes
//! the preflight snapshot (or reads a saved one), previews the decide phase
//! against a read-only view of the run history, and renders every prompt
//! and agent command. It writes nothing; `retort render` and
//! `retort run --dry-run` stop there, and [`crate::run::execute`] carries
//! the plan out.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use retort_preflight::Snapshot;

use crate::state::{RunDir, StateDir, new_run_id};
use retort_agent::profile::Profile;
use retort_agent::ready::Readiness;
use retort_agent::session::{DEFAULT_SUBMIT_DELAY, TmuxServer};
use retort_check::check::{self, CheckOptions, Purpose, Ready};
use retort_decide::decide::{self, Decision, history_path};
use retort_decide::ruleset::{Evaluation, RuleSet};
use retort_formula::dag::StepDag;
use retort_formula::formula::{
    Backend, DEFAULT_AGENT_COMMAND, DEFAULT_READY_TIMEOUT, LoadedFormula,
};
use retort_os::paths::file_safe;
use retort_prompt::context::{ContextFile, read_context_files};
use retort_prompt::prompt::{Prompt, RunInfo, opens_session, render_agent_command, render_prompts};

use crate::claim::{Claim, Claimant, interrupted_early};
use crate::phase::{Phase, write_phase_file};
use crate::run::RunError;
use retort_os::interrupt::{Interrupt, Interruption};

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

/// Checks the formula (every problem, `--var` values included, rules too),
/// collects the preflight snapshot (or reads `--snapshot`), evaluates the
/// rules, previews the decision against the run history and renders every
/// prompt and agent command. Writes nothing.
///
/// `placeholder_run` renders `{{ run.* }}` as placeholders, for
/// `retort render`, where no run exists.
///
/// # Errors
/// [`RunError::Formula`] with every problem when the formula has errors;
/// [`RunError::Snapshot`] when `--snapshot` is not a snapshot;
/// [`RunError::Prompt`] when a template fails to render.
pub async fn prepare(options: &RunOptions, placeholder_run: bool) -> Result<Plan, RunError> {
    prepare_with(options, placeholder_run, true, false).await
}

/// [`prepare`] for a run that [`crate::run::execute`] carries out: the
/// same, but no prompt is rendered ([`Plan::prompts`] is empty), and the
/// run claims its formula first ([`Claim::take`]: the run lock, the
/// recovery of dead runs, `PHASE:running`) as soon as the formula names
/// itself, before the preflight. A run renders its prompts once, with the
/// decision it commits, and only when the gate opens; a template that
/// fails to render then fails the run.
///
/// # Errors
/// As [`prepare`], but never [`RunError::Prompt`] for a step's prompt;
/// [`RunError::Locked`] when another run holds the lock; when the claim is
/// taken and the run cannot go on, its phase file says `PHASE:failed` with
/// the error; [`RunError::Interrupted`] when SIGINT, SIGTERM or SIGHUP
/// stopped the preflight (recorded: [`crate::claim::interrupted_early`]).
pub async fn prepare_run(options: &RunOptions) -> Result<Plan, RunError> {
    prepare_with(options, false, false, true).await
}

async fn prepare_with(
    options: &RunOptions,
    placeholder_run: bool,
    render: bool,
    claim: bool,
) -> Result<Plan, RunError> {
    let check_options = CheckOptions {
        vars: options.vars.clone(),
        cwd: options.cwd.clone(),
        purpose: Purpose::Run,
    };
    let begun = check::begin_file(&options.formula, &check_options)?;
    // The preflight starts as soon as the formula says what to collect (and
    // the run has claimed it); the rest of the check (the DAG, templates and
    // rules: CEL compilation, its costly part) starts at once on a thread of
    // its own, beside the claim and the preflight. A formula with errors
    // found before that gets no preflight.
    let preflight = match (&options.snapshot, begun.formula()) {
        (None, Some(formula)) if !begun.has_errors() => {
            let mut preflight = options
                .preflight
                .clone()
                .configure(&formula.preflight, &options.cwd);
            preflight.secret_env.clone_from(&formula.secrets.env);
            Some(preflight)
        }
        _ => None,
    };
    let name = begun
        .formula()
        .filter(|_| claim && !begun.has_errors())
        .map(|formula| formula.name().to_string());
    let finishing = tokio::task::spawn_blocking(move || begun.finish());
    let started_at = Utc::now();
    let run_id = new_run_id(started_at);
    let claimed = match name {
        Some(name) => {
            let phase_file = phase_file_of(options, &name);
            let journal_dir = options.state.journal_dir(&name);
            let who = Claimant {
                formula: &name,
                run_id: &run_id,
                started_at,
                phase_file: &phase_file,
                journal_dir: &journal_dir,
            };
            let taken = Claim::take(&options.state, who).await?;
            Some((Arc::new(taken), name, phase_file, journal_dir))
        }
        _ => None,
    };
    let prepared = prepare_claimed(
        options,
        (finishing, preflight),
        check_options,
        (placeholder_run, render),
        (started_at, run_id.clone()),
        claimed.as_ref().map(|(claim, ..)| Arc::clone(claim)),
    )
    .await;
    let (Err(error), Some((_, name, phase_file, journal_dir))) = (&prepared, &claimed) else {
        return prepared;
    };
    // The claim's `PHASE:running` must not outlive the run.
    let who = Claimant {
        formula: name,
        run_id: &run_id,
        started_at,
        phase_file,
        journal_dir,
    };
    match (error, options.interrupt.received()) {
        (_, Some(signal)) => {
            let (reason, _) = interrupted_early(&options.state, who, signal);
            Err(RunError::Interrupted { signal, reason })
        }
        (error, None) => {
            let reason = retort_os::clean::one_line(
                &failure_reason(error, &options.formula),
                retort_os::clean::REASON_CAP,
            );
            let _ = write_phase_file(phase_file, Phase::Failed, Some(&reason));
            prepared
        }
    }
}

/// Why a run that claimed its formula could not go on, for its phase file:
/// for a formula with errors, the first of them and where to see them all
/// (the count alone tells the factory nothing).
fn failure_reason(error: &RunError, formula: &Path) -> String {
    use retort_formula::diagnostic::FormulaError;
    match error {
        RunError::Formula(FormulaError::Invalid(invalid)) => {
            let first = invalid.problems.iter().find(|p| p.is_error());
            format!(
                "the formula is invalid ({}){}; `retort check {}` shows every problem",
                error,
                first.map(|p| format!(": {p}")).unwrap_or_default(),
                formula.display()
            )
        }
        error => error.to_string(),
    }
}

/// The phase file of a run of formula `name`: `--phase-file`, else
/// `STATE/NAME.phase`.
fn phase_file_of(options: &RunOptions, name: &str) -> PathBuf {
    options
        .phase_file
        .clone()
        .unwrap_or_else(|| options.state.phase_file(name))
}

/// The preflight, racing SIGINT, SIGTERM and SIGHUP: once one comes, the
/// preflight's commands end theirs ([`retort_preflight::collect_until`])
/// and the rest gets [`PREFLIGHT_GRACE`] to finish; none when it did not.
async fn collect(preflight: &retort_preflight::Config, interrupt: &Interrupt) -> Option<Snapshot> {
    tokio::select! {
        snapshot = retort_preflight::collect_until(preflight, interrupt) => Some(snapshot),
        () = async {
            interrupt.wait().await;
            tokio::time::sleep(PREFLIGHT_GRACE).await;
        } => None,
    }
}

/// How long a preflight interrupted by a signal may take to end: its
/// commands' grace (SIGTERM, 2 s, SIGKILL) and a second more.
pub const PREFLIGHT_GRACE: Duration = Duration::from_secs(3);

async fn prepare_claimed(
    options: &RunOptions,
    (finishing, preflight): (
        tokio::task::JoinHandle<check::Checked>,
        Option<retort_preflight::Config>,
    ),
    check_options: CheckOptions,
    (placeholder_run, render): (bool, bool),
    (started_at, run_id): (DateTime<Utc>, String),
    claim: Option<Arc<Claim>>,
) -> Result<Plan, RunError> {
    // Only a run that claimed its formula records an interruption; a plan
    // leaves the signals their default action.
    let interrupt = match &claim {
        Some(_) => options.interrupt.clone(),
        None => Interrupt::never(),
    };
    let collected = match &preflight {
        Some(preflight) => collect(preflight, &interrupt).await,
        None => None,
    };
    let checked = match finishing.await.map_err(|e| e.try_into_panic()) {
        Ok(checked) => checked,
        // A bug in the checker panics as it would have here.
        Err(Ok(panic)) => std::panic::resume_unwind(panic),
        // Cancelled (the runtime shutting down): check here.
        Err(Err(_)) => check::check_file(&options.formula, &check_options)?,
    };
    let (ready, problems) = checked.into_ready()?;
    if let Some(signal) = interrupt.received() {
        return Err(RunError::Interrupted {
            signal,
            reason: String::new(),
        });
    }
    let Ready {
        loaded,
        dag,
        rules,
        vars,
    } = ready;
    let formula = &loaded.formula;
    let snapshot = match (collected, &options.snapshot) {
        (Some(snapshot), _) => snapshot,
        (None, Some(path)) => read_snapshot(path)?,
        (None, None) => {
            let mut preflight = options
                .preflight
                .clone()
                .configure(&formula.preflight, &options.cwd);
            preflight.secret_env.clone_from(&formula.secrets.env);
            collect(&preflight, &interrupt)
                .await
                .ok_or_else(|| RunError::Interrupted {
                    signal: interrupt.received().unwrap_or(Interruption::Terminate),
                    reason: String::new(),
                })?
        }
    };
    let (context_files, file_warnings) = read_context_files(formula, &options.cwd);
    let mut warnings: Vec<String> = problems.iter().map(ToString::to_string).collect();

    // The decide phase, previewed: nothing is written until `execute`.
    let evaluation = rules.evaluate(&snapshot, &vars);
    let preview_in = |history: &retort_journal::History| {
        decide::preview_in(&rules, &evaluation, history, formula.name(), &options.cwd)
    };
    let decision = match claim
        .as_ref()
        .and_then(|claim| claim.with_history(preview_in))
    {
        Some(decision) => decision,
        None => decide::preview(
            &rules,
            &evaluation,
            &history_path(options.state.path()),
            formula.name(),
            &options.cwd,
        ),
    };
    // A context file left out of a prompt matters only where a prompt goes
    // out: `render` always shows prompts; a run whose gate stays closed
    // sends none.
    if placeholder_run || decision.gate.open {
        warnings.extend(file_warnings);
    }

    let run_dir = RunDir::new(options.state.runs_dir().join(&run_id));
    let phase_file = phase_file_of(options, formula.name());
    let run_info = if placeholder_run {
        RunInfo::placeholder()
    } else {
        RunInfo {
            id: run_id.clone(),
            dir: run_dir.path().display().to_string(),
            // The agent's own phase file ($PHASE_FILE), not retort's.
            phase_file: run_dir.agent_phase_file(0).display().to_string(),
        }
    };
    let prompts = match render {
        true => render_prompts(
            formula,
            &dag,
            &snapshot,
            &context_files,
            &run_info,
            &vars,
            &decision,
        )?,
        false => Vec::new(),
    };

    let template = options
        .agent
        .clone()
        .or_else(|| formula.agent.command.as_ref().map(|c| c.get_ref().clone()))
        .unwrap_or_else(|| DEFAULT_AGENT_COMMAND.to_string());
    let base_name = format!("retort-{}-{}", file_safe(formula.name()), run_id);
    let mut sessions: Vec<SessionPlan> = Vec::new();
    for position in 0..dag.order().len() {
        if opens_session(formula, &dag, position) {
            let step = &formula.steps[dag.order()[position]];
            let model = formula.model_of(step).map(str::to_string);
            let agent_command = render_agent_command(&template, formula, model.as_deref(), &vars)?;
            let name = match sessions.len() {
                0 => base_name.clone(),
                n => format!("{base_name}-{}", n + 1),
            };
            let profile = Profile::new(&formula.agent, &agent_command, &[step]);
            sessions.push(SessionPlan {
                name,
                model,
                agent_command,
                steps: position..position + 1,
                profile,
            });
        } else if let Some(last) = sessions.last_mut() {
            last.steps.end = position + 1;
        }
    }

    let agent = &formula.agent;
    let ready_text = match &options.agent {
        // The formula's ready text describes the formula's own agent.
        Some(_) => options.ready.clone(),
        None => agent.ready.as_ref().map(|text| text.get_ref().clone()),
    };
    let timeout = agent
        .ready_timeout
        .as_ref()
        .map_or(DEFAULT_READY_TIMEOUT, |t| t.get_ref().0);
    // Claude Code's ready screen is known: its input box's footer.
    let claude = sessions
        .first()
        .is_some_and(|s| s.profile.kind == retort_formula::formula::AgentKind::ClaudeCode);
    let readiness = match ready_text {
        Some(text) => Readiness::Shows { text, timeout },
        None if claude => Readiness::Shows {
            text: retort_agent::claude_code::SHORTCUTS_FOOTER.to_string(),
            timeout,
        },
        None => Readiness::Settled { timeout },
    };
    let submit_delay = agent
        .submit_delay
        .as_ref()
        .map_or(DEFAULT_SUBMIT_DELAY, |d| d.get_ref().0);

    let reused = match &options.rerun {
        Some(rerun) => rerun.reused(&options.state, formula, &dag)?,
        None => BTreeMap::new(),
    };
    Ok(Plan {
        reused,
        rerun_of: options.rerun.as_ref().map(|r| r.of.clone()),
        journal_dir: options.state.journal_dir(formula.name()),
        backend: options.backend.unwrap_or(agent.backend),
        readiness,
        submit_delay,
        loaded,
        dag,
        vars,
        snapshot,
        rules,
        evaluation,
        decision,
        context_files,
        run_info,
        prompts,
        sessions,
        warnings,
        run_id,
        started_at,
        run_dir,
        phase_file,
        claim,
    })
}

/// Reads a saved `snapshot.json`.
///
/// # Errors
/// [`RunError::Snapshot`] when it cannot be read or is not a snapshot.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, RunError> {
    let fail = |reason: String| RunError::Snapshot {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "{e}; give a snapshot.json from a run directory, or `retort preflight --json` output"
        ))
    })
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
