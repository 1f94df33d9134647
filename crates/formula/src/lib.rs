//! The retort formula language: what a formula file says, and whether it
//! is well formed.
//!
//! Owns: the TOML [`document`] (parsed in parts on every core for large
//! files), its [`structure`] checked against its [`shape`] (the JSON Schema
//! of [`formula::Formula`], compiled), Tera [`template`] analysis, the typed
//! model ([`formula`]: steps, vars, `[agent]`, `[context]`, and the TOML
//! shape of every section: [`rule`], [`action`], [`gate`], [`history`],
//! [`secrets`]),
//! [`duration`]s as people write them, [`diagnostic`]s rendered like a
//! compiler's, [`unknown_key`]s judged as cargo judges unused manifest
//! keys, the step [`dag`] (topological order, cycles) and its
//! drawings ([`graph`]). [`cores`] shares large checks among threads.
//!
//! In: formula text. Out: [`formula::Formula`] and
//! [`formula::LoadedFormula`], [`dag::StepDag`], and
//! [`diagnostic::Problem`]s with byte spans. What a section *does* belongs
//! to its stage: rules, actions and the gate to `retort-decide`, history
//! retention to `retort-runner`. The whole-file check, which also needs
//! those stages, is `retort-check`.

#![warn(missing_docs)]

pub mod action;
pub mod cores;
pub mod dag;
pub mod diagnostic;
pub mod document;
pub mod duration;
pub mod formula;
pub mod gate;
pub mod graph;
pub mod history;
pub mod rule;
pub mod secrets;
pub mod sessions;
pub mod shape;
pub mod stand_in;
pub mod structure;
pub mod template;
pub mod unknown_key;
