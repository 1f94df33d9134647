//! The formula model: what parses, what is refused, and the defaults.

use std::path::Path;
use std::time::Duration;

use miette::Diagnostic;
use retort_check::{load, parse_source};
use retort_formula::diagnostic::FormulaError;
use retort_formula::formula::DEFAULT_STEP_TIMEOUT;

/// The one problem `text` has: (message, "line N", help).
fn syntax_error(text: &str) -> (String, String, Option<String>) {
    match parse_source(Path::new("f.toml"), text.to_string()) {
        Err(FormulaError::Invalid(invalid)) => {
            let problems: Vec<_> = invalid.problems.iter().filter(|p| p.is_error()).collect();
            assert_eq!(problems.len(), 1, "one problem expected: {problems:?}");
            let problem = problems[0];
            let span = problem.primary_span().expect("located");
            let line = text[..span.offset()].matches('\n').count() + 1;
            (
                problem.to_string(),
                format!("line {line}"),
                problem.help().map(|h| h.to_string()),
            )
        }
        other => panic!("expected an invalid formula, got {other:?}"),
    }
}

#[test]
fn the_seed_formula_parses_with_its_five_steps() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../formulas/run-supervisor.toml");
    let loaded = load(&path).expect("the seed formula parses");
    let f = &loaded.formula;
    assert_eq!(f.name(), "run-supervisor");
    assert_eq!(f.version, Some(1));
    assert_eq!(f.model.as_deref(), Some("sonnet"));
    let files: Vec<&str> = f
        .context
        .files
        .iter()
        .map(|s| s.get_ref().as_str())
        .collect();
    assert_eq!(files, ["AGENTS.md"]);
    let ids: Vec<&str> = f.steps.iter().map(|s| s.id()).collect();
    assert_eq!(
        ids,
        [
            "preflight",
            "health-assessment",
            "decide-actions",
            "report",
            "journal"
        ]
    );
    assert_eq!(f.steps[0].timeout(), DEFAULT_STEP_TIMEOUT);
}

#[test]
fn the_shipped_seed_formula_is_the_seed_unchanged() {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../formulas/run-supervisor.toml");
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/formulas/run-supervisor.toml");
    if let Ok(seed) = std::fs::read(&seed) {
        assert_eq!(std::fs::read(ours).unwrap(), seed);
    }
}

#[test]
fn a_misspelt_key_is_an_error_not_a_dropped_dependency() {
    let (message, line, help) =
        syntax_error("name = \"f\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\nneed = [\"b\"]\n");
    assert_eq!(message, "unknown key `need` in [[steps]] \"a\"");
    assert_eq!(line, "line 5");
    assert_eq!(help.as_deref(), Some("did you mean `needs`?"));
}

#[test]
fn timeouts_are_humane_durations() {
    let text = "name = \"f\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\ntimeout = \"1h 30m\"\n";
    let f = parse_source(Path::new("f.toml"), text.into())
        .unwrap()
        .formula;
    assert_eq!(f.steps[0].timeout(), Duration::from_secs(5400));

    let (message, line, _) = syntax_error(
        "name = \"f\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\ntimeout = \"half an hour\"\n",
    );
    assert!(
        message.contains("`half an hour` is not a duration"),
        "{message}"
    );
    assert!(message.contains("\"30m\""), "{message}");
    assert_eq!(line, "line 5");

    let (message, _, _) = syntax_error(
        "name = \"f\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\ntimeout = \"0s\"\n",
    );
    assert!(message.contains("`0s` is no time at all"), "{message}");
}

#[test]
fn a_step_without_a_title_is_titled_by_its_id() {
    let text = "name = \"f\"\n[[steps]]\nid = \"look\"\ndescription = \"x\"\n";
    let f = parse_source(Path::new("f.toml"), text.into())
        .unwrap()
        .formula;
    assert_eq!(f.steps[0].title(), "look");
}

#[test]
fn missing_required_keys_and_wrong_types_are_located() {
    let (message, line, help) = syntax_error("name = \"f\"\n[[steps]]\nid = \"a\"\n");
    assert_eq!(message, "[[steps]] \"a\" has no `description`");
    assert_eq!(line, "line 2", "points at the table");
    assert!(
        help.unwrap()
            .starts_with("`description`: The step's instructions")
    );
    let (message, line, _) =
        syntax_error("name = \"f\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\nneeds = \"b\"\n");
    assert_eq!(
        message,
        "`needs` in [[steps]] \"a\" must be a list of strings, not a string"
    );
    assert_eq!(line, "line 5");
}

#[test]
fn backslash_escapes_toml_refuses_get_a_fix() {
    let (message, line, help) =
        syntax_error("name = \"f\"\n[[steps]]\nid = \"a\"\ndescription = \"date \\`now\"\n");
    assert!(message.contains("escape"), "{message}");
    assert_eq!(line, "line 4");
    assert!(help.unwrap().contains("literal string '''...'''"));
}

#[test]
fn an_unreadable_file_says_which() {
    let error = load(Path::new("/nonexistent/formula.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot read formula `/nonexistent/formula.toml`"),
        "{error}"
    );
}

#[test]
fn the_json_schema_is_generated_from_the_formula_types() {
    let schema =
        serde_json::to_value(schemars::schema_for!(retort_formula::formula::Formula)).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["name"]));
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused"
    );
    let step = &schema["$defs"]["Step"];
    assert_eq!(step["properties"]["needs"]["type"], "array");
    assert_eq!(
        step["properties"]["timeout"]["anyOf"][0]["$ref"],
        "#/$defs/HumanDuration"
    );
}

#[test]
fn the_reference_documents_every_key_of_the_schema() {
    let reference = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/formula-reference.md"),
    )
    .unwrap();
    let schema = retort_formula::formula::json_schema();
    let mut tables = vec![("top level", &schema["properties"])];
    for name in [
        "Step",
        "VarTable",
        "ContextSection",
        "AgentSection",
        "Rule",
        "Action",
        "GateSection",
        "HistorySection",
        "SecretsSection",
        "ScreenSection",
        "BudgetSection",
    ] {
        tables.push((name, &schema["$defs"][name]["properties"]));
    }
    for (table, properties) in tables {
        for key in properties.as_object().unwrap().keys() {
            assert!(
                reference.contains(&format!("| `{key}` |")),
                "docs/formula-reference.md has no row for `{key}` of {table}"
            );
        }
    }
}
