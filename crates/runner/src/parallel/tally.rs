//! What the steps of a scheduled run have come to, and how each ready step
//! starts: reused from the run this one reruns, skipped by its `when`, or
//! given to its session's agent as a new attempt. How attempts end is in
//! `tally_ends`.

use std::collections::BTreeMap;

use retort_agent::wait::StepOutcome;
use retort_decide::condition::StepValue;
use retort_formula::formula::Step;
use retort_os::atomic::write_atomic;
use retort_prompt::prompt::RunInfo;

use super::attempt::{Attempt, attempt};
use super::session::{Slot, take_agent};
use super::{AttemptRecord, Setup};
use crate::agent_phase::{Agents, Watch};
use crate::phase::Phase;
use crate::run::{Progress, StepResult, clean_reason, millis};
use crate::scheduler::{Ended, Scheduler, StepSpec};

/// What the steps have come to so far, and the scheduler that says which
/// starts next.
pub(super) struct Tally {
    pub(super) scheduler: Scheduler,
    /// Each session's agent, when none of its steps runs.
    pub(super) slots: Vec<Slot>,
    /// Whether a session's next step opens it (its prompt then carries the
    /// formula's header).
    pub(super) first_of_session: Vec<bool>,
    /// The ends of the steps that ended, by id, for later steps' `steps.ID`.
    pub(super) values: BTreeMap<String, StepValue>,
    /// Each step's result, by position, once final.
    pub(super) results: Vec<Option<StepResult>>,
    /// Every attempt, in the order they ended.
    pub(super) records: Vec<AttemptRecord>,
    pub(super) agents: Agents,
    /// The ids of the steps running now.
    pub(super) running_ids: Vec<String>,
    /// How the run ends, when not with every step done.
    pub(super) ending: Option<(Phase, String)>,
    /// The run's timeout was reached.
    pub(super) timed_out: bool,
    /// retort got this signal.
    pub(super) interrupted: Option<&'static str>,
    /// What the steps have cost so far (USD), held against the run's budget.
    pub(super) spent_so_far: f64,
}

impl Tally {
    /// Nothing run yet: every step waits for its needs.
    pub(super) fn new(setup: &Setup<'_>) -> Tally {
        let formula = setup.formula;
        let mut position_of = vec![0; formula.steps.len()];
        for (position, &index) in setup.order.iter().enumerate() {
            position_of[index] = position;
        }
        let specs: Vec<StepSpec> = setup
            .order
            .iter()
            .enumerate()
            .map(|(position, &index)| {
                let step = &formula.steps[index];
                StepSpec {
                    needs: setup
                        .plan
                        .dag
                        .needs(index)
                        .into_iter()
                        .map(|n| position_of[n])
                        .collect(),
                    session: setup.sessions[position],
                    retries: step.retries,
                    retry_delay: step.retry_delay(),
                }
            })
            .collect();
        let session_count = setup.sessions.iter().max().map_or(0, |s| s + 1);
        Tally {
            scheduler: Scheduler::new(specs, formula.max_parallel(), formula.on_failure),
            slots: (0..session_count).map(|_| Slot::NotStarted).collect(),
            first_of_session: vec![true; session_count],
            values: BTreeMap::new(),
            results: vec![None; setup.order.len()],
            records: Vec::new(),
            agents: Agents::default(),
            running_ids: Vec::new(),
            ending: None,
            timed_out: false,
            interrupted: None,
            spent_so_far: 0.0,
        }
    }

    /// Shows `result` (its reason cleaned: one line, capped, no secrets)
    /// and, when `keep`, keeps it as the step's final result.
    pub(super) fn show(
        &mut self,
        setup: &Setup<'_>,
        position: usize,
        mut result: StepResult,
        keep: bool,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        result.reason = result.reason.map(|r| clean_reason(&setup.redactor, &r));
        progress(Progress::StepEnded(&result));
        if keep {
            self.results[position] = Some(result);
        }
    }

    /// Starts the ready step at `position`: reused, skipped by its `when`,
    /// failed without an agent, or a new attempt, returned to be awaited.
    pub(super) async fn start<'a>(
        &mut self,
        setup: &Setup<'a>,
        position: usize,
        new_watch: &dyn Fn() -> Watch,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Option<Attempt<'a>> {
        let step = setup.step(position);
        if self.reuse(setup, position, step, progress) {
            return None;
        }
        let seen = self.seen(setup, position, step);
        if !self.holds(setup, position, step, &seen, progress) {
            return None;
        }
        // The prompt, with its ancestors' ends and its session's own
        // phase file.
        let id = step.id().to_string();
        let run = setup.run;
        let session = setup.sessions[position];
        let first = std::mem::replace(&mut self.first_of_session[session], false);
        let run_info = RunInfo {
            phase_file: run.agent_phase_file(session).display().to_string(),
            ..setup.plan.run_info.clone()
        };
        let rendered = setup
            .renderer
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
        let taken = take_agent(
            setup,
            &mut self.slots,
            &mut self.agents,
            session,
            step,
            progress,
        )
        .await;
        let agent = match taken {
            Ok(agent) => agent,
            Err(reason) => {
                self.fail_without_agent(setup, position, step, reason, progress);
                return None;
            }
        };
        progress(Progress::StepStarted {
            number: position + 1,
            count: setup.order.len(),
            id: step.id(),
            title: step.title(),
        });
        self.running_ids.push(id);
        progress(Progress::Running(&self.running_ids));
        let deadline = (tokio::time::Instant::now() + step.timeout()).min(setup.run_deadline);
        Some(Box::pin(attempt(
            setup.plan,
            run,
            position,
            session,
            agent,
            first,
            prompt_error,
            new_watch(),
            deadline,
            self.spent_so_far,
        )))
    }

    /// A step the run this one reruns ended: its end and output are
    /// reused, and it is skipped. Whether it was.
    fn reuse(
        &mut self,
        setup: &Setup<'_>,
        position: usize,
        step: &Step,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> bool {
        let id = step.id().to_string();
        let Some(value) = setup.plan.reused.get(&id) else {
            return false;
        };
        self.values.insert(id.clone(), value.clone());
        if !value.output.is_empty() {
            let _ = retort_agent::output::write(setup.run, &id, &value.output);
        }
        self.scheduler.skip(position);
        let result = StepResult {
            id,
            title: step.title().to_string(),
            outcome: StepOutcome::Skipped,
            duration_ms: None,
            reason: Some(format!(
                "reused from run {}: {}",
                setup.plan.rerun_of.as_deref().unwrap_or("?"),
                value.outcome
            )),
            usage: None,
        };
        self.show(setup, position, result, true, progress);
        true
    }

    /// Its ancestors' ends, for a step whose description or condition names
    /// `steps` (copying them for every step of a long chain would cost each
    /// step as much as the chain).
    fn seen(&self, setup: &Setup<'_>, position: usize, step: &Step) -> BTreeMap<String, StepValue> {
        let names_steps = step.when().is_some_and(|w| w.contains("steps"))
            || (step.is_template(setup.formula.raw)
                && step.description.get_ref().contains("steps"));
        if !names_steps {
            return BTreeMap::new();
        }
        setup.ancestors[setup.order[position]]
            .iter()
            .filter_map(|&a| {
                let aid = setup.formula.steps[a].id();
                self.values.get(aid).map(|v| (aid.to_string(), v.clone()))
            })
            .collect()
    }

    /// Whether the step's `when` (if any) holds over `seen`; when false it
    /// is skipped with its reason, when it cannot be evaluated the step
    /// fails.
    fn holds(
        &mut self,
        setup: &Setup<'_>,
        position: usize,
        step: &Step,
        seen: &BTreeMap<String, StepValue>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> bool {
        let Some(when) = step.when() else {
            return true;
        };
        let id = step.id().to_string();
        let (outcome, reason) = match setup.conditions.evaluate(when, seen) {
            Ok(true) => return true,
            Ok(false) => {
                self.scheduler.skip(position);
                let when = when.split_whitespace().collect::<Vec<_>>().join(" ");
                self.values.insert(
                    id.clone(),
                    StepValue {
                        outcome: "skipped".to_string(),
                        output: String::new(),
                    },
                );
                (
                    StepOutcome::Skipped,
                    format!("step `{id}`: `when` is false: {when}"),
                )
            }
            Err(error) => {
                self.scheduler
                    .finish(position, setup.clock.elapsed(), Ended::Failed);
                (
                    StepOutcome::Failed,
                    format!("step `{id}`: its `when` could not be evaluated: {error}"),
                )
            }
        };
        let result = StepResult {
            id,
            title: step.title().to_string(),
            outcome,
            duration_ms: None,
            reason: Some(reason),
            usage: None,
        };
        self.show(setup, position, result, true, progress);
        false
    }

    /// A step that could not get an agent fails at once.
    fn fail_without_agent(
        &mut self,
        setup: &Setup<'_>,
        position: usize,
        step: &Step,
        reason: String,
        progress: &mut dyn FnMut(Progress<'_>),
    ) {
        let now = setup.clock.elapsed();
        let reason = clean_reason(&setup.redactor, &reason);
        self.scheduler.finish(position, now, Ended::Failed);
        self.records.push(AttemptRecord {
            step: step.id().to_string(),
            attempt: 1,
            started_ms: millis(now),
            ended_ms: millis(now),
            outcome: StepOutcome::Failed,
            reason: Some(reason.clone()),
            retry_at_ms: None,
            phase_began_at: setup.began_at,
        });
        let result = StepResult {
            id: step.id().to_string(),
            title: step.title().to_string(),
            outcome: StepOutcome::Failed,
            duration_ms: Some(0),
            reason: Some(reason),
            usage: None,
        };
        self.show(setup, position, result, true, progress);
    }
}
