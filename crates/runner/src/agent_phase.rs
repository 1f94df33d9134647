//! The agent phase of a run whose gate opened: prompts rendered and saved,
//! each session's agent started (tmux, or headless), each step's prompt
//! delivered and its signal waited for, and the agents ended.
//!
//! Headless, a Claude Code session is one process speaking stream-json,
//! with its permissions in `RUN/claude-settings.json` (`-N` for the Nth
//! session); its steps end as [`crate::turns`] says. After every step the
//! run's spend is held against `[budget] run_usd`.
//!
//! Starting and ending one session's agent, which the scheduler
//! ([`crate::parallel`]) shares, is in `session_agent`.

mod session_agent;

use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use retort_agent::agent::Agent;
use retort_agent::ready::wait_until_ready;
use retort_agent::session::AgentSession;
use retort_agent::signal::{clear_agent_phase, clear_step_signal};
use retort_agent::usage::Usage;
use retort_agent::wait::{Interrupts, StepEnd, StepOutcome, wait_for_step};
use retort_agent::watchdog::TmuxWatch;
use retort_decide::decide::Decision;
use retort_formula::formula::Backend;
use retort_os::atomic::write_atomic;
use retort_os::paths::file_safe;
use retort_prompt::prompt::render_prompts;

use crate::holds::{self, Hold, run_budget_reached};
use crate::phase::Phase;
use crate::plan::{Plan, RunOptions, SessionPlan};
use crate::run::{Progress, RunError, StepResult, clean_reason, millis, redactor, write_file};
use crate::state::RunDir;
use crate::tmux_start::{Waited, not_ready_end, session_readiness, tmux_command};
use crate::turns::{SessionAccount, TurnStep, wait_for_turns};

pub(crate) use session_agent::{deliver_prompt, headless_agent, retire, session_spec};

/// What the agent phase of a run did: the tmux sessions it used, each
/// step's result (every step of the plan, the ones not reached skipped),
/// and how it ended, when not with every step done.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    pub(crate) sessions: Vec<String>,
    pub(crate) steps: Vec<StepResult>,
    pub(crate) ending: Option<(Phase, String)>,
    /// Rate-limit holds the steps left (headless Claude Code, which knows
    /// until when).
    pub(crate) holds: Vec<Hold>,
    /// Every attempt of every step, when the scheduler ran them (also in
    /// `RUN/attempts.json`); empty for the sequential loop.
    pub(crate) attempts: Vec<crate::parallel::AttemptRecord>,
}

/// What the steps of the run have cost so far, in US dollars.
pub(crate) fn spent(steps: &[StepResult]) -> f64 {
    steps
        .iter()
        .filter_map(|s| s.usage.and_then(|u| u.cost_usd))
        .sum()
}

/// Every step from position `from` (in topological order) on, skipped.
pub(crate) fn skipped(plan: &Plan, from: usize) -> Vec<StepResult> {
    let formula = &plan.loaded.formula;
    plan.dag.order()[from.min(plan.dag.order().len())..]
        .iter()
        .map(|&index| {
            let step = &formula.steps[index];
            StepResult {
                id: step.id().to_string(),
                title: step.title().to_string(),
                outcome: StepOutcome::Skipped,
                duration_ms: None,
                reason: None,
                usage: None,
            }
        })
        .collect()
}

/// The agent phase of a run whose gate opened: the prompts rendered and
/// saved, then each session's agent started and each step given to it and
/// waited for.
///
/// # Errors
/// [`RunError`] when it cannot start at all: a prompt does not render, the
/// run directory cannot be written or watched, or the first tmux session
/// cannot start. Nothing is left running then.
pub(crate) async fn agent_phase(
    plan: &Plan,
    options: &RunOptions,
    run: &RunDir,
    decision: &Decision,
    warnings: &mut Vec<String>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Agents, RunError> {
    write_prompts(plan, run, decision)?;
    let (wake, wakes) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |_event| {
        let _ = wake.send(());
    })
    .map_err(|source| RunError::Watch {
        path: run.steps_dir(),
        source,
    })?;
    // Signals land in steps/, the agent's exit status in the run directory.
    for dir in [run.steps_dir(), run.path().to_path_buf()] {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| RunError::Watch { path: dir, source })?;
    }
    let mut watch = Watch {
        wakes,
        interrupts: Interrupts::new(),
    };

    let mut agents = Agents {
        steps: Vec::with_capacity(plan.dag.order().len()),
        ..Agents::default()
    };
    // The agent of the session before, and whether its last step ended
    // with the agent's signal (a headless agent then gets time to exit).
    let mut previous: Option<(usize, Agent, bool)> = None;
    // The run's own timeout bounds every step's.
    let run_deadline = tokio::time::Instant::now() + plan.loaded.formula.run_timeout();
    for (number, planned) in plan.sessions.iter().enumerate() {
        if agents.ending.is_some() {
            break;
        }
        // One session works at a time: each has the first session's
        // phase and events files.
        let mut spec = session_spec(plan, planned, options, run, number, 0);
        if plan.backend == Backend::Tmux {
            match tmux_command(planned, options, run, number) {
                Ok(command) => spec.command = command,
                Err(error) if number == 0 => return Err(error),
                Err(error) => {
                    agents.ending = Some((Phase::Failed, error.to_string()));
                    break;
                }
            }
        }
        // The next session starts before the last one is killed, so that the
        // tmux server never runs out of sessions (and exits) mid-run.
        let started = match plan.backend {
            Backend::Tmux => AgentSession::start(&options.tmux, &spec)
                .await
                .map(Agent::Tmux)
                .map_err(RunError::Session),
            Backend::Headless => {
                headless_agent(planned, run, number, &mut spec).map(Agent::Headless)
            }
        };
        if let Some((finished, agent, graceful)) = previous.take() {
            retire(run, &redactor(plan), finished, agent, graceful, warnings).await;
        }
        let mut agent = match started {
            Ok(agent) => agent,
            Err(error) if number == 0 => return Err(error),
            Err(error) => {
                agents.ending = Some((
                    Phase::Failed,
                    format!("cannot start session {}: {error}", planned.name),
                ));
                break;
            }
        };
        let not_ready = agent_started(
            plan,
            run,
            planned,
            number,
            &agent,
            &mut agents,
            &mut watch,
            progress,
            warnings,
        )
        .await;
        let graceful = run_session_steps(
            plan,
            run,
            planned,
            &mut agent,
            not_ready,
            &mut agents,
            &mut watch,
            run_deadline,
            progress,
        )
        .await;
        previous = Some((number, agent, graceful));
    }
    if let Some((finished, agent, graceful)) = previous.take() {
        retire(run, &redactor(plan), finished, agent, graceful, warnings).await;
    }
    drop(watcher);
    agents.steps.extend(skipped(plan, agents.steps.len()));
    Ok(agents)
}

/// Renders every prompt with the decision, and saves each in `prompts/`.
pub(crate) fn write_prompts(
    plan: &Plan,
    run: &RunDir,
    decision: &Decision,
) -> Result<(), RunError> {
    let prompts = render_prompts(
        &plan.loaded.formula,
        &plan.dag,
        &plan.snapshot,
        &plan.context_files,
        &plan.run_info,
        &plan.vars,
        decision,
    )?;
    // An agent starts: now the run needs prompts/ and steps/.
    run.create_agent_dirs().map_err(|source| RunError::Write {
        path: run.steps_dir(),
        source,
    })?;
    let redactor = redactor(plan);
    for prompt in &prompts {
        let text = redactor.redact(&prompt.text);
        write_file(&run.prompt_file(&prompt.step), text.as_bytes())?;
    }
    Ok(())
}

/// What a step's wait listens to: changes in the run directory, and
/// retort's own SIGINT, SIGTERM and SIGHUP.
pub(crate) struct Watch {
    pub(crate) wakes: mpsc::UnboundedReceiver<()>,
    pub(crate) interrupts: Interrupts,
}

/// Reports a started agent and, for a tmux session, waits until it is
/// ready: `Some` end for the session's first step when it never became so.
#[allow(clippy::too_many_arguments)]
async fn agent_started(
    plan: &Plan,
    run: &RunDir,
    planned: &SessionPlan,
    number: usize,
    agent: &Agent,
    agents: &mut Agents,
    watch: &mut Watch,
    progress: &mut dyn FnMut(Progress<'_>),
    warnings: &mut Vec<String>,
) -> Option<StepEnd> {
    let formula = &plan.loaded.formula;
    let first = formula.steps[plan.dag.order()[planned.steps.start]].id();
    match agent {
        Agent::Tmux(session) => {
            agents.sessions.push(session.name().to_string());
            crate::recovery::add_session(run, session.name());
            progress(Progress::SessionStarted {
                session: session.name(),
                command: &planned.agent_command,
                run_dir: run.path(),
            });
            // The session's first step cannot start until its agent is
            // ready. Claude Code's ready screen is known.
            let (readiness, patterns) = session_readiness(&plan.readiness, &planned.profile);
            let ready =
                wait_until_ready(session, &readiness, &patterns, &mut watch.interrupts).await;
            let pane_file = run.pane_capture_file(number);
            let waited = Waited {
                readiness: &readiness,
                first,
                pane_file: &pane_file,
            };
            not_ready_end(ready, session, &waited, progress, warnings)
        }
        Agent::Headless(headless) => {
            progress(Progress::HeadlessStarted {
                command: headless.command(),
                per_session: headless.is_stream(),
                run_dir: run.path(),
                output_dir: &run.agent_output_dir(),
            });
            None
        }
    }
}

/// Gives each step of session `planned` to `agent` and waits for it, until
/// one does not end `done`. Returns whether the last step ended with the
/// agent's own signal.
#[allow(clippy::too_many_arguments)]
async fn run_session_steps(
    plan: &Plan,
    run: &RunDir,
    planned: &SessionPlan,
    agent: &mut Agent,
    mut not_ready: Option<StepEnd>,
    agents: &mut Agents,
    watch: &mut Watch,
    run_deadline: tokio::time::Instant,
    progress: &mut dyn FnMut(Progress<'_>),
) -> bool {
    let formula = &plan.loaded.formula;
    let count = plan.dag.order().len();
    let mut graceful = false;
    let mut account = SessionAccount::default();
    let secrets = redactor(plan);
    let mut tmux_watch = match agent {
        Agent::Tmux(_) => Some(TmuxWatch::new(&planned.profile, run, 0)),
        Agent::Headless(_) => None,
    };
    for position in planned.steps.clone() {
        let step = &formula.steps[plan.dag.order()[position]];
        let step_clock = Instant::now();
        let deadline = (tokio::time::Instant::now() + step.timeout()).min(run_deadline);
        progress(Progress::StepStarted {
            number: position + 1,
            count,
            id: step.id(),
            title: step.title(),
        });
        let started = match not_ready.take() {
            Some(end) => Err(end),
            None => match start_step(run, agent, tmux_watch.as_mut(), step.id(), plan).await {
                Ok(()) => Ok(()),
                // When the agent is gone, say how it ended rather than
                // that the paste failed.
                Err(reason) => Err(match agent.agent_exit() {
                    Some(exit) => StepEnd::AgentEnded(exit),
                    None => StepEnd::Broken(reason),
                }),
            },
        };
        let stream = matches!(&*agent, Agent::Headless(h) if h.is_stream());
        let (outcome, reason, usage) = match (started, &*agent, tmux_watch.as_mut()) {
            (Ok(()), Agent::Headless(_), _) if stream => {
                let turn_step = TurnStep {
                    id: step.id(),
                    timeout: step.timeout(),
                    deadline,
                    on_permission: formula.agent.on_permission,
                    spent_before: spent(&agents.steps),
                    session: 0,
                };
                let end = wait_for_turns(plan, run, &turn_step, agent, watch, &mut account).await;
                graceful = end.signalled;
                if let Some((text, until)) = end.rate_limit {
                    let key = holds::agent_key(&formula.agent, &planned.agent_command);
                    agents.holds.push(holds::rate_limit_hold(
                        key,
                        &text,
                        plan,
                        chrono::Utc::now(),
                        Some(until),
                    ));
                }
                (end.outcome, end.reason, end.usage)
            }
            (Ok(()), Agent::Tmux(session), Some(tmux)) => {
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
                graceful = matches!(end, StepEnd::Signalled(_));
                // The agent's turn ends after its signal: the next prompt
                // waits for that, and the step's usage is read once it has.
                if graceful {
                    tmux.settle(session, SETTLE_LIMIT).await;
                }
                let usage = tmux.take_usage(graceful).await;
                let (outcome, reason) = end.describe(step.id(), step.timeout());
                (outcome, reason, usage)
            }
            (started, _, _) => {
                let end = match started {
                    Ok(()) => {
                        wait_for_step(
                            run,
                            0,
                            step.id(),
                            agent,
                            &mut watch.wakes,
                            deadline,
                            &mut watch.interrupts,
                        )
                        .await
                    }
                    Err(end) => end,
                };
                graceful = matches!(end, StepEnd::Signalled(_));
                let (outcome, reason) = end.describe(step.id(), step.timeout());
                (outcome, reason, None::<Usage>)
            }
        };
        let reason = match outcome {
            StepOutcome::Failed if tokio::time::Instant::now() >= run_deadline => Some(format!(
                "step `{}`: the run's timeout of {} was reached",
                step.id(),
                humantime::format_duration(plan.loaded.formula.run_timeout())
            )),
            _ => reason,
        };
        let reason = reason.map(|r| clean_reason(&secrets, &r));
        let duration_ms = Some(millis(step_clock.elapsed()));
        let result = StepResult {
            id: step.id().to_string(),
            title: step.title().to_string(),
            outcome,
            duration_ms,
            reason: reason.clone(),
            usage,
        };
        progress(Progress::StepEnded(&result));
        agents.steps.push(result);
        // The run's budget, after every step on either backend: a run that
        // has reached it sends no further step, and its agent is ended.
        let over_budget = run_budget_reached(plan, spent(&agents.steps));
        if let (StepOutcome::Done, Some(budget)) = (outcome, &over_budget)
            && position + 1 < count
        {
            agents.ending = Some((Phase::Failed, budget.clone()));
            graceful = false;
            break;
        }
        match outcome {
            StepOutcome::Failed | StepOutcome::RateLimited => {
                agents.ending = Some((Phase::Failed, reason.unwrap_or_default()));
            }
            StepOutcome::Escalated => {
                // A human hears of it now: the steps after it are skipped.
                if let Some(step) = agents.steps.last() {
                    crate::notify::escalated(plan, run, step).await;
                }
                agents.ending = Some((Phase::Escalate, reason.unwrap_or_default()));
            }
            StepOutcome::Done | StepOutcome::Skipped => {}
        }
        if agents.ending.is_some() {
            break;
        }
    }
    graceful
}

/// Marks `step` current and gives the agent its prompt: pasted into its
/// tmux session, or on the standard input of a new headless process.
async fn start_step(
    run: &RunDir,
    agent: &mut Agent,
    tmux_watch: Option<&mut TmuxWatch>,
    step: &str,
    plan: &Plan,
) -> Result<(), String> {
    // The process of the step before (headless, one a step) has ended
    // before this step is in progress: what it still signals is refused.
    if let Agent::Headless(headless) = agent
        && !headless.is_stream()
    {
        headless.end(true).await;
    }
    // A signal given before the step was in progress does not end it.
    clear_step_signal(run, step).map_err(|e| e.to_string())?;
    write_atomic(&run.current_step_file(), format!("{step}\n").as_bytes())
        .map_err(|e| format!("could not write {}: {e}", run.current_step_file().display()))?;
    // What the agent wrote to its phase file was about the step before.
    clear_agent_phase(run, 0).map_err(|e| e.to_string())?;
    deliver_prompt(run, agent, tmux_watch, step, plan).await
}

/// How long a signalled step waits for the agent's turn to end (its `Stop`
/// hook) before the next prompt is pasted anyway: 30 s.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
