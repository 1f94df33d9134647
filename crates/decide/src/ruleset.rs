//! A formula's rules and actions, checked and compiled: [`RuleSet::check`]
//! reports every problem at once, located in the formula file;
//! [`RuleSet::evaluate`] runs the rules against a snapshot.
//!
//! Checking compiles each CEL expression (`when`, `each`, `label`) and
//! checks the names it uses against the snapshot's shape, read from the
//! snapshot's JSON Schema ([`snapshot_shape`]), so sections that preflight
//! gains are known to rules without changes here. Templates (`message`,
//! each `run` element) are parsed by Tera, and their variable paths are
//! checked ([`template::check_paths`]) against what they are rendered with.
//! A `message`: the same names as the expressions, `item` being an element
//! of the list `each` gives, plus `label`. A `run` element: the names the
//! message of the rule whose finding triggers the action sees, plus
//! `finding` ([`FindingContext`]); it is checked against every rule that
//! names the action, and a path wrong for one of them is reported once,
//! naming that rule. They are reported as step descriptions' are,
//! [`Problem::UnknownVariable`].
//!
//! Evaluating gives CEL the snapshot's top-level sections as variables
//! (`system`, `tmux`, …), plus `vars` (a map of strings), `now` (the
//! snapshot's `collected_at`, a timestamp) and, per list item, `item`. A
//! rule that reads the figures of a section that was not collected (its
//! `status` is not `ok`) is not evaluated: its findings stay as they were.
//! A rule whose expression fails (a type mismatch, a missing key) is
//! reported and likewise left as it was; no error stops the other rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tera::Tera;

use retort_preflight::Snapshot;

use crate::action::{CommandSpec, FindingContext, finding_shape};
use crate::cel_value::{cel_to_json, snapshot_shape, to_cel};
use crate::expression::Ty;
use crate::expression::{Expression, ExpressionIssue, IssueKind, suggest};
use crate::finding::Finding;
use retort_formula::action::{Action, ActionMode};
use retort_formula::diagnostic::{
    FormulaError, InvalidFormula, NOT_IN_CONTEXT, Problem, RuleProblem, span,
};
use retort_formula::formula::{Formula, LoadedFormula};
use retort_formula::gate::GateSection;
use retort_formula::rule::Priority;
use retort_formula::shape::Shape;
use retort_formula::template::{self, PathError, StringSource, VariablePath};

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

/// One match of a rule in a snapshot: a finding-to-be.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Index of the rule in [`Evaluation::rules`].
    pub rule: usize,
    /// `rule` or `rule[label]`.
    pub fingerprint: String,
    /// The item's label.
    pub label: Option<String>,
    /// The rendered message.
    pub message: String,
    /// The list item, as JSON.
    pub item: Option<Json>,
}

/// The rules evaluated against one snapshot.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The time the rules saw: the snapshot's `collected_at`.
    pub at: DateTime<Utc>,
    /// Every rule, in formula order, with how its evaluation went.
    pub rules: Vec<RuleInfo>,
    /// The matches, in rule order then list order.
    pub matches: Vec<Match>,
    /// Messages that could not be rendered, labels given to two items, …
    pub warnings: Vec<String>,
    templates: tera::Context,
}

impl Evaluation {
    /// The rules that were not evaluated or failed, as `ids: why` lines;
    /// rules skipped for the same reason share a line.
    pub fn problems(&self) -> Vec<String> {
        let mut skipped: Vec<(&str, Vec<&str>)> = Vec::new();
        let mut lines = Vec::new();
        for rule in &self.rules {
            match &rule.status {
                RuleStatus::Evaluated => {}
                RuleStatus::Skipped(why) => match skipped.iter_mut().find(|(w, _)| w == why) {
                    Some((_, ids)) => ids.push(&rule.id),
                    None => skipped.push((why, vec![&rule.id])),
                },
                RuleStatus::Failed(why) => lines.push(format!("{}: failed: {why}", rule.id)),
            }
        }
        let mut out: Vec<String> = skipped
            .into_iter()
            .map(|(why, ids)| format!("{}: not evaluated: {why}", ids.join(", ")))
            .collect();
        out.append(&mut lines);
        out
    }
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

    fn inspect_here(formula: &Formula, source: &str) -> Inspected {
        let mut used_vars = BTreeSet::new();
        let mut problems: Vec<(usize, RuleProblem)> = Vec::new();
        // Unknown variables in messages and `run` elements, reported as in
        // step descriptions.
        let mut path_problems: Vec<(usize, Problem)> = Vec::new();
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&str>::new());

        let mut sources: Vec<TemplateSource> = Vec::new();
        let mut action_ids: HashMap<&str, &toml::Spanned<String>> = HashMap::new();
        let mut actions = Vec::new();
        for (index, action) in formula.actions.iter().enumerate() {
            check_id(&action.id, "action", &mut action_ids, &mut problems);
            if action.run.get_ref().is_empty() {
                problems.push((
                    action.run.span().start,
                    RuleProblem::EmptyCommand {
                        action: action.id().to_string(),
                        span: span(action.run.span()),
                    },
                ));
            }
            let mut templates = Vec::new();
            for (k, argument) in action.run.get_ref().iter().enumerate() {
                let name = format!("actions[{index}].run[{k}]");
                sources.push(TemplateSource {
                    name: name.clone(),
                    text: argument.get_ref().clone(),
                    owner: format!("action `{}`", action.id()),
                    key: "run",
                    span: argument.span(),
                });
                templates.push(name);
            }
            actions.push(CompiledAction {
                id: action.id().to_string(),
                mode: action.mode,
                timeout: action.timeout(),
                cooldown: action.cooldown(),
                templates,
            });
        }

        let shape = snapshot_shape();
        let mut roots: BTreeMap<String, Ty> = shape
            .keys(shape.root())
            .into_iter()
            .filter_map(|name| {
                Some((
                    name.to_string(),
                    Ty::Node(shape.property(shape.root(), name)?),
                ))
            })
            .collect();
        roots.insert(
            "vars".to_string(),
            Ty::Vars(formula.vars.keys().cloned().collect()),
        );
        roots.insert("now".to_string(), Ty::Timestamp);

        let mut rule_ids: HashMap<&str, &toml::Spanned<String>> = HashMap::new();
        let mut rules = Vec::new();
        let mut contexts = Vec::new();
        for (index, rule) in formula.rules.iter().enumerate() {
            check_id(&rule.id, "rule", &mut rule_ids, &mut problems);
            let id = rule.id().to_string();
            let mut sections = BTreeSet::new();
            let report = |problems: &mut Vec<(usize, RuleProblem)>,
                          key: &'static str,
                          value: &toml::Spanned<String>,
                          issues: Vec<ExpressionIssue>| {
                for issue in issues {
                    let at = locate(source, value, &issue.range);
                    problems.push((at.start, expression_problem(&id, key, issue, at)));
                }
            };

            let each =
                rule.each
                    .as_ref()
                    .and_then(|each| match Expression::compile(each.get_ref()) {
                        Ok(expression) => {
                            let analysis = expression.check(each.get_ref(), shape, &roots);
                            report(&mut problems, "each", each, analysis.issues);
                            sections.extend(analysis.sections);
                            used_vars.extend(analysis.vars);
                            Some((expression, analysis.ty.unwrap_or(Ty::Any)))
                        }
                        Err(issues) => {
                            report(&mut problems, "each", each, issues);
                            None
                        }
                    });
            let item = match &each {
                Some((_, Ty::ListOf(item))) => Some(item.as_ref().clone()),
                Some((_, Ty::Node(id))) if shape.is_list(*id) => {
                    Some(shape.items(*id).map_or(Ty::Any, Ty::Node))
                }
                Some((_, Ty::Node(id))) if shape.is_any(*id) => Some(Ty::Any),
                Some((_, Ty::Any)) => Some(Ty::Any),
                Some((_, other)) => {
                    if let Some(value) = &rule.each {
                        let kind = match other {
                            Ty::Node(id) => shape.describe(*id),
                            Ty::Vars(_) => "the vars".to_string(),
                            Ty::Timestamp => "a timestamp".to_string(),
                            _ => "a string".to_string(),
                        };
                        problems.push((
                            value.span().start,
                            RuleProblem::EachNotList {
                                rule: id.clone(),
                                kind,
                                span: span(value.span()),
                            },
                        ));
                    }
                    Some(Ty::Any)
                }
                // `each` broken, or `label` without `each` (reported below):
                // check the rest as if the list were there.
                None if rule.each.is_some() || rule.label.is_some() => Some(Ty::Any),
                None => None,
            };
            let mut scope = roots.clone();
            if let Some(item) = &item {
                scope.insert("item".to_string(), item.clone());
            }

            let when = compile_checked(&rule.when, shape, &scope, &mut sections, &mut used_vars)
                .map_err(|issues| report(&mut problems, "when", &rule.when, issues))
                .ok();
            let label = rule.label.as_ref().and_then(|label| {
                compile_checked(label, shape, &scope, &mut sections, &mut used_vars)
                    .map_err(|issues| report(&mut problems, "label", label, issues))
                    .ok()
            });

            match (&rule.each, &rule.label) {
                (Some(each), None) => problems.push((
                    each.span().start,
                    RuleProblem::EachLabel {
                        rule: id.clone(),
                        message: "a rule with `each` needs a `label`",
                        span: span(each.span()),
                        help: "add `label = \"item.name\"` (a CEL expression naming the item), which goes into each finding's fingerprint",
                    },
                )),
                (None, Some(label)) => problems.push((
                    label.span().start,
                    RuleProblem::EachLabel {
                        rule: id.clone(),
                        message: "`label` names the items of `each`, and this rule has no `each`",
                        span: span(label.span()),
                        help: "add `each = \"system.disks\"` (the list to check item by item), or remove `label`",
                    },
                )),
                _ => {}
            }
            if let Some(for_runs) = &rule.for_runs
                && *for_runs.get_ref() == 0
            {
                problems.push((
                    for_runs.span().start,
                    RuleProblem::ZeroFor {
                        rule: id.clone(),
                        span: span(for_runs.span()),
                    },
                ));
            }
            if let Some(action) = &rule.action
                && !formula.actions.iter().any(|a| a.id() == action.get_ref())
            {
                problems.push((
                    action.span().start,
                    RuleProblem::UnknownAction {
                        rule: id.clone(),
                        action: action.get_ref().clone(),
                        span: span(action.span()),
                        help: suggest(
                            action.get_ref(),
                            formula.actions.iter().map(|a| a.id()).collect(),
                            "the actions are",
                        ),
                    },
                ));
            }
            // The message sees what the expressions see, and the item's label.
            if item.is_some() {
                scope.insert("label".to_string(), Ty::String);
            }
            path_problems.extend(check_message(&id, &rule.message, &scope, shape, source));
            let message_template = format!("rules[{index}].message");
            sources.push(TemplateSource {
                name: message_template.clone(),
                text: rule.message.get_ref().clone(),
                owner: format!("rule `{id}`"),
                key: "message",
                span: rule.message.span(),
            });

            if let Some(when) = when {
                rules.push(CompiledRule {
                    report: RuleInfo {
                        id: id.clone(),
                        priority: rule.priority,
                        for_runs: rule.for_runs(),
                        repeat: rule.repeat.as_ref().map(|r| r.get_ref().0),
                        action: rule.action.as_ref().map(|a| a.get_ref().clone()),
                        status: RuleStatus::Evaluated,
                    },
                    when,
                    each: each.map(|(expression, _)| expression),
                    label,
                    sections,
                    message: rule.message.get_ref().clone(),
                    message_template,
                });
            }
            // The `run` of its action sees what the message sees.
            contexts.push(RuleContext {
                id,
                action: rule.action.as_ref().map(|a| a.get_ref().clone()),
                each: rule.each.as_ref().map(|each| shown(each.get_ref())),
                scope,
            });
        }
        for action in &formula.actions {
            path_problems.extend(check_run(action, &contexts, &roots, shape, source));
        }

        add_templates(&mut tera, &sources, &mut problems);
        for source in &sources {
            for path in template::variable_paths(&source.text) {
                if path.root() == "vars"
                    && let Some(template::Segment::Field(name)) = path.segments.get(1)
                {
                    used_vars.insert(name.clone());
                }
            }
        }
        if !problems.is_empty() || !path_problems.is_empty() {
            let mut problems: Vec<(usize, Problem)> = problems
                .into_iter()
                .map(|(at, p)| (at, Problem::Rule(Box::new(p))))
                .chain(path_problems)
                .collect();
            problems.sort_by_key(|(at, _)| *at);
            return Inspected {
                rules: None,
                problems: problems.into_iter().map(|(_, p)| p).collect(),
                used_vars,
            };
        }
        Inspected {
            rules: Some(RuleSet {
                rules,
                actions,
                gate: formula.gate.clone(),
                tera,
            }),
            problems: Vec::new(),
            used_vars,
        }
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

    /// Evaluates every rule against `snapshot`, with `vars` as `vars`.
    ///
    /// CEL's interpreter recurses over each expression's tree, so this runs
    /// on a thread of its own with a [`CHECK_STACK`] stack, whatever the
    /// caller's stack.
    pub fn evaluate(&self, snapshot: &Snapshot, vars: &BTreeMap<String, String>) -> Evaluation {
        std::thread::scope(|scope| {
            let evaluated = std::thread::Builder::new()
                .name("retort-rules".to_string())
                .stack_size(CHECK_STACK)
                .spawn_scoped(scope, || self.evaluate_here(snapshot, vars))
                .ok()
                .and_then(|thread| thread.join().ok());
            evaluated.unwrap_or_else(|| self.evaluate_here(snapshot, vars))
        })
    }

    fn evaluate_here(&self, snapshot: &Snapshot, vars: &BTreeMap<String, String>) -> Evaluation {
        let at = snapshot.collected_at;
        let json = serde_json::to_value(snapshot).unwrap_or(Json::Null);
        let mut context = cel::Context::default();
        let sections = json.as_object();
        let shape = snapshot_shape();
        if let Some(sections) = sections {
            for (name, value) in sections {
                let id = shape.property(shape.root(), name);
                context.add_variable_from_value(name.clone(), to_cel(shape, id, value));
            }
        }
        let cel_vars: HashMap<cel::objects::Key, cel::Value> = vars
            .iter()
            .map(|(k, v)| {
                (
                    cel::objects::Key::String(Arc::new(k.clone())),
                    cel::Value::String(Arc::new(v.clone())),
                )
            })
            .collect();
        context.add_variable_from_value(
            "vars",
            cel::Value::Map(cel::objects::Map {
                map: Arc::new(cel_vars),
            }),
        );
        context.add_variable_from_value("now", cel::Value::Timestamp(at.fixed_offset()));

        let mut templates = tera::Context::from_serialize(&json).unwrap_or_default();
        templates.insert("vars", vars);
        templates.insert("now", &at.to_rfc3339());

        let mut evaluation = Evaluation {
            at,
            rules: Vec::with_capacity(self.rules.len()),
            matches: Vec::new(),
            warnings: Vec::new(),
            templates: tera::Context::new(),
        };
        for (index, rule) in self.rules.iter().enumerate() {
            let mut info = rule.report.clone();
            info.status = match unavailable_section(&rule.sections, &json) {
                Some(why) => RuleStatus::Skipped(why),
                None => match self.matches_of(rule, index, &context, &mut templates) {
                    Ok((matches, warnings)) => {
                        evaluation.matches.extend(matches);
                        evaluation.warnings.extend(warnings);
                        RuleStatus::Evaluated
                    }
                    Err(why) => RuleStatus::Failed(why),
                },
            };
            evaluation.rules.push(info);
        }
        templates.remove("item");
        templates.remove("label");
        evaluation.templates = templates;
        evaluation
    }

    fn matches_of(
        &self,
        rule: &CompiledRule,
        index: usize,
        context: &cel::Context<'_>,
        templates: &mut tera::Context,
    ) -> Result<(Vec<Match>, Vec<String>), String> {
        let id = &rule.report.id;
        let mut matches = Vec::new();
        let mut warnings = Vec::new();
        let Some(each) = &rule.each else {
            if truth(&rule.when, context, "when")? {
                templates.remove("item");
                templates.remove("label");
                let message = self.message(rule, templates, &mut warnings);
                matches.push(Match {
                    rule: index,
                    fingerprint: id.clone(),
                    label: None,
                    message,
                    item: None,
                });
            }
            return Ok((matches, warnings));
        };
        let items = match each.evaluate(context)? {
            cel::Value::List(items) => items,
            other => {
                return Err(format!("`each` gave {}, not a list", kind_of(&other)));
            }
        };
        let mut labels = BTreeSet::new();
        for item in items.iter() {
            let mut scope = context.new_inner_scope();
            scope.add_variable_from_value("item", item.clone());
            if !truth(&rule.when, &scope, "when")? {
                continue;
            }
            let label = match &rule.label {
                Some(label) => label_text(
                    &label
                        .evaluate(&scope)
                        .map_err(|e| format!("`label`: {e}"))?,
                ),
                None => String::new(),
            };
            if !labels.insert(label.clone()) {
                warnings.push(format!(
                    "rule `{id}`: two items have the label `{label}`; only the first counts (make `label` unique)"
                ));
                continue;
            }
            let item = cel_to_json(item);
            templates.insert("item", &item);
            templates.insert("label", &label);
            let message = self.message(rule, templates, &mut warnings);
            matches.push(Match {
                rule: index,
                fingerprint: format!("{id}[{label}]"),
                label: Some(label),
                message,
                item: Some(item),
            });
        }
        Ok((matches, warnings))
    }

    fn message(
        &self,
        rule: &CompiledRule,
        templates: &tera::Context,
        warnings: &mut Vec<String>,
    ) -> String {
        match self.tera.render(&rule.message_template, templates) {
            Ok(text) => text.trim().to_string(),
            Err(error) => {
                warnings.push(format!(
                    "rule `{}`: the message could not be rendered, so it is shown as written: {}",
                    rule.report.id,
                    one_line(&error.to_string())
                ));
                rule.message.clone()
            }
        }
    }

    /// The command of action `action` for `finding`: each `run` element
    /// rendered with the rule's variables plus `finding`, and the
    /// `RETORT_*` environment (see [`crate::action`]).
    ///
    /// # Errors
    /// The action does not exist, or a template fails to render.
    pub fn command(
        &self,
        action: &str,
        finding: &Finding,
        evaluation: &Evaluation,
        formula: &str,
        cwd: &Path,
    ) -> Result<CommandSpec, String> {
        let compiled = self
            .action(action)
            .ok_or_else(|| format!("the formula has no action `{action}`"))?;
        let mut context = evaluation.templates.clone();
        if let Some(item) = &finding.item {
            context.insert("item", item);
        }
        if let Some(label) = &finding.label {
            context.insert("label", label);
        }
        context.insert("finding", &FindingContext::of(finding));
        let argv = compiled
            .templates
            .iter()
            .map(|name| {
                self.tera.render(name, &context).map_err(|e| {
                    format!(
                        "action `{action}`: a `run` element could not be rendered: {}",
                        one_line(&e.to_string())
                    )
                })
            })
            .collect::<Result<Vec<String>, String>>()?;
        Ok(CommandSpec {
            argv,
            env: vec![
                ("RETORT_FORMULA".into(), formula.to_string()),
                ("RETORT_ACTION".into(), action.to_string()),
                ("RETORT_FINGERPRINT".into(), finding.fingerprint.clone()),
                ("RETORT_RULE".into(), finding.rule.clone()),
                (
                    "RETORT_LABEL".into(),
                    finding.label.clone().unwrap_or_default(),
                ),
                (
                    "RETORT_PRIORITY".into(),
                    finding.priority.as_str().to_string(),
                ),
                ("RETORT_MESSAGE".into(), finding.message.clone()),
            ],
            cwd: cwd.to_path_buf(),
            timeout: compiled.timeout,
        })
    }
}

/// A template of the formula, before Tera parses it.
struct TemplateSource {
    name: String,
    text: String,
    owner: String,
    key: &'static str,
    span: Range<usize>,
}

/// Adds every template to `tera` at once (Tera re-links all its templates
/// on each addition, so one at a time costs quadratic time); when that
/// fails, finds each template that does not parse.
fn add_templates(
    tera: &mut Tera,
    sources: &[TemplateSource],
    problems: &mut Vec<(usize, RuleProblem)>,
) {
    let all = sources.iter().map(|t| (t.name.as_str(), t.text.as_str()));
    if tera.add_raw_templates(all).is_ok() {
        return;
    }
    for source in sources {
        if let Err(error) = Tera::new().add_raw_template(&source.name, &source.text) {
            problems.push((
                source.span.start,
                RuleProblem::Template {
                    owner: source.owner.clone(),
                    key: source.key,
                    report: one_line(&error.to_string()),
                    span: span(source.span.clone()),
                },
            ));
        }
    }
}

fn compile_checked(
    value: &toml::Spanned<String>,
    shape: &Shape,
    scope: &BTreeMap<String, Ty>,
    sections: &mut BTreeSet<String>,
    used_vars: &mut BTreeSet<String>,
) -> Result<Expression, Vec<ExpressionIssue>> {
    let expression = Expression::compile(value.get_ref())?;
    let analysis = expression.check(value.get_ref(), shape, scope);
    sections.extend(analysis.sections);
    used_vars.extend(analysis.vars);
    if analysis.issues.is_empty() {
        Ok(expression)
    } else {
        Err(analysis.issues)
    }
}

fn check_id<'a>(
    id: &'a toml::Spanned<String>,
    kind: &'static str,
    seen: &mut HashMap<&'a str, &'a toml::Spanned<String>>,
    problems: &mut Vec<(usize, RuleProblem)>,
) {
    if id.get_ref().trim().is_empty() {
        problems.push((
            id.span().start,
            RuleProblem::EmptyId {
                kind,
                span: span(id.span()),
            },
        ));
    } else if let Some(first) = seen.get(id.get_ref().as_str()) {
        problems.push((
            id.span().start,
            RuleProblem::DuplicateId {
                kind,
                id: id.get_ref().clone(),
                first: span(first.span()),
                second: span(id.span()),
            },
        ));
    } else {
        seen.insert(id.get_ref(), id);
    }
}

/// The help for `item` in a rule without `each`.
const ITEM_HELP: &str = "`item` is the list item of a rule with `each`; add `each = \"…\"` to check a list item by item";

/// The help for `label` in the message of a rule without `each`.
const LABEL_HELP: &str = "`label` names the list item of a rule with `each`; add `each = \"…\"` and `label = \"…\"` to check a list item by item";

/// The unknown variables of rule `rule`'s `message`, each located in the
/// formula file (`source`) on the misspelt segment. `scope` holds what the
/// message is rendered with: the names the rule's expressions see (with
/// `item` the element type of `each`) and, with `each`, `label`.
///
/// A message that does not parse has nothing checked here: Tera's error is
/// reported with the other templates.
fn check_message(
    rule: &str,
    message: &toml::Spanned<String>,
    scope: &BTreeMap<String, Ty>,
    shape: &Shape,
    source: &str,
) -> Vec<(usize, Problem)> {
    let text = message.get_ref();
    let Ok(checked) = template::check_paths(text, |path| message_path(path, scope, shape, text))
    else {
        return Vec::new();
    };
    let map = StringSource::new(source, message.span(), text);
    checked
        .errors
        .into_iter()
        .map(|error| {
            let at = map.range(error.range);
            (
                at.start,
                Problem::UnknownVariable {
                    place: format!("the message of rule `{rule}`"),
                    path: error.text,
                    reason: NOT_IN_CONTEXT.to_string(),
                    span: span(at),
                    help: error.help,
                },
            )
        })
        .collect()
}

/// Checks one variable path of a message (`template`) against `scope`:
/// a snapshot section's path against the snapshot's shape, `vars.NAME`
/// against the declared vars, `item`'s against the element shape of
/// `each`. Below a name whose type the check cannot know (`Ty::Any`, an
/// item of a list `each` computes), any path is accepted.
fn message_path(
    path: &VariablePath,
    scope: &BTreeMap<String, Ty>,
    shape: &Shape,
    template: &str,
) -> Option<PathError> {
    let root = path.root();
    match scope.get(root) {
        Some(Ty::Node(node)) => template::resolve_below(path, shape, *node, 1, template),
        Some(Ty::Vars(declared)) => {
            let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
            template::resolve_var(path, &declared, template)
        }
        // In a template, `now` is the snapshot's time as RFC 3339 text.
        Some(Ty::String | Ty::Timestamp) => template::resolve_leaf(path, "a string", template),
        // An item that is itself a list (`each` over a list of lists) is
        // not told apart from an unknown one.
        Some(Ty::Any | Ty::ListOf(_)) => None,
        None => {
            let range = path.prefix(1);
            let help = match root {
                "item" => ITEM_HELP.to_string(),
                "label" => LABEL_HELP.to_string(),
                _ => suggest(
                    root,
                    scope.keys().map(String::as_str).collect(),
                    "the names here are",
                ),
            };
            Some(PathError {
                text: template.get(range.clone()).unwrap_or_default().to_string(),
                range,
                help,
            })
        }
    }
}

/// What the `run` of a rule's action is rendered with, when the rule's
/// finding triggers it.
struct RuleContext {
    /// The rule's id.
    id: String,
    /// The action it names.
    action: Option<String>,
    /// Its `each`, as [`shown`].
    each: Option<String>,
    /// The names its message sees ([`check_message`]); the `run` sees these
    /// and `finding`.
    scope: BTreeMap<String, Ty>,
}

/// The unknown variables of the `run` elements of `action`, each located in
/// the formula file (`source`) on the misspelt segment. An element is
/// rendered with the variables of the rule whose finding triggers the
/// action plus `finding` ([`FindingContext`]), so it is checked against
/// every rule of `rules` that names the action: a path is reported once,
/// naming the first rule it fails for. An action no rule names is checked
/// against the names every rule gives, without `item` and `label`.
///
/// An element that does not parse has nothing checked here: Tera's error is
/// reported with the other templates.
fn check_run(
    action: &Action,
    rules: &[RuleContext],
    roots: &BTreeMap<String, Ty>,
    shape: &Shape,
    source: &str,
) -> Vec<(usize, Problem)> {
    let naming: Vec<&RuleContext> = rules
        .iter()
        .filter(|rule| rule.action.as_deref() == Some(action.id()))
        .collect();
    // The names every naming rule gives, for the paths that do not depend on
    // the rule; `item` and `label` are there only to be suggested, as they
    // are checked rule by rule.
    let mut common = roots.clone();
    common.insert("finding".to_string(), Ty::Any);
    for rule in &naming {
        for name in ["item", "label"] {
            if rule.scope.contains_key(name) {
                common.insert(name.to_string(), Ty::Any);
            }
        }
    }
    let place = format!("the `run` of action `{}`", action.id());
    let mut problems = Vec::new();
    for element in action.run.get_ref() {
        let text = element.get_ref();
        // The reason of each error, in the order `check_paths` keeps them.
        let mut reasons = Vec::new();
        let checked = template::check_paths(text, |path| {
            let (error, reason) = run_path(path, action.id(), &naming, &common, shape, text)?;
            reasons.push(reason);
            Some(error)
        });
        let Ok(checked) = checked else {
            continue;
        };
        let map = StringSource::new(source, element.span(), text);
        for (error, reason) in checked.errors.into_iter().zip(reasons) {
            let at = map.range(error.range);
            problems.push((
                at.start,
                Problem::UnknownVariable {
                    place: place.clone(),
                    path: error.text,
                    reason,
                    span: span(at),
                    help: error.help,
                },
            ));
        }
    }
    problems
}

/// Checks one variable path of a `run` element (`template`) of action
/// `action`, named by the rules `naming`: `finding.…` against
/// [`FindingContext`]; `item` and `label` against each naming rule's in
/// turn; anything else against `common`, as a message's path. The error,
/// and its reason after "which" ([`Problem::UnknownVariable`]).
fn run_path(
    path: &VariablePath,
    action: &str,
    naming: &[&RuleContext],
    common: &BTreeMap<String, Ty>,
    shape: &Shape,
    template: &str,
) -> Option<(PathError, String)> {
    let root = path.root();
    match root {
        "finding" => {
            let finding = finding_shape();
            template::resolve_below(path, finding, finding.root(), 1, template)
                .map(|error| (error, NOT_IN_CONTEXT.to_string()))
        }
        "item" | "label" if naming.is_empty() => {
            let range = path.prefix(1);
            Some((
                PathError {
                    text: template.get(range.clone()).unwrap_or_default().to_string(),
                    range,
                    help: format!(
                        "{}; name action `{action}` in such a rule (`action = \"{action}\"`)",
                        unnamed_help(root)
                    ),
                },
                format!("no rule gives it: no rule names action `{action}`"),
            ))
        }
        "item" | "label" => naming.iter().find_map(|rule| {
            let error = message_path(path, &rule.scope, shape, template)?;
            Some(if !rule.scope.contains_key(root) {
                let help = format!(
                    "{}; give rule `{}` an `each`, or name action `{action}` only in rules with one",
                    unnamed_help(root),
                    rule.id
                );
                (
                    PathError { help, ..error },
                    format!("rule `{}` does not give: it has no `each`", rule.id),
                )
            } else if let (Some(each), "item") = (&rule.each, root) {
                (
                    error,
                    format!("the items of rule `{}` (`{each}`) do not have", rule.id),
                )
            } else {
                (
                    error,
                    format!("is not in the template context of rule `{}`", rule.id),
                )
            })
        }),
        _ => message_path(path, common, shape, template)
            .map(|error| (error, NOT_IN_CONTEXT.to_string())),
    }
}

/// What `item` or `label` (`root`) stands for in a `run` element.
fn unnamed_help(root: &str) -> &'static str {
    match root {
        "item" => {
            "in a `run` element, `item` is the list item of the rule with `each` whose finding triggers the action"
        }
        _ => {
            "in a `run` element, `label` names the list item of the rule with `each` whose finding triggers the action"
        }
    }
}

/// An expression as a diagnostic quotes it: on one line, cut after 80
/// characters.
fn shown(expression: &str) -> String {
    let line = one_line(expression);
    match line.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

fn expression_problem(
    rule: &str,
    key: &'static str,
    issue: ExpressionIssue,
    at: Range<usize>,
) -> RuleProblem {
    let rule = rule.to_string();
    let span = span(at);
    match issue.kind {
        IssueKind::Syntax { message } => RuleProblem::CelSyntax {
            rule,
            key,
            message,
            span,
        },
        IssueKind::UnknownVariable { name, help } => RuleProblem::UnknownVariable {
            help: if name == "item" {
                ITEM_HELP.to_string()
            } else {
                help
            },
            rule,
            key,
            name,
            span,
        },
        IssueKind::UnknownField { path, help, .. } => RuleProblem::UnknownField {
            rule,
            owner: if path.starts_with("vars.") {
                "the formula's `[vars]`"
            } else {
                "the snapshot"
            },
            path,
            span,
            help,
        },
        IssueKind::NotAnObject { path, kind, help } => RuleProblem::NotAnObject {
            rule,
            path,
            kind,
            span,
            help,
        },
    }
}

/// The file range of `inner` (a range of the value's text) when the value
/// is written in the file exactly as it reads (a literal string, or a basic
/// string without escapes); else the whole value.
fn locate(source: &str, value: &toml::Spanned<String>, inner: &Range<usize>) -> Range<usize> {
    let whole = value.span();
    let Some(raw) = source.get(whole.clone()) else {
        return whole;
    };
    let quote = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        3
    } else if raw.starts_with('\'') || raw.starts_with('"') {
        1
    } else {
        return whole;
    };
    if raw.len() < 2 * quote {
        return whole;
    }
    let mut start = quote;
    let mut text = &raw[quote..raw.len() - quote];
    if quote == 3 {
        // TOML drops a newline right after the opening delimiter.
        for newline in ["\r\n", "\n"] {
            if let Some(rest) = text.strip_prefix(newline) {
                start += newline.len();
                text = rest;
                break;
            }
        }
    }
    if text != value.get_ref() || inner.end > text.len() {
        return whole;
    }
    let base = whole.start + start;
    base + inner.start..base + inner.end
}

/// Why a section the rule reads cannot be trusted, if one cannot.
fn unavailable_section(sections: &BTreeSet<String>, snapshot: &Json) -> Option<String> {
    sections.iter().find_map(|name| {
        let section = snapshot.get(name)?;
        let status = section.get("status")?.as_str()?;
        if status == "ok" {
            return None;
        }
        let reason = section
            .get("reason")
            .and_then(Json::as_str)
            .unwrap_or("no reason given");
        Some(format!("`{name}` was not collected ({status}: {reason})"))
    })
}

fn truth(expression: &Expression, context: &cel::Context<'_>, key: &str) -> Result<bool, String> {
    match expression
        .evaluate(context)
        .map_err(|e| format!("`{key}`: {e}"))?
    {
        cel::Value::Bool(b) => Ok(b),
        other => Err(format!(
            "`{key}` gave {}, not true or false",
            kind_of(&other)
        )),
    }
}

fn kind_of(value: &cel::Value) -> String {
    let json = cel_to_json(value);
    let text = json.to_string();
    let shown: String = text.chars().take(60).collect();
    format!(
        "{} `{shown}{}`",
        match value {
            cel::Value::List(_) => "a list",
            cel::Value::Map(_) => "a map",
            cel::Value::Int(_) | cel::Value::UInt(_) | cel::Value::Float(_) => "a number",
            cel::Value::String(_) => "a string",
            cel::Value::Null => "null",
            _ => "a value",
        },
        if text.chars().count() > 60 { "…" } else { "" }
    )
}

/// A label as the fingerprint shows it: strings as they are, other values as JSON.
fn label_text(value: &cel::Value) -> String {
    match value {
        cel::Value::String(s) => s.as_ref().clone(),
        other => cel_to_json(other).to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
