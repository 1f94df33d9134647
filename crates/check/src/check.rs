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

use toml::de::{DeTable, DeValue};

use retort_decide::ruleset::RuleSet;
use retort_formula::dag::StepDag;
use retort_formula::diagnostic::{
    FormulaError, InvalidFormula, NOT_IN_CONTEXT, Problem, SourceFile, span,
};
use retort_formula::document;
use retort_formula::formula::{Backend, Formula, LoadedFormula, PARALLEL_STEPS, formula_shape};
use retort_formula::shape::{Shape, closest};
use retort_formula::stand_in;
use retort_formula::structure;
use retort_formula::template::{self, StringSource};
use retort_prompt::prompt::{agent_command_shape, context_names, description_shape};

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
    checked.problems = syntax_errors.iter().map(toml_problem).collect();
    // A syntax error inside a value leaves the rest of the document as
    // the file says it, so the later stages still run; only their problems
    // inside such a value are left out. A syntax error between values (a
    // header or a key the parser could not read) may have lost any part of
    // the document, so the check stops there.
    let mut unreliable = Vec::new();
    if !syntax_errors.is_empty() {
        let values = leaf_spans(&document);
        for error in &syntax_errors {
            let at = error.span().map_or(0, |s| s.start);
            match values
                .iter()
                .find(|v| v.start <= at && at < v.end.max(v.start + 1))
            {
                Some(value) => unreliable.push(value.clone()),
                None => return sorted(checked),
            }
        }
    }
    let found_by_parser = checked.problems.len();
    let structure = structure::check(&document, formula_shape());
    checked.problems.extend(structure.problems);
    // Later stages see the document without the keys reported above, and
    // with a stand-in for each required key that is missing (their own
    // problems at a stand-in are left out: the missing key is reported).
    structure::repair(&mut document, &structure.repairs);
    let found_by_structure = checked.problems.len();
    let stand_ins = match structure.complete {
        true => Vec::new(),
        false => stand_in::fill(&mut document, formula_shape()),
    };
    let var_spans = key_spans(&document, "vars");
    let plain = plain_text_spans(&document);
    let formula = match Formula::from_document(document) {
        Ok(formula) => formula,
        Err(error) => {
            checked.problems.push(value_problem(&error));
            return sorted(checked);
        }
    };
    checked
        .problems
        .extend(plain_text_problems(&formula, &plain, text));
    checked.problems.extend(var_name_problems(&var_spans));

    let names = Names::of(&formula);
    let (dag, (template_problems, mut used)) = dag_and_templates(&formula, text, &names);
    match dag {
        Ok(dag) => checked.dag = Some(dag),
        Err(problems) => checked.problems.extend(problems),
    }
    let (vars, var_problems) = resolve_vars(&formula, &var_spans, options);
    checked.vars = vars;
    checked.problems.extend(var_problems);
    checked.problems.extend(template_problems);
    let inspected = RuleSet::inspect(&formula, text);
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
    // What the parser could not read, and the stand-ins, would only give
    // false problems of their own.
    let mut index = 0;
    checked.problems.retain(|problem| {
        index += 1;
        let Some(at) = problem.primary_span().map(|s| s.offset()) else {
            return true;
        };
        let parsed = index <= found_by_parser;
        let in_unreliable = unreliable.iter().any(|v| v.contains(&at));
        let at_stand_in = index > found_by_structure && stand_ins.contains(&at);
        parsed || !(in_unreliable || at_stand_in)
    });
    checked.formula = Some(formula);
    sorted(checked)
}

/// The byte spans of every value in `document` that is not a table (an
/// array of tables is looked into, other arrays are one value).
fn leaf_spans(document: &toml::Spanned<DeTable<'_>>) -> Vec<Range<usize>> {
    fn walk(value: &toml::Spanned<DeValue<'_>>, out: &mut Vec<Range<usize>>) {
        match value.get_ref() {
            DeValue::Table(table) => table.values().for_each(|v| walk(v, out)),
            DeValue::Array(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|i| matches!(i.get_ref(), DeValue::Table(_))) =>
            {
                items.iter().for_each(|v| walk(v, out));
            }
            _ => out.push(value.span()),
        }
    }
    let mut out = Vec::new();
    for value in document.get_ref().values() {
        walk(value, &mut out);
    }
    out
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

/// The span of each key of the top-level table `table` (`[vars]`,
/// `[meta]`), which the typed model does not keep.
fn key_spans(document: &toml::Spanned<DeTable<'_>>, table: &str) -> BTreeMap<String, Range<usize>> {
    document
        .get_ref()
        .get(table)
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

/// The names templates may use besides their context's own: the
/// declared vars (at the top level as well as under `vars`) and the keys
/// of `[meta]`.
struct Names<'a> {
    vars: Vec<&'a str>,
    meta: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn of(formula: &'a Formula) -> Self {
        Names {
            vars: formula.vars.keys().map(String::as_str).collect(),
            meta: formula.meta.keys().map(String::as_str).collect(),
        }
    }
}

/// Checks the descriptions of `formula.steps[steps]`; returns their
/// problems and the var names they use.
fn check_descriptions(
    formula: &Formula,
    text: &str,
    steps: Range<usize>,
    names: &Names<'_>,
) -> Templates {
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
                step: Some(step.id()),
            },
            text,
            names,
            &mut problems,
            &mut used,
        );
    }
    (problems, used)
}

/// Checks the `[agent] command` template, if the formula has one; returns
/// its problems and the var names it uses.
fn check_agent_command(formula: &Formula, text: &str, names: &Names<'_>) -> Templates {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    if let Some(command) = &formula.agent.command {
        check_template(
            &TemplateSite {
                place: "`[agent] command`",
                value: command.get_ref(),
                span: command.span(),
                shape: agent_command_shape(),
                syntax_help: "the agent command is a Tera template over `model`, `formula`, `vars` (each var also by its own name) and `meta`",
                step: None,
            },
            text,
            names,
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
fn dag_and_templates(
    formula: &Formula,
    text: &str,
    names: &Names<'_>,
) -> (Result<StepDag, Vec<Problem>>, Templates) {
    let threads = match formula.steps.len() >= PARALLEL_STEPS {
        true => retort_formula::cores::count(),
        false => 1,
    };
    dag_and_templates_on(formula, text, names, threads)
}

/// [`dag_and_templates`] on `threads` threads.
fn dag_and_templates_on(
    formula: &Formula,
    text: &str,
    names: &Names<'_>,
    threads: usize,
) -> (Result<StepDag, Vec<Problem>>, Templates) {
    let count = formula.steps.len();
    // The agent command's problems come after the descriptions', however
    // many threads checked those.
    let command = check_agent_command(formula, text, names);
    if threads < 2 {
        let (mut problems, mut used) = check_descriptions(formula, text, 0..count, names);
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
            done.push((batch, check_descriptions(formula, text, steps, names)));
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
    /// The step whose description it is, which `raw = true` could apply to.
    step: Option<&'a str>,
}

fn check_template(
    site: &TemplateSite<'_>,
    text: &str,
    names: &Names<'_>,
    problems: &mut Vec<Problem>,
    used: &mut BTreeSet<String>,
) {
    let map = StringSource::new(text, site.span.clone(), site.value);
    let checked = template::check_paths(site.value, |path| resolve_in(path, site, names));
    let checked = match checked {
        Ok(checked) => checked,
        Err(error) => {
            let at = map.offset(error.offset);
            problems.push(Problem::TemplateSyntax {
                place: site.place.to_string(),
                message: error.message,
                span: span(at..at),
                help: syntax_help(site),
            });
            return;
        }
    };
    for path in &checked.paths {
        let root = path.root();
        if root == "vars"
            && let Some(template::Segment::Field(name)) = path.segments.get(1)
        {
            used.insert(name.clone());
        } else if names.vars.contains(&root) && !in_context(site.shape, root) {
            used.insert(root.to_string());
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

/// Whether `name` is a top-level name of the context `shape`.
fn in_context(shape: &Shape, name: &str) -> bool {
    shape.keys(shape.root()).contains(&name)
}

/// Checks `path` against the site's context, the declared vars (which
/// are at the top level too, as text) and the `[meta]` keys.
fn resolve_in(
    path: &template::VariablePath,
    site: &TemplateSite<'_>,
    names: &Names<'_>,
) -> Option<template::PathError> {
    let root = path.root();
    let template = site.value;
    if !in_context(site.shape, root) && names.vars.contains(&root) {
        return template::resolve_leaf(path, "a var, whose value is text,", template);
    }
    if root == "meta" && in_context(site.shape, root) {
        return resolve_meta(path, &names.meta, template);
    }
    let mut error = template::resolve(path, site.shape, &names.vars, template)?;
    if error.range == path.prefix(1) {
        // An unknown name at the top: a misspelt var, or an undeclared one.
        let context = site.shape.keys(site.shape.root());
        let known = context.iter().chain(names.vars.iter()).copied();
        error.help = match closest(root, known) {
            Some(guess) => format!("did you mean `{guess}`?"),
            None => format!(
                "declare it in [vars] ({root} = \"default\") to pass it a value; the other names here are: {}",
                context.join(", ")
            ),
        };
    }
    Some(error)
}

/// Checks the `KEY` of a `meta.KEY` path against the keys of `[meta]`;
/// what follows is any value the formula gave, not checked.
fn resolve_meta(
    path: &template::VariablePath,
    keys: &[&str],
    template: &str,
) -> Option<template::PathError> {
    let Some(template::Segment::Field(name)) = path.segments.get(1) else {
        return None;
    };
    if keys.contains(&name.as_str()) {
        return None;
    }
    let help = match closest(name, keys.iter().copied()) {
        Some(guess) => format!("did you mean `meta.{guess}`?"),
        None => format!("add it to the formula's [meta] table: {name} = \"…\""),
    };
    let range = path.prefix(2);
    Some(template::PathError {
        text: template.get(range.clone()).unwrap_or_default().to_string(),
        range,
        help,
    })
}

/// The help for a template that does not parse: what its braces look like
/// they were written for, and how to keep them.
fn syntax_help(site: &TemplateSite<'_>) -> String {
    if let Some(tag) = handlebars_tag(site.value) {
        return format!(
            "`{tag}` is Handlebars, not Tera: a loop is {{% for item in items %}}…{{% endfor %}}, a condition {{% if x %}}…{{% endif %}}, a variable {{{{ x }}}}"
        );
    }
    if let Some(tag) = go_template_tag(site.value) {
        let verbatim = match site.step {
            Some(step) => format!(
                "set `raw = true` in step `{step}` (or at the top of the formula for every step) to pass the description verbatim, or keep Tera for the rest and write "
            ),
            None => "write ".to_string(),
        };
        return format!(
            "`{tag}` is a Go template (as `docker --format` takes), not Tera: {verbatim}{{% raw %}}{tag}{{% endraw %}}"
        );
    }
    site.syntax_help.to_string()
}

/// The first Handlebars block tag in `template` (`{{#each x}}`,
/// `{{/if}}`, `{{else}}`, `{{> partial}}`), if any.
fn handlebars_tag(template: &str) -> Option<&str> {
    tags(template).find(|tag| {
        let inside = tag[2..].trim_start_matches('~').trim_start();
        inside.starts_with(['#', '/', '>']) || inside.starts_with("else}}")
    })
}

/// The first Go-template tag in `template` (`{{.Names}}`, `{{json .}}`,
/// `{{ range .Items }}`), if any.
fn go_template_tag(template: &str) -> Option<&str> {
    const GO_FUNCTIONS: &[&str] = &[
        "json", "printf", "print", "range", "index", "len", "with", "define", "template", "end",
        "upper", "lower", "title", "table", "join", "split", "pad", "truncate",
    ];
    tags(template).find(|tag| {
        let inside = tag[2..tag.len() - 2].trim_start_matches('-').trim();
        let word = inside.split([' ', '.']).next().unwrap_or("");
        inside.starts_with('.')
            || (GO_FUNCTIONS.contains(&word)
                && (inside.len() == word.len() || inside[word.len()..].contains('.')))
    })
}

/// Every `{{ … }}` in `template`, as written.
fn tags(template: &str) -> impl Iterator<Item = &str> {
    template.match_indices("{{").filter_map(move |(at, _)| {
        let end = template[at + 2..].find("}}")?;
        template.get(at..at + 2 + end + 2)
    })
}

/// The place, span and value of each string that is shown but is not a
/// template (the formula's `description`, each step's `title`), with the
/// index of its step.
fn plain_text_spans(document: &toml::Spanned<DeTable<'_>>) -> Vec<PlainText> {
    let root = document.get_ref();
    let mut out = Vec::new();
    if let Some(description) = root.get("description")
        && let Some(value) = description.get_ref().as_str()
    {
        out.push(PlainText {
            place: "the formula's description".to_string(),
            span: description.span(),
            value: value.to_string(),
            step: None,
        });
    }
    let steps = root
        .get("steps")
        .and_then(|steps| steps.get_ref().as_array());
    for (index, step) in steps.into_iter().flatten().enumerate() {
        let Some(table) = step.get_ref().as_table() else {
            continue;
        };
        if let Some(title) = table.get("title")
            && let Some(value) = title.get_ref().as_str()
        {
            let id = table
                .get("id")
                .and_then(|id| id.get_ref().as_str())
                .unwrap_or("?");
            out.push(PlainText {
                place: format!("the title of step `{id}`"),
                span: title.span(),
                value: value.to_string(),
                step: Some(index),
            });
        }
    }
    out
}

/// A string shown as written (see [`plain_text_spans`]).
struct PlainText {
    place: String,
    span: Range<usize>,
    value: String,
    step: Option<usize>,
}

/// A warning for each title or formula description with template syntax
/// (unless `raw` says its braces are meant).
fn plain_text_problems(formula: &Formula, plain: &[PlainText], text: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for item in plain {
        let raw = match item.step.and_then(|index| formula.steps.get(index)) {
            Some(step) => !step.is_template(formula.raw),
            None => formula.raw,
        };
        if raw || !template::has_syntax(&item.value) {
            continue;
        }
        let first = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|open| item.value.find(open))
            .min()
            .unwrap_or(0);
        let at = StringSource::new(text, item.span.clone(), &item.value).offset(first);
        let what = match item.step {
            Some(_) => "a step's title",
            None => "the formula's description",
        };
        // Titles name steps in the journal, progress lines and `retort
        // graph`; the description opens the first prompt and the journal.
        problems.push(Problem::NotATemplate {
            place: item.place.clone(),
            span: span(at..at + 2),
            help: format!(
                "{what} is not a template (it is also shown where there is no run to render it with, such as the journal and `retort graph`); put the `{{{{ … }}}}` in a step's description, or set `raw = true` if the braces are meant literally"
            ),
        });
    }
    problems
}

/// An error for each declared var whose name the template context
/// already has (see `retort_prompt::prompt::context_names`).
fn var_name_problems(var_spans: &BTreeMap<String, Range<usize>>) -> Vec<Problem> {
    let taken = context_names();
    var_spans
        .iter()
        .filter(|(name, _)| taken.binary_search(name).is_ok())
        .map(|(name, place)| Problem::VarNameTaken {
            name: name.clone(),
            span: span(place.clone()),
            help: format!(
                "templates see each var at the top level too (`{{{{ NAME }}}}`), where `{name}` is retort's own; rename the var, e.g. `{name}_value`"
            ),
        })
        .collect()
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
        let names = Names::of(&formula);
        let one = format!("{:?}", dag_and_templates_on(&formula, &text, &names, 1));
        assert!(one.contains("memroy") && one.contains("SelfNeed"), "{one}");
        assert!(one.contains("modle"), "{one}");
        for threads in [2, 3, 5] {
            let several = format!(
                "{:?}",
                dag_and_templates_on(&formula, &text, &names, threads)
            );
            assert_eq!(several, one, "{threads} threads");
        }
    }
}
