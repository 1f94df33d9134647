//! Preparing a plan: the check, the run's claim, the preflight beside the
//! rest of the check, the decide phase previewed, the prompts and the
//! agent sessions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use retort_preflight::Snapshot;

use super::sessions::{plan_sessions, readiness};
use super::{Plan, RunOptions};
use crate::claim::{Claim, Claimant, interrupted_early};
use crate::phase::{Phase, write_phase_file};
use crate::run::RunError;
use crate::state::{RunDir, new_run_id};
use retort_agent::session::DEFAULT_SUBMIT_DELAY;
use retort_check::check::{self, CheckOptions, Purpose, Ready};
use retort_decide::decide::{self, history_path};
use retort_os::interrupt::{Interrupt, Interruption};
use retort_prompt::context::read_context_files;
use retort_prompt::prompt::{RunInfo, render_prompts};

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
                tmux_socket: options.tmux.socket.as_deref(),
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
        tmux_socket: options.tmux.socket.as_deref(),
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
            crate::claim::discard_run_dir(&options.state, who);
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
    // A claimed run logs its commands' process groups in its directory.
    let preflight = preflight.map(|mut preflight| {
        if claim.is_some() {
            let run = RunDir::new(options.state.runs_dir().join(&run_id));
            preflight.group_log = Some(run.preflight_groups_file());
        }
        preflight
    });
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

    let sessions = plan_sessions(options, formula, &dag, &vars, &run_id)?;
    let agent = &formula.agent;
    let readiness = readiness(options, agent, &sessions);
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
