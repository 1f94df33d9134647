//! retort's prompts: what each step's agent is told.
//!
//! Owns: the Tera template context of a step ([`prompt::TemplateContext`]:
//! the snapshot, vars, findings, actions, the step, the run), the default
//! prompt wrapper, the `[agent] command` template, and the `[context]`
//! files read for the prompt ([`context`]).
//!
//! In: a formula, its step DAG, a snapshot and a
//! [`retort_decide::decide::Decision`]. Out: one [`prompt::Prompt`] per
//! step, in topological order, and the shapes of the template context
//! that `retort-check` checks templates against.

#![warn(missing_docs)]

pub mod context;
pub mod prompt;
