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

use crate::lock::{LockError, RunLock};
use crate::phase::{Phase, write_phase_file, write_running};
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
use retort_prompt::prompt::PromptError;
use std::os::unix::fs::PermissionsExt;

use crate::agent_phase::{Agents, agent_phase, skipped};
pub use crate::plan::{Plan, RunOptions, SessionPlan, prepare, read_snapshot};
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
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

/// The result of a run, also saved as `run.json` in the run directory.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The formula's name.
    pub formula: String,
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
}

/// Progress of a run, for the command line to show.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// The agent's session started.
    SessionStarted {
        /// Its name.
        session: &'a str,
        /// The run directory.
        run_dir: &'a Path,
    },
    /// The headless agent of a session is set to run, one process per
    /// step.
    HeadlessStarted {
        /// The agent command each step runs.
        command: &'a str,
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
    let write_error = |(path, source)| RunError::Write { path, source };
    options.state.create().map_err(write_error)?;
    let _lock = RunLock::acquire(&options.state.lock_file(plan.loaded.formula.name()))?;
    options.state.prepare().map_err(write_error)?;
    // No earlier run's outcome may stand for this one: a phase file that
    // cannot say `PHASE:running` ends the run here, before anything starts.
    write_running(&plan.phase_file, &plan.run_id).map_err(|source| RunError::Write {
        path: plan.phase_file.clone(),
        source,
    })?;
    let run = RunDir::create(&options.state.runs_dir(), &plan.run_id).map_err(|source| {
        RunError::Write {
            path: plan.run_dir.path().to_path_buf(),
            source,
        }
    })?;
    let _ = std::fs::set_permissions(run.path(), PermissionsExt::from_mode(PRIVATE_DIR));
    let snapshot_json = serde_json::to_vec_pretty(&plan.snapshot).unwrap_or_default();
    write_file(&run.snapshot_file(), &snapshot_json)?;

    // The decide phase.
    let (mut history, decision, mut warnings) = match decide_phase(plan, options, progress).await {
        Ok(decided) => decided,
        Err(error) => {
            let reason = error.to_string();
            let _ = write_phase_file(&plan.phase_file, Phase::Failed, Some(&reason));
            return Err(error);
        }
    };
    let decision_json = serde_json::to_vec_pretty(&decision.context()).unwrap_or_default();
    if let Err(error) = write_file(&run.decision_file(), &decision_json) {
        warnings.push(error.to_string());
    }
    let agent = match decision.gate.open {
        false => Ok(Agents::default()),
        true => agent_phase(plan, options, &run, &decision, &mut warnings, progress).await,
    };
    // Whatever stopped the agent phase, the run ends as every run does: the
    // phase file, the history, the journal, `run.json`, the clean-up.
    let (sessions, steps, ending) = match agent {
        Ok(agents) => (agents.sessions, agents.steps, agents.ending),
        Err(error) => (
            Vec::new(),
            skipped(plan, 0),
            Some((Phase::Failed, error.to_string())),
        ),
    };
    // A gate closed because rules could not be evaluated is no "done".
    let ending = ending.or_else(|| {
        (!decision.gate.open && decision.findings.iter().any(|f| f.rule_error))
            .then(|| (Phase::Failed, decision.gate.reason.clone()))
    });
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
            warnings,
            clock,
        },
    ))
}

/// Records the run in the history, decides, runs the auto actions.
async fn decide_phase(
    plan: &Plan,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(History, Decision, Vec<String>), RunError> {
    let (mut history, recovered) = History::open_or_recover(&history_path(options.state.path()))?;
    let mut decision = decide::commit(
        &mut history,
        &plan.rules,
        &plan.evaluation,
        &plan.run_id,
        plan.loaded.formula.name(),
        &options.cwd,
    )?;
    progress(Progress::Decided(&decision));
    let mut warnings: Vec<String> = recovered.iter().map(ToString::to_string).collect();
    warnings.extend(
        decide::run_actions(&mut decision, &history, &plan.run_id, &mut |action| {
            progress(Progress::ActionRan(action));
        })
        .await,
    );
    Ok((history, decision, warnings))
}

/// How the agent part of a run went (nothing, when the gate stayed closed).
struct Outcome {
    sessions: Vec<String>,
    steps: Vec<StepResult>,
    ending: Option<(Phase, String)>,
    warnings: Vec<String>,
    clock: Instant,
}

/// Writes the phase file, the history's end of the run and the journal
/// entry, then removes what the formula's runs left that is older than its
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
        ending,
        mut warnings,
        clock,
    } = outcome;
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
    if let Err(error) = history.finish_run(
        &plan.run_id,
        &phase.to_string(),
        reason.as_deref(),
        Utc::now(),
    ) {
        warnings.push(format!("could not record the end of the run: {error}"));
    }

    let mut report = RunReport {
        backend: plan.backend,
        formula: plan.loaded.formula.name().to_string(),
        run_id: plan.run_id.clone(),
        run_dir: run.path().to_path_buf(),
        sessions,
        started_at: plan.started_at,
        duration_ms: millis(clock.elapsed()),
        phase,
        reason,
        steps,
        gate: decision.gate.clone(),
        findings: decision.findings.clone(),
        actions: decision.actions.clone(),
        phase_file: plan.phase_file.clone(),
        journal_file: None,
        pruned: Pruned::default(),
        warnings,
    };
    let mut entry = journal_entry(plan, &report);
    if plan.rules.has_rules() {
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
    let summary = serde_json::to_vec_pretty(&report).unwrap_or_default();
    if let Err(source) = write_atomic(&run.summary_file(), &summary) {
        report.warnings.push(format!(
            "could not write {}: {source}",
            run.summary_file().display()
        ));
    }
    report
}

fn journal_entry(plan: &Plan, report: &RunReport) -> retort_journal::Entry {
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
            })
            .collect(),
        decision: None,
        notes: report.warnings.clone(),
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
