//! Step conditions: a step's `when`, a CEL expression typed like a rule's
//! condition and evaluated when the step's `needs` have ended.
//!
//! A condition sees the snapshot's sections, `vars`, `now` (the snapshot's
//! time), `findings` (this run's, as templates see them: `firing`, `new`,
//! `pending`, `resolved`, `all`) and `steps`: for each *ancestor* of the
//! step (a step it needs, directly or not), `steps.ID.outcome` (`"done"`,
//! `"skipped"`, …) and `steps.ID.output` (what its agent handed on, `""`
//! when nothing). Other steps may not have ended when the step starts, so
//! [`check`] refuses them, naming the ancestors; the same rule holds for
//! `steps.ID` in step templates (see `retort_check`).
//!
//! In: the formula (its steps' `when` and `needs`), then at run time the
//! snapshot, vars, findings and the ends of earlier steps. Out: problems
//! located in the formula file, or whether a step runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use retort_formula::diagnostic::{Problem, span};
use retort_formula::formula::Formula;
use retort_preflight::Snapshot;

use crate::cel_value::{snapshot_shape, to_cel};
use crate::decide::FindingsContext;
use crate::expression::{Expression, IssueKind, Ty};
use crate::ruleset::diagnostic::locate;

/// What later steps see of a step that has ended: `steps.ID` in conditions
/// and templates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepValue {
    /// How it ended: `done`, `failed`, `escalated`, `rate-limited` or
    /// `skipped`.
    pub outcome: String,
    /// What its agent handed on with `retort signal done --output`, or
    /// `""`.
    pub output: String,
}

/// Each step's `needs` as written, by id.
pub fn needs_map(formula: &Formula) -> HashMap<&str, Vec<&str>> {
    formula
        .steps
        .iter()
        .map(|step| {
            let needs = step.needs.iter().map(|n| n.get_ref().as_str()).collect();
            (step.id(), needs)
        })
        .collect()
}

/// The ancestors of `step` (the steps it needs, directly or not), by id,
/// read from `needs` ([`needs_map`]): unknown ids are left out, and a cycle
/// makes its steps ancestors of each other (it is an error of its own).
pub fn ancestors_of<'a>(needs: &HashMap<&'a str, Vec<&'a str>>, step: &str) -> BTreeSet<&'a str> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = needs.get(step).cloned().unwrap_or_default();
    while let Some(id) = stack.pop() {
        if needs.contains_key(id) && seen.insert(id) {
            stack.extend(needs.get(id).into_iter().flatten().copied());
        }
    }
    seen
}

/// The help for `steps.OTHER` used by `step`, whose ancestors are
/// `ancestors`: OTHER is a step, but not one `step` surely runs after.
pub fn not_an_ancestor_help(step: &str, other: &str, ancestors: &BTreeSet<&str>) -> String {
    let listed = match ancestors.is_empty() {
        true => format!("`{step}` has no ancestors"),
        false => format!(
            "the ancestors of `{step}` are: {}",
            ancestors.iter().copied().collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "step `{other}` is not an ancestor of `{step}`, so it may not have ended when `{step}` starts; add `{other}` to the `needs` of `{step}` (directly or through a step it needs) to use it; {listed}"
    )
}

/// The type of `steps` in the condition of `step`.
fn steps_type(step: &str, formula: &Formula, ancestors: &BTreeSet<&str>) -> Ty {
    let value = Ty::Record {
        fields: [("outcome", Ty::String), ("output", Ty::String)]
            .into_iter()
            .map(|(k, t)| (k.to_string(), t))
            .collect(),
        listing: "a step's fields are".to_string(),
        refused: BTreeMap::new(),
    };
    Ty::Record {
        fields: ancestors
            .iter()
            .map(|id| (id.to_string(), value.clone()))
            .collect(),
        listing: match ancestors.is_empty() {
            true => format!("`{step}` has no ancestors, so `steps` is empty; the steps it may see"),
            false => format!("the ancestors of `{step}` are"),
        },
        refused: formula
            .steps
            .iter()
            .map(|s| s.id())
            .filter(|id| !ancestors.contains(id))
            .map(|id| (id.to_string(), not_an_ancestor_help(step, id, ancestors)))
            .collect(),
    }
}

/// The names every condition sees besides `steps`.
fn roots(formula: &Formula) -> BTreeMap<String, Ty> {
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
    roots.insert("findings".to_string(), Ty::Any);
    roots
}

/// Checks every step's `when`: CEL syntax, and every name against the
/// snapshot's shape, the declared vars and the step's ancestors. Returns
/// the problems, located in `source`, and the vars the conditions read.
pub fn check(formula: &Formula, source: &str) -> (Vec<Problem>, BTreeSet<String>) {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    if formula.steps.iter().all(|s| s.when.is_none()) {
        return (problems, used);
    }
    let needs = needs_map(formula);
    let roots = roots(formula);
    let shape = snapshot_shape();
    for step in &formula.steps {
        let Some(when) = &step.when else { continue };
        let text = when.get_ref();
        let issues = match Expression::compile(text) {
            Ok(expression) => {
                let mut scope = roots.clone();
                let mine = ancestors_of(&needs, step.id());
                scope.insert("steps".to_string(), steps_type(step.id(), formula, &mine));
                let analysis = expression.check(text, shape, &scope);
                used.extend(analysis.vars);
                analysis.issues
            }
            Err(issues) => issues,
        };
        for issue in issues {
            let at = locate(source, when, &issue.range);
            let (message, help) = match issue.kind {
                IssueKind::Syntax { message } => (
                    format!("is not a valid CEL expression: {message}"),
                    "CEL reads like C: `steps.triage.output.contains('disk') && system.memory.available_mb < 500`; strings take quotes, `'ok'`".to_string(),
                ),
                IssueKind::UnknownVariable { name, help } => (
                    format!("uses `{name}`, which is not a variable"),
                    help,
                ),
                IssueKind::UnknownField { path, help, .. } => {
                    (format!("uses `{path}`, which it cannot see"), help)
                }
                IssueKind::NotAnObject { path, kind, help } => (
                    format!("selects a field of {kind} in `{path}`"),
                    help,
                ),
            };
            problems.push(Problem::StepCondition {
                step: step.id().to_string(),
                message,
                span: span(at),
                help,
            });
        }
    }
    (problems, used)
}

/// What conditions are evaluated against in a run: the snapshot's
/// sections, `vars`, `now` and `findings`, turned into CEL values once.
pub struct ConditionContext {
    values: Vec<(String, cel::Value)>,
}

impl ConditionContext {
    /// The context of a run with this snapshot, vars and findings.
    pub fn new(
        snapshot: &Snapshot,
        vars: &BTreeMap<String, String>,
        findings: &FindingsContext,
    ) -> ConditionContext {
        let shape = snapshot_shape();
        let mut values = Vec::new();
        if let Ok(Json::Object(sections)) = serde_json::to_value(snapshot) {
            for (name, value) in &sections {
                let id = shape.property(shape.root(), name);
                values.push((name.clone(), to_cel(shape, id, value)));
            }
        }
        let vars = vars
            .iter()
            .map(|(k, v)| {
                (
                    cel::objects::Key::String(Arc::new(k.clone())),
                    cel::Value::String(Arc::new(v.clone())),
                )
            })
            .collect();
        values.push((
            "vars".to_string(),
            cel::Value::Map(cel::objects::Map {
                map: Arc::new(vars),
            }),
        ));
        values.push((
            "now".to_string(),
            cel::Value::Timestamp(snapshot.collected_at.fixed_offset()),
        ));
        let findings = serde_json::to_value(findings).unwrap_or(Json::Null);
        values.push(("findings".to_string(), to_cel(shape, None, &findings)));
        ConditionContext { values }
    }

    /// Evaluates the condition `text` with `steps` (the step's ancestors
    /// that have ended) as `steps`.
    ///
    /// # Errors
    /// CEL's error, as text, when it does not compile, fails, or gives
    /// something other than a boolean.
    pub fn evaluate(
        &self,
        text: &str,
        steps: &BTreeMap<String, StepValue>,
    ) -> Result<bool, String> {
        let expression = Expression::compile(text).map_err(|issues| {
            issues
                .into_iter()
                .map(|i| format!("{:?}", i.kind))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let mut context = cel::Context::default();
        for (name, value) in &self.values {
            context.add_variable_from_value(name.clone(), value.clone());
        }
        let steps = serde_json::to_value(steps).unwrap_or(Json::Null);
        context.add_variable_from_value("steps", to_cel(snapshot_shape(), None, &steps));
        match expression.evaluate(&context)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(format!(
                "it gave {other:?}, not true or false; compare with a value, as in `steps.x.outcome == 'done'`"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formula(steps: &str) -> (Formula, String) {
        let text = format!("name = \"f\"\n[vars]\nzone = \"eu\"\n{steps}");
        (Formula::parse(&text).unwrap(), text)
    }

    const DIAMOND: &str = r#"
[[steps]]
id = "a"
description = "a"
[[steps]]
id = "b"
description = "b"
needs = ["a"]
[[steps]]
id = "c"
description = "c"
needs = ["a"]
when = "WHEN_C"
[[steps]]
id = "d"
description = "d"
needs = ["b", "c"]
when = "WHEN_D"
"#;

    fn problems(when_c: &str, when_d: &str) -> Vec<String> {
        let steps = DIAMOND.replace("WHEN_C", when_c).replace("WHEN_D", when_d);
        let (formula, text) = formula(&steps);
        check(&formula, &text)
            .0
            .into_iter()
            .map(|p| match p {
                Problem::StepCondition {
                    step,
                    message,
                    span,
                    help,
                } => format!(
                    "{step}: {message} [{}] ({help})",
                    &text[span.offset()..span.offset() + span.len()]
                ),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn conditions_see_their_ancestors_and_nothing_later() {
        assert_eq!(
            problems(
                "steps.a.outcome == 'done' && vars.zone == 'eu'",
                "steps.b.output.contains('x') && steps.a.outcome == 'done' && system.memory.available_mb > 1 && size(findings.firing) == 0"
            ),
            Vec::<String>::new()
        );
        let found = problems("steps.b.outcome == 'done'", "steps.d.output == ''");
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with(
                "c: uses `steps.b`, which it cannot see [b] (step `b` is not an ancestor of `c`"
            ) && found[0].contains("the ancestors of `c` are: a"),
            "{}",
            found[0]
        );
        assert!(
            found[1].contains("step `d` is not an ancestor of `d`")
                && found[1].contains("the ancestors of `d` are: a, b, c"),
            "{}",
            found[1]
        );
        let found = problems("steps.a.outcom == 'done'", "sytem.x == 1 || vars.zon == ''");
        assert!(found[0].contains("did you mean `outcome`?"), "{found:#?}");
        assert!(found[1].contains("did you mean `system`?"), "{found:#?}");
        assert!(found[2].contains("did you mean `zone`?"), "{found:#?}");
        let found = problems("steps.a.outcome ==", "true");
        assert!(
            found[0].starts_with("c: is not a valid CEL expression"),
            "{found:#?}"
        );
    }

    #[test]
    fn conditions_evaluate_over_the_ends_of_earlier_steps() {
        let snapshot = Snapshot::default();
        let vars = BTreeMap::from([("zone".to_string(), "eu".to_string())]);
        let context = ConditionContext::new(&snapshot, &vars, &FindingsContext::default());
        let steps = BTreeMap::from([(
            "a".to_string(),
            StepValue {
                outcome: "done".to_string(),
                output: "disk at 93%".to_string(),
            },
        )]);
        assert_eq!(
            context.evaluate(
                "steps.a.output.contains('disk') && vars.zone == 'eu'",
                &steps
            ),
            Ok(true)
        );
        assert_eq!(
            context.evaluate(
                "steps.a.outcome == 'skipped' || size(findings.firing) > 0",
                &steps
            ),
            Ok(false)
        );
        let error = context.evaluate("steps.a.output", &steps).unwrap_err();
        assert!(error.contains("not true or false"), "{error}");
    }
}
