//! The formula's vars: each `[vars]` entry's value, from `--var` or its
//! default, and the problems of `--var`s the formula does not declare and
//! of required vars without a value.

use std::collections::BTreeMap;
use std::ops::Range;

use retort_formula::diagnostic::{Problem, span};
use retort_formula::formula::Formula;
use retort_formula::shape::closest;

use super::{CheckOptions, Purpose};

pub(super) fn resolve_vars(
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
