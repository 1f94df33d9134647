//! Which agent session each step runs in.
//!
//! With `max_parallel = 1` (steps one at a time) sessions are as they
//! always were: consecutive steps in topological order share one, and a
//! change of model or tools opens the next. With more, a step continues
//! the session of the first step it needs, so that a chain stays one
//! conversation while branches get sessions of their own; steps naming the
//! same `session` share one whatever their needs. Session numbers count
//! from 0 in order of first use; the first step is always in session 0.

use crate::dag::StepDag;
use crate::formula::{Formula, Step};

/// Whether `step` may continue a session whose previous step is `before`:
/// same model, same tools.
pub fn may_share(formula: &Formula, before: &Step, step: &Step) -> bool {
    fn tools(s: &Step) -> (Vec<&String>, Vec<&String>) {
        (
            s.allowed_tools.iter().map(|t| t.get_ref()).collect(),
            s.disallowed_tools.iter().map(|t| t.get_ref()).collect(),
        )
    }
    formula.model_of(before) == formula.model_of(step) && tools(before) == tools(step)
}

/// Each step's session number, by position in `dag`'s topological order.
pub fn plan_sessions(formula: &Formula, dag: &StepDag) -> Vec<usize> {
    let order = dag.order();
    let step = |position: usize| &formula.steps[order[position]];
    if formula.max_parallel() == 1 && formula.steps.iter().all(|s| s.session.is_none()) {
        return sequential_sessions(order.len(), |p| !may_share(formula, step(p - 1), step(p)));
    }
    let mut position_of = vec![0; formula.steps.len()];
    for (position, &index) in order.iter().enumerate() {
        position_of[index] = position;
    }
    let needs: Vec<Vec<usize>> = order
        .iter()
        .map(|&index| {
            dag.needs(index)
                .into_iter()
                .map(|n| position_of[n])
                .collect()
        })
        .collect();
    let named: Vec<Option<&str>> = order.iter().map(|&i| formula.steps[i].session()).collect();
    assign_sessions(&needs, &named, |from, to| {
        may_share(formula, step(from), step(to))
    })
}

/// Each step's session number, in topological order: a step with a
/// `session` name shares the session of the other steps with that name; a
/// step without continues the session of its first need, when `continues`
/// says the two may share one (same model and tools) and no other step
/// continued that need's session from it; any other step opens a session
/// of its own. Session numbers count from 0 in order of first use.
///
/// `needs[i]` are positions below `i`; `named[i]` the step's `session`.
pub fn assign_sessions(
    needs: &[Vec<usize>],
    named: &[Option<&str>],
    continues: impl Fn(usize, usize) -> bool,
) -> Vec<usize> {
    let n = needs.len();
    let mut session = vec![0; n];
    let mut by_name: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut continued = vec![false; n];
    let mut count = 0;
    for i in 0..n {
        let mut open = || {
            count += 1;
            count - 1
        };
        session[i] = match named.get(i).copied().flatten() {
            Some(name) => *by_name.entry(name).or_insert_with(open),
            None => match needs[i].first().copied() {
                Some(first) if first < i && !continued[first] && continues(first, i) => {
                    continued[first] = true;
                    session[first]
                }
                _ => open(),
            },
        };
    }
    session
}

/// The sessions of a run of `max_parallel = 1`, as before parallel runs:
/// consecutive steps in topological order share a session unless `opens`
/// says a step opens a new one (a change of model or tools).
pub fn sequential_sessions(n: usize, opens: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut session = Vec::with_capacity(n);
    let mut current = 0;
    for i in 0..n {
        if i > 0 && opens(i) {
            current += 1;
        }
        session.push(current);
    }
    session
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_follow_first_needs_and_names() {
        // a → (b, c) → d: b continues a, c opens its own, d continues b.
        let needs = vec![vec![], vec![0], vec![0], vec![1, 2]];
        assert_eq!(
            assign_sessions(&needs, &[None; 4], |_, _| true),
            [0, 0, 1, 0]
        );
        // A change of model (b after a) opens a session.
        assert_eq!(
            assign_sessions(&needs, &[None; 4], |from, to| !(from == 0 && to == 1)),
            [0, 1, 0, 1]
        );
        // Named sessions are shared whatever the needs.
        let named = [Some("x"), None, Some("x"), None];
        assert_eq!(assign_sessions(&needs, &named, |_, _| true), [0, 0, 0, 0]);
        assert_eq!(sequential_sessions(4, |i| i == 2), [0, 0, 1, 1]);
    }
}
