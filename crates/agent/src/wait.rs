//! Waiting for a step to end: the agent's signal file (woken by the
//! file-system watcher), the agent's exit, the session's disappearance, the
//! step's timeout, or an interrupt of retort itself.

use std::time::Duration;

use serde::Serialize;
use tokio::signal::unix::{Signal as UnixSignal, SignalKind, signal as unix_signal};
use tokio::sync::mpsc;

use crate::agent::Agent;
use crate::run_dir::RunDir;
use crate::session::AgentExit;
use crate::signal::{self, Signal, SignalRecord};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    /// The agent signalled `done`.
    Done,
    /// The agent signalled `failed`, exited, timed out, or the run was interrupted.
    Failed,
    /// The agent signalled `escalate`.
    Escalated,
    /// The agent's model API refused it for its rate or usage limit; the
    /// reason says until when, where the agent showed it.
    #[serde(rename = "rate-limited")]
    RateLimited,
    /// Not run, because an earlier step did not finish.
    Skipped,
}

impl StepOutcome {
    /// The word used in journals and progress lines.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Failed => "failed",
            StepOutcome::Escalated => "escalated",
            StepOutcome::RateLimited => "rate-limited",
            StepOutcome::Skipped => "skipped",
        }
    }
}

/// How often the run checks that the agent's session still exists, besides
/// watching the pane's process: 2 seconds. A backstop for a session killed
/// from outside whose pane process ignores SIGHUP.
pub const LIVENESS_INTERVAL: Duration = Duration::from_secs(2);

/// How waiting for a step ended.
pub enum StepEnd {
    /// The agent signalled the step (`retort signal`).
    Signalled(SignalRecord),
    /// The agent exited, or its session went away, before signalling.
    AgentEnded(AgentExit),
    /// The step's timeout passed first.
    TimedOut,
    /// retort got SIGINT, SIGTERM or SIGHUP (named, e.g. `SIGTERM`).
    Interrupted(&'static str),
    /// Watching for the signal failed: the reason.
    Broken(String),
    /// The watchdog ended the step on what it saw (a permission request, a
    /// rate limit, an API error, an agent idle without signalling, a prompt
    /// not delivered): the outcome, and a reason saying what was seen and
    /// what to do.
    Watchdog {
        /// The step's outcome.
        outcome: StepOutcome,
        /// What was seen, and what to do.
        reason: String,
    },
}

impl StepEnd {
    /// The step's outcome and the reason to record for `step`, whose
    /// timeout was `timeout`: `(Done, None)` for a `done` signal, `(Failed,
    /// Some("the agent exited with status 1 before signalling"))`, ….
    pub fn describe(self, step: &str, timeout: Duration) -> (StepOutcome, Option<String>) {
        match self {
            StepEnd::Signalled(record) => {
                let outcome = match record.signal {
                    Signal::Done => StepOutcome::Done,
                    Signal::Failed => StepOutcome::Failed,
                    Signal::Escalate => StepOutcome::Escalated,
                };
                let reason = match (record.signal, record.reason) {
                    (Signal::Done, reason) => reason,
                    (_, Some(reason)) => Some(format!("step `{step}`: {reason}")),
                    (signal, None) => Some(format!(
                        "step `{step}`: the agent signalled {signal} without a reason"
                    )),
                };
                (outcome, reason)
            }
            StepEnd::AgentEnded(exit) => (
                StepOutcome::Failed,
                Some(format!(
                    "step `{step}` was not signalled: {exit} before signalling"
                )),
            ),
            StepEnd::TimedOut => (
                StepOutcome::Failed,
                Some(format!(
                    "step `{step}` timed out after {}",
                    humantime::format_duration(timeout)
                )),
            ),
            StepEnd::Interrupted(name) => (
                StepOutcome::Failed,
                Some(format!("step `{step}`: retort was interrupted by {name}")),
            ),
            StepEnd::Broken(reason) => (StepOutcome::Failed, Some(reason)),
            StepEnd::Watchdog { outcome, reason } => (outcome, Some(reason)),
        }
    }
}

/// Waits for `step`'s signal file (or the phase file of session
/// `session`'s agent, from 0), woken by the file-system watcher; ends
/// early when the agent exits (its exit file appears) or its session
/// vanishes (the pane's pidfd, or the liveness check), at the deadline, or
/// on SIGINT/SIGTERM/SIGHUP. A signal given just before the agent exited
/// still counts.
pub async fn wait_for_step(
    run: &RunDir,
    session: usize,
    step: &str,
    agent: &Agent,
    wakes: &mut mpsc::UnboundedReceiver<()>,
    deadline: tokio::time::Instant,
    interrupts: &mut Interrupts,
) -> StepEnd {
    let mut liveness = tokio::time::interval(LIVENESS_INTERVAL);
    liveness.tick().await;
    loop {
        match signal::read_step_end(run, session, step) {
            Ok(Some(record)) => return StepEnd::Signalled(record),
            Ok(None) => {}
            Err(error) => return StepEnd::Broken(format!("step `{step}`: {error}")),
        }
        if let Some(exit) = agent.agent_exit() {
            return StepEnd::AgentEnded(exit);
        }
        tokio::select! {
            Some(()) = wakes.recv() => {}
            () = agent.gone() => {}
            () = tokio::time::sleep_until(deadline) => return StepEnd::TimedOut,
            _ = liveness.tick() => {
                if !agent.exists().await {
                    return StepEnd::AgentEnded(AgentExit::Gone);
                }
            }
            name = interrupts.recv() => return StepEnd::Interrupted(name),
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, which end the current step and the run
/// cleanly instead of killing retort and leaving the session behind.
pub struct Interrupts {
    interrupt: Option<UnixSignal>,
    terminate: Option<UnixSignal>,
    hangup: Option<UnixSignal>,
}

impl Default for Interrupts {
    fn default() -> Self {
        Self::new()
    }
}

impl Interrupts {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP (each that can be
    /// listened for; one that cannot is never received).
    pub fn new() -> Self {
        Interrupts {
            interrupt: unix_signal(SignalKind::interrupt()).ok(),
            terminate: unix_signal(SignalKind::terminate()).ok(),
            hangup: unix_signal(SignalKind::hangup()).ok(),
        }
    }

    /// The name of the next signal received.
    pub async fn recv(&mut self) -> &'static str {
        async fn next(stream: &mut Option<UnixSignal>) {
            if let Some(stream) = stream
                && stream.recv().await.is_some()
            {
                return;
            }
            std::future::pending().await
        }
        tokio::select! {
            () = next(&mut self.interrupt) => "SIGINT",
            () = next(&mut self.terminate) => "SIGTERM",
            () = next(&mut self.hangup) => "SIGHUP",
        }
    }
}
