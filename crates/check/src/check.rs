//! The formula checker: every problem of a formula file in one pass, each
//! located in the file. `retort check` prints them all; `run` and `render`
//! refuse a formula with errors and print its warnings.
//!
//! The stages, each on what the one before produced, all in one pass:
//! 1. TOML, parsed with error recovery ([`retort_formula::document`]): every syntax
//!    error. A syntax error inside a value does not stop the check (the
//!    later stages' problems inside that value are left out); one between
//!    values, which may have lost any part of the document, does.
//! 2. Structure, against the formula's JSON Schema ([`retort_formula::structure`]):
//!    every unknown key (a likely typo is an error with the intended key,
//!    any other a warning that it is ignored), wrong type and missing key.
//!    Missing required keys get stand-ins ([`retort_formula::stand_in`]),
//!    so that the later stages still run.
//! 3. Values, through serde into the typed [`Formula`]: durations and the
//!    like.
//! 4. The step DAG ([`StepDag`]): ids, `needs`, every cycle.
//! 5. Templates ([`retort_formula::template`], `templates`): Tera syntax
//!    and variable paths of every description and of the agent command
//!    (declared vars at the top level too, `meta`), and titles or the
//!    formula's description with template syntax.
//! 6. Rules and actions ([`RuleSet`]): CEL syntax, names the snapshot (or
//!    `[vars]`) does not have, unknown actions, message and command
//!    template syntax, and the variable paths of messages and of each
//!    action's `run` elements (against every rule that names the action).
//! 7. Vars and context files: `--var` names, required vars, unused vars
//!    (a var a rule, its message or an action's `run` reads is used),
//!    missing context files.
//! 8. The `schedule` cron expression ([`retort_schedule::Schedule`]), its
//!    refusal underlined inside the string.
//! 9. The `[[notify]]` tables ([`retort_notify::NotifyConfig::check`]).
//!
//! The TOML text's own helpers (a long text that is not a formula, syntax
//! errors as problems, spans) are in `toml_text`; the vars' values in `vars`.

mod toml_text;
mod vars;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use retort_decide::ruleset::RuleSet;
use retort_formula::dag::StepDag;
use retort_formula::diagnostic::{
    FormulaError, InvalidFormula, Problem, SourceFile, read_formula_text, span,
};
use retort_formula::document;
use retort_formula::formula::{Backend, Formula, LoadedFormula, formula_shape};
use retort_formula::stand_in;
use retort_formula::structure;
use retort_formula::template::StringSource;
use retort_schedule::Schedule;

pub use toml_text::{SAMPLE_ABOVE, SAMPLE_BYTES, SAMPLE_ERRORS};

use toml_text::{key_spans, leaf_spans, not_a_formula, toml_problem, value_problem};
use vars::resolve_vars;

use crate::templates::{
    Names, dag_and_templates, plain_text_problems, plain_text_spans, var_name_problems,
};

/// What the check is for: authoring (`retort check`) or a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `retort check`: a required var without a value is a warning.
    Authoring,
    /// `run` and `render`: a required var without a value is an error.
    Run,
}

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `--var NAME=VALUE` values.
    pub vars: BTreeMap<String, String>,
    /// The directory context files are looked for in.
    pub cwd: PathBuf,
    /// What the check is for.
    pub purpose: Purpose,
}

/// The result of checking one formula file.
#[derive(Debug)]
pub struct Checked {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub source: SourceFile,
    /// The typed formula, when the file got that far.
    pub formula: Option<Formula>,
    /// Its DAG, when the steps form one.
    pub dag: Option<StepDag>,
    /// Its rules and actions, compiled, when they have no problems.
    pub rules: Option<Arc<RuleSet>>,
    /// The value of every declared var: `--var`, else the default, else `""`.
    pub vars: BTreeMap<String, String>,
    /// Every problem, errors and warnings, in file order.
    pub problems: Vec<Problem>,
}

/// A formula that passed the check, ready to run.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The formula.
    pub loaded: LoadedFormula,
    /// Its DAG.
    pub dag: StepDag,
    /// Its rules and actions, compiled.
    pub rules: Arc<RuleSet>,
    /// The value of every declared var.
    pub vars: BTreeMap<String, String>,
}

impl Checked {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// The formula, ready to run, and the warnings; or every problem as a
    /// [`FormulaError::Invalid`] when any is an error.
    ///
    /// # Errors
    /// [`FormulaError::Invalid`] with every problem, warnings included.
    pub fn into_ready(self) -> Result<(Ready, Vec<Problem>), FormulaError> {
        let Checked {
            path,
            source,
            formula,
            dag,
            rules,
            vars,
            problems,
        } = self;
        match (formula, dag, rules) {
            (Some(formula), Some(dag), Some(rules)) if !problems.iter().any(Problem::is_error) => {
                Ok((
                    Ready {
                        loaded: LoadedFormula {
                            path,
                            formula,
                            source,
                        },
                        dag,
                        rules,
                        vars,
                    },
                    problems,
                ))
            }
            _ => Err(FormulaError::Invalid(Box::new(InvalidFormula {
                name: path.display().to_string(),
                src: source.named(),
                problems,
            }))),
        }
    }
}

/// The top-level `schedule`, if the formula has one and
/// [`Schedule::parse`] refuses it: the refusal, underlining the part of the
/// expression it is about in the file (through TOML's escapes, if any).
fn check_schedule(formula: &Formula, text: &str) -> Option<Problem> {
    let schedule = formula.schedule.as_ref()?;
    let error = Schedule::parse(schedule.get_ref()).err()?;
    let map = StringSource::new(text, schedule.span(), schedule.get_ref());
    Some(Problem::BadValue {
        message: format!("`schedule`: {}", error.message),
        span: span(map.range(error.span)),
        help: Some(
            "five fields, minute hour day-of-month month day-of-week, as crontab(5) reads \
             them (`*/20 * * * *`: every 20 minutes); docs/schedules.md lists what is \
             accepted"
                .to_string(),
        ),
    })
}

/// The problems of the `[[notify]]` tables
/// ([`retort_notify::NotifyConfig::check`]): keys of the wrong kind or
/// missing, URLs, rooms, variable and header names, body templates, an
/// empty `on`. Unset variables are a run's problem, not the check's.
fn check_notify(formula: &Formula) -> Vec<Problem> {
    formula
        .notify
        .iter()
        .flat_map(|table| table.check())
        .map(|problem| Problem::BadValue {
            message: format!("`[[notify]]`: {}", problem.message),
            span: span(problem.span.unwrap_or(0..0)),
            help: Some(problem.help),
        })
        .collect()
}

/// Reads and checks the formula at `path`.
///
/// # Errors
/// [`FormulaError::Read`] when the file cannot be read,
/// [`FormulaError::NotUtf8`] (with the line and column of the first
/// invalid byte) when it is not UTF-8; every other problem is in the
/// [`Checked`].
pub fn check_file(path: &Path, options: &CheckOptions) -> Result<Checked, FormulaError> {
    let text = read_formula_text(path)?;
    Ok(check_source(path, text, options))
}

/// Checks `text` as the formula file `path`. Never panics, whatever `text` holds.
pub fn check_source(path: &Path, text: String, options: &CheckOptions) -> Checked {
    begin(path, text, options).finish()
}

/// A formula checked up to its typed value (the TOML document, its
/// structure, vars, the settings of `[agent]`, the schedule):
/// [`Begun::finish`] checks the DAG, the templates, the rules and actions
/// (compiling the rules' CEL is the costly part of a small formula's check)
/// and what depends on them (unused vars). A run starts its preflight
/// between the two, as soon as the formula says what to collect, and
/// finishes the check beside it.
#[derive(Debug)]
pub struct Begun {
    checked: Checked,
    /// The typed formula, when the file got that far.
    formula: Option<Formula>,
    /// Where each `[vars]` entry is.
    var_spans: BTreeMap<String, Range<usize>>,
    /// Which problems [`Begun::finish`] leaves out.
    unreliable: Unreliable,
}

/// What the parser could not read, and the stand-ins for missing required
/// keys: later stages' problems there would only be false ones.
#[derive(Debug, Default)]
struct Unreliable {
    /// How many problems the parser found (always kept).
    found_by_parser: usize,
    /// How many problems the parser and the structure check found (kept).
    found_by_structure: usize,
    /// Values holding a syntax error.
    values: Vec<Range<usize>>,
    /// Where the stand-ins are.
    stand_ins: Vec<usize>,
}

impl Begun {
    /// The typed formula, when the file got that far.
    pub fn formula(&self) -> Option<&Formula> {
        self.formula.as_ref()
    }

    /// Whether a problem found so far is an error (the DAG, templates and
    /// rules are not checked yet).
    pub fn has_errors(&self) -> bool {
        self.checked.has_errors()
    }

    /// A check that stopped before the typed formula.
    fn stopped(checked: Checked) -> Begun {
        Begun {
            checked,
            formula: None,
            var_spans: BTreeMap::new(),
            unreliable: Unreliable::default(),
        }
    }

    /// Checks the DAG, the templates, the rules and actions, then the vars
    /// no template or rule uses: the whole check, as [`check_source`]
    /// returns it.
    pub fn finish(self) -> Checked {
        let Begun {
            mut checked,
            formula,
            var_spans,
            unreliable,
        } = self;
        let Some(formula) = formula else {
            return sorted(checked);
        };
        let text = checked.source.text().to_string();
        let names = Names::of(&formula);
        let (dag, (template_problems, mut used)) = dag_and_templates(&formula, &text, &names);
        match dag {
            Ok(dag) => checked.dag = Some(dag),
            Err(problems) => checked.problems.extend(problems),
        }
        checked.problems.extend(template_problems);
        let (condition_problems, condition_vars) = retort_decide::condition::check(&formula, &text);
        checked.problems.extend(condition_problems);
        used.extend(condition_vars);
        if let Some(zero) = formula.max_parallel.as_ref().filter(|n| *n.get_ref() == 0) {
            checked.problems.push(Problem::BadValue {
                message: "`max_parallel` is 0, so no step could ever start".to_string(),
                span: span(zero.span()),
                help: Some(
                    "give 1 to run the steps one at a time, or more to run independent steps at once (default 4)".to_string(),
                ),
            });
        }
        let inspected = RuleSet::inspect(&formula, &text);
        checked.problems.extend(inspected.problems);
        checked.rules = inspected.rules.map(Arc::new);
        used.extend(inspected.used_vars);
        for (name, place) in &var_spans {
            if !used.contains(name.as_str()) {
                checked.problems.push(Problem::UnusedVar {
                    name: name.clone(),
                    span: span(place.clone()),
                });
            }
        }
        let mut index = 0;
        checked.problems.retain(|problem| {
            index += 1;
            let Some(at) = problem.primary_span().map(|s| s.offset()) else {
                return true;
            };
            let parsed = index <= unreliable.found_by_parser;
            let in_unreliable = unreliable.values.iter().any(|v| v.contains(&at));
            let at_stand_in =
                index > unreliable.found_by_structure && unreliable.stand_ins.contains(&at);
            parsed || !(in_unreliable || at_stand_in)
        });
        checked.formula = Some(formula);
        sorted(checked)
    }
}

/// Reads the formula at `path` and checks it up to its typed value (see
/// [`Begun`]).
///
/// # Errors
/// [`FormulaError::Read`] when the file cannot be read.
pub fn begin_file(path: &Path, options: &CheckOptions) -> Result<Begun, FormulaError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormulaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(begin(path, text, options))
}

/// Checks `text` as the formula file `path` up to its typed value (see
/// [`Begun`]).
pub fn begin(path: &Path, text: String, options: &CheckOptions) -> Begun {
    let source = SourceFile::new(path, text);
    let mut checked = Checked {
        path: path.to_path_buf(),
        source: source.clone(),
        formula: None,
        dag: None,
        rules: None,
        vars: BTreeMap::new(),
        problems: Vec::new(),
    };
    let text = source.text();

    if let Some(problems) = not_a_formula(text) {
        checked.problems = problems;
        return Begun::stopped(checked);
    }
    let (mut document, syntax_errors) = document::parse(text);
    checked.problems = syntax_errors.iter().map(toml_problem).collect();
    // A syntax error inside a value leaves the rest of the document as
    // the file says it, so the later stages still run; only their problems
    // inside such a value are left out. A syntax error between values (a
    // header or a key the parser could not read) may have lost any part of
    // the document, so the check stops there.
    let mut unreliable = Unreliable::default();
    if !syntax_errors.is_empty() {
        let values = leaf_spans(&document);
        for error in &syntax_errors {
            let at = error.span().map_or(0, |s| s.start);
            match values
                .iter()
                .find(|v| v.start <= at && at < v.end.max(v.start + 1))
            {
                Some(value) => unreliable.values.push(value.clone()),
                None => return Begun::stopped(checked),
            }
        }
    }
    unreliable.found_by_parser = checked.problems.len();
    let structure = structure::check(&document, formula_shape());
    checked.problems.extend(structure.problems);
    // Later stages see the document without the keys reported above, and
    // with a stand-in for each required key that is missing (their own
    // problems at a stand-in are left out: the missing key is reported).
    structure::repair(&mut document, &structure.repairs);
    unreliable.found_by_structure = checked.problems.len();
    if !structure.complete {
        unreliable.stand_ins = stand_in::fill(&mut document, formula_shape());
    }
    let var_spans = key_spans(&document, "vars");
    let plain = plain_text_spans(&document);
    let formula = match Formula::from_document(document) {
        Ok(formula) => formula,
        Err(error) => {
            checked.problems.push(value_problem(&error));
            return Begun::stopped(checked);
        }
    };
    checked
        .problems
        .extend(plain_text_problems(&formula, &plain, text));
    checked.problems.extend(var_name_problems(&var_spans));

    let (vars, var_problems) = resolve_vars(&formula, &var_spans, options);
    checked.vars = vars;
    checked.problems.extend(var_problems);
    if let Some(ready) = &formula.agent.ready
        && ready.get_ref().trim().is_empty()
    {
        checked.problems.push(Problem::BadValue {
            message: "`ready` in [agent] is blank, so every screen would show it".to_string(),
            span: span(ready.span()),
            help: Some(
                "give the text the agent shows when it waits for input (its prompt marker), or remove `ready` to wait for the screen to settle".to_string(),
            ),
        });
    }
    if formula.agent.backend == Backend::Headless {
        let agent = &formula.agent;
        let unused = [
            ("ready", agent.ready.as_ref().map(|r| r.span())),
            (
                "ready_timeout",
                agent.ready_timeout.as_ref().map(|r| r.span()),
            ),
            (
                "submit_delay",
                agent.submit_delay.as_ref().map(|d| d.span()),
            ),
        ];
        for (key, place) in unused {
            if let Some(place) = place {
                checked.problems.push(Problem::UnusedAgentSetting {
                    key: key.to_string(),
                    span: span(place),
                });
            }
        }
    }
    if let Some(problem) = check_schedule(&formula, text) {
        checked.problems.push(problem);
    }
    checked.problems.extend(check_notify(&formula));
    if options.purpose == Purpose::Authoring {
        for file in &formula.context.files {
            if !options.cwd.join(file.get_ref()).exists() {
                checked.problems.push(Problem::MissingContextFile {
                    path: file.get_ref().clone(),
                    cwd: options.cwd.display().to_string(),
                    span: span(file.span()),
                });
            }
        }
    }
    Begun {
        checked,
        formula: Some(formula),
        var_spans,
        unreliable,
    }
}

fn sorted(mut checked: Checked) -> Checked {
    checked
        .problems
        .sort_by_key(|p| p.primary_span().map_or(0, |s| s.offset()));
    checked
}

/// Reads and checks the formula at `path` (as `retort check` does, with no
/// `--var`s), returning it when it has no errors.
///
/// # Errors
/// [`FormulaError::Read`] when the file cannot be read,
/// [`FormulaError::NotUtf8`] when it is not UTF-8;
/// [`FormulaError::Invalid`] with every problem when it has errors.
pub fn load(path: &Path) -> Result<LoadedFormula, FormulaError> {
    let text = read_formula_text(path)?;
    parse_source(path, text)
}

/// Checks `text` as the formula file `path` (which is not read).
///
/// # Errors
/// As [`load`], but never [`FormulaError::Read`].
pub fn parse_source(path: &Path, text: String) -> Result<LoadedFormula, FormulaError> {
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: PathBuf::from("."),
        purpose: Purpose::Authoring,
    };
    check_source(path, text, &options)
        .into_ready()
        .map(|(ready, _warnings)| ready.loaded)
}
