use super::*;

use proptest::prelude::*;

const S: Duration = Duration::from_secs(1);

fn spec(needs: &[usize], session: usize) -> StepSpec {
    StepSpec {
        needs: needs.to_vec(),
        session,
        retries: 0,
        retry_delay: S,
    }
}

/// a → (b, c) → d, each in its own session but d in b's.
fn diamond() -> Vec<StepSpec> {
    vec![spec(&[], 0), spec(&[0], 0), spec(&[0], 1), spec(&[1, 2], 0)]
}

#[test]
fn a_diamond_runs_its_branches_together() {
    let mut s = Scheduler::new(diamond(), 4, OnFailure::Stop);
    assert_eq!(s.poll(Duration::ZERO), [0]);
    assert_eq!(
        s.poll(Duration::ZERO),
        Vec::<usize>::new(),
        "b and c need a"
    );
    assert_eq!(s.finish(0, S, Ended::Done), Next::Final);
    assert_eq!(s.poll(S), [1, 2]);
    s.finish(2, 2 * S, Ended::Done);
    assert_eq!(s.poll(2 * S), Vec::<usize>::new(), "d still needs b");
    s.finish(1, 3 * S, Ended::Done);
    assert_eq!(s.poll(3 * S), [3]);
    s.finish(3, 4 * S, Ended::Done);
    assert!(s.is_over());
    assert_eq!(
        s.attempts().iter().map(|a| a.step).collect::<Vec<_>>(),
        [0, 2, 1, 3],
        "in the order they ended"
    );
}

#[test]
fn max_parallel_one_is_the_topological_order() {
    let mut s = Scheduler::new(diamond(), 1, OnFailure::Stop);
    let mut order: Vec<usize> = Vec::new();
    let mut now = Duration::ZERO;
    while !s.is_over() {
        let started = s.poll(now);
        assert_eq!(started.len(), 1);
        order.extend(&started);
        now += S;
        s.finish(started[0], now, Ended::Done);
    }
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn steps_of_one_session_run_one_after_another() {
    // Three independent steps, two sharing session 0.
    let steps = vec![spec(&[], 0), spec(&[], 1), spec(&[], 0)];
    let mut s = Scheduler::new(steps, 4, OnFailure::Stop);
    assert_eq!(
        s.poll(Duration::ZERO),
        [0, 1],
        "step 2 waits for step 0's session"
    );
    s.finish(1, S, Ended::Done);
    assert_eq!(s.poll(S), Vec::<usize>::new());
    s.finish(0, S, Ended::Done);
    assert_eq!(s.poll(S), [2]);
}

#[test]
fn a_skipped_step_satisfies_its_dependents() {
    let mut s = Scheduler::new(diamond(), 4, OnFailure::Stop);
    s.poll(Duration::ZERO);
    s.finish(0, S, Ended::Done);
    assert_eq!(s.poll(S), [1, 2]);
    s.skip(1);
    s.finish(2, S, Ended::Done);
    assert_eq!(s.poll(S), [3]);
    assert_eq!(s.not_run(1), None);
    assert_eq!(
        s.attempts().iter().map(|a| a.step).collect::<Vec<_>>(),
        [0, 2],
        "a skip is no attempt"
    );
}

#[test]
fn a_failure_stops_new_starts_and_lets_running_steps_finish() {
    // a, b independent; c needs a; d independent, after them.
    let steps = vec![spec(&[], 0), spec(&[], 1), spec(&[0], 0), spec(&[], 2)];
    let mut s = Scheduler::new(steps, 2, OnFailure::Stop);
    assert_eq!(s.poll(Duration::ZERO), [0, 1]);
    s.finish(0, S, Ended::Failed);
    assert_eq!(s.poll(S), Vec::<usize>::new(), "nothing new starts");
    assert!(!s.is_over(), "b still runs");
    s.finish(1, 2 * S, Ended::Done);
    assert!(s.is_over());
    assert_eq!(s.not_run(2), Some(NotRun::Blocked { need: 0 }));
    assert_eq!(s.not_run(3), Some(NotRun::Stopped { failed: Some(0) }));
    assert_eq!(s.not_run(1), None);
}

#[test]
fn on_failure_continue_runs_what_does_not_depend_on_the_failure() {
    // a → c → e; b; d needs b; c in a's session, e in its own.
    let steps = vec![
        spec(&[], 0),
        spec(&[], 1),
        spec(&[0], 0),
        spec(&[1], 1),
        spec(&[2], 2),
    ];
    let mut s = Scheduler::new(steps, 4, OnFailure::Continue);
    assert_eq!(s.poll(Duration::ZERO), [0, 1]);
    s.finish(0, S, Ended::Failed);
    s.finish(1, S, Ended::Done);
    assert_eq!(s.poll(S), [3]);
    s.finish(3, 2 * S, Ended::Done);
    assert!(s.is_over());
    assert_eq!(s.not_run(2), Some(NotRun::Blocked { need: 0 }));
    assert_eq!(s.not_run(4), Some(NotRun::Blocked { need: 2 }));
}

#[test]
fn transient_ends_are_retried_with_exponential_backoff() {
    let mut steps = vec![spec(&[], 0), spec(&[0], 0)];
    steps[0].retries = 3;
    steps[0].retry_delay = 10 * S;
    let mut s = Scheduler::new(steps, 4, OnFailure::Stop);
    assert_eq!(s.poll(Duration::ZERO), [0]);
    let transient = Ended::Transient { not_before: None };
    assert_eq!(s.finish(0, S, transient), Next::RetryAt(11 * S));
    assert_eq!(s.poll(10 * S), Vec::<usize>::new(), "not yet due");
    assert_eq!(s.next_retry(), Some(11 * S));
    assert!(!s.is_over());
    assert_eq!(s.poll(11 * S), [0]);
    assert_eq!(s.finish(0, 12 * S, transient), Next::RetryAt(32 * S));
    assert_eq!(s.poll(32 * S), [0]);
    // A rate limit waits for its reset when that is later.
    let limited = Ended::Transient {
        not_before: Some(600 * S),
    };
    assert_eq!(s.finish(0, 33 * S, limited), Next::RetryAt(600 * S));
    assert_eq!(s.poll(600 * S), [0]);
    // Retries spent: the step fails for good.
    assert_eq!(s.finish(0, 601 * S, transient), Next::Final);
    assert!(s.is_over());
    assert_eq!(s.not_run(1), Some(NotRun::Blocked { need: 0 }));
    let numbers: Vec<u32> = s.attempts().iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4], "every attempt is recorded");
    assert_eq!(s.attempts()[2].started, 32 * S);
    assert_eq!(s.attempts()[2].ended, limited);
}

#[test]
fn a_failed_signal_is_never_retried() {
    let mut steps = vec![spec(&[], 0)];
    steps[0].retries = 5;
    let mut s = Scheduler::new(steps, 4, OnFailure::Stop);
    s.poll(Duration::ZERO);
    assert_eq!(s.finish(0, S, Ended::Failed), Next::Final);
    assert!(s.is_over());
    assert_eq!(s.attempts().len(), 1);
}

#[test]
fn stop_abandons_pending_retries_and_starts_nothing() {
    let mut steps = vec![spec(&[], 0), spec(&[], 1)];
    steps[0].retries = 1;
    let mut s = Scheduler::new(steps, 1, OnFailure::Stop);
    assert_eq!(s.poll(Duration::ZERO), [0]);
    s.finish(0, S, Ended::Transient { not_before: None });
    s.stop();
    assert_eq!(s.poll(10 * S), Vec::<usize>::new());
    assert!(s.is_over());
    assert_eq!(s.not_run(1), Some(NotRun::Stopped { failed: None }));
}

/// A DAG of `n` steps: step `i` needs some of the steps before it.
fn dags() -> impl Strategy<Value = (Vec<StepSpec>, usize, Vec<u8>)> {
    (1usize..30).prop_flat_map(|n| {
        (
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
                    0usize..4,
                ),
                n,
            ),
            1usize..5,
            proptest::collection::vec(any::<u8>(), n * 3),
        )
            .prop_map(move |(raw, max_parallel, ends)| {
                let steps = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (needs, session))| StepSpec {
                        needs: match i {
                            0 => Vec::new(),
                            _ => needs.iter().map(|index| index.index(i)).collect(),
                        },
                        session,
                        retries: 1,
                        retry_delay: S,
                    })
                    .collect();
                (steps, max_parallel, ends)
            })
    })
}

proptest! {
    /// Whatever the DAG, sessions and ends: no step starts before every
    /// step it needs has ended done or skipped, no more than max_parallel
    /// run at once, no session runs two steps at once, and the run ends.
    #[test]
    fn order_respects_needs_and_max_parallel((steps, max_parallel, ends) in dags(), continue_ in any::<bool>()) {
        let on_failure = if continue_ { OnFailure::Continue } else { OnFailure::Stop };
        let mut s = Scheduler::new(steps.clone(), max_parallel, on_failure);
        let mut ok = vec![false; steps.len()];
        let mut running: Vec<usize> = Vec::new();
        let mut now = Duration::ZERO;
        let mut draws = ends.into_iter().cycle();
        for _ in 0..10_000 {
            if s.is_over() { break; }
            for step in s.poll(now) {
                for &need in &steps[step].needs {
                    prop_assert!(ok[need], "step {step} started before its need {need} ended well");
                }
                prop_assert!(!running.iter().any(|&r| steps[r].session == steps[step].session),
                    "two steps of session {} at once", steps[step].session);
                if draws.next().unwrap_or(0) % 7 == 0 {
                    s.skip(step);
                    ok[step] = true;
                } else {
                    running.push(step);
                }
            }
            prop_assert!(running.len() <= max_parallel);
            prop_assert_eq!(running.len(), s.running());
            now += S;
            if running.is_empty() {
                if let Some(at) = s.next_retry() { now = now.max(at); }
                continue;
            }
            let pick = usize::from(draws.next().unwrap_or(0)) % running.len();
            let step = running.remove(pick);
            let ended = match draws.next().unwrap_or(0) % 5 {
                0 => Ended::Failed,
                1 => Ended::Transient { not_before: None },
                _ => Ended::Done,
            };
            if s.finish(step, now, ended) == Next::Final && ended == Ended::Done {
                ok[step] = true;
            }
        }
        prop_assert!(s.is_over(), "the run never ended");
    }
}
