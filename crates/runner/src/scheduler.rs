//! Which steps of a run start when: the DAG scheduler, pure (no clock, no
//! I/O), so that every rule is tested on its own and the agent phase only
//! carries out what it says.
//!
//! Steps are numbered by their position in the DAG's stable topological
//! order (`0..n`); every `needs` entry of step `i` is below `i`. A step is
//! *ready* when every step it needs has ended done or skipped. [`Scheduler::poll`]
//! yields the ready steps to start now, lowest position first, while fewer
//! than `max_parallel` run, and only the first unfinished step of each
//! session (a session's steps run one after another, in order). The agent
//! phase reports each attempt's end with [`Scheduler::finish`] (or a skip
//! with [`Scheduler::skip`]), and calls `poll` again.
//!
//! - A transient end (agent crash, prompt not delivered, rate limit,
//!   timeout) is retried while the step has retries left, after
//!   `retry_delay × 2^(attempt − 1)`, or at the rate limit's reset time
//!   when later. A step waiting for its retry keeps its session and counts
//!   as in progress, not as running.
//! - A failed end (`failed` or `escalate` signal, or a transient end
//!   without retries left) blocks the step's descendants; with
//!   [`OnFailure::Stop`] nothing more starts at all (running steps and
//!   pending retries still finish), with [`OnFailure::Continue`] every
//!   step that does not depend on it still runs.
//! - [`Scheduler::stop`] (the run's timeout, an interrupt) starts nothing more.
//!
//! Times are [`Duration`]s since the run's start, given by the caller.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use retort_formula::formula::OnFailure;
pub use retort_formula::sessions::{assign_sessions, sequential_sessions};

/// One step, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    /// The positions of the steps it needs, each below its own.
    pub needs: Vec<usize>,
    /// Its session's number (see [`assign_sessions`]).
    pub session: usize,
    /// How many retries it has after transient ends.
    pub retries: u32,
    /// The pause before its first retry, doubled for each one after.
    pub retry_delay: Duration,
}

/// How an attempt of a step ended, as far as scheduling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Done: its dependents may start.
    Done,
    /// Failed or escalated by the agent's signal: never retried.
    Failed,
    /// A transient end (agent crash, prompt not delivered, rate limit,
    /// timeout): retried while retries are left, not before `not_before`
    /// (a rate limit's reset time, since the run's start) when given.
    Transient {
        /// The earliest time a retry may start.
        not_before: Option<Duration>,
    },
}

/// What [`Scheduler::finish`] decided for the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The step has ended for good.
    Final,
    /// The step is tried again once this time (since the run's start) has
    /// come; its attempt number is one more.
    RetryAt(Duration),
}

/// Why a step never ran, once the run is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRun {
    /// A step it needs (this one, directly) failed or did not run.
    Blocked {
        /// The position of that step.
        need: usize,
    },
    /// The run stopped starting steps: a step failed with
    /// [`OnFailure::Stop`] (this one, the first), or [`Scheduler::stop`]
    /// (`None`).
    Stopped {
        /// The first step that failed, if that was why.
        failed: Option<usize>,
    },
}

/// One attempt of a step, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The step's position.
    pub step: usize,
    /// The attempt's number, from 1.
    pub number: u32,
    /// When it started, since the run's start.
    pub started: Duration,
    /// When it ended, since the run's start.
    pub ended_at: Duration,
    /// How it ended.
    pub ended: Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    RetryAt(Duration),
    Done,
    Skipped,
    Failed,
    Blocked(usize),
}

/// The scheduler of one run.
#[derive(Debug, Clone)]
pub struct Scheduler {
    steps: Vec<StepSpec>,
    dependents: Vec<Vec<usize>>,
    state: Vec<State>,
    unmet: Vec<usize>,
    tries: Vec<u32>,
    /// Steps whose needs are met and that have not started (or wait for a
    /// retry), by position.
    ready: BTreeSet<usize>,
    /// Each session's unfinished steps, in order.
    queues: Vec<VecDeque<usize>>,
    running: usize,
    max_parallel: usize,
    on_failure: OnFailure,
    stopped: bool,
    first_failed: Option<usize>,
    attempts: Vec<Attempt>,
    /// The running attempt of each step: its start.
    started: Vec<Duration>,
}

impl Scheduler {
    /// A scheduler for `steps` (in topological order), running at most
    /// `max_parallel` at once (at least 1). A `needs` entry that is not
    /// below its step's position is ignored.
    pub fn new(steps: Vec<StepSpec>, max_parallel: usize, on_failure: OnFailure) -> Scheduler {
        let n = steps.len();
        let mut dependents = vec![Vec::new(); n];
        let mut unmet = vec![0; n];
        for (i, step) in steps.iter().enumerate() {
            let needs: BTreeSet<usize> = step.needs.iter().copied().filter(|&d| d < i).collect();
            unmet[i] = needs.len();
            for need in needs {
                dependents[need].push(i);
            }
        }
        let sessions = steps.iter().map(|s| s.session + 1).max().unwrap_or(0);
        let mut queues = vec![VecDeque::new(); sessions];
        for (i, step) in steps.iter().enumerate() {
            queues[step.session].push_back(i);
        }
        let ready = (0..n).filter(|&i| unmet[i] == 0).collect();
        Scheduler {
            dependents,
            state: vec![State::Waiting; n],
            unmet,
            tries: vec![0; n],
            ready,
            queues,
            running: 0,
            max_parallel: max_parallel.max(1),
            on_failure,
            stopped: false,
            first_failed: None,
            attempts: Vec::with_capacity(n),
            started: vec![Duration::ZERO; n],
            steps,
        }
    }

    /// The steps to start at `now`, in order: ready (or due for a retry),
    /// first in their session, while fewer than `max_parallel` run. Each is
    /// marked running and its attempt recorded; the caller starts it, or
    /// reports a skip with [`Scheduler::skip`].
    pub fn poll(&mut self, now: Duration) -> Vec<usize> {
        let mut started = Vec::new();
        if self.running >= self.max_parallel {
            return started;
        }
        let mut candidates = Vec::new();
        for &i in &self.ready {
            if self.running + candidates.len() >= self.max_parallel {
                break;
            }
            let due = match self.state[i] {
                State::Waiting => !self.stopped,
                State::RetryAt(at) => at <= now,
                _ => false,
            };
            if due && self.queues[self.steps[i].session].front() == Some(&i) {
                candidates.push(i);
            }
        }
        for i in candidates {
            self.ready.remove(&i);
            self.state[i] = State::Running;
            self.running += 1;
            self.tries[i] += 1;
            self.started[i] = now;
            started.push(i);
        }
        started
    }

    /// Step `step`, just yielded by [`Scheduler::poll`], is skipped (its
    /// `when` was false): it satisfies its dependents. A skip is no
    /// attempt.
    pub fn skip(&mut self, step: usize) {
        if self.state.get(step) != Some(&State::Running) {
            return;
        }
        self.tries[step] = 0;
        self.running -= 1;
        self.state[step] = State::Skipped;
        self.settle(step, true);
    }

    /// The attempt of `step` that is running ended at `now`, as `ended`
    /// says: whether it is retried, and when.
    pub fn finish(&mut self, step: usize, now: Duration, ended: Ended) -> Next {
        if self.state.get(step) != Some(&State::Running) {
            return Next::Final;
        }
        self.attempts.push(Attempt {
            step,
            number: self.tries[step],
            started: self.started[step],
            ended_at: now,
            ended,
        });
        self.running -= 1;
        match ended {
            Ended::Done => {
                self.state[step] = State::Done;
                self.settle(step, true);
                Next::Final
            }
            Ended::Transient { not_before } if self.tries[step] <= self.steps[step].retries => {
                let exponent = self.tries[step].saturating_sub(1).min(20);
                let delay = self.steps[step]
                    .retry_delay
                    .saturating_mul(1u32 << exponent);
                let at = (now.saturating_add(delay)).max(not_before.unwrap_or_default());
                self.state[step] = State::RetryAt(at);
                self.ready.insert(step);
                Next::RetryAt(at)
            }
            Ended::Failed | Ended::Transient { .. } => {
                self.state[step] = State::Failed;
                self.first_failed.get_or_insert(step);
                if self.on_failure == OnFailure::Stop {
                    self.stopped = true;
                }
                self.settle(step, false);
                Next::Final
            }
        }
    }

    /// Starts nothing more (the run's timeout, an interrupt), not even
    /// pending retries.
    pub fn stop(&mut self) {
        self.stopped = true;
        for i in 0..self.state.len() {
            if let State::RetryAt(_) = self.state[i] {
                self.state[i] = State::Failed;
                self.ready.remove(&i);
            }
        }
    }

    /// Whether the run is over: nothing runs, no retry is pending, and
    /// nothing more can start.
    pub fn is_over(&self) -> bool {
        self.running == 0
            && !self.ready.iter().any(|&i| match self.state[i] {
                State::RetryAt(_) => true,
                State::Waiting => !self.stopped,
                _ => false,
            })
    }

    /// How many steps are running.
    pub fn running(&self) -> usize {
        self.running
    }

    /// The earliest time a pending retry is due, if any.
    pub fn next_retry(&self) -> Option<Duration> {
        self.ready
            .iter()
            .filter_map(|&i| match self.state[i] {
                State::RetryAt(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Why `step` never ran, if it did not (call once the run is over).
    pub fn not_run(&self, step: usize) -> Option<NotRun> {
        match self.state.get(step)? {
            State::Blocked(need) => Some(NotRun::Blocked { need: *need }),
            State::Waiting => {
                // Needs still unmet when the run stopped: blame one that
                // did not end well, if any.
                let failed = self.steps[step].needs.iter().copied().find(|&d| {
                    matches!(self.state.get(d), Some(State::Failed | State::Blocked(_)))
                });
                Some(match failed {
                    Some(need) => NotRun::Blocked { need },
                    None => NotRun::Stopped {
                        failed: self.first_failed,
                    },
                })
            }
            _ => None,
        }
    }

    /// Every attempt that has ended, in the order they ended.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// `step` has ended for good (`ok`: done or skipped): its session
    /// moves on, and its dependents become ready (or blocked).
    fn settle(&mut self, step: usize, ok: bool) {
        let session = self.steps[step].session;
        if let Some(position) = self.queues[session].iter().position(|&s| s == step) {
            self.queues[session].remove(position);
        }
        if ok {
            for k in 0..self.dependents[step].len() {
                let dependent = self.dependents[step][k];
                self.unmet[dependent] -= 1;
                if self.unmet[dependent] == 0 && self.state[dependent] == State::Waiting {
                    self.ready.insert(dependent);
                }
            }
            return;
        }
        // Block every descendant, each naming the need it waited on.
        let mut stack = vec![step];
        while let Some(blocked) = stack.pop() {
            for k in 0..self.dependents[blocked].len() {
                let dependent = self.dependents[blocked][k];
                if self.state[dependent] == State::Waiting {
                    self.state[dependent] = State::Blocked(blocked);
                    self.ready.remove(&dependent);
                    let session = self.steps[dependent].session;
                    if let Some(p) = self.queues[session].iter().position(|&s| s == dependent) {
                        self.queues[session].remove(p);
                    }
                    stack.push(dependent);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
