//! The whole-file check of a retort formula: every problem in one pass.
//!
//! Owns: [`check::check_source`], which reads the TOML document, checks its
//! structure, vars, templates (against the prompt context's shape), the
//! step DAG and the rules and actions, on every core for large formulas;
//! [`check::load`], the one way a formula is read for a run; and
//! [`files`], which files of a directory are formulas.
//!
//! It sits above the stages it checks: the language (`retort-formula`),
//! the decide stage (`retort-decide`, whose rule set it compiles) and the
//! prompts (`retort-prompt`, whose context shapes templates must fit).
//! In: formula text, `--var`s. Out: [`check::Checked`] (problems, and the
//! loaded formula with its DAG and rules when there are no errors).

#![warn(missing_docs)]

pub mod check;
pub mod files;
mod templates;

pub use check::{load, parse_source};
