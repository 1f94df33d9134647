//! The formula checker: every problem of a formula file in one pass, each
//! located in the file. `retort check` prints them all; `run` and `render`
//! refuse a formula with errors and print its warnings.
//!
//! The stages, each on what the one before produced:
//! 1. TOML, parsed with error recovery ([`retort_formula::document`]): every syntax
//!    error.
//! 2. Structure, against the formula's JSON Schema ([`retort_formula::structure`]):
//!    every unknown key (with the likely intended one), wrong type and
//!    missing key.
//! 3. Values, through serde into the typed [`Formula`]: durations and the
//!    like.
//! 4. The step DAG ([`StepDag`]): ids, `needs`, every cycle.
//! 5. Templates ([`retort_formula::template`]): Tera syntax and variable paths of
//!    every description and of the agent command.
//! 6. Rules and actions ([`RuleSet`]): CEL syntax, names the snapshot (or
//!    `[vars]`) does not have, unknown actions, message and command
//!    template syntax, and the variable paths of messages and of each
//!    action's `run` elements (against every rule that names the action).
//! 7. Vars and context files: `--var` names, required vars, unused vars
//!    (a var a rule, its message or an action's `run` reads is used),
//!    missing context files.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::DeTable;

use retort_decide::ruleset::RuleSet;
use retort_formula::dag::StepDag;
use retort_formula::diagnostic::{
    FormulaError, InvalidFormula, NOT_IN_CONTEXT, Problem, SourceFile, span,
};
use retort_formula::document;
use retort_formula::formula::{Backend, Formula, LoadedFormula, PARALLEL_STEPS, formula_shape};
use retort_formula::shape::{Shape, closest};
use retort_formula::structure;
use retort_formula::template::{self, StringSource};
use retort_prompt::prompt::{agent_command_shape, description_shape};

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

/// Reads and checks the formula at `path`.
///
/// # Errors
/// [`FormulaError::Read`] when the file cannot be read; every other
/// problem is in the [`Checked`].
pub fn check_file(path: &Path, options: &CheckOptions) -> Result<Checked, FormulaError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormulaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(check_source(path, text, options))
}

/// Checks `text` as the formula file `path`. Never panics, whatever `text` holds.
pub fn check_source(path: &Path, text: String, options: &CheckOptions) -> Checked {
    begin(path, text, options).finish()
}

/// A formula checked up to its typed value (stages 1–3, vars and the
/// settings of `[agent]`): [`Begun::finish`] checks the DAG, the templates,
/// the rules and actions (stages 4–6; compiling the rules' CEL is the
/// costly part of a small formula's check) and what depends on them
/// (unused vars). A run starts its preflight between the two, as soon as
/// the formula says what to collect, and finishes the check beside it.
#[derive(Debug)]
pub struct Begun {
    checked: Checked,
    /// The typed formula, when the file got that far.
    formula: Option<Formula>,
    /// Where each `[vars]` entry is.
    var_spans: BTreeMap<String, Range<usize>>,
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

    /// Checks the DAG, the templates, the rules and actions, then the vars
    /// no template or rule uses: the whole check, as [`check_source`]
    /// returns it.
    pub fn finish(self) -> Checked {
        let Begun {
            mut checked,
            formula,
            var_spans,
        } = self;
        let Some(formula) = formula else {
            return sorted(checked);
        };
        let (dag, (template_problems, mut used)) =
            dag_and_templates(&formula, checked.source.text());
        match dag {
            Ok(dag) => checked.dag = Some(dag),
            Err(problems) => checked.problems.extend(problems),
        }
        checked.problems.extend(template_problems);
        let inspected = RuleSet::inspect(&formula, checked.source.text());
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

    let (mut document, syntax_errors) = document::parse(text);
    if !syntax_errors.is_empty() {
        checked.problems = syntax_errors.iter().map(toml_problem).collect();
        return Begun::stopped(checked);
    }
    let structure = structure::check(&document, formula_shape());
    checked.problems = structure.problems;
    if !structure.complete {
        return Begun::stopped(checked);
    }
    // Later stages see the document without the keys reported above.
    structure::repair(&mut document, &structure.repairs);
    let var_spans = var_spans(&document);
    let formula = match Formula::from_document(document) {
        Ok(formula) => formula,
        Err(error) => {
            checked.problems.push(value_problem(&error));
            return Begun::stopped(checked);
        }
    };

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
    }
}

impl Begun {
    /// A check that stopped before the typed formula.
    fn stopped(checked: Checked) -> Begun {
        Begun {
            checked,
            formula: None,
            var_spans: BTreeMap::new(),
        }
    }
}

fn sorted(mut checked: Checked) -> Checked {
    checked
        .problems
        .sort_by_key(|p| p.primary_span().map_or(0, |s| s.offset()));
    checked
}

fn toml_problem(error: &toml::de::Error) -> Problem {
    let message = error.message().trim().to_string();
    let help = if message.contains("escape") {
        Some(
            "TOML basic strings (\"...\", \"\"\"...\"\"\") allow only the escapes \\\\ \\\" \\n \\t \\r \\b \\f \\e \\uXXXX \\UXXXXXXXX \\xHH; double the backslash (\\\\), or use a literal string '''...''' where backslashes are plain text"
                .to_string(),
        )
    } else {
        None
    };
    Problem::Toml {
        message,
        span: span(error.span().unwrap_or(0..0)),
        help,
    }
}

fn value_problem(error: &toml::de::Error) -> Problem {
    Problem::BadValue {
        message: error.message().trim().to_string(),
        span: span(error.span().unwrap_or(0..0)),
        help: None,
    }
}

/// The span of each `[vars]` key, which the typed model does not keep.
fn var_spans(document: &toml::Spanned<DeTable<'_>>) -> BTreeMap<String, Range<usize>> {
    document
        .get_ref()
        .get("vars")
        .and_then(|vars| vars.get_ref().as_table())
        .map(|table| {
            table
                .iter()
                .map(|(key, _)| (key.get_ref().to_string(), key.span()))
                .collect()
        })
        .unwrap_or_default()
}

fn resolve_vars(
    formula: &Formula,
    var_spans: &BTreeMap<String, Range<usize>>,
    options: &CheckOptions,
) -> (BTreeMap<String, String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let declared: Vec<&str> = formula.vars.keys().map(String::as_str).collect();
    for name in options.vars.keys() {
        if !formula.vars.contains_key(name) {
            let help = match closest(name, declared.iter().copied()) {
                Some(guess) => format!("did you mean --var {guess}=…?"),
                None if declared.is_empty() => {
                    format!("declare it in the formula: [vars] {name} = \"default\"")
                }
                None => format!("the formula declares: {}", declared.join(", ")),
            };
            problems.push(Problem::BadValue {
                message: format!("--var {name}: the formula declares no var `{name}`"),
                span: span(var_spans.values().next().cloned().unwrap_or(0..0)),
                help: Some(help),
            });
        }
    }
    let mut values = BTreeMap::new();
    for (name, declaration) in &formula.vars {
        let place = span(var_spans.get(name).cloned().unwrap_or(0..0));
        let value = options
            .vars
            .get(name)
            .cloned()
            .or_else(|| declaration.default_value());
        match value {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None => {
                if declaration.required() {
                    problems.push(match options.purpose {
                        Purpose::Run => Problem::RequiredVarUnset {
                            name: name.clone(),
                            span: place,
                        },
                        Purpose::Authoring => Problem::RequiredVarNotGiven {
                            name: name.clone(),
                            span: place,
                        },
                    });
                }
                values.insert(name.clone(), String::new());
            }
        }
    }
    (values, problems)
}

/// Checks the descriptions of `formula.steps[steps]`; returns their
/// problems and the var names they use.
fn check_descriptions(formula: &Formula, text: &str, steps: Range<usize>) -> Templates {
    let declared: Vec<&str> = formula.vars.keys().map(String::as_str).collect();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for step in formula.steps.get(steps).unwrap_or(&[]) {
        if !step.is_template(formula.raw) || !template::has_syntax(step.description.get_ref()) {
            continue;
        }
        let place = format!("the description of step `{}`", step.id());
        let raw_help = format!(
            "if these braces are meant literally (Go templates such as {{{{.Names}}}}, other template languages), set `raw = true` in step `{}`, or at the top of the formula for every step",
            step.id()
        );
        check_template(
            &TemplateSite {
                place: &place,
                value: step.description.get_ref(),
                span: step.description.span(),
                shape: description_shape(),
                syntax_help: &raw_help,
            },
            text,
            &declared,
            &mut problems,
            &mut used,
        );
    }
    (problems, used)
}

/// Checks the `[agent] command` template, if the formula has one; returns
/// its problems and the var names it uses.
fn check_agent_command(formula: &Formula, text: &str) -> Templates {
    let declared: Vec<&str> = formula.vars.keys().map(String::as_str).collect();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    if let Some(command) = &formula.agent.command {
        check_template(
            &TemplateSite {
                place: "`[agent] command`",
                value: command.get_ref(),
                span: command.span(),
                shape: agent_command_shape(),
                syntax_help: "the agent command is a Tera template over `model`, `formula` and `vars`",
            },
            text,
            &declared,
            &mut problems,
            &mut used,
        );
    }
    (problems, used)
}

/// Template problems, and the var names the templates use.
type Templates = (Vec<Problem>, BTreeSet<String>);

/// How many steps' templates a thread takes at a time.
const TEMPLATE_BATCH: usize = 64;

/// The DAG check and the template checks, which are independent. For
/// formulas of [`PARALLEL_STEPS`] steps or more, on every core: one thread
/// checks the DAG first, and all take batches of steps' descriptions from a
/// shared counter until none are left, so that the work evens out whatever
/// the share of templates.
fn dag_and_templates(formula: &Formula, text: &str) -> (Result<StepDag, Vec<Problem>>, Templates) {
    let threads = match formula.steps.len() >= PARALLEL_STEPS {
        true => retort_formula::cores::count(),
        false => 1,
    };
    dag_and_templates_on(formula, text, threads)
}

/// [`dag_and_templates`] on `threads` threads.
fn dag_and_templates_on(
    formula: &Formula,
    text: &str,
    threads: usize,
) -> (Result<StepDag, Vec<Problem>>, Templates) {
    let count = formula.steps.len();
    // The agent command's problems come after the descriptions', however
    // many threads checked those.
    let command = check_agent_command(formula, text);
    if threads < 2 {
        let (mut problems, mut used) = check_descriptions(formula, text, 0..count);
        problems.extend(command.0);
        used.extend(command.1);
        return (StepDag::check(formula), (problems, used));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let batches = || {
        let mut done = Vec::new();
        loop {
            let batch = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let start = batch * TEMPLATE_BATCH;
            if start >= count {
                return done;
            }
            let steps = start..(start + TEMPLATE_BATCH).min(count);
            done.push((batch, check_descriptions(formula, text, steps)));
        }
    };
    let (dag, mut done) = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(batches)).collect();
        let dag = StepDag::check(formula);
        let mut done = batches();
        for other in others {
            done.extend(retort_formula::cores::join(other));
        }
        (dag, done)
    });
    // In step order, whichever thread checked them.
    done.sort_unstable_by_key(|(batch, _)| *batch);
    let (mut problems, mut used) = (Vec::new(), BTreeSet::new());
    for (_, (batch_problems, batch_used)) in done {
        problems.extend(batch_problems);
        used.extend(batch_used);
    }
    problems.extend(command.0);
    used.extend(command.1);
    (dag, (problems, used))
}

struct TemplateSite<'a> {
    place: &'a str,
    value: &'a str,
    span: Range<usize>,
    shape: &'a Shape,
    syntax_help: &'a str,
}

fn check_template(
    site: &TemplateSite<'_>,
    text: &str,
    declared: &[&str],
    problems: &mut Vec<Problem>,
    used: &mut BTreeSet<String>,
) {
    let map = StringSource::new(text, site.span.clone(), site.value);
    let checked = template::check_paths(site.value, |path| {
        template::resolve(path, site.shape, declared, site.value)
    });
    let checked = match checked {
        Ok(checked) => checked,
        Err(error) => {
            let at = map.offset(error.offset);
            problems.push(Problem::TemplateSyntax {
                place: site.place.to_string(),
                message: error.message,
                span: span(at..at),
                help: site.syntax_help.to_string(),
            });
            return;
        }
    };
    for path in &checked.paths {
        if path.root() == "vars"
            && let Some(template::Segment::Field(name)) = path.segments.get(1)
        {
            used.insert(name.clone());
        }
    }
    for error in checked.errors {
        problems.push(Problem::UnknownVariable {
            place: site.place.to_string(),
            path: error.text,
            reason: NOT_IN_CONTEXT.to_string(),
            span: span(map.range(error.range)),
            help: error.help,
        });
    }
}

/// Reads and checks the formula at `path` (as `retort check` does, with no
/// `--var`s), returning it when it has no errors.
///
/// # Errors
/// [`FormulaError::Read`] when the file cannot be read or is not UTF-8;
/// [`FormulaError::Invalid`] with every problem when it has errors.
pub fn load(path: &Path) -> Result<LoadedFormula, FormulaError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormulaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_checked_on_several_threads_are_checked_as_on_one() {
        let mut text = String::from(
            "name = \"n\"\n[vars]\nA = \"1\"\n[agent]\ncommand = \"agent {{ modle }}\"\n",
        );
        for i in 0..300 {
            let description = match i % 4 {
                0 => "{{ vars.A }}",
                1 => "{{ preflight.system.memroy }}",
                2 => "{{ vars.B }} {% if %}",
                _ => "plain",
            };
            text.push_str(&format!(
                "[[steps]]\nid = \"s{i}\"\ndescription = \"{description}\"\nneeds = [\"s{}\"]\n",
                i / 2
            ));
        }
        let (document, _) = DeTable::parse_recoverable(&text);
        let formula = Formula::from_document(document).expect("a formula");
        let one = format!("{:?}", dag_and_templates_on(&formula, &text, 1));
        assert!(one.contains("memroy") && one.contains("SelfNeed"), "{one}");
        assert!(one.contains("modle"), "{one}");
        for threads in [2, 3, 5] {
            let several = format!("{:?}", dag_and_templates_on(&formula, &text, threads));
            assert_eq!(several, one, "{threads} threads");
        }
    }
}
