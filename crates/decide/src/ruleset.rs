//! A formula's rules and actions, checked and compiled: [`RuleSet::check`]
//! reports every problem at once, located in the formula file;
//! [`RuleSet::evaluate`] runs the rules against a snapshot.
//!
//! Checking compiles each CEL expression (`when`, `each`, `label`) and
//! checks the names it uses against the snapshot's shape, read from the
//! snapshot's JSON Schema ([`snapshot_shape`](crate::cel_value::snapshot_shape)),
//! so sections that preflight gains are known to rules without changes here.
//! Templates (`message`, each `run` element) are parsed by Tera, and their
//! variable paths are checked ([`template::check_paths`]) against what they
//! are rendered with. A `message`: the same names as the expressions,
//! `item` being an element of the list `each` gives, plus `label`. A `run`
//! element: the names the message of the rule whose finding triggers the
//! action sees, plus `finding` ([`FindingContext`](crate::action::FindingContext));
//! it is checked against every rule that names the action, and a path wrong
//! for one of them is reported once, naming that rule. They are reported as
//! step descriptions' are, [`Problem::UnknownVariable`].
//!
//! Evaluating gives CEL the snapshot's top-level sections as variables
//! (`system`, `tmux`, …), plus `vars` (a map of strings), `now` (the
//! snapshot's `collected_at`, a timestamp) and, per list item, `item`. A
//! rule that reads the figures of a section that was not collected (its
//! `status` is not `ok`) is not evaluated: its findings stay as they were.
//! A rule whose expression fails (a type mismatch, a missing key) is
//! reported and likewise left as it was; no error stops the other rules.
//!
//! The parts, one file each under `ruleset/`: `compile.rs` (checking and
//! compiling the rules and actions of a formula), `diagnostic.rs`
//! (expression issues as problems located in the formula file),
//! `template_paths.rs` (the variable paths of messages and `run` elements),
//! `evaluation.rs` (evaluating the rules against a snapshot, and rendering
//! an action's command for a finding).

mod compile;
pub(crate) mod diagnostic;
mod evaluation;
mod template_paths;

use std::collections::BTreeSet;
use std::time::Duration;

use tera::Tera;

use crate::expression::Expression;
use retort_formula::action::ActionMode;
use retort_formula::diagnostic::{FormulaError, InvalidFormula, Problem};
use retort_formula::formula::{Formula, LoadedFormula};
use retort_formula::gate::GateSection;
use retort_formula::rule::Priority;
#[cfg(doc)]
use retort_formula::template;

pub use evaluation::{Evaluation, Match};

/// The stack of the threads that check and evaluate rules: 64 MiB (address
/// space; only what is used is backed by memory).
pub const CHECK_STACK: usize = 64 * 1024 * 1024;

/// A formula's rules and actions, ready to evaluate.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    actions: Vec<CompiledAction>,
    gate: GateSection,
    tera: Tera,
}

#[derive(Debug)]
struct CompiledRule {
    report: RuleInfo,
    when: Expression,
    each: Option<Expression>,
    label: Option<Expression>,
    /// Sections whose figures the rule reads.
    sections: BTreeSet<String>,
    message: String,
    message_template: String,
}

/// What [`RuleSet::inspect`] found.
#[derive(Debug)]
pub struct Inspected {
    /// The rules, when they have no problems.
    pub rules: Option<RuleSet>,
    /// Every problem, in source order.
    pub problems: Vec<Problem>,
    /// The names of the `vars` the rules and actions read.
    pub used_vars: BTreeSet<String>,
}

/// A compiled action.
#[derive(Debug, Clone)]
pub struct CompiledAction {
    /// Its id.
    pub id: String,
    /// Auto or propose.
    pub mode: ActionMode,
    /// How long it may run.
    pub timeout: Duration,
    /// The least time between two attempts for one finding.
    pub cooldown: Duration,
    templates: Vec<String>,
}

/// What the decide phase needs to know of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// Its id.
    pub id: String,
    /// Its priority.
    pub priority: Priority,
    /// Its `for`.
    pub for_runs: u32,
    /// Its `repeat`.
    pub repeat: Option<Duration>,
    /// The action it names.
    pub action: Option<String>,
    /// How its evaluation went.
    pub status: RuleStatus,
}

/// How a rule's evaluation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStatus {
    /// Evaluated: its matches are in the evaluation.
    Evaluated,
    /// Not evaluated, because a section it reads was not collected.
    Skipped(String),
    /// Its evaluation failed.
    Failed(String),
}

impl RuleSet {
    /// Checks and compiles the rules and actions of `loaded`.
    ///
    /// # Errors
    /// [`FormulaError::Invalid`] listing every problem at once.
    pub fn build(loaded: &LoadedFormula) -> Result<RuleSet, FormulaError> {
        Self::check(&loaded.formula, loaded.source.text()).map_err(|problems| {
            FormulaError::Invalid(Box::new(InvalidFormula {
                name: loaded.path.display().to_string(),
                src: loaded.source.named(),
                problems,
            }))
        })
    }

    /// Checks and compiles the rules and actions of `formula`, whose source
    /// text is `source` (for locating problems inside values).
    ///
    /// The CEL parser recurses deeply (in a debug build, some 170 KiB of
    /// stack per nested bracket), so the check runs on a thread of its own
    /// with a [`CHECK_STACK`] stack.
    ///
    /// # Errors
    /// Every [`Problem::Rule`] found, in source order.
    pub fn check(formula: &Formula, source: &str) -> Result<RuleSet, Vec<Problem>> {
        let inspected = Self::inspect(formula, source);
        match inspected.rules {
            Some(rules) => Ok(rules),
            None => Err(inspected.problems),
        }
    }

    /// As [`RuleSet::check`], and also names the `vars` the rules and
    /// actions use (for the checker's unused-var warning).
    pub fn inspect(formula: &Formula, source: &str) -> Inspected {
        if formula.rules.is_empty() && formula.actions.is_empty() {
            // Nothing to parse: no thread needed.
            return Self::inspect_here(formula, source);
        }
        std::thread::scope(|scope| {
            let checked = std::thread::Builder::new()
                .name("retort-rules".to_string())
                .stack_size(CHECK_STACK)
                .spawn_scoped(scope, || Self::inspect_here(formula, source))
                .ok()
                .and_then(|thread| thread.join().ok());
            checked.unwrap_or_else(|| Self::inspect_here(formula, source))
        })
    }

    /// Whether the formula has rules.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The `[gate]` table.
    pub fn gate(&self) -> &GateSection {
        &self.gate
    }

    /// The action `id`.
    pub fn action(&self, id: &str) -> Option<&CompiledAction> {
        self.actions.iter().find(|a| a.id == id)
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
