//! A run: formula → DAG → preflight snapshot → rules, findings and the
//! gate → prompts → agent session → phase file, run summary and journal
//! entry.
//!
//! [`prepare`] (in [`crate::plan`]) does everything up to the rendered
//! prompts and has no side effects: its decision is a preview against a
//! read-only view of the run history; `retort render` and
//! `retort run --dry-run` stop there. [`execute`] then creates the run directory and runs the **decide
//! phase** for real ([`retort_decide::decide`]): it records the findings, runs the
//! auto actions and stores proposals. When the gate stays closed the run
//! ends there, with `PHASE:done` and a journal entry. When it opens, the
//! prompts are rendered with the decision and the agent's tmux session gets
//! one step at a time, in topological order, waiting for each step's signal
//! ([`retort_agent::wait`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;

use retort_journal::history::{History, HistoryError};

use crate::claim::{self, Claim, Claimant};
use crate::holds;
use crate::lock::LockError;
use crate::phase::{Phase, write_phase_file};
use crate::recovery;
use crate::retention::{self, Pruned, Retention};
use crate::state::PRIVATE_DIR;
use crate::state::{RunDir, StateDir};
use retort_agent::session::SessionError;
use retort_decide::decide::{self, Decision, PlannedAction, history_path};
use retort_decide::finding::Finding;
use retort_decide::gate::GateDecision;
use retort_formula::diagnostic::FormulaError;
use retort_formula::formula::Backend;
use retort_os::atomic::write_atomic;
use retort_os::clean::{REASON_CAP, one_line};
use retort_os::interrupt::Interruption;
use retort_os::redact::Redactor;
use retort_prompt::prompt::PromptError;
use std::os::unix::fs::PermissionsExt;

use crate::agent_phase::{Agents, agent_phase, skipped};
pub use crate::plan::{Plan, RunOptions, SessionPlan, prepare, prepare_run, read_snapshot};
pub use retort_agent::wait::StepOutcome;

/// Lines of the agent's pane kept in `agent-pane.txt` at the end of a run.
pub const PANE_CAPTURE_LINES: u32 = 200;

/// Why a run could not be prepared or carried out. Failures of the agent
/// or of a step are not errors: they are outcomes in the [`RunReport`].
#[derive(Debug, Error)]
pub enum RunError {
    /// The formula is unreadable or invalid.
    #[error(transparent)]
    Formula(#[from] FormulaError),
    /// A prompt could not be rendered.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// `retort rerun` cannot rerun as asked.
    #[error("cannot rerun run {run}: {reason}")]
    Rerun {
        /// The run to rerun.
        run: String,
        /// Why, and how to fix it.
        reason: String,
    },
    /// `--step` names no step.
    #[error("formula `{formula}` has no step `{step}`; its steps are: {known}")]
    UnknownStep {
        /// The formula's name.
        formula: String,
        /// The step asked for.
        step: String,
        /// The steps it has.
        known: String,
    },
    /// The run directory or its files could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// What was being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file-system watcher could not be set up.
    #[error("cannot watch {} for step signals: {source}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
    /// Another run of the formula is in progress.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The agent's session could not be started.
    #[error("cannot start the agent's tmux session: {0}")]
    Session(#[from] SessionError),
    /// `--snapshot` names a file that is not a snapshot.
    #[error("cannot use {} as the snapshot: {reason}", path.display())]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The run history could not be read or written, so the run could not
    /// decide.
    #[error("cannot decide: {0}")]
    History(#[from] HistoryError),
    /// SIGINT, SIGTERM or SIGHUP stopped the run before it decided (in its
    /// preflight); recorded as [`crate::claim::interrupted_early`] says.
    /// Its exit status is [`Interruption::exit_code`].
    #[error("{reason}")]
    Interrupted {
        /// The signal.
        signal: Interruption,
        /// What the phase file, history and journal say.
        reason: String,
    },
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    /// The step's id.
    pub id: String,
    /// The step's title.
    pub title: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How long it took, in milliseconds; none when skipped.
    pub duration_ms: Option<u64>,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// The tokens and cost of its model use, where the agent tells them
    /// (Claude Code: its transcript in tmux, its result frames headless).
    pub usage: Option<retort_agent::usage::Usage>,
}

/// The result of a run, also saved as `run.json` in the run directory.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The formula's name.
    pub formula: String,
    /// The formula file, as the run was given it (`retort status` reads
    /// its `schedule` from there).
    pub formula_path: PathBuf,
    /// The run this one reruns (`retort rerun RUN_ID`), if any.
    pub rerun_of: Option<String>,
    /// The run id.
    pub run_id: String,
    /// The run directory.
    pub run_dir: PathBuf,
    /// What ran the agent.
    pub backend: Backend,
    /// The tmux sessions used, in order; none when the gate stayed closed
    /// or the backend is headless.
    pub sessions: Vec<String>,
    /// When the run started (UTC).
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The outcome.
    pub phase: Phase,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// Each step, in the order run; none when the gate stayed closed.
    pub steps: Vec<StepResult>,
    /// The steps' usage added up (tokens, and USD when every step with
    /// usage knew its cost); none when no step reported any.
    pub usage: Option<retort_agent::usage::Usage>,
    /// The gate's decision.
    pub gate: GateDecision,
    /// The run's findings: firing, pending and just resolved.
    pub findings: Vec<Finding>,
    /// What happened with the actions of firing findings.
    pub actions: Vec<PlannedAction>,
    /// The phase file written.
    pub phase_file: PathBuf,
    /// The journal file appended to, when that succeeded.
    pub journal_file: Option<PathBuf>,
    /// What the formula's `[history] keep` removed at the end of the run:
    /// old run directories and run-history rows (see [`crate::retention`]).
    pub pruned: Pruned,
    /// Bookkeeping that failed after the run (journal, summary, session
    /// clean-up, removing old runs): reported, never fatal, and never lose
    /// the phase file.
    pub warnings: Vec<String>,
    /// The signal (SIGINT, SIGTERM, SIGHUP) that stopped the run, if one
    /// did: the run is then `failed`, its reason says where it stopped.
    #[serde(skip)]
    pub interrupted_by: Option<Interruption>,
}

impl RunReport {
    /// The exit status of `retort run` for this run: 128 + the signal's
    /// number when one stopped it ([`Interruption::exit_code`]: 130, 143,
    /// 129), else its phase's ([`Phase::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        self.interrupted_by
            .map_or(self.phase.exit_code(), Interruption::exit_code)
    }
}

/// Progress of a run, for the command line to show.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// The agent's session started.
    SessionStarted {
        /// Its name.
        session: &'a str,
        /// Its agent command, as rendered for the session (before retort
        /// adds its settings), e.g. `claude --model sonnet`.
        command: &'a str,
        /// The run directory.
        run_dir: &'a Path,
    },
    /// The headless agent of a session is set to run.
    HeadlessStarted {
        /// The agent command.
        command: &'a str,
        /// Whether one process serves the whole session (Claude Code's
        /// stream-json) rather than one a step.
        per_session: bool,
        /// The run directory.
        run_dir: &'a Path,
        /// Where each step's output goes (`RUN/agent-output/`).
        output_dir: &'a Path,
    },
    /// The agent of the session just started is ready for its first
    /// prompt (see [`retort_agent::ready`]).
    AgentReady {
        /// The session's name.
        session: &'a str,
        /// How long it took, from the session's start.
        after: Duration,
    },
    /// A step's prompt was delivered.
    StepStarted {
        /// Its position, from 1.
        number: usize,
        /// How many steps there are.
        count: usize,
        /// The step's id.
        id: &'a str,
        /// Its title.
        title: &'a str,
    },
    /// A step ended.
    StepEnded(&'a StepResult),
    /// The steps running now, in the order they started (runs whose steps
    /// may run at once; see [`crate::parallel`]).
    Running(&'a [String]),
    /// The decide phase has recorded the findings and the gate's decision.
    Decided(&'a Decision),
    /// An auto action has run.
    ActionRan(&'a PlannedAction),
}

/// Carries out a prepared run and reports how it went: the decide phase
/// (findings recorded, auto actions run, proposals stored), then, when the
/// gate opens, the agent's sessions. The sessions are killed, and the phase
/// file, the history, the journal and `run.json` written, however the
/// steps end, and also when the agent phase cannot start at all (a prompt
/// that does not render, a run directory that cannot be written or
/// watched, a tmux session that does not start): that is a failed run
/// with the reason, not an error.
///
/// # Errors
/// [`RunError::Locked`] when another run of the formula is in progress
/// (nothing is written then: the phase file and journal are that run's);
/// [`RunError`] when the run cannot get as far as deciding: the run
/// directory or its snapshot cannot be written, or the run history cannot
/// be used (the phase file then says `PHASE:failed` with the reason).
/// Nothing is left running in those cases.
pub async fn execute(
    plan: &Plan,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunReport, RunError> {
    let clock = Instant::now();
    let interrupt = &options.interrupt;
    // The claim (run lock, recovery, `PHASE:running`) is taken before the
    // preflight by `prepare_run`; a plan made otherwise claims here.
    let claim = match &plan.claim {
        Some(claim) => std::sync::Arc::clone(claim),
        None => {
            let who = Claimant {
                formula: plan.loaded.formula.name(),
                run_id: &plan.run_id,
                started_at: plan.started_at,
                phase_file: &plan.phase_file,
                journal_dir: &plan.journal_dir,
                tmux_socket: options.tmux.socket.as_deref(),
            };
            std::sync::Arc::new(Claim::take(&options.state, who).await?)
        }
    };
    let recovered = claim.recovered.clone();
    // Made by the claim; made again if something removed it since.
    let run = RunDir::new(options.state.runs_dir().join(&plan.run_id));
    std::fs::create_dir_all(run.path()).map_err(|source| RunError::Write {
        path: plan.run_dir.path().to_path_buf(),
        source,
    })?;
    let owner = recovery::Owner::this_process(
        plan.loaded.formula.name(),
        &plan.run_id,
        plan.started_at,
        &plan.phase_file,
        options.tmux.socket.as_deref(),
    );
    let owned = owner.save(&run);
    // A run dir the agent crate's helpers also know: actions' process
    // groups are recorded in `owner.json` as they start.
    let mut started = |group: i32| run.record_group(group);
    let _ = std::fs::set_permissions(run.path(), PermissionsExt::from_mode(PRIVATE_DIR));
    let snapshot_json = serde_json::to_vec_pretty(&plan.snapshot).unwrap_or_default();
    write_file(&run.snapshot_file(), &snapshot_json)?;

    // The decide phase.
    let (mut history, mut decision, mut warnings) =
        match decide_phase(plan, options, &mut started, progress).await {
            Ok(decided) => decided,
            Err(error) => {
                let reason = error.to_string();
                let _ = write_phase_file(&plan.phase_file, Phase::Failed, Some(&reason));
                return Err(error);
            }
        };
    warnings.extend(recovered);
    if let Err(error) = owned {
        warnings.push(format!(
            "could not write {}: {error}",
            recovery::owner_file(&run).display()
        ));
    }
    let decision_json = serde_json::to_vec_pretty(&decision.context()).unwrap_or_default();
    if let Err(error) = write_file(&run.decision_file(), &decision_json) {
        warnings.push(error.to_string());
    }
    // A signal before the agent starts: the run ends here, the agent
    // never starts.
    let stopped = interrupt.received().map(|signal| {
        let during = match decision.actions.iter().any(|a| a.result.is_some()) {
            true => "the auto actions",
            false => "deciding",
        };
        (Phase::Failed, claim::interrupted_reason(signal, during))
    });
    if stopped.is_some() && decision.gate.open {
        decision.gate.open = false;
        decision.gate.reason = "retort was interrupted before the agent started".to_string();
    }
    let agent = match decision.gate.open {
        false => Ok(Agents::default()),
        true if crate::parallel::uses_scheduler(plan) => {
            crate::parallel::parallel_phase(plan, options, &run, &decision, &mut warnings, progress)
                .await
        }
        true => agent_phase(plan, options, &run, &decision, &mut warnings, progress).await,
    };
    // Whatever stopped the agent phase, the run ends as every run does: the
    // phase file, the history, the journal, `run.json`, the clean-up.
    let (sessions, steps, ending, holds, attempts) = match agent {
        Ok(agents) => (
            agents.sessions,
            agents.steps,
            agents.ending,
            agents.holds,
            agents.attempts,
        ),
        Err(error) => (
            Vec::new(),
            skipped(plan, 0),
            Some((Phase::Failed, error.to_string())),
            Vec::new(),
            Vec::new(),
        ),
    };
    // A gate closed because rules could not be evaluated is no "done".
    let ending = stopped.or(ending).or_else(|| {
        (!decision.gate.open && decision.findings.iter().any(|f| f.rule_error))
            .then(|| (Phase::Failed, decision.gate.reason.clone()))
    });
    let ending = finishing_ending(interrupt, ending);
    let state = options.state.path();
    let ending_ref = ending.as_ref();
    // The notifications (network) are cut short by a signal; the records
    // below are local and quick, and always written.
    tokio::select! {
        sent = crate::notify::run_ended(plan, state, &decision, &steps, ending_ref) => warnings.extend(sent),
        signal = interrupt.wait() => warnings.push(format!("notifications not sent: retort was interrupted by {signal}")),
    }
    let ending = finishing_ending(interrupt, ending);
    Ok(finish(
        plan,
        &options.state,
        &run,
        &mut history,
        decision,
        Outcome {
            sessions,
            steps,
            ending,
            holds,
            attempts,
            warnings,
            clock,
            interrupted_by: interrupt.received(),
        },
    ))
}

/// The ending of a run that a signal stopped while finishing: `failed`,
/// saying so, unless it had an ending already (the agent phase's own, when
/// the signal ended a step).
fn finishing_ending(
    interrupt: &retort_os::interrupt::Interrupt,
    ending: Option<(Phase, String)>,
) -> Option<(Phase, String)> {
    match (interrupt.received(), ending) {
        (Some(signal), None) => Some((
            Phase::Failed,
            claim::interrupted_reason(signal, "finishing (its steps had ended done)"),
        )),
        (_, ending) => ending,
    }
}

/// Records the run in the history, decides, runs the auto actions.
async fn decide_phase(
    plan: &Plan,
    options: &RunOptions,
    started: &mut dyn FnMut(i32),
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(History, Decision, Vec<String>), RunError> {
    let (mut history, recovered) = match plan.claim.as_ref().and_then(|claim| claim.history()) {
        Some(history) => (history, None),
        None => History::open_or_recover(&history_path(options.state.path()))?,
    };
    let mut decision = decide::commit(
        &mut history,
        &plan.rules,
        &plan.evaluation,
        &plan.run_id,
        plan.loaded.formula.name(),
        &options.cwd,
    )?;
    // A rate-limit hold or the day's budget keeps the gate closed whatever
    // the findings say.
    if decision.gate.open
        && let Some(reason) =
            holds::gate_hold(plan, options.state.path(), Some(&history), Utc::now())
    {
        decision.gate.open = false;
        decision.gate.reason = reason;
        history.close_gate(&plan.run_id, &decision.gate.reason)?;
    }
    progress(Progress::Decided(&decision));
    let mut warnings: Vec<String> = recovered.iter().map(ToString::to_string).collect();
    warnings.extend(
        decide::run_actions(
            &mut decision,
            &history,
            &plan.run_id,
            &mut decide::ActionHooks {
                interrupt: &options.interrupt,
                started,
                progress: &mut |action| progress(Progress::ActionRan(action)),
            },
        )
        .await,
    );
    Ok((history, decision, warnings))
}

/// How the agent part of a run went (nothing, when the gate stayed closed).
struct Outcome {
    sessions: Vec<String>,
    steps: Vec<StepResult>,
    ending: Option<(Phase, String)>,
    holds: Vec<holds::Hold>,
    /// Every attempt the scheduler made (none for the sequential loop).
    attempts: Vec<crate::parallel::AttemptRecord>,
    warnings: Vec<String>,
    clock: Instant,
    interrupted_by: Option<Interruption>,
}

/// Writes the steps' attempts to the history, the phase file, the
/// history's end of the run and the journal entry, then removes what the formula's runs left that is older than its
/// `[history] keep` ([`retention::prune`]), then writes `run.json`.
/// Failures here are warnings: they never lose the phase file, nor the
/// history or journal, which are written before anything is removed.
fn finish(
    plan: &Plan,
    state: &StateDir,
    run: &RunDir,
    history: &mut History,
    decision: Decision,
    outcome: Outcome,
) -> RunReport {
    let Outcome {
        sessions,
        steps,
        attempts,
        ending,
        holds,
        mut warnings,
        clock,
        interrupted_by,
    } = outcome;
    // Reasons are the agent's words: one line, capped, no secrets, before
    // they reach the phase file, the history, the journal or `run.json`.
    let redactor = redactor(plan);
    let mut steps = steps;
    for step in &mut steps {
        step.reason = step.reason.take().map(|r| clean_reason(&redactor, &r));
    }
    let ending = ending.map(|(phase, reason)| (phase, clean_reason(&redactor, &reason)));
    record_holds(plan, state, holds, &steps, &mut warnings);
    let usage = total_usage(&steps);
    if let Some(usage) = usage
        && let Err(error) = history.record_spend(
            plan.loaded.formula.name(),
            &plan.run_id,
            plan.started_at,
            &spend(&usage),
        )
    {
        warnings.push(format!("could not record the run's spend: {error}"));
    }
    let (mut phase, mut reason) = match ending {
        Some((phase, reason)) => (phase, Some(reason)),
        None => (Phase::Done, None),
    };
    // An outcome nobody can read is a failure, whatever the steps did.
    if let Err(source) = write_phase_file(&plan.phase_file, phase, reason.as_deref()) {
        let why = format!(
            "could not write the phase file {}: {source}",
            plan.phase_file.display()
        );
        reason = Some(match reason {
            Some(was) => format!("{why} (the run ended {phase}: {was})"),
            None => format!("{why} (the run ended {phase})"),
        });
        phase = Phase::Failed;
        warnings.push(why);
    }
    // Every attempt of every step (the scheduler's; none for the sequential
    // loop), synced with the run's other records at its end.
    let attempt_rows: Vec<_> = attempts.iter().map(|a| a.history_row(&redactor)).collect();
    if let Err(error) = history.record_step_attempts(&plan.run_id, &attempt_rows) {
        warnings.push(format!("could not record the steps' attempts: {error}"));
    }
    if let Err(error) = history.finish_run(
        &plan.run_id,
        &phase.to_string(),
        reason.as_deref(),
        Utc::now(),
    ) {
        warnings.push(format!("could not record the end of the run: {error}"));
    }
    if let Some(of) = &plan.rerun_of
        && let Err(error) = history.mark_rerun(&plan.run_id, of)
    {
        warnings.push(format!(
            "could not record the run as a rerun of {of}: {error}"
        ));
    }

    let mut report = RunReport {
        backend: plan.backend,
        formula: plan.loaded.formula.name().to_string(),
        formula_path: std::path::absolute(&plan.loaded.path)
            .unwrap_or_else(|_| plan.loaded.path.clone()),
        rerun_of: plan.rerun_of.clone(),
        run_id: plan.run_id.clone(),
        run_dir: run.path().to_path_buf(),
        sessions,
        started_at: plan.started_at,
        duration_ms: millis(clock.elapsed()),
        phase,
        reason,
        steps,
        usage,
        gate: decision.gate.clone(),
        findings: decision.findings.clone(),
        actions: decision.actions.clone(),
        phase_file: plan.phase_file.clone(),
        journal_file: None,
        pruned: Pruned::default(),
        warnings,
        interrupted_by,
    };
    let mut entry = journal_entry(plan, &report, &attempts, &redactor);
    // A gate closed by a hold is news even for a formula without rules.
    if plan.rules.has_rules() || !decision.gate.open {
        entry.decision = Some(decision.journal());
    }
    match retort_journal::append(&plan.journal_dir, &entry) {
        Ok(path) => report.journal_file = Some(path),
        Err(error) => report.warnings.push(error.to_string()),
    }
    // Under the run lock, which `execute` holds until it returns.
    let (pruned, warnings) = retention::prune(
        &Retention {
            state,
            formula: &report.formula,
            run_id: &report.run_id,
            keep: plan.loaded.formula.history.keep(),
            started_at: plan.started_at,
            decided_at: decision.at,
        },
        history,
    );
    report.pruned = pruned;
    report.warnings.extend(warnings);
    if let Some(cutoff) = chrono::Duration::from_std(plan.loaded.formula.history.keep())
        .ok()
        .and_then(|keep| plan.started_at.checked_sub_signed(keep))
        && let Err(error) = history.prune_spend(&report.formula, cutoff)
    {
        report
            .warnings
            .push(format!("could not prune the runs' spend: {error}"));
    }
    // The run's records survive a crash of the machine, as its phase does.
    if let Err(error) = history.sync_commits() {
        report.warnings.push(error.to_string());
    }
    let mut summary = serde_json::to_value(&report).unwrap_or_default();
    redactor.redact_json(&mut summary);
    let summary = serde_json::to_vec_pretty(&summary).unwrap_or_default();
    match write_atomic(&run.summary_file(), &summary) {
        // The run has recorded its end: nothing to recover from now.
        Ok(()) => {
            let _ = std::fs::remove_file(recovery::owner_file(run));
        }
        Err(source) => report.warnings.push(format!(
            "could not write {}: {source}",
            run.summary_file().display()
        )),
    }
    report
}

/// The run's journal entry; each step's line carries its `attempts`
/// before the last (the retried ones), their reasons cleaned by
/// `redactor`.
fn journal_entry(
    plan: &Plan,
    report: &RunReport,
    attempts: &[crate::parallel::AttemptRecord],
    redactor: &Redactor,
) -> retort_journal::Entry {
    retort_journal::Entry {
        formula: report.formula.clone(),
        run_id: report.run_id.clone(),
        started_at: report.started_at,
        duration: Duration::from_millis(report.duration_ms),
        phase: report.phase.to_string(),
        reason: report.reason.clone(),
        health: plan.snapshot.health_summary(),
        steps: report
            .steps
            .iter()
            .map(|s| retort_journal::StepLine {
                id: s.id.clone(),
                title: s.title.clone(),
                outcome: s.outcome.as_str().to_string(),
                duration: s.duration_ms.map(Duration::from_millis),
                reason: s.reason.clone(),
                cost: s
                    .usage
                    .and_then(|u| u.cost_usd)
                    .map(|cost| format!("${cost:.4}")),
                retried: attempts
                    .iter()
                    .filter(|a| a.step == s.id)
                    .filter_map(|a| a.retried(redactor))
                    .collect(),
            })
            .collect(),
        decision: None,
        usage: report.usage.map(|u| spend(&u).describe()),
        notes: report.warnings.clone(),
    }
}

/// The usage of `steps` added up: none when no step reported any; the
/// cost is known when every step that reported usage knew its own.
pub fn total_usage(steps: &[StepResult]) -> Option<retort_agent::usage::Usage> {
    steps
        .iter()
        .filter_map(|s| s.usage)
        .reduce(|sum, usage| sum + usage)
}

fn spend(usage: &retort_agent::usage::Usage) -> retort_journal::spend::RunSpend {
    retort_journal::spend::RunSpend {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_creation_input_tokens: usage.cache_creation_input_tokens,
        cache_read_input_tokens: usage.cache_read_input_tokens,
        cost_usd: usage.cost_usd,
    }
}

/// Records the run's rate-limit holds in `STATE/holds.json`: those its
/// steps left, and one for every other step that ended rate-limited (a
/// tmux agent's screen), until the time its reason shows, else for
/// [`retort_agent::stream_json::DEFAULT_RATE_LIMIT_HOLD`].
fn record_holds(
    plan: &Plan,
    state: &StateDir,
    mut found: Vec<holds::Hold>,
    steps: &[StepResult],
    warnings: &mut Vec<String>,
) {
    let now = Utc::now();
    for step in steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::RateLimited)
    {
        if found.iter().any(|h| h.run_id == plan.run_id) {
            continue;
        }
        let Some(agent) = holds::agent_of_step(plan, &step.id) else {
            continue;
        };
        let text = step.reason.clone().unwrap_or_default();
        found.push(holds::rate_limit_hold(agent, &text, plan, now, None));
    }
    for hold in found {
        if let Err(error) = holds::add(state.path(), hold) {
            warnings.push(format!(
                "could not record the rate-limit hold in {}: {error}",
                holds::holds_file(state.path()).display()
            ));
        }
    }
}

/// What hides secrets in what this run writes: the values of secret
/// environment variables ([`Redactor::from_env`], with the names of the
/// formula's `[secrets] env`) and URL userinfo.
pub(crate) fn redactor(plan: &Plan) -> Redactor {
    Redactor::from_env(&plan.loaded.formula.secrets.env)
}

/// An agent's (or any) reason made fit for a record: one line of at most
/// [`REASON_CAP`] bytes, no escapes or control characters
/// ([`one_line`]), secrets replaced by `[redacted]`.
pub(crate) fn clean_reason(redactor: &Redactor, reason: &str) -> String {
    one_line(&redactor.redact(reason), REASON_CAP)
}

/// Replaces the secrets `redactor` knows in the headless agent's output
/// logs (`agent-output/*.log`), once its process has ended.
pub(crate) fn redact_outputs(run: &RunDir, redactor: &Redactor) {
    let Ok(entries) = std::fs::read_dir(run.agent_output_dir()) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let std::borrow::Cow::Owned(clean) = redactor.redact(&text)
        {
            let _ = write_atomic(&path, clean.as_bytes());
        }
    }
}

pub(crate) fn write_file(path: &Path, content: &[u8]) -> Result<(), RunError> {
    write_atomic(path, content).map_err(|source| RunError::Write {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
