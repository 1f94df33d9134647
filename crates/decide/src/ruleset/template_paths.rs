//! The variable paths of a rule's `message` and of an action's `run`
//! elements, checked against what each is rendered with, and reported as
//! step descriptions' are ([`Problem::UnknownVariable`]).

use std::collections::BTreeMap;

use crate::action::finding_shape;
use crate::expression::Ty;
use crate::expression::suggest;
use retort_formula::action::Action;
use retort_formula::diagnostic::{NOT_IN_CONTEXT, Problem, span};
use retort_formula::shape::Shape;
use retort_formula::template::{self, PathError, StringSource, VariablePath};

use super::diagnostic::ITEM_HELP;

/// The help for `label` in the message of a rule without `each`.
const LABEL_HELP: &str = "`label` names the list item of a rule with `each`; add `each = \"…\"` and `label = \"…\"` to check a list item by item";

/// The unknown variables of rule `rule`'s `message`, each located in the
/// formula file (`source`) on the misspelt segment. `scope` holds what the
/// message is rendered with: the names the rule's expressions see (with
/// `item` the element type of `each`) and, with `each`, `label`.
///
/// A message that does not parse has nothing checked here: Tera's error is
/// reported with the other templates.
pub(super) fn check_message(
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
        Some(Ty::Any | Ty::ListOf(_) | Ty::Record { .. }) => None,
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
pub(super) struct RuleContext {
    /// The rule's id.
    pub(super) id: String,
    /// The action it names.
    pub(super) action: Option<String>,
    /// Its `each`, as [`shown`](super::diagnostic::shown).
    pub(super) each: Option<String>,
    /// The names its message sees ([`check_message`]); the `run` sees these
    /// and `finding`.
    pub(super) scope: BTreeMap<String, Ty>,
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
pub(super) fn check_run(
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
