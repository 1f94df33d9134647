//! retort's engine: formulas, their step DAG, prompts, agent sessions and runs.
//!
//! The data flow, module by module:
//! [`formula`] (TOML → typed model) → [`dag`] (validated step DAG, topological
//! order) → preflight snapshot (the `retort-preflight` crate) → the decide
//! phase, [`decide`]: [`rule`]s compiled by [`ruleset`] (CEL [`expression`]s
//! checked against the snapshot's shape, [`cel_value`]) → [`finding`]s tracked across
//! runs in the run history → [`action`]s run or proposed ([`proposal`]) →
//! the [`gate`] → [`prompt`] (Tera-rendered prompts, with [`context`] files)
//! → the [`agent`] on its backend: [`session`] (tmux; [`ready`] waits for a
//! new agent) or [`headless`] (a process per step) →
//! [`signal`] (the agent's step signals)
//! → [`phase`] and the journal (the `retort-journal` crate, which also
//! owns the run history). [`plan`] prepares a run without side effects and
//! [`run`] carries it out, [`wait`]ing on each step, under a [`lock`] that
//! keeps runs of one formula from overlapping; [`state`] lays out the state
//! directory, and [`retention`] removes what old runs left there.
//! [`check`] checks a formula in one pass (its TOML
//! [`document`], [`structure`] against its [`shape`], [`template`]s, the
//! DAG, the rules), large ones on every core; [`diagnostic`] renders
//! what it finds like a compiler; [`graph`] draws the DAG.

#![warn(missing_docs)]

pub mod action;
pub mod agent;
pub mod atomic;
pub mod cel_value;
pub mod check;
pub mod context;
pub mod cores;
pub mod dag;
pub mod decide;
pub mod diagnostic;
pub mod document;
pub mod expression;
pub mod finding;
pub mod formula;
pub mod gate;
pub mod graph;
pub mod headless;
pub mod lock;
pub mod phase;
pub mod plan;
pub mod prompt;
pub mod proposal;
pub mod ready;
pub mod retention;
pub mod rule;
pub mod ruleset;
pub mod run;
pub mod session;
pub mod shape;
pub mod signal;
pub mod state;
pub mod structure;
pub mod template;
pub mod wait;
