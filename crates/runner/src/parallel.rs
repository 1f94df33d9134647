//! The agent phase of a run whose steps do not simply run one after
//! another: independent branches at once (`max_parallel`), `when`
//! conditions, retries, outputs handed on, the run's `timeout`, and
//! reruns that reuse earlier steps. The [`crate::scheduler`] says which
//! step starts when; this module starts each session's agent (a tmux
//! session, or a headless agent), gives it the step's prompt (rendered as
//! the step starts, with its ancestors' outcomes and outputs), waits for
//! its end, and records every attempt in `RUN/attempts.json` (and, through
//! the run's end, in the history's `step_attempts`,
//! [`AttemptRecord::history_row`]).
//!
//! Its parts: this module's loop (what is prepared once, `Setup`, and
//! the wait for the next end); `tally` (what the steps have come to: a
//! step started, skipped or reused; an attempt's end, retried or final;
//! the steps that never ran); `session` (each session's agent, started,
//! kept idle between its steps, and its own files); `attempt` (one
//! attempt of a step, from its prompt to its end). Every reason a progress
//! line shows is cleaned first (one line, capped, the run's secrets
//! redacted), as the sequential loop's are.
//!
//! A formula of one chain with `max_parallel = 1` and none of these keys
//! runs in the sequential loop (`agent_phase`) as it always has.

mod attempt;
mod session;
mod tally;
mod tally_ends;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::mpsc;

use retort_agent::wait::{Interrupts, StepOutcome};
use retort_decide::condition::ConditionContext;
use retort_decide::decide::Decision;
use retort_formula::formula::Formula;
use retort_journal::history::StepAttemptRecord;
use retort_os::paths::file_safe;
use retort_os::redact::Redactor;
use retort_prompt::prompt::{PromptRenderer, dag_ancestors};

use crate::agent_phase::{Agents, Watch};
use crate::plan::{Plan, RunOptions};
use crate::run::{Progress, RunError, redactor};
use crate::state::RunDir;
use attempt::Attempt;
use tally::Tally;

pub use session::{CURRENT_STEP_FILE_ENV, current_step_file};

/// Whether `plan` needs the scheduler: more than one step may run at once,
/// or a step has a `when`, `retries` or a named `session`, or the run
/// reuses steps of an earlier one.
pub(crate) fn uses_scheduler(plan: &Plan) -> bool {
    let formula = &plan.loaded.formula;
    let chain = retort_formula::graph::layers(formula, &plan.dag)
        .iter()
        .fold(vec![0usize; formula.steps.len()], |mut count, &layer| {
            count[layer] += 1;
            count
        })
        .iter()
        .all(|&n| n <= 1);
    !plan.reused.is_empty()
        || formula
            .steps
            .iter()
            .any(|s| s.when.is_some() || s.retries > 0 || s.session.is_some())
        || (formula.max_parallel() > 1 && !chain)
}

/// One attempt of a step, as `RUN/attempts.json` records it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// The step's id.
    pub step: String,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// When it started, in milliseconds since the agent phase began.
    pub started_ms: u64,
    /// When it ended, in milliseconds since the agent phase began.
    pub ended_ms: u64,
    /// How it ended (`done`, `failed`, `rate-limited`, …).
    pub outcome: StepOutcome,
    /// Why, when not done.
    pub reason: Option<String>,
    /// When it is tried again, in milliseconds since the agent phase
    /// began, if it is.
    pub retry_at_ms: Option<u64>,
    /// When the agent phase began: the origin of the times above (not
    /// saved in `attempts.json`, whose times stay relative).
    #[serde(skip)]
    pub phase_began_at: DateTime<Utc>,
}

impl AttemptRecord {
    /// The attempt as the run history keeps it (its `step_attempts` row):
    /// its times made absolute from [`Self::phase_began_at`], its reason
    /// cleaned by `redactor` (one line, capped, no secrets), and the wait
    /// before the next attempt, when it was retried.
    pub fn history_row(&self, redactor: &Redactor) -> StepAttemptRecord {
        let at = |ms: u64| {
            i64::try_from(ms)
                .ok()
                .and_then(chrono::TimeDelta::try_milliseconds)
                .and_then(|offset| self.phase_began_at.checked_add_signed(offset))
                .unwrap_or(self.phase_began_at)
        };
        StepAttemptRecord {
            step: self.step.clone(),
            attempt: self.attempt,
            outcome: self.outcome.as_str().to_string(),
            reason: self
                .reason
                .as_deref()
                .map(|r| crate::run::clean_reason(redactor, r)),
            started_at: at(self.started_ms),
            ended_at: at(self.ended_ms),
            retry_after_ms: self
                .retry_at_ms
                .map(|retry_at| retry_at.saturating_sub(self.ended_ms)),
        }
    }

    /// The attempt worded for the journal, when it was retried (an attempt
    /// that was its step's last is the step's own line):
    /// `attempt 1: failed in 40ms, retried after 1s: REASON`, the reason
    /// cleaned by `redactor` (one line, capped, no secrets).
    pub fn retried(&self, redactor: &Redactor) -> Option<String> {
        let retry_at = self.retry_at_ms?;
        let took = std::time::Duration::from_millis(self.ended_ms.saturating_sub(self.started_ms));
        let wait = std::time::Duration::from_millis(retry_at.saturating_sub(self.ended_ms));
        let mut line = format!(
            "attempt {}: {} in {}, retried after {}",
            self.attempt,
            self.outcome.as_str(),
            retort_os::duration::compact(took),
            retort_os::duration::compact(wait)
        );
        if let Some(reason) = &self.reason {
            line.push_str(": ");
            line.push_str(&crate::run::clean_reason(redactor, reason));
        }
        Some(line)
    }
}

/// What every step of the phase reads, prepared once.
struct Setup<'a> {
    plan: &'a Plan,
    options: &'a RunOptions,
    run: &'a RunDir,
    formula: &'a Formula,
    /// The steps' indexes in topological order; a step's position is its
    /// place here.
    order: &'a [usize],
    /// Each step's session, by position.
    sessions: Vec<usize>,
    renderer: PromptRenderer<'a>,
    conditions: ConditionContext,
    /// Each step's ancestors, by index.
    ancestors: Vec<BTreeSet<usize>>,
    /// The first session's agent command, as planned.
    template: String,
    /// The agent command template the later sessions' commands are
    /// rendered from.
    agent_template: String,
    /// The first session's tmux name; later ones add `-2`, `-3`, ….
    base_name: String,
    /// The run's secrets, replaced in every reason shown or saved.
    redactor: Redactor,
    /// When the phase began.
    clock: Instant,
    /// When the phase began, on the wall clock (attempts' times in the
    /// history count from it).
    began_at: DateTime<Utc>,
    run_timeout: Duration,
    run_deadline: tokio::time::Instant,
}

impl<'a> Setup<'a> {
    /// What the phase of `plan`, with `decision`, prepares once.
    ///
    /// # Errors
    /// [`RunError`] when retort's prompt template does not parse.
    fn new(
        plan: &'a Plan,
        options: &'a RunOptions,
        run: &'a RunDir,
        decision: &Decision,
    ) -> Result<Setup<'a>, RunError> {
        let formula = &plan.loaded.formula;
        let renderer = PromptRenderer::new(
            formula,
            &plan.dag,
            &plan.snapshot,
            &plan.context_files,
            &plan.run_info,
            &plan.vars,
            decision,
        )?;
        let run_timeout = formula.run_timeout();
        Ok(Setup {
            plan,
            options,
            run,
            formula,
            order: plan.dag.order(),
            sessions: retort_formula::sessions::plan_sessions(formula, &plan.dag),
            renderer,
            conditions: ConditionContext::new(
                &plan.snapshot,
                &plan.vars,
                &decision.context().findings,
            ),
            ancestors: dag_ancestors(&plan.dag),
            template: plan
                .sessions
                .first()
                .map(|s| s.agent_command.clone())
                .unwrap_or_default(),
            agent_template: options
                .agent
                .clone()
                .or_else(|| formula.agent.command.as_ref().map(|c| c.get_ref().clone()))
                .unwrap_or_else(|| retort_formula::formula::DEFAULT_AGENT_COMMAND.to_string()),
            base_name: format!("retort-{}-{}", file_safe(formula.name()), plan.run_id),
            redactor: redactor(plan),
            clock: Instant::now(),
            began_at: Utc::now(),
            run_timeout,
            run_deadline: tokio::time::Instant::now() + run_timeout,
        })
    }

    /// The step at `position`.
    fn step(&self, position: usize) -> &'a retort_formula::formula::Step {
        &self.formula.steps[self.order[position]]
    }
}

/// Every waiting step hears of every change in the run directory and its
/// `steps/`: the watcher, and the senders it wakes.
type Listeners = Arc<Mutex<Vec<mpsc::UnboundedSender<()>>>>;

/// Watches `run`'s directory and `steps/`, waking every listener.
///
/// # Errors
/// [`RunError::Watch`] when a directory cannot be watched.
fn watch_run_dir(run: &RunDir) -> Result<(RecommendedWatcher, Listeners), RunError> {
    let listeners: Listeners = Arc::default();
    let fan_out = Arc::clone(&listeners);
    let mut watcher = notify::recommended_watcher(move |_event| {
        if let Ok(mut senders) = fan_out.lock() {
            senders.retain(|s| s.send(()).is_ok());
        }
    })
    .map_err(|source| RunError::Watch {
        path: run.steps_dir(),
        source,
    })?;
    for dir in [run.steps_dir(), run.path().to_path_buf()] {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| RunError::Watch { path: dir, source })?;
    }
    Ok((watcher, listeners))
}

/// Runs the agent phase with the scheduler (see the module's docs).
///
/// # Errors
/// [`RunError`] when it cannot start at all: a prompt does not render, or
/// the run directory cannot be written or watched.
pub(crate) async fn parallel_phase(
    plan: &Plan,
    options: &RunOptions,
    run: &RunDir,
    decision: &Decision,
    warnings: &mut Vec<String>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Agents, RunError> {
    // Each prompt is rendered as its step starts, with its ancestors' ends.
    run.create_agent_dirs().map_err(|source| RunError::Write {
        path: run.steps_dir(),
        source,
    })?;
    let (watcher, listeners) = watch_run_dir(run)?;
    let new_watch = || {
        let (wake, wakes) = mpsc::unbounded_channel();
        if let Ok(mut senders) = listeners.lock() {
            senders.push(wake);
        }
        Watch {
            wakes,
            interrupts: Interrupts::new(),
        }
    };
    let setup = Setup::new(plan, options, run, decision)?;
    let mut tally = Tally::new(&setup);
    let mut running: FuturesUnordered<Attempt<'_>> = FuturesUnordered::new();
    let mut interrupts = Interrupts::new();
    loop {
        if !tally.timed_out && tokio::time::Instant::now() >= setup.run_deadline {
            tally.timed_out = true;
            tally.scheduler.stop();
        }
        loop {
            let ready = tally.scheduler.poll(setup.clock.elapsed());
            if ready.is_empty() {
                break;
            }
            for position in ready {
                if let Some(attempt) = tally.start(&setup, position, &new_watch, progress).await {
                    running.push(attempt);
                }
            }
        }
        if running.is_empty() && (tally.scheduler.is_over() || tally.interrupted.is_some()) {
            break;
        }
        let wake_at = tally
            .scheduler
            .next_retry()
            .map(|at| tokio::time::Instant::now() + at.saturating_sub(setup.clock.elapsed()))
            .unwrap_or(setup.run_deadline)
            .min(setup.run_deadline);
        tokio::select! {
            Some(end) = running.next(), if !running.is_empty() => {
                tally.ended(&setup, end, warnings, progress).await;
            }
            name = interrupts.recv(), if tally.interrupted.is_none() => {
                tally.interrupted = Some(name);
                tally.scheduler.stop();
            }
            () = tokio::time::sleep_until(wake_at) => {}
        }
    }
    let agents = tally.finish(&setup, warnings).await;
    drop(watcher);
    Ok(agents)
}
