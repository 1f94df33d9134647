//! The runner's side of notifications: which of a run's happenings are
//! news ([`retort_notify::Event`]s), when they are sent, and under what
//! deadline. Deduplication, delivery and the message formats are
//! `retort-notify`'s; the delivery records live in the run history
//! (`deliveries`, through [`retort_journal::History`] as its
//! [`retort_notify::DeliveryLog`]).
//!
//! Two moments:
//! - [`escalated`], the moment a step escalates (in the sequential loop
//!   and in the scheduler alike): that one `escalate` event, so that it
//!   reaches a human though the steps after it are skipped, and while the
//!   steps of other branches still run;
//! - [`run_ended`], before the run's phase file is written: every event of
//!   the run (the escalation again, which deduplication does not repeat; a
//!   failed step; findings new or firing, at or above each target's
//!   `min_priority`; findings resolved; proposals stored), and the retries
//!   of messages earlier runs could not deliver.
//!
//! Both together never take more than [`NOTIFY_BUDGET`] of a run: what is
//! not delivered by then stays pending in the history and is retried by the
//! next run. A target whose variables are unset is skipped with a warning;
//! delivery problems are warnings, never a run's failure. The blocking HTTP
//! calls run on tokio's blocking pool, each with its own connection to the
//! history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;

use retort_decide::decide::{ActionPlan, Decision, history_path};
use retort_decide::finding::FindingState;
use retort_formula::formula::Formula;
use retort_journal::History;
use retort_notify::{Event, EventKind, Notifier, Priority, Target};

use crate::phase::Phase;
use crate::plan::Plan;
use crate::run::StepResult;
use crate::state::RunDir;
use retort_agent::wait::StepOutcome;

/// The most time a run spends delivering notifications, both moments
/// together: 15 seconds (a request has at most 10, see
/// [`retort_notify::REQUEST_TIMEOUT`]).
pub const NOTIFY_BUDGET: Duration = Duration::from_secs(15);

/// What a run in progress has spent of its budget, and the warnings of its
/// escalation notice (reported at the end of the run), by run id.
static RUNS: Mutex<BTreeMap<String, Spent>> = Mutex::new(BTreeMap::new());

#[derive(Debug)]
struct Spent {
    deadline: Instant,
    warnings: Vec<String>,
}

/// The deadline of run `run_id`'s notifications: [`NOTIFY_BUDGET`] from
/// its first.
fn deadline(run_id: &str) -> Instant {
    let mut runs = RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    runs.entry(run_id.to_string())
        .or_insert_with(|| Spent {
            deadline: Instant::now() + NOTIFY_BUDGET,
            warnings: Vec::new(),
        })
        .deadline
}

/// The formula's targets, their secrets read from the environment; a
/// warning for each target that cannot be used (an unset variable).
fn targets(formula: &Formula) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut warnings = Vec::new();
    for (number, table) in formula.notify.iter().enumerate() {
        match table.resolve(|name| std::env::var(name).ok()) {
            Ok(target) => targets.push(target),
            Err(problems) => {
                for problem in problems {
                    warnings.push(format!(
                        "notifications: [[notify]] table {} ({}) is skipped: {}; {}",
                        number + 1,
                        table.kind.get_ref().as_str(),
                        problem.message,
                        problem.help
                    ));
                }
            }
        }
    }
    (targets, warnings)
}

/// Tells the formula's targets, now, that `step` escalated (a no-op for a
/// formula without `[[notify]]`). `run` is the run's directory,
/// `STATE/runs/RUN_ID`, whose state directory holds the history. Warnings
/// are kept for [`run_ended`].
pub(crate) async fn escalated(plan: &Plan, run: &RunDir, step: &StepResult) {
    let formula = &plan.loaded.formula;
    if formula.notify.is_empty() {
        return;
    }
    let event = step_event(plan, EventKind::Escalate, step);
    let state = run
        .path()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let warnings = match state {
        Some(state) => send(plan, &history_path(&state), vec![event]).await,
        None => vec!["notifications: the run directory has no state directory".to_string()],
    };
    let mut runs = RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(spent) = runs.get_mut(&plan.run_id) {
        spent.warnings.extend(warnings);
    }
}

/// Tells the formula's targets what run `plan` came to (see the module
/// documentation), retrying what earlier runs left undelivered. Returns
/// the warnings of both moments. A no-op for a formula without
/// `[[notify]]`.
pub(crate) async fn run_ended(
    plan: &Plan,
    state: &Path,
    decision: &Decision,
    steps: &[StepResult],
    ending: Option<&(Phase, String)>,
) -> Vec<String> {
    if plan.loaded.formula.notify.is_empty() {
        return Vec::new();
    }
    let events = run_events(plan, decision, steps, ending);
    let mut warnings = send(plan, &history_path(state), events).await;
    let earlier = RUNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(&plan.run_id)
        .map(|spent| spent.warnings)
        .unwrap_or_default();
    warnings.splice(0..0, earlier);
    warnings
}

/// The events of a run, as [`run_ended`] sends them.
fn run_events(
    plan: &Plan,
    decision: &Decision,
    steps: &[StepResult],
    ending: Option<&(Phase, String)>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for step in steps {
        match step.outcome {
            StepOutcome::Escalated => events.push(step_event(plan, EventKind::Escalate, step)),
            StepOutcome::Failed | StepOutcome::RateLimited => {
                events.push(step_event(plan, EventKind::Failed, step));
            }
            StepOutcome::Done | StepOutcome::Skipped => {}
        }
    }
    // A run that failed before any step (its agent did not start).
    if let Some((Phase::Failed, reason)) = ending
        && !events.iter().any(|e| e.kind == EventKind::Failed)
    {
        events.push(event(plan, EventKind::Failed, "run", None, reason, ""));
    }
    for finding in &decision.findings {
        let kind = match finding.state {
            FindingState::Firing => EventKind::Finding,
            FindingState::Resolved => EventKind::Resolved,
            FindingState::Pending => continue,
        };
        let priority = Priority::parse(finding.priority.as_str());
        let title = match kind {
            EventKind::Resolved => format!("Resolved: {}", finding.message),
            _ => finding.message.clone(),
        };
        events.push(event(
            plan,
            kind,
            &finding.fingerprint,
            priority,
            &title,
            &format!("{} ({})", finding.fingerprint, finding.priority.as_str()),
        ));
    }
    for action in &decision.actions {
        if let ActionPlan::Propose { id: Some(id) } = action.plan {
            let priority = decision
                .findings
                .iter()
                .find(|f| f.fingerprint == action.fingerprint)
                .and_then(|f| Priority::parse(f.priority.as_str()));
            events.push(event(
                plan,
                EventKind::Proposal,
                &id.to_string(),
                priority,
                &format!(
                    "Proposal #{id}: {} for {} waits for a human",
                    action.action, action.fingerprint
                ),
                &format!(
                    "retort approve {id} runs: {}\nretort reject {id} closes it.",
                    action.argv.join(" ")
                ),
            ));
        }
    }
    events
}

/// The event of a step that escalated or failed: fingerprinted by the step.
fn step_event(plan: &Plan, kind: EventKind, step: &StepResult) -> Event {
    let reason = step.reason.as_deref().unwrap_or_default();
    let first = reason.lines().next().unwrap_or_default();
    let title = if first.is_empty() {
        format!(
            "step `{}` ({}) {}",
            step.id,
            step.title,
            step.outcome.as_str()
        )
    } else {
        first.to_string()
    };
    let body = format!("step `{}`: {}\n{reason}", step.id, step.title);
    event(plan, kind, &step.id, None, &title, body.trim_end())
}

fn event(
    plan: &Plan,
    kind: EventKind,
    fingerprint: &str,
    priority: Option<Priority>,
    title: &str,
    body: &str,
) -> Event {
    Event {
        formula: plan.loaded.formula.name().to_string(),
        kind,
        fingerprint: fingerprint.to_string(),
        priority,
        title: title.to_string(),
        body: body.to_string(),
        run_id: plan.run_id.clone(),
        at: Utc::now(),
    }
}

/// Delivers `events` (and the formula's pending messages) under the run's
/// deadline, on the blocking pool; returns the warnings.
async fn send(plan: &Plan, history: &Path, events: Vec<Event>) -> Vec<String> {
    let (targets, mut warnings) = targets(&plan.loaded.formula);
    if targets.is_empty() {
        return warnings;
    }
    let deadline = deadline(&plan.run_id);
    let formula = plan.loaded.formula.name().to_string();
    let history: PathBuf = history.to_path_buf();
    let delivered = tokio::task::spawn_blocking(move || {
        let mut log = History::open(&history).map_err(|e| e.to_string())?;
        let mut notifier = Notifier::new(targets);
        notifier
            .notify(&mut log, &formula, &events, Utc::now(), deadline)
            .map_err(|e| e.to_string())
    })
    .await;
    match delivered {
        Ok(Ok(report)) => {
            for record in report.pending().chain(report.failed()) {
                warnings.push(format!(
                    "notifications: {} news `{}` to {} not delivered ({}): {}",
                    record.event.kind,
                    record.event.fingerprint,
                    record.target,
                    record.status.as_str(),
                    record.last_error.as_deref().unwrap_or("no answer")
                ));
            }
        }
        Ok(Err(error)) => warnings.push(format!("notifications: {error}")),
        Err(error) => warnings.push(format!("notifications: the delivery task failed: {error}")),
    }
    warnings
}
