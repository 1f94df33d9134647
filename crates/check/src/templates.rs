//! The template part of the check: every step's description and the
//! agent command parsed with Tera and their variable paths checked against
//! the prompt context's shape, the declared vars (at the top level too) and
//! the `[meta]` keys, on every core for large formulas; hints for braces
//! written for another template language (Go, Handlebars); warnings for
//! titles and the formula's description with template syntax, which are
//! shown verbatim; and var names the context already has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::LazyLock;

use toml::de::DeTable;

use retort_decide::condition::{ancestors_of, needs_map, not_an_ancestor_help};
use retort_formula::dag::StepDag;
use retort_formula::diagnostic::{NOT_IN_CONTEXT, Problem, span};
use retort_formula::formula::{Formula, PARALLEL_STEPS};
use retort_formula::shape::{Shape, closest};
use retort_formula::template::{self, StringSource};
use retort_prompt::prompt::{agent_command_shape, context_names, description_shape};

/// The names templates may use besides their context's own: the
/// declared vars (at the top level as well as under `vars`) and the keys
/// of `[meta]`.
pub(crate) struct Names<'a> {
    vars: Vec<&'a str>,
    meta: Vec<&'a str>,
    formula: &'a Formula,
    /// Each step's `needs`, read once a template uses `steps.ID`.
    needs: std::sync::OnceLock<HashMap<&'a str, Vec<&'a str>>>,
}

impl<'a> Names<'a> {
    pub(crate) fn of(formula: &'a Formula) -> Self {
        Names {
            vars: formula.vars.keys().map(String::as_str).collect(),
            meta: formula.meta.keys().map(String::as_str).collect(),
            formula,
            needs: std::sync::OnceLock::new(),
        }
    }

    /// The ancestors of step `id`, by id.
    fn ancestors(&self, id: &str) -> BTreeSet<&'a str> {
        let needs = self.needs.get_or_init(|| needs_map(self.formula));
        ancestors_of(needs, id)
    }
}

/// Checks the descriptions of `formula.steps[steps]`; returns their
/// problems and the var names they use.
pub(crate) fn check_descriptions(
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
pub(crate) fn check_agent_command(formula: &Formula, text: &str, names: &Names<'_>) -> Templates {
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
pub(crate) fn dag_and_templates(
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
pub(crate) fn dag_and_templates_on(
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
    shape: &'static Shape,
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
fn in_context(shape: &'static Shape, name: &str) -> bool {
    root_names(shape).contains(&name)
}

/// The top-level names of `shape` (one of the two template contexts),
/// listed once.
fn root_names(shape: &'static Shape) -> &'static [&'static str] {
    static DESCRIPTION: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| description_shape().keys(description_shape().root()));
    static AGENT: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| agent_command_shape().keys(agent_command_shape().root()));
    if std::ptr::eq(shape, description_shape()) {
        &DESCRIPTION
    } else if std::ptr::eq(shape, agent_command_shape()) {
        &AGENT
    } else {
        &[]
    }
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
    if root == "steps"
        && in_context(site.shape, root)
        && let Some(step) = site.step
        && let Some(template::Segment::Field(other)) = path.segments.get(1)
    {
        let ancestors = names.ancestors(step);
        if !ancestors.contains(other.as_str()) {
            let range = path.prefix(2);
            let help = match names.formula.step(other) {
                Some(_) => not_an_ancestor_help(step, other, &ancestors),
                None => {
                    let known = ancestors.iter().copied();
                    match closest(other, known) {
                        Some(guess) => format!("did you mean `steps.{guess}`?"),
                        None if ancestors.is_empty() => format!(
                            "`{step}` has no ancestors: `steps` holds the steps it needs, directly or not"
                        ),
                        None => format!(
                            "the ancestors of `{step}` are: {}",
                            ancestors.iter().copied().collect::<Vec<_>>().join(", ")
                        ),
                    }
                }
            };
            return Some(template::PathError {
                text: template.get(range.clone()).unwrap_or_default().to_string(),
                range,
                help,
            });
        }
    }
    let mut error = template::resolve(path, site.shape, &names.vars, template)?;
    if error.range == path.prefix(1) {
        // An unknown name at the top: a misspelt var, or an undeclared one.
        let context = root_names(site.shape);
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
        let list = tag
            .trim_start_matches(['{', '~', ' '])
            .strip_prefix("#each")
            .map(|rest| rest.trim_end_matches(['}', '~', ' ']).trim())
            .filter(|list| !list.is_empty())
            .unwrap_or("items");
        return format!(
            "`{tag}` is Handlebars, not Tera: a loop is {{% for item in {list} %}}…{{{{ item }}}}…{{% endfor %}}, a condition {{% if x %}}…{{% endif %}}, a variable {{{{ x }}}}"
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
pub(crate) fn plain_text_spans(document: &toml::Spanned<DeTable<'_>>) -> Vec<PlainText> {
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
pub(crate) struct PlainText {
    place: String,
    span: Range<usize>,
    value: String,
    step: Option<usize>,
}

/// A warning for each title or formula description with template syntax
/// (unless `raw` says its braces are meant).
pub(crate) fn plain_text_problems(
    formula: &Formula,
    plain: &[PlainText],
    text: &str,
) -> Vec<Problem> {
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
pub(crate) fn var_name_problems(var_spans: &BTreeMap<String, Range<usize>>) -> Vec<Problem> {
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
