//! Checking and compiling a formula's rules and actions: every CEL
//! expression compiled and type-checked against the snapshot's shape, every
//! template parsed by Tera, ids, `for`, `each`/`label` and the actions
//! rules name checked; every problem collected, in source order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use tera::Tera;

use crate::cel_value::snapshot_shape;
use crate::expression::Ty;
use crate::expression::{Expression, ExpressionIssue, suggest};
use retort_formula::diagnostic::{Problem, RuleProblem, span};
use retort_formula::formula::Formula;
use retort_formula::shape::Shape;
use retort_formula::template::{self};

use super::diagnostic::{expression_problem, locate, shown};
use super::template_paths::{RuleContext, check_message, check_run};
use super::{CompiledAction, CompiledRule, Inspected, RuleInfo, RuleSet, RuleStatus, one_line};

impl RuleSet {
    pub(super) fn inspect_here(formula: &Formula, source: &str) -> Inspected {
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
