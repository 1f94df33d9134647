//! The step DAG: which step waits for which, checked and put in
//! topological order.
//!
//! Built with `petgraph`. An edge runs from a step to each step that needs
//! it. Cycles are found as strongly connected components (Kosaraju's
//! algorithm, whose depth-first searches keep their own stack: petgraph's
//! Tarjan recurses once per step of a path, so a valid chain of 100,000
//! `needs` overflowed the main thread's stack), and each is reported as its
//! whole path (`a → b → c → a`) with the `needs` entry of every edge,
//! because a topological sort alone names only one node.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use miette::LabeledSpan;
use petgraph::Direction;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diagnostic::{Problem, span};
use crate::formula::Formula;
use crate::shape::closest;

/// A formula's steps as a validated DAG, with a stable topological order.
#[derive(Debug, Clone)]
pub struct StepDag {
    graph: DiGraph<usize, usize>,
    order: Vec<usize>,
}

impl StepDag {
    /// Validates `formula` and builds its DAG, returning the problems found.
    ///
    /// # Errors
    /// Every [`Problem`] in the formula's steps, in source order.
    pub fn check(formula: &Formula) -> Result<StepDag, Vec<Problem>> {
        let mut problems = Vec::new();
        if formula.steps.is_empty() {
            problems.push(Problem::NoSteps {
                span: span(formula.name.span()),
            });
        }

        let mut graph = DiGraph::<usize, usize>::new();
        let mut by_id: HashMap<&str, NodeIndex> = HashMap::new();
        let nodes: Vec<NodeIndex> = (0..formula.steps.len())
            .map(|i| graph.add_node(i))
            .collect();
        for (i, step) in formula.steps.iter().enumerate() {
            if step.id().trim().is_empty() {
                problems.push(Problem::EmptyId {
                    span: span(step.id.span()),
                });
                continue;
            }
            if let Some(&first) = by_id.get(step.id()) {
                problems.push(Problem::DuplicateStep {
                    id: step.id().to_string(),
                    first: span(formula.steps[graph[first]].id.span()),
                    second: span(step.id.span()),
                });
                continue;
            }
            by_id.insert(step.id(), nodes[i]);
        }

        for (i, step) in formula.steps.iter().enumerate() {
            for (k, need) in step.needs.iter().enumerate() {
                let name = need.get_ref().as_str();
                if name == step.id() {
                    problems.push(Problem::SelfNeed {
                        step: step.id().to_string(),
                        span: span(need.span()),
                    });
                } else if let Some(&dependency) = by_id.get(name) {
                    // Edge weight: the index of the `needs` entry, for cycle reports.
                    graph.update_edge(dependency, nodes[i], k);
                } else {
                    problems.push(Problem::UnknownNeed {
                        step: step.id().to_string(),
                        need: name.to_string(),
                        span: span(need.span()),
                        help: unknown_need_help(name, by_id.keys().copied()),
                    });
                }
            }
        }

        problems.extend(cycles(formula, &graph));
        if !problems.is_empty() {
            return Err(problems);
        }
        let order = stable_topological_order(&graph);
        Ok(StepDag { graph, order })
    }

    /// Step indices (into `formula.steps`) in topological order. Among steps
    /// that are ready at the same time, the one written first comes first,
    /// so a formula whose steps are already in order runs in file order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Indices of the steps that `step` needs directly.
    pub fn needs(&self, step: usize) -> Vec<usize> {
        let mut needs: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(step), Direction::Incoming)
            .map(|n| self.graph[n])
            .collect();
        needs.sort_unstable();
        needs
    }
}

/// Kahn's algorithm with a min-heap on declaration order.
fn stable_topological_order(graph: &DiGraph<usize, usize>) -> Vec<usize> {
    let mut in_degree: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = graph
        .node_indices()
        .filter(|n| in_degree[n.index()] == 0)
        .map(|n| Reverse(n.index()))
        .collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(graph[NodeIndex::new(i)]);
        for next in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            in_degree[next.index()] -= 1;
            if in_degree[next.index()] == 0 {
                ready.push(Reverse(next.index()));
            }
        }
    }
    order
}

/// One [`Problem::Cycle`] per strongly connected component of more than one step.
fn cycles(formula: &Formula, graph: &DiGraph<usize, usize>) -> Vec<Problem> {
    let mut components: Vec<Vec<NodeIndex>> = kosaraju_scc(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    for component in &mut components {
        component.sort_unstable();
    }
    components.sort_unstable();
    components
        .iter()
        .map(|component| {
            let path = cycle_through_first(graph, component);
            let steps = &formula.steps;
            let edges = path
                .windows(2)
                .filter_map(|pair| {
                    let (from, to) = (pair[0], pair[1]);
                    let edge = graph.find_edge(to, from)?;
                    let need = &steps[graph[from]].needs[graph[edge]];
                    Some(LabeledSpan::new_with_span(
                        Some(format!(
                            "`{}` needs `{}`",
                            steps[graph[from]].id(),
                            steps[graph[to]].id()
                        )),
                        span(need.span()),
                    ))
                })
                .collect();
            Problem::Cycle {
                path: path
                    .iter()
                    .map(|&n| steps[graph[n]].id().to_string())
                    .collect(),
                edges,
            }
        })
        .collect()
}

/// The shortest cycle through the component's first-written step, following
/// `needs` (against the edges), as `[a, b, c, a]`.
fn cycle_through_first(graph: &DiGraph<usize, usize>, component: &[NodeIndex]) -> Vec<NodeIndex> {
    let members: HashSet<NodeIndex> = component.iter().copied().collect();
    let start = component[0];
    let mut came_from: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        let mut needs: Vec<NodeIndex> = graph
            .neighbors_directed(node, Direction::Incoming)
            .filter(|n| members.contains(n))
            .collect();
        needs.sort_unstable();
        for next in needs {
            if next == start {
                let mut chain = Vec::new();
                let mut at = node;
                while at != start {
                    chain.push(at);
                    match came_from.get(&at) {
                        Some(&previous) => at = previous,
                        None => break,
                    }
                }
                chain.reverse();
                let mut path = Vec::with_capacity(chain.len() + 2);
                path.push(start);
                path.extend(chain);
                path.push(start);
                return path;
            }
            if let Entry::Vacant(e) = came_from.entry(next) {
                e.insert(node);
                queue.push_back(next);
            }
        }
    }
    // A strongly connected component always has a cycle through each member.
    component.to_vec()
}

fn unknown_need_help<'a>(name: &str, ids: impl Iterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    match closest(name, ids.iter().copied()) {
        Some(id) => format!("did you mean `{id}`?"),
        None if ids.is_empty() => "this formula has no steps with valid ids".to_string(),
        None => format!("the steps are: {}", ids.join(", ")),
    }
}
