//! A step of a headless Claude Code session: its prompt is one user turn,
//! and the step ends on the agent's signal, as every step does (`retort
//! signal`, or a `PHASE:` line in its session's `$PHASE_FILE`), or on what
//! the turn's `result` frame says ([`retort_agent::stream_json`]):
//!
//! - an API error: a 429 or a usage limit ends the step `rate-limited`
//!   (with a hold until the reset time shown, else for an hour); any other
//!   error fails it with the error's text;
//! - tool calls denied and no signal: the step fails (or escalates, `[agent]
//!   on_permission`) at once, naming each tool and command and the rule
//!   that would allow it;
//! - a turn over without a signal: one reminder turn with the signal
//!   command, then failure, "the agent stopped without signalling";
//! - `[budget] run_usd` reached: the step fails, "budget reached", also
//!   mid-turn, as soon as the replies begun so far (priced from their
//!   `assistant` frames, a lower bound) reach it.
//!
//! Every turn's tokens and cost (the difference of the cumulative
//! `total_cost_usd`) are the step's usage.

use std::time::Duration;

use chrono::{DateTime, Utc};

use retort_agent::agent::Agent;
use retort_agent::signal;
use retort_agent::stream_json::{TurnResult, Verdict};
use retort_agent::usage::Usage;
use retort_agent::wait::{StepEnd, StepOutcome, wait_for_step};
use retort_formula::formula::OnPermission;

use crate::agent_phase::Watch;
use crate::holds::run_budget_reached;
use crate::plan::Plan;
use crate::state::RunDir;

/// How long a turn's `result` frame may take after the agent's signal
/// (the model's last reply comes after the signal's tool call): 30 s.
pub const RESULT_GRACE: Duration = Duration::from_secs(30);

/// How long after a turn without a signal the signal file is still looked
/// for (written by the tool call before the result, but noticed through
/// the file-system watcher): 300 ms.
pub const SIGNAL_GRACE: Duration = Duration::from_millis(300);

/// The reminder sent once when a turn ends without a signal.
pub fn nudge_text(step: &str) -> String {
    format!(
        "You have not signalled the end of step `{step}`. If the step is finished, run `retort signal done` now; if it cannot be done, run `retort signal failed --reason '…'`; if it needs a human, run `retort signal escalate --reason '…'`."
    )
}

/// How a stream-json step ended.
#[derive(Debug)]
pub(crate) struct TurnEnd {
    /// Its outcome.
    pub outcome: StepOutcome,
    /// Why, when not done.
    pub reason: Option<String>,
    /// What its turns used and cost.
    pub usage: Option<Usage>,
    /// Whether it ended with the agent's signal (its process may then exit
    /// in its own time).
    pub signalled: bool,
    /// Rate-limited: the agent's words and until when.
    pub rate_limit: Option<(String, DateTime<Utc>)>,
}

/// What a step is and what it may spend.
pub(crate) struct TurnStep<'a> {
    /// The step's id.
    pub id: &'a str,
    /// Its timeout.
    pub timeout: Duration,
    /// When it times out.
    pub deadline: tokio::time::Instant,
    /// What the permission denials end it with.
    pub on_permission: OnPermission,
    /// What the run spent before this step (USD).
    pub spent_before: f64,
    /// The session it runs in (from 0), whose agent's phase file is read:
    /// 0 in a run whose steps go one at a time.
    pub session: usize,
}

/// A stream-json session's account: its cumulative cost so far (USD), and
/// how many results of earlier turns are still to come (a turn whose step
/// was signalled but whose result did not come within [`RESULT_GRACE`]).
#[derive(Debug, Default)]
pub(crate) struct SessionAccount {
    pub cost: f64,
    pub owed: usize,
}

impl SessionAccount {
    /// A result's usage, with its cost the difference from the session's
    /// cost before it.
    fn take(&mut self, result: &TurnResult) -> Usage {
        let usage = result.usage(self.cost);
        self.cost = result.total_cost_usd.unwrap_or(self.cost);
        usage
    }
}

/// Waits for the end of a step whose prompt was just written as a turn to
/// the stream-json agent in `agent`; `account` is its session's, updated
/// with each result.
pub(crate) async fn wait_for_turns(
    plan: &Plan,
    run: &RunDir,
    step: &TurnStep<'_>,
    agent: &mut Agent,
    watch: &mut Watch,
    account: &mut SessionAccount,
) -> TurnEnd {
    let mut usage: Option<Usage> = None;
    let mut nudged = false;
    // What the replies of the turn under way have cost so far (a lower
    // bound, until its result says).
    let mut turn_estimate: Option<Usage> = None;
    let budgeted = plan.loaded.formula.budget.run_usd.is_some();
    // A turn that ended without a signal, and when to act on it.
    let mut unsignalled: Option<(TurnResult, tokio::time::Instant)> = None;
    loop {
        let Agent::Headless(headless) = &*agent else {
            return ended(StepEnd::Broken("not a headless agent".into()), step, usage);
        };
        let act_at = unsignalled.as_ref().map(|(_, at)| *at);
        let event = tokio::select! {
            biased;
            end = wait_for_step(run, step.session, step.id, agent, &mut watch.wakes, step.deadline, &mut watch.interrupts) => Event::Ended(end),
            result = headless.next_result(), if unsignalled.is_none() => Event::Result(result),
            reply = headless.next_reply(), if budgeted => Event::Reply(reply.usage),
            () = sleep_until(act_at) => Event::Unsignalled,
        };
        match event {
            Event::Ended(StepEnd::Signalled(record)) => {
                if unsignalled.is_none() {
                    // This turn's result, after any an earlier turn owes.
                    let mut expected = account.owed + 1;
                    while expected > 0 {
                        match tokio::time::timeout(RESULT_GRACE, headless.next_result()).await {
                            Ok(result) => add(&mut usage, account.take(&result)),
                            Err(_) => break,
                        }
                        expected -= 1;
                    }
                    account.owed = expected;
                }
                return ended(StepEnd::Signalled(record), step, usage);
            }
            Event::Ended(StepEnd::AgentEnded(exit)) => {
                // A result read before the exit says more than the exit.
                while let Some(result) = headless.try_next_result() {
                    add(&mut usage, account.take(&result));
                    if let Some(end) = error_end(&result, step, usage) {
                        return end;
                    }
                }
                return ended(StepEnd::AgentEnded(exit), step, usage);
            }
            Event::Ended(end) => return ended(end, step, usage),
            Event::Reply(reply) => {
                add(
                    &mut turn_estimate,
                    Usage {
                        cost_usd: Some(reply.cost_usd.unwrap_or(0.0)),
                        ..reply
                    },
                );
                let cost = |u: Option<Usage>| u.and_then(|u| u.cost_usd).unwrap_or(0.0);
                let spent = step.spent_before + cost(usage) + cost(turn_estimate);
                if let Some(reason) = run_budget_reached(plan, spent) {
                    // What the turn used so far counts as the step's.
                    if let Some(estimate) = turn_estimate {
                        add(&mut usage, estimate);
                    }
                    return failed(
                        StepOutcome::Failed,
                        format!("step `{}`: {reason}, during the agent's turn", step.id),
                        usage,
                    );
                }
            }
            Event::Result(result) => {
                turn_estimate = None;
                add(&mut usage, account.take(&result));
                if account.owed > 0 {
                    // An earlier turn's late result: its usage counts here,
                    // its verdict was that turn's.
                    account.owed -= 1;
                    continue;
                }
                if let Some(end) = error_end(&result, step, usage) {
                    return end;
                }
                unsignalled = Some((result, tokio::time::Instant::now() + SIGNAL_GRACE));
            }
            Event::Unsignalled => {
                let Some((result, _)) = unsignalled.take() else {
                    continue;
                };
                // The signal file, or a `PHASE:` line in the session's
                // agent phase file, as the wait reads them.
                if let Ok(Some(record)) = signal::read_step_end(run, step.session, step.id) {
                    return ended(StepEnd::Signalled(record), step, usage);
                }
                let spent = step.spent_before + usage.and_then(|u| u.cost_usd).unwrap_or(0.0);
                if let Some(reason) = run_budget_reached(plan, spent) {
                    return failed(
                        StepOutcome::Failed,
                        format!("step `{}`: {reason}", step.id),
                        usage,
                    );
                }
                if let Verdict::Denied(denials) = result.verdict(Utc::now()) {
                    let calls: Vec<String> = denials.iter().map(|d| d.describe()).collect();
                    let rules: Vec<String> = denials
                        .iter()
                        .map(|d| format!("\"{}\"", d.rule()))
                        .collect();
                    let reason = format!(
                        "step `{}`: the agent was denied permission for {} and did not signal; retort grants only `retort signal` and `[agent] allowed_tools` (to allow it: allowed_tools = [{}])",
                        step.id,
                        calls.join(", "),
                        rules.join(", ")
                    );
                    let outcome = match step.on_permission {
                        OnPermission::Fail => StepOutcome::Failed,
                        OnPermission::Escalate => StepOutcome::Escalated,
                    };
                    return failed(outcome, reason, usage);
                }
                if nudged {
                    return failed(
                        StepOutcome::Failed,
                        format!(
                            "step `{}`: the agent stopped without signalling (its turn ended twice without `retort signal`, once after a reminder); its last words: {}",
                            step.id,
                            excerpt(&result.text)
                        ),
                        usage,
                    );
                }
                nudged = true;
                let Agent::Headless(headless) = agent else {
                    continue;
                };
                if let Err(error) = headless.send_turn(&nudge_text(step.id)).await {
                    return failed(
                        StepOutcome::Failed,
                        format!(
                            "step `{}`: could not remind the agent to signal: {error}",
                            step.id
                        ),
                        usage,
                    );
                }
            }
        }
    }
}

enum Event {
    Ended(StepEnd),
    Result(TurnResult),
    Reply(Usage),
    Unsignalled,
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The end of a step whose turn ended on an API error.
fn error_end(result: &TurnResult, step: &TurnStep<'_>, usage: Option<Usage>) -> Option<TurnEnd> {
    match result.verdict(Utc::now()) {
        Verdict::RateLimited { until, shown, text } => Some(TurnEnd {
            outcome: StepOutcome::RateLimited,
            reason: Some(format!(
                "step `{}`: rate-limited until {}{}: {}",
                step.id,
                until.format("%Y-%m-%d %H:%M:%S UTC"),
                if shown {
                    ""
                } else {
                    " (the agent showed no reset time: held for an hour)"
                },
                excerpt(&text)
            )),
            usage,
            signalled: false,
            rate_limit: Some((text, until)),
        }),
        Verdict::ApiError(text) => Some(failed(
            StepOutcome::Failed,
            format!(
                "step `{}`: the agent's model API failed: {}",
                step.id,
                excerpt(&text)
            ),
            usage,
        )),
        Verdict::Denied(_) | Verdict::Completed => None,
    }
}

fn ended(end: StepEnd, step: &TurnStep<'_>, usage: Option<Usage>) -> TurnEnd {
    let signalled = matches!(end, StepEnd::Signalled(_));
    let (outcome, reason) = end.describe(step.id, step.timeout);
    TurnEnd {
        outcome,
        reason,
        usage,
        signalled,
        rate_limit: None,
    }
}

fn failed(outcome: StepOutcome, reason: String, usage: Option<Usage>) -> TurnEnd {
    TurnEnd {
        outcome,
        reason: Some(reason),
        usage,
        signalled: false,
        rate_limit: None,
    }
}

fn add(total: &mut Option<Usage>, usage: Usage) {
    *total = Some(match *total {
        Some(sum) => sum + usage,
        None => usage,
    });
}

/// The agent's text on one line, at most 300 characters.
fn excerpt(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if line.is_empty() => "(nothing)".to_string(),
        None => line,
    }
}
