//! How the attempts of a scheduled run end: an attempt's end recorded,
//! retried or final, its session's agent kept for the session's next step
//! or ended; and, when nothing more runs, why each step that never ran did
//! not, and how the run ends.

use std::time::Duration;

use retort_agent::wait::StepOutcome;
use retort_decide::condition::StepValue;
use retort_os::atomic::write_atomic;

use super::attempt::AttemptEnd;
use super::session::Slot;
use super::tally::Tally;
use super::{AttemptRecord, Setup};
use crate::agent_phase::{Agents, retire};
use crate::phase::Phase;
use crate::run::{Progress, StepResult, clean_reason, millis};
use crate::scheduler::{Ended, Next, NotRun};

impl Tally {
    /// Takes in the end of an attempt: recorded in `attempts.json`, retried
    /// when transient and retries are left, else the step's result (an
    /// escalation announced at once, [`crate::notify::escalated`]); the
    /// run's ending and budget updated. Every reason is cleaned (one line,
    /// capped, no secrets) before it is shown or saved.
    pub(super) async fn ended(
        &mut self,
        setup: &Setup<'_>,
        end: AttemptEnd,
        warnings: &mut Vec<String>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        let plan = setup.plan;
        let elapsed = setup.clock.elapsed();
        self.spent_so_far += end.usage.and_then(|u| u.cost_usd).unwrap_or(0.0);
        if let Some((text, until)) = &end.rate_limit {
            let key = crate::holds::agent_key(&setup.formula.agent, &setup.template);
            self.agents.holds.push(crate::holds::rate_limit_hold(
                key,
                text,
                plan,
                chrono::Utc::now(),
                Some(*until),
            ));
        }
        let step = setup.step(end.position);
        let id = step.id().to_string();
        self.running_ids.retain(|r| *r != id);
        let mut reason = end.reason.map(|r| clean_reason(&setup.redactor, &r));
        if end.timed_out && tokio::time::Instant::now() >= setup.run_deadline {
            self.timed_out = true;
            reason = Some(format!(
                "step `{id}`: the run's timeout of {} was reached",
                humantime::format_duration(setup.run_timeout)
            ));
        }
        let ended = match (end.outcome, end.transient) {
            (StepOutcome::Done, _) => Ended::Done,
            (_, Some(not_before)) if !self.timed_out && self.interrupted.is_none() => {
                Ended::Transient { not_before }
            }
            _ => Ended::Failed,
        };
        let next = self.scheduler.finish(end.position, elapsed, ended);
        let (attempt, started) = self
            .scheduler
            .attempts()
            .last()
            .map_or((1, Duration::ZERO), |a| (a.number, a.started));
        self.records.push(AttemptRecord {
            step: id.clone(),
            attempt,
            started_ms: millis(started),
            ended_ms: millis(elapsed),
            outcome: end.outcome,
            reason: reason.clone(),
            retry_at_ms: match next {
                Next::RetryAt(at) => Some(millis(at)),
                Next::Final => None,
            },
            phase_began_at: setup.began_at,
        });
        let session = end.session;
        if matches!(ended, Ended::Transient { .. }) {
            // The agent may be gone: a retry starts a new one, whose first
            // prompt carries the header again.
            let agent = end.agent.agent;
            retire(setup.run, &setup.redactor, session, agent, false, warnings).await;
            self.slots[session] = Slot::NotStarted;
            self.first_of_session[session] = true;
        } else if (end.position + 1..setup.order.len())
            .any(|p| setup.sessions[p] == session && self.results[p].is_none())
        {
            self.slots[session] = Slot::Idle(Box::new((end.agent, end.graceful)));
        } else {
            // The session's last step: its agent is ended now, not at the
            // end of the run.
            let agent = end.agent.agent;
            retire(
                setup.run,
                &setup.redactor,
                session,
                agent,
                end.graceful,
                warnings,
            )
            .await;
            self.slots[session] = Slot::NotStarted;
        }
        let duration_ms = Some(millis(elapsed.saturating_sub(started)));
        if let Next::RetryAt(at) = next {
            let waiting = at.saturating_sub(elapsed);
            let result = StepResult {
                id,
                title: step.title().to_string(),
                outcome: end.outcome,
                duration_ms,
                reason: Some(format!(
                    "{}; attempt {attempt} of {}, retried in {}",
                    reason.unwrap_or_default(),
                    step.retries + 1,
                    humantime::format_duration(Duration::from_secs(waiting.as_secs()))
                )),
                usage: end.usage,
            };
            self.show(setup, end.position, result, false, progress);
            return;
        }
        let output = retort_agent::output::read(setup.run, &id);
        self.values.insert(
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
            id,
            title: step.title().to_string(),
            outcome: end.outcome,
            duration_ms,
            reason: reason.clone(),
            usage: end.usage,
        };
        self.show(setup, end.position, result, true, progress);
        // A human hears of an escalation as it happens, as in the
        // sequential loop, not once the steps still running have ended; the
        // run's end sends it again, which deduplication does not repeat.
        if matches!(end.outcome, StepOutcome::Escalated)
            && let Some(result) = &self.results[end.position]
        {
            crate::notify::escalated(plan, setup.run, result).await;
        }
        if !self.running_ids.is_empty() {
            progress(Progress::Running(&self.running_ids));
        }
        let failed = match end.outcome {
            StepOutcome::Failed | StepOutcome::RateLimited => Some(Phase::Failed),
            StepOutcome::Escalated => Some(Phase::Escalate),
            StepOutcome::Done | StepOutcome::Skipped => None,
        };
        if let Some(phase) = failed {
            let worse = match &self.ending {
                None => true,
                Some((Phase::Failed, _)) => phase == Phase::Escalate,
                Some(_) => false,
            };
            if worse {
                self.ending = Some((phase, reason.unwrap_or_default()));
            }
        }
        if let Some(budget) = crate::holds::run_budget_reached(plan, self.spent_so_far) {
            self.scheduler.stop();
            self.ending.get_or_insert((Phase::Failed, budget));
        }
    }

    /// Once nothing more runs: each step that never ran, with why; how the
    /// run ends; the idle agents ended; every attempt saved in
    /// `RUN/attempts.json`.
    pub(super) async fn finish(mut self, setup: &Setup<'_>, warnings: &mut Vec<String>) -> Agents {
        let run_timeout = humantime::format_duration(setup.run_timeout);
        for position in 0..self.results.len() {
            if self.results[position].is_some() {
                continue;
            }
            let step = setup.step(position);
            let reason = match self.scheduler.not_run(position) {
                Some(NotRun::Blocked { need }) => Some(format!(
                    "not started: it needs `{}`, which did not end done",
                    setup.step(need).id()
                )),
                Some(NotRun::Stopped {
                    failed: Some(failed),
                }) => Some(format!(
                    "not started: step `{}` failed (on_failure = \"stop\")",
                    setup.step(failed).id()
                )),
                Some(NotRun::Stopped { failed: None }) if self.timed_out => Some(format!(
                    "not started: the run's timeout of {run_timeout} was reached"
                )),
                Some(NotRun::Stopped { failed: None }) => self
                    .interrupted
                    .map(|name| format!("not started: retort got {name}")),
                None => None,
            };
            self.results[position] = Some(StepResult {
                id: step.id().to_string(),
                title: step.title().to_string(),
                outcome: StepOutcome::Skipped,
                duration_ms: None,
                reason,
                usage: None,
            });
        }
        if self.ending.is_none() {
            if self.timed_out {
                self.ending = Some((
                    Phase::Failed,
                    format!("the run's timeout of {run_timeout} was reached"),
                ));
            } else if let Some(name) = self.interrupted {
                self.ending = Some((Phase::Failed, format!("retort got {name}")));
            }
        }
        for (number, slot) in self.slots.into_iter().enumerate() {
            if let Slot::Idle(idle) = slot {
                let (agent, graceful) = *idle;
                retire(
                    setup.run,
                    &setup.redactor,
                    number,
                    agent.agent,
                    graceful,
                    warnings,
                )
                .await;
            }
        }
        let json = serde_json::to_vec_pretty(&self.records).unwrap_or_default();
        if let Err(error) = write_atomic(&setup.run.path().join("attempts.json"), &json) {
            warnings.push(format!("could not write attempts.json: {error}"));
        }
        let mut agents = self.agents;
        agents.steps = self.results.into_iter().flatten().collect();
        agents.ending = self.ending;
        agents.attempts = self.records;
        agents
    }
}
