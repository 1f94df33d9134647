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
//! ([`retort_agent::wait`]). How a run ends and what it records (the phase
//! file, the history, the journal entry, `run.json`) is in `finish`.

mod finish;

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
use crate::retention::Pruned;
use crate::state::RunDir;
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

use crate::agent_phase::{Agents, agent_phase, skipped};
pub use crate::plan::{Plan, RunOptions, SessionPlan, prepare, prepare_run, read_snapshot};
pub use finish::total_usage;
pub use retort_agent::wait::StepOutcome;

use finish::finish;

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
    // A run dir the agent crate's helpers also know: actions' process
    // groups are recorded in the claim's `owner.json` as they start.
    let mut started = |group: i32| run.record_group(group);
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
    warnings.extend(claim.owner_unsaved.clone());
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
