//! The rules evaluated against a snapshot, and the command of an action
//! rendered for a finding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use retort_preflight::Snapshot;

use crate::action::{CommandSpec, FindingContext};
use crate::cel_value::{cel_to_json, snapshot_shape, to_cel};
use crate::expression::Expression;
use crate::finding::Finding;

use super::{CHECK_STACK, CompiledRule, RuleInfo, RuleSet, RuleStatus, one_line};

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
                Some((why, true)) => RuleStatus::Failed(why),
                Some((why, false)) => RuleStatus::Skipped(why),
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

/// Why a section the rule reads cannot be trusted, if one cannot.
/// The first section of `sections` that was not collected: why, and
/// whether its collector failed (status `error`, which makes the rule one
/// that could not be evaluated) rather than finding no source here
/// (`unavailable`, which skips it).
fn unavailable_section(sections: &BTreeSet<String>, snapshot: &Json) -> Option<(String, bool)> {
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
        Some((
            format!("`{name}` was not collected ({status}: {reason})"),
            status == "error",
        ))
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
