//! The agent phase of a run whose steps do not simply run one after
//! another: independent branches at once (`max_parallel`), `when`
//! conditions, retries, outputs handed on, the run's `timeout`, and
//! reruns that reuse earlier steps. The [`crate::scheduler`] says which
//! step starts when; this module starts each session's agent (a tmux
//! session, or a headless agent), gives it the step's prompt (rendered as
//! the step starts, with its ancestors' outcomes and outputs), waits for
//! its end, and records every attempt in `RUN/attempts.json`.
//!
//! A formula of one chain with `max_parallel = 1` and none of these keys
//! runs in [`crate::agent_phase`] as it always has.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::mpsc;

use retort_agent::agent::Agent;
use retort_agent::ready::wait_until_ready;
use retort_agent::session::AgentSession;
use retort_agent::usage::Usage;
use retort_agent::wait::{Interrupts, StepEnd, StepOutcome, wait_for_step};
use retort_decide::condition::{ConditionContext, StepValue};
use retort_decide::decide::Decision;
use retort_formula::formula::Backend;
use retort_os::atomic::write_atomic;
use retort_os::paths::file_safe;
use retort_prompt::prompt::{PromptRenderer, dag_ancestors, render_agent_command};

use crate::agent_phase::{Agents, Watch, headless_agent, retire, session_spec};
use crate::phase::Phase;
use crate::plan::{Plan, RunOptions, SessionPlan};
use crate::run::{Progress, RunError, StepResult, millis, redactor};
use crate::scheduler::{Ended, Next, NotRun, Scheduler, StepSpec};
use crate::state::RunDir;
use crate::tmux_start::{Waited, not_ready_end, session_readiness, tmux_command};
use crate::turns::{SessionAccount, TurnStep, wait_for_turns};
use retort_agent::profile::Profile;
use retort_agent::signal::clear_agent_phase;
use retort_agent::watchdog::TmuxWatch;

/// The environment variable naming the file that holds the step a
/// session's agent is on (`RUN/current_step`, `current_step-2`, … by
/// session): `retort signal` without `--step` reads it.
pub const CURRENT_STEP_FILE_ENV: &str = "RETORT_CURRENT_STEP_FILE";

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
}

/// What one attempt of a step came to.
struct AttemptEnd {
    position: usize,
    session: usize,
    agent: Agent,
    outcome: StepOutcome,
    reason: Option<String>,
    usage: Option<Usage>,
    graceful: bool,
    /// A transient end (crash, not delivered, rate limit, timeout), with
    /// the earliest retry time for a rate limit.
    transient: Option<Option<Duration>>,
    timed_out: bool,
    account: SessionAccount,
    tmux_watch: Option<TmuxWatch>,
    profile: Profile,
    /// Rate-limited: the agent's words and until when (headless Claude
    /// Code, which says).
    rate_limit: Option<(String, chrono::DateTime<chrono::Utc>)>,
}

type Attempt<'a> = Pin<Box<dyn Future<Output = AttemptEnd> + 'a>>;

/// A session's agent, when no step of it runs.
enum Slot {
    NotStarted,
    Idle(Box<(Agent, SessionAccount, Option<TmuxWatch>, Profile, bool)>),
    Busy,
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
    let formula = &plan.loaded.formula;
    let order = plan.dag.order();
    let count = order.len();

    // Every waiting step hears of every change in the run directory.
    let listeners: Arc<Mutex<Vec<mpsc::UnboundedSender<()>>>> = Arc::default();
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

    // Sessions, steps and the scheduler.
    let sessions = retort_formula::sessions::plan_sessions(formula, &plan.dag);
    let mut position_of = vec![0; formula.steps.len()];
    for (position, &index) in order.iter().enumerate() {
        position_of[index] = position;
    }
    let specs: Vec<StepSpec> = order
        .iter()
        .enumerate()
        .map(|(position, &index)| {
            let step = &formula.steps[index];
            StepSpec {
                needs: plan
                    .dag
                    .needs(index)
                    .into_iter()
                    .map(|n| position_of[n])
                    .collect(),
                session: sessions[position],
                retries: step.retries,
                retry_delay: step.retry_delay(),
            }
        })
        .collect();
    let session_count = sessions.iter().max().map_or(0, |s| s + 1);
    let mut scheduler = Scheduler::new(specs, formula.max_parallel(), formula.on_failure);
    let ancestors = dag_ancestors(&plan.dag);
    let renderer = PromptRenderer::new(
        formula,
        &plan.dag,
        &plan.snapshot,
        &plan.context_files,
        &plan.run_info,
        &plan.vars,
        decision,
    )?;
    let conditions =
        ConditionContext::new(&plan.snapshot, &plan.vars, &decision.context().findings);
    let template = plan
        .sessions
        .first()
        .map(|s| s.agent_command.clone())
        .unwrap_or_default();
    let agent_template = options
        .agent
        .clone()
        .or_else(|| formula.agent.command.as_ref().map(|c| c.get_ref().clone()))
        .unwrap_or_else(|| retort_formula::formula::DEFAULT_AGENT_COMMAND.to_string());
    let base_name = format!("retort-{}-{}", file_safe(formula.name()), plan.run_id);

    let mut slots: Vec<Slot> = (0..session_count).map(|_| Slot::NotStarted).collect();
    let mut first_of_session = vec![true; session_count];
    let mut values: BTreeMap<String, StepValue> = BTreeMap::new();
    let mut results: Vec<Option<StepResult>> = vec![None; count];
    let mut records: Vec<AttemptRecord> = Vec::new();
    let mut agents = Agents::default();
    let mut running: FuturesUnordered<Attempt<'_>> = FuturesUnordered::new();
    let mut running_ids: Vec<String> = Vec::new();
    let mut ending: Option<(Phase, String)> = None;
    let clock = Instant::now();
    let run_timeout = formula.run_timeout();
    let run_deadline = tokio::time::Instant::now() + run_timeout;
    let mut timed_out = false;
    let mut interrupts = Interrupts::new();
    let mut interrupted: Option<&'static str> = None;
    // What the steps have cost so far (USD), held against the run's budget.
    let mut spent_so_far = 0.0;

    loop {
        if !timed_out && tokio::time::Instant::now() >= run_deadline {
            timed_out = true;
            scheduler.stop();
        }
        loop {
            let ready = scheduler.poll(clock.elapsed());
            if ready.is_empty() {
                break;
            }
            for position in ready {
                let step = &formula.steps[order[position]];
                let id = step.id().to_string();
                // Reused from the run this one reruns.
                if let Some(value) = plan.reused.get(&id) {
                    values.insert(id.clone(), value.clone());
                    if let Some(output) = Some(&value.output).filter(|o| !o.is_empty()) {
                        let _ = retort_agent::output::write(run, &id, output);
                    }
                    scheduler.skip(position);
                    let result = StepResult {
                        id: id.clone(),
                        title: step.title().to_string(),
                        outcome: StepOutcome::Skipped,
                        duration_ms: None,
                        reason: Some(format!(
                            "reused from run {}: {}",
                            plan.rerun_of.as_deref().unwrap_or("?"),
                            value.outcome
                        )),
                        usage: None,
                    };
                    progress(Progress::StepEnded(&result));
                    results[position] = Some(result);
                    continue;
                }
                // Its ancestors' ends, for a step whose description or
                // condition names `steps` (copying them for every step of a
                // long chain would cost each step as much as the chain).
                let names_steps = step.when().is_some_and(|w| w.contains("steps"))
                    || (step.is_template(formula.raw)
                        && step.description.get_ref().contains("steps"));
                let seen: BTreeMap<String, StepValue> = match names_steps {
                    false => BTreeMap::new(),
                    true => ancestors[order[position]]
                        .iter()
                        .filter_map(|&a| {
                            let aid = formula.steps[a].id();
                            values.get(aid).map(|v| (aid.to_string(), v.clone()))
                        })
                        .collect(),
                };
                if let Some(when) = step.when() {
                    match conditions.evaluate(when, &seen) {
                        Ok(true) => {}
                        Ok(false) => {
                            scheduler.skip(position);
                            let when = when.split_whitespace().collect::<Vec<_>>().join(" ");
                            let result = StepResult {
                                id: id.clone(),
                                title: step.title().to_string(),
                                outcome: StepOutcome::Skipped,
                                duration_ms: None,
                                reason: Some(format!("step `{id}`: `when` is false: {when}")),
                                usage: None,
                            };
                            values.insert(
                                id.clone(),
                                StepValue {
                                    outcome: "skipped".to_string(),
                                    output: String::new(),
                                },
                            );
                            progress(Progress::StepEnded(&result));
                            results[position] = Some(result);
                            continue;
                        }
                        Err(error) => {
                            scheduler.finish(position, clock.elapsed(), Ended::Failed);
                            let result = StepResult {
                                id: id.clone(),
                                title: step.title().to_string(),
                                outcome: StepOutcome::Failed,
                                duration_ms: None,
                                reason: Some(format!(
                                    "step `{id}`: its `when` could not be evaluated: {error}"
                                )),
                                usage: None,
                            };
                            progress(Progress::StepEnded(&result));
                            results[position] = Some(result);
                            continue;
                        }
                    }
                }
                // The prompt, with its ancestors' ends.
                let session = sessions[position];
                let first = first_of_session[session];
                first_of_session[session] = false;
                // The agent's phase file is its session's.
                let run_info = retort_prompt::prompt::RunInfo {
                    phase_file: run.agent_phase_file(session).display().to_string(),
                    ..plan.run_info.clone()
                };
                let rendered = renderer
                    .render_in(position, first, &seen, &run_info)
                    .map(|prompt| write_atomic(&run.prompt_file(&id), prompt.text.as_bytes()));
                let prompt_error = match rendered {
                    Ok(Ok(())) => None,
                    Ok(Err(error)) => Some(format!(
                        "could not write {}: {error}",
                        run.prompt_file(&id).display()
                    )),
                    Err(error) => Some(error.to_string()),
                };
                // The session's agent: idle since its last step, or new.
                let taken = match std::mem::replace(&mut slots[session], Slot::Busy) {
                    Slot::Idle(idle) => {
                        let (agent, account, tmux_watch, profile, _) = *idle;
                        Ok((agent, account, tmux_watch, profile))
                    }
                    Slot::Busy | Slot::NotStarted => {
                        let name = match session {
                            0 => base_name.clone(),
                            n => format!("{base_name}-{}", n + 1),
                        };
                        let started = start_session(
                            plan,
                            options,
                            run,
                            session,
                            name,
                            step,
                            &template,
                            &agent_template,
                        )
                        .await;
                        if let Ok((agent, _, _, _)) = &started {
                            match agent {
                                Agent::Tmux(tmux) => {
                                    agents.sessions.push(tmux.name().to_string());
                                    progress(Progress::SessionStarted {
                                        session: tmux.name(),
                                        run_dir: run.path(),
                                    });
                                }
                                Agent::Headless(headless) if session == 0 => {
                                    progress(Progress::HeadlessStarted {
                                        command: headless.command(),
                                        per_session: headless.is_stream(),
                                        run_dir: run.path(),
                                        output_dir: &run.agent_output_dir(),
                                    });
                                }
                                Agent::Headless(_) => {}
                            }
                        }
                        started
                    }
                };
                let (agent, account, tmux_watch, profile) = match taken {
                    Ok(taken) => taken,
                    Err(reason) => {
                        slots[session] = Slot::NotStarted;
                        finish_without_agent(
                            &mut scheduler,
                            position,
                            clock.elapsed(),
                            step,
                            AttemptEndInfo {
                                outcome: StepOutcome::Failed,
                                reason: Some(reason),
                            },
                            &mut results,
                            &mut records,
                            progress,
                        );
                        continue;
                    }
                };
                progress(Progress::StepStarted {
                    number: position + 1,
                    count,
                    id: step.id(),
                    title: step.title(),
                });
                running_ids.push(id.clone());
                progress(Progress::Running(&running_ids));
                let watch = new_watch();
                let deadline = (tokio::time::Instant::now() + step.timeout()).min(run_deadline);
                let spent_before = spent_so_far;
                running.push(Box::pin(attempt(
                    plan,
                    run,
                    position,
                    session,
                    agent,
                    account,
                    tmux_watch,
                    profile,
                    first,
                    prompt_error,
                    watch,
                    deadline,
                    spent_before,
                )));
            }
        }
        if running.is_empty() && scheduler.is_over() {
            break;
        }
        if running.is_empty() && interrupted.is_some() {
            break;
        }
        let wake_at = scheduler
            .next_retry()
            .map(|at| tokio::time::Instant::now() + at.saturating_sub(clock.elapsed()))
            .unwrap_or(run_deadline)
            .min(run_deadline);
        tokio::select! {
            Some(end) = running.next(), if !running.is_empty() => {
                let elapsed = clock.elapsed();
                spent_so_far += end.usage.and_then(|u| u.cost_usd).unwrap_or(0.0);
                if let Some((text, until)) = &end.rate_limit {
                    let key = crate::holds::agent_key(&formula.agent, &template);
                    agents.holds.push(crate::holds::rate_limit_hold(
                        key,
                        text,
                        plan,
                        chrono::Utc::now(),
                        Some(*until),
                    ));
                }
                let step = &formula.steps[order[end.position]];
                let id = step.id().to_string();
                running_ids.retain(|r| *r != id);
                let mut reason = end.reason.clone();
                if end.timed_out && tokio::time::Instant::now() >= run_deadline {
                    timed_out = true;
                    reason = Some(format!(
                        "step `{id}`: the run's timeout of {} was reached",
                        humantime::format_duration(run_timeout)
                    ));
                }
                let ended = match (end.outcome, end.transient) {
                    (StepOutcome::Done, _) => Ended::Done,
                    (_, Some(not_before)) if !timed_out && interrupted.is_none() => {
                        Ended::Transient { not_before }
                    }
                    _ => Ended::Failed,
                };
                let next = scheduler.finish(end.position, elapsed, ended);
                let attempt = scheduler.attempts().last().map_or(1, |a| a.number);
                records.push(AttemptRecord {
                    step: id.clone(),
                    attempt,
                    started_ms: millis(scheduler.attempts().last().map_or(Duration::ZERO, |a| a.started)),
                    ended_ms: millis(elapsed),
                    outcome: end.outcome,
                    reason: reason.clone(),
                    retry_at_ms: match next {
                        Next::RetryAt(at) => Some(millis(at)),
                        Next::Final => None,
                    },
                });
                if matches!(ended, Ended::Transient { .. }) {
                    // The agent may be gone: a retry starts a new one,
                    // whose first prompt carries the header again.
                    retire(run, &redactor(plan), end.session, end.agent, false, warnings).await;
                    slots[end.session] = Slot::NotStarted;
                    first_of_session[end.session] = true;
                } else if (end.position + 1..count)
                    .any(|p| sessions[p] == end.session && results[p].is_none())
                {
                    slots[end.session] = Slot::Idle(Box::new((
                        end.agent,
                        end.account,
                        end.tmux_watch,
                        end.profile,
                        end.graceful,
                    )));
                } else {
                    // The session's last step: its agent is ended now, not
                    // at the end of the run.
                    retire(run, &redactor(plan), end.session, end.agent, end.graceful, warnings).await;
                    slots[end.session] = Slot::NotStarted;
                }
                if let Next::RetryAt(at) = next {
                    let waiting = at.saturating_sub(elapsed);
                    let result = StepResult {
                        id: id.clone(),
                        title: step.title().to_string(),
                        outcome: end.outcome,
                        duration_ms: Some(millis(elapsed.saturating_sub(scheduler.attempts().last().map_or(Duration::ZERO, |a| a.started)))),
                        reason: Some(format!(
                            "{}; attempt {attempt} of {}, retried in {}",
                            reason.unwrap_or_default(),
                            step.retries + 1,
                            humantime::format_duration(Duration::from_secs(waiting.as_secs()))
                        )),
                        usage: end.usage,
                    };
                    progress(Progress::StepEnded(&result));
                    continue;
                }
                let output = retort_agent::output::read(run, &id);
                values.insert(
                    id.clone(),
                    StepValue {
                        outcome: end.outcome.as_str().to_string(),
                        output,
                    },
                );
                let reason = match (attempt, reason) {
                    (1, reason) => reason,
                    (n, Some(reason)) => Some(format!("{reason} (attempt {n})")),
                    (_, None) => None,
                };
                let result = StepResult {
                    id: id.clone(),
                    title: step.title().to_string(),
                    outcome: end.outcome,
                    duration_ms: Some(millis(elapsed.saturating_sub(scheduler.attempts().last().map_or(Duration::ZERO, |a| a.started)))),
                    reason: reason.clone(),
                    usage: end.usage,
                };
                progress(Progress::StepEnded(&result));
                results[end.position] = Some(result);
                if !running_ids.is_empty() {
                    progress(Progress::Running(&running_ids));
                }
                let failed = match end.outcome {
                    StepOutcome::Failed | StepOutcome::RateLimited => Some(Phase::Failed),
                    StepOutcome::Escalated => Some(Phase::Escalate),
                    StepOutcome::Done | StepOutcome::Skipped => None,
                };
                if let Some(phase) = failed {
                    let worse = match &ending {
                        None => true,
                        Some((Phase::Failed, _)) => phase == Phase::Escalate,
                        Some(_) => false,
                    };
                    if worse {
                        ending = Some((phase, reason.unwrap_or_default()));
                    }
                }
                if let Some(budget) = crate::holds::run_budget_reached(plan, spent_so_far) {
                    scheduler.stop();
                    ending.get_or_insert((Phase::Failed, budget));
                }
            }
            name = interrupts.recv(), if interrupted.is_none() => {
                interrupted = Some(name);
                scheduler.stop();
            }
            () = tokio::time::sleep_until(wake_at) => {}
        }
    }

    // Steps that never ran, with why.
    for (position, result) in results.iter_mut().enumerate() {
        if result.is_some() {
            continue;
        }
        let step = &formula.steps[order[position]];
        let reason = match scheduler.not_run(position) {
            Some(NotRun::Blocked { need }) => {
                let need = formula.steps[order[need]].id();
                Some(format!(
                    "not started: it needs `{need}`, which did not end done"
                ))
            }
            Some(NotRun::Stopped {
                failed: Some(failed),
            }) => Some(format!(
                "not started: step `{}` failed (on_failure = \"stop\")",
                formula.steps[order[failed]].id()
            )),
            Some(NotRun::Stopped { failed: None }) if timed_out => Some(format!(
                "not started: the run's timeout of {} was reached",
                humantime::format_duration(run_timeout)
            )),
            Some(NotRun::Stopped { failed: None }) => {
                interrupted.map(|name| format!("not started: retort got {name}"))
            }
            None => None,
        };
        *result = Some(StepResult {
            id: step.id().to_string(),
            title: step.title().to_string(),
            outcome: StepOutcome::Skipped,
            duration_ms: None,
            reason,
            usage: None,
        });
    }
    if ending.is_none() {
        if timed_out {
            ending = Some((
                Phase::Failed,
                format!(
                    "the run's timeout of {} was reached",
                    humantime::format_duration(run_timeout)
                ),
            ));
        } else if let Some(name) = interrupted {
            ending = Some((Phase::Failed, format!("retort got {name}")));
        }
    }
    for (number, slot) in slots.into_iter().enumerate() {
        if let Slot::Idle(idle) = slot {
            let (agent, _, _, _, graceful) = *idle;
            retire(run, &redactor(plan), number, agent, graceful, warnings).await;
        }
    }
    drop(watcher);
    let json = serde_json::to_vec_pretty(&records).unwrap_or_default();
    if let Err(error) = write_atomic(&run.path().join("attempts.json"), &json) {
        warnings.push(format!("could not write attempts.json: {error}"));
    }
    agents.steps = results.into_iter().flatten().collect();
    agents.ending = ending;
    Ok(agents)
}

/// What a started session hands its steps.
type Started = (Agent, SessionAccount, Option<TmuxWatch>, Profile);

/// Starts the agent of session `number` for its first step `step`: a
/// tmux session (with Claude Code's settings) or a headless agent, its
/// environment naming the session's current-step file.
///
/// # Errors
/// Why it could not start, as the step's reason.
#[allow(clippy::too_many_arguments)]
async fn start_session(
    plan: &Plan,
    options: &RunOptions,
    run: &RunDir,
    number: usize,
    name: String,
    step: &retort_formula::formula::Step,
    first_command: &str,
    agent_template: &str,
) -> Result<Started, String> {
    let formula = &plan.loaded.formula;
    let model = formula.model_of(step).map(str::to_string);
    let agent_command = match number {
        0 => first_command.to_string(),
        _ => render_agent_command(agent_template, formula, model.as_deref(), &plan.vars)
            .map_err(|e| e.to_string())?,
    };
    let profile = Profile::new(&formula.agent, &agent_command, &[step]);
    let planned = SessionPlan {
        name,
        model,
        agent_command,
        steps: 0..0,
        profile,
    };
    let mut spec = session_spec(plan, &planned, options, run, number, number);
    spec.env.push((
        CURRENT_STEP_FILE_ENV.to_string(),
        current_step_file(run, number).display().to_string(),
    ));
    let started = match plan.backend {
        Backend::Tmux => match tmux_command(&planned, options, run, number) {
            Ok(command) => {
                spec.command = command;
                AgentSession::start(&options.tmux, &spec)
                    .await
                    .map(Agent::Tmux)
                    .map_err(RunError::Session)
            }
            Err(error) => Err(error),
        },
        Backend::Headless => headless_agent(&planned, run, number, &mut spec).map(Agent::Headless),
    };
    let agent = started.map_err(|e| format!("cannot start session {}: {e}", planned.name))?;
    let tmux_watch = match &agent {
        Agent::Tmux(_) => Some(TmuxWatch::new(&planned.profile, run, number)),
        Agent::Headless(_) => None,
    };
    Ok((
        agent,
        SessionAccount::default(),
        tmux_watch,
        planned.profile,
    ))
}

/// The file holding the step session `number`'s agent is on:
/// `RUN/current_step` for the first, `current_step-N` for the Nth after.
pub fn current_step_file(run: &RunDir, number: usize) -> std::path::PathBuf {
    match number {
        0 => run.current_step_file(),
        n => run.path().join(format!("current_step-{}", n + 1)),
    }
}

struct AttemptEndInfo {
    outcome: StepOutcome,
    reason: Option<String>,
}

/// A step that could not get an agent fails at once.
#[allow(clippy::too_many_arguments)]
fn finish_without_agent(
    scheduler: &mut Scheduler,
    position: usize,
    now: Duration,
    step: &retort_formula::formula::Step,
    end: AttemptEndInfo,
    results: &mut [Option<StepResult>],
    records: &mut Vec<AttemptRecord>,
    progress: &mut dyn FnMut(Progress<'_>),
) {
    scheduler.finish(position, now, Ended::Failed);
    records.push(AttemptRecord {
        step: step.id().to_string(),
        attempt: 1,
        started_ms: millis(now),
        ended_ms: millis(now),
        outcome: end.outcome,
        reason: end.reason.clone(),
        retry_at_ms: None,
    });
    let result = StepResult {
        id: step.id().to_string(),
        title: step.title().to_string(),
        outcome: end.outcome,
        duration_ms: Some(0),
        reason: end.reason,
        usage: None,
    };
    progress(Progress::StepEnded(&result));
    results[position] = Some(result);
}

/// One attempt of the step at `position`: its session's agent made ready
/// (a new tmux session), the prompt delivered, the end waited for.
#[allow(clippy::too_many_arguments)]
async fn attempt<'a>(
    plan: &'a Plan,
    run: &'a RunDir,
    position: usize,
    session: usize,
    mut agent: Agent,
    mut account: SessionAccount,
    mut tmux_watch: Option<TmuxWatch>,
    profile: Profile,
    first: bool,
    prompt_error: Option<String>,
    mut watch: Watch,
    deadline: tokio::time::Instant,
    spent_before: f64,
) -> AttemptEnd {
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
        agent,
        outcome,
        reason,
        usage,
        graceful,
        transient,
        timed_out,
        account,
        tmux_watch,
        profile,
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
    match agent {
        Agent::Tmux(tmux) => {
            let buffer = format!("retort-{}-{}", plan.run_id, file_safe(step));
            let prompt = run.prompt_file(step);
            let delivered = match tmux_watch {
                Some(watch) => {
                    watch
                        .deliver(tmux, &prompt, &buffer, plan.submit_delay)
                        .await
                }
                None => tmux
                    .deliver(&prompt, &buffer, plan.submit_delay)
                    .await
                    .map_err(|e| e.to_string()),
            };
            delivered.map_err(|e| format!("step `{step}`: could not deliver its prompt: {e}"))
        }
        Agent::Headless(headless) => headless
            .deliver(step, &run.prompt_file(step), &run.agent_output_file(step))
            .await
            .map_err(|e| format!("could not start the agent on step `{step}`: {e}")),
    }
}
