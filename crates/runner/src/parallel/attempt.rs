//! One attempt of a step run by the scheduler: its session's agent made
//! ready (a new tmux session), its prompt delivered, its end waited for
//! (the tmux watchdog, stream-json turns, or the signal file), and whether
//! that end is transient (retried while retries are left).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use retort_agent::agent::Agent;
use retort_agent::ready::wait_until_ready;
use retort_agent::session::AgentSession;
use retort_agent::signal::clear_agent_phase;
use retort_agent::usage::Usage;
use retort_agent::wait::{StepEnd, StepOutcome, wait_for_step};
use retort_agent::watchdog::TmuxWatch;
use retort_os::atomic::write_atomic;
use retort_os::paths::file_safe;

use super::session::{SessionAgent, current_step_file};
use crate::agent_phase::{Watch, deliver_prompt};
use crate::plan::Plan;
use crate::state::RunDir;
use crate::tmux_start::{Waited, not_ready_end, session_readiness};
use crate::turns::{TurnStep, wait_for_turns};

/// What one attempt of a step came to.
pub(super) struct AttemptEnd {
    /// The step's position in topological order.
    pub(super) position: usize,
    /// Its session's number (from 0).
    pub(super) session: usize,
    /// The session's agent, handed back for its next step.
    pub(super) agent: SessionAgent,
    pub(super) outcome: StepOutcome,
    pub(super) reason: Option<String>,
    pub(super) usage: Option<Usage>,
    /// Whether it ended with the agent's own signal.
    pub(super) graceful: bool,
    /// A transient end (crash, not delivered, rate limit, timeout), with
    /// the earliest retry time for a rate limit.
    pub(super) transient: Option<Option<Duration>>,
    pub(super) timed_out: bool,
    /// Rate-limited: the agent's words and until when (headless Claude
    /// Code, which says).
    pub(super) rate_limit: Option<(String, chrono::DateTime<chrono::Utc>)>,
}

/// An attempt in progress.
pub(super) type Attempt<'a> = Pin<Box<dyn Future<Output = AttemptEnd> + 'a>>;

/// One attempt of the step at `position`: its session's agent made ready
/// (a new tmux session), the prompt delivered, the end waited for.
#[allow(clippy::too_many_arguments)]
pub(super) async fn attempt<'a>(
    plan: &'a Plan,
    run: &'a RunDir,
    position: usize,
    session: usize,
    agent: SessionAgent,
    first: bool,
    prompt_error: Option<String>,
    mut watch: Watch,
    deadline: tokio::time::Instant,
    spent_before: f64,
) -> AttemptEnd {
    let SessionAgent {
        mut agent,
        mut account,
        mut tmux_watch,
        profile,
        command,
    } = agent;
    let formula = &plan.loaded.formula;
    let step = &formula.steps[plan.dag.order()[position]];
    let mut not_ready: Option<StepEnd> = prompt_error.map(StepEnd::Broken);
    if first
        && not_ready.is_none()
        && let Agent::Tmux(tmux) = &agent
    {
        let (readiness, patterns) = session_readiness(&plan.readiness, &profile);
        let ready = wait_until_ready(tmux, &readiness, &patterns, &mut watch.interrupts).await;
        let pane_file = run.pane_capture_file(session);
        let waited = Waited {
            readiness: &readiness,
            first: step.id(),
            pane_file: &pane_file,
        };
        let mut ignored = Vec::new();
        not_ready = not_ready_end(ready, tmux, &waited, &mut |_| {}, &mut ignored);
    }
    let started = match not_ready {
        Some(end) => Err(end),
        None => match start(
            run,
            &mut agent,
            tmux_watch.as_mut(),
            session,
            step.id(),
            plan,
        )
        .await
        {
            Ok(()) => Ok(()),
            Err(reason) => Err(match agent.agent_exit() {
                Some(exit) => StepEnd::AgentEnded(exit),
                None => StepEnd::Broken(reason),
            }),
        },
    };
    let stream = matches!(&agent, Agent::Headless(h) if h.is_stream());
    let mut rate_limit = None;
    let watched = matches!(agent, Agent::Tmux(_)) && tmux_watch.is_some();
    let (outcome, reason, usage, graceful, transient, timed_out) = match started {
        Ok(()) if watched => match (&agent, tmux_watch.as_mut()) {
            (Agent::Tmux(session), Some(tmux)) => {
                watch_tmux_step(plan, run, step, session, tmux, &mut watch, deadline).await
            }
            _ => (
                StepOutcome::Failed,
                Some(format!("step `{}`: its agent has no tmux watch", step.id())),
                None,
                false,
                None,
                false,
            ),
        },
        Ok(()) if stream => {
            let turn_step = TurnStep {
                id: step.id(),
                timeout: step.timeout(),
                deadline,
                on_permission: formula.agent.on_permission,
                spent_before,
                session,
            };
            let end =
                wait_for_turns(plan, run, &turn_step, &mut agent, &mut watch, &mut account).await;
            let reset = end
                .rate_limit
                .as_ref()
                .and_then(|(_, until)| (*until - chrono::Utc::now()).to_std().ok());
            let transient = match end.outcome {
                StepOutcome::RateLimited => Some(reset.map(|r| r + Duration::ZERO)),
                _ => None,
            };
            rate_limit = end.rate_limit.clone();
            (
                end.outcome,
                end.reason,
                end.usage,
                end.signalled,
                transient,
                false,
            )
        }
        started => {
            let end = match started {
                Ok(()) => {
                    wait_for_step(
                        run,
                        session,
                        step.id(),
                        &agent,
                        &mut watch.wakes,
                        deadline,
                        &mut watch.interrupts,
                    )
                    .await
                }
                Err(end) => end,
            };
            let graceful = matches!(end, StepEnd::Signalled(_));
            let (transient, timed_out) = transience(&end);
            let (outcome, reason) = end.describe(step.id(), step.timeout());
            let transient = match outcome {
                StepOutcome::RateLimited => Some(None),
                StepOutcome::Done | StepOutcome::Escalated => None,
                _ => transient,
            };
            (outcome, reason, None, graceful, transient, timed_out)
        }
    };
    AttemptEnd {
        position,
        session,
        agent: SessionAgent {
            agent,
            account,
            tmux_watch,
            profile,
            command,
        },
        outcome,
        reason,
        usage,
        graceful,
        transient,
        timed_out,
        rate_limit,
    }
}

/// What an attempt came to: outcome, reason, usage, whether it ended with
/// the agent's signal, whether it is transient (and the earliest retry),
/// whether it timed out.
type Came = (
    StepOutcome,
    Option<String>,
    Option<Usage>,
    bool,
    Option<Option<Duration>>,
    bool,
);

/// Waits for a step of a tmux session with its watchdog (dialogs,
/// permissions, idle turns), lets the agent's turn settle after its
/// signal, and reads the step's usage.
async fn watch_tmux_step(
    plan: &Plan,
    run: &RunDir,
    step: &retort_formula::formula::Step,
    session: &AgentSession,
    tmux: &mut TmuxWatch,
    watch: &mut Watch,
    deadline: tokio::time::Instant,
) -> Came {
    let buffer = format!("retort-{}-{}-nudge", plan.run_id, file_safe(step.id()));
    let end = tmux
        .watch_step(
            run,
            step.id(),
            session,
            &buffer,
            &mut watch.wakes,
            deadline,
            &mut watch.interrupts,
        )
        .await;
    let graceful = matches!(end, StepEnd::Signalled(_));
    if graceful {
        tmux.settle(session, Duration::from_secs(30)).await;
    }
    let usage = tmux.take_usage(graceful).await;
    let (transient, timed_out) = transience(&end);
    let (outcome, reason) = end.describe(step.id(), step.timeout());
    let transient = match outcome {
        StepOutcome::Done | StepOutcome::Escalated => None,
        _ => transient,
    };
    (outcome, reason, usage, graceful, transient, timed_out)
}

/// Whether a step's end is transient (retried while retries are left), and
/// whether it was a timeout. A signal, an interrupt or what the watchdog
/// saw on the screen (a dialog, a permission request) is not.
fn transience(end: &StepEnd) -> (Option<Option<Duration>>, bool) {
    match end {
        StepEnd::TimedOut => (Some(None), true),
        StepEnd::AgentEnded(_) | StepEnd::Broken(_) => (Some(None), false),
        _ => (None, false),
    }
}

/// Marks `step` current in its session's file and gives the agent its
/// prompt: pasted into its tmux session, or to its headless agent.
async fn start(
    run: &RunDir,
    agent: &mut Agent,
    tmux_watch: Option<&mut TmuxWatch>,
    session: usize,
    step: &str,
    plan: &Plan,
) -> Result<(), String> {
    let current = current_step_file(run, session);
    write_atomic(&current, format!("{step}\n").as_bytes())
        .map_err(|e| format!("could not write {}: {e}", current.display()))?;
    // What the agent wrote to its phase file was about the step before;
    // the other sessions' files are theirs.
    clear_agent_phase(run, session).map_err(|e| e.to_string())?;
    deliver_prompt(run, agent, tmux_watch, step, plan).await
}
