//! retort's decide stage: what is wrong, decided without an LLM, and
//! whether the agent starts at all.
//!
//! Owns: CEL [`expression`]s typed against the snapshot's shape
//! ([`cel_value`]; the type check and the locating of names in an
//! expression's text are modules of their own under `expression/`), the
//! compiled [`ruleset`] (under `ruleset/`: compiling and checking the rules
//! and actions, locating their problems in the formula file, checking the
//! variable paths of messages and `run` templates, and evaluating the rules
//! against a snapshot),
//! step [`condition`]s (a step's `when`, typed and evaluated like rules),
//! [`finding`]s and their fingerprints tracked across runs, [`action`]s run
//! (`auto`) or stored as [`proposal`]s, the [`gate`]'s decision, and the
//! whole phase in [`decide`].
//!
//! In: a [`retort_formula::formula::LoadedFormula`] (its `[[rules]]`,
//! `[[actions]]` and `[gate]` tables), a preflight
//! [`retort_preflight::Snapshot`], and the run history
//! ([`retort_journal::history::History`]). Out: a [`decide::Decision`]
//! (findings, planned and finished actions, the gate's decision) that the
//! prompt stage shows the agent and the runner records.

#![warn(missing_docs)]

pub mod action;
pub mod cel_value;
pub mod condition;
pub mod decide;
pub mod expression;
pub mod finding;
pub mod gate;
pub mod proposal;
pub mod ruleset;
