//! The checker: every problem the formula language defines, found in one
//! pass, each at its line and column, with its fix.

use std::collections::BTreeMap;
use std::path::Path;

use miette::Diagnostic;
use retort_check::check::{CheckOptions, Purpose, check_source};

/// (line, column, code, message, help) of each problem of `text`.
fn problems_with(
    text: &str,
    vars: &[(&str, &str)],
    purpose: Purpose,
) -> Vec<(usize, usize, String, String, String)> {
    let options = CheckOptions {
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        cwd: Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
        purpose,
    };
    let checked = check_source(Path::new("f.toml"), text.to_string(), &options);
    checked
        .problems
        .iter()
        .map(|p| {
            let offset = p.primary_span().map_or(0, |s| s.offset());
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
            (
                line,
                column,
                p.code().map(|c| c.to_string()).unwrap_or_default(),
                p.to_string(),
                p.help().map(|h| h.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

fn problems(text: &str) -> Vec<(usize, usize, String, String, String)> {
    problems_with(text, &[], Purpose::Authoring)
}

fn codes(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|p| p.2).collect()
}

#[test]
fn the_seed_formula_has_no_problems() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../formulas/run-supervisor.toml"),
    )
    .unwrap();
    let found: Vec<_> = problems(&text)
        .into_iter()
        .filter(|p| p.2 != "retort::missing_context_file")
        .collect();
    assert_eq!(found, Vec::new());
}

#[test]
fn every_problem_of_a_file_is_reported_in_one_pass_in_file_order() {
    let text = r#"name = "many"
[vars]
FLOOR = "500"
[[steps]]
id = "a"
description = "RAM {{ preflight.system.memroy.available_mb }} below {{ vars.FLOOR }}"
timout = "5m"
[[steps]]
id = "b"
description = "B"
need = ["a"]
needs = ["c"]
"#;
    let found = problems(text);
    let summary: Vec<(usize, usize, &str)> =
        found.iter().map(|p| (p.0, p.1, p.2.as_str())).collect();
    assert_eq!(
        summary,
        [
            (6, 23, "retort::unknown_variable"),
            (7, 1, "retort::unknown_key"),
            (11, 1, "retort::unknown_key"),
            (12, 10, "retort::formula::unknown_need"),
        ]
    );
    assert_eq!(
        found[0].3,
        "the description of step `a` uses `preflight.system.memroy`, which is not in its template context"
    );
    assert_eq!(found[0].4, "did you mean `memory`?");
    assert_eq!(found[1].4, "did you mean `timeout`?");
    assert_eq!(found[2].4, "did you mean `needs`?");
}

#[test]
fn toml_syntax_errors_are_all_reported_with_a_fix_for_shell_escapes() {
    let text = "name = \"x\"\n[[steps]]\nid = \"a\"\ndescription = \"echo \\(date\\) \\`x\\`\"\n";
    let found = problems(text);
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(
        found.iter().all(|p| p.0 == 4 && p.2 == "retort::toml"),
        "{found:?}"
    );
    assert!(
        found[0].4.contains("use a literal string '''...'''"),
        "{}",
        found[0].4
    );
}

#[test]
fn wrong_types_missing_keys_and_empty_ids_are_located() {
    let found = problems(
        "name = 3\n[[steps]]\nid = \"\"\ndescription = \"x\"\nneeds = \"a\"\n[[steps]]\ntitle = \"no id\"\n",
    );
    let summary: Vec<(usize, &str, &str)> = found
        .iter()
        .map(|p| (p.0, p.2.as_str(), p.3.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                "retort::wrong_type",
                "`name` in the top level must be a string, not an integer"
            ),
            // Found in the same pass, though `name` has the wrong type.
            (3, "retort::formula::empty_id", "step id is empty"),
            (
                5,
                "retort::wrong_type",
                "`needs` in [[steps]] \"\" must be a list of strings, not a string"
            ),
            (6, "retort::missing_key", "[[steps]] #2 has no `id`"),
            (
                6,
                "retort::missing_key",
                "[[steps]] #2 has no `description`"
            ),
        ]
    );
    let found = problems("name = \"x\"\n[[steps]]\nid = \"  \"\ndescription = \"x\"\n");
    assert_eq!(found[0].2, "retort::formula::empty_id");
    assert_eq!((found[0].0, found[0].1), (3, 6));
}

#[test]
fn a_cycle_is_reported_with_the_place_of_every_edge() {
    let text = "name = \"c\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\nneeds = [\"b\"]\n[[steps]]\nid = \"b\"\ndescription = \"B\"\nneeds = [\"a\"]\n";
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: ".".into(),
        purpose: Purpose::Authoring,
    };
    let checked = check_source(Path::new("c.toml"), text.into(), &options);
    assert_eq!(checked.problems.len(), 1);
    let problem = &checked.problems[0];
    assert_eq!(problem.to_string(), "steps form a cycle: a → b → a");
    let places: Vec<(String, usize)> = problem
        .labels()
        .unwrap()
        .map(|l| {
            (
                l.label().unwrap_or_default().to_string(),
                text[..l.offset()].matches('\n').count() + 1,
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            ("`a` needs `b`".to_string(), 5),
            ("`b` needs `a`".to_string(), 9)
        ]
    );
}

#[test]
fn template_syntax_errors_point_into_the_formula_and_suggest_raw() {
    let text = "name = \"t\"\n[[steps]]\nid = \"docker\"\ndescription = \"\"\"\nList them:\ndocker ps --format '{{.Names}}'\n\"\"\"\n";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, column, code, message, help) = &found[0];
    assert_eq!(code, "retort::template_syntax");
    assert_eq!(*line, 6, "the line of the formula, not of the description");
    assert!(*column > 20, "at the braces: column {column}");
    assert!(
        message.starts_with("the description of step `docker` is not a valid template"),
        "{message}"
    );
    assert!(help.contains("set `raw = true` in step `docker`"), "{help}");

    let raw = text.replace("id = \"docker\"\n", "id = \"docker\"\nraw = true\n");
    assert_eq!(problems(&raw), Vec::new(), "a raw step is not a template");
    let raw_formula = format!("raw = true\n{text}");
    assert_eq!(
        problems(&raw_formula),
        Vec::new(),
        "nor is any step of a raw formula"
    );
}

#[test]
fn template_paths_are_checked_against_the_context_with_suggestions() {
    let cases = [
        (
            "{{ preflight.system.memroy }}",
            "preflight.system.memroy",
            "did you mean `memory`?",
        ),
        (
            "{{ preflgiht.system }}",
            "preflgiht",
            "did you mean `preflight`?",
        ),
        (
            "{{ preflight.system.disks.used_percent }}",
            "preflight.system.disks.used_percent",
            "`preflight.system.disks` is a list: index it (`[0]`) or loop over it ({% for item in preflight.system.disks %})",
        ),
        (
            "{{ preflight.system.memory.available_mb.x }}",
            "preflight.system.memory.available_mb.x",
            "`preflight.system.memory.available_mb` is a non-negative integer and has no fields",
        ),
        (
            "{{ vars.NOPE }}",
            "vars.NOPE",
            "declare it in [vars]: NOPE = \"default value\"",
        ),
        ("{{ step.nubmer }}", "step.nubmer", "did you mean `number`?"),
    ];
    for (template, path, help) in cases {
        let text = format!(
            "name = \"t\"\n[[steps]]\nid = \"s\"\ndescription = \"{}\"\n",
            template.replace('"', "\\\"")
        );
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{template}: {found:?}");
        assert_eq!(
            found[0].3,
            format!(
                "the description of step `s` uses `{path}`, which is not in its template context"
            ),
            "{template}"
        );
        assert_eq!(found[0].4, help, "{template}");
        assert_eq!(
            (found[0].0, found[0].1),
            (4, 19),
            "{template}: points at the path"
        );
    }
    let fine = "name = \"t\"\n[[steps]]\nid = \"s\"\ndescription = \"{{ preflight.system.disks[0].used_percent }} {% for s in preflight.tmux.sessions %}{{ s.name }}{% endfor %} {{ run.id }} {{ step.title }} {{ formula.name }} {{ model }}\"\n";
    assert_eq!(problems(fine), Vec::new());
}

#[test]
fn the_agent_command_is_checked_as_a_template_too() {
    let found = problems(
        "name = \"t\"\n[agent]\ncommand = \"claude --model {{ modle }}\"\n[[steps]]\nid = \"s\"\ndescription = \"x\"\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].3,
        "`[agent] command` uses `modle`, which is not in its template context"
    );
    assert_eq!(found[0].4, "did you mean `model`?");
}

#[test]
fn vars_are_checked_declared_required_and_used() {
    let text = "name = \"v\"\n[vars]\nROOM = { description = \"Matrix room\", required = true }\nFLOOR = 500\nSPARE = \"x\"\n[[steps]]\nid = \"s\"\ndescription = \"Post to {{ vars.ROOM }} below {{ vars.FLOOR }}\"\n";
    let found = problems(text);
    let summary: Vec<(usize, &str)> = found.iter().map(|p| (p.0, p.3.as_str())).collect();
    assert_eq!(
        summary,
        [
            (3, "required var `ROOM` has no value here"),
            (5, "var `SPARE` is declared but never used"),
        ]
    );
    let running = problems_with(text, &[], Purpose::Run);
    assert_eq!(running[0].3, "required var `ROOM` has no value");
    assert_eq!(running[0].4, "give it one: --var ROOM=VALUE");
    let given = problems_with(text, &[("ROOM", "!ops"), ("FLOR", "1")], Purpose::Run);
    let summary: Vec<(&str, &str)> = given.iter().map(|p| (p.3.as_str(), p.4.as_str())).collect();
    assert_eq!(
        summary,
        [
            (
                "--var FLOR: the formula declares no var `FLOR`",
                "did you mean --var FLOOR=…?"
            ),
            (
                "var `SPARE` is declared but never used",
                "use it as {{ SPARE }} or {{ vars.SPARE }} in a step's description or the agent command, as {{ vars.SPARE }} in a rule message or an action command, or as vars.SPARE in a rule condition; or remove it"
            ),
        ]
    );
}

#[test]
fn resolved_vars_take_the_command_line_then_the_default() {
    let text = "name = \"v\"\n[vars]\nA = 1\nB = { default = \"two\" }\nC = { description = \"none\" }\n[[steps]]\nid = \"s\"\ndescription = \"{{ vars.A }}{{ vars.B }}{{ vars.C }}\"\n";
    let options = CheckOptions {
        vars: BTreeMap::from([("B".to_string(), "given".to_string())]),
        cwd: ".".into(),
        purpose: Purpose::Run,
    };
    let checked = check_source(Path::new("v.toml"), text.into(), &options);
    assert!(!checked.has_errors(), "{:?}", checked.problems);
    assert_eq!(
        checked.vars,
        BTreeMap::from([
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "given".to_string()),
            ("C".to_string(), String::new()),
        ])
    );
}

#[test]
fn missing_context_files_are_warnings() {
    let found = problems(
        "name = \"x\"\n[context]\nfiles = [\"Cargo.toml\", \"NOPE.md\"]\n[[steps]]\nid = \"a\"\ndescription = \"x\"\n",
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].0, found[0].1, found[0].2.as_str()),
        (3, 24, "retort::missing_context_file")
    );
}

#[test]
fn the_checker_never_panics_on_odd_input() {
    for text in [
        "",
        "\u{0}\u{ffff}",
        "[[steps]]",
        "name = \"x\"\nsteps = 3",
        "name = \"x\"\n[[steps]]\nid = \"a\"\ndescription = \"{{\"",
        "name = \"x\"\n[[steps]]\nid = \"a\"\ndescription = \"{% for %}\"",
        "name = \"x\"\n[[steps]]\nid = \"a\"\ndescription = \"{{ a[ }}\"",
        "name = \"x\"\n[vars]\nX = []\n",
        "name = \"x\"\n[[steps]]\nid = \"a\"\ndescription = '''{{ x.}}'''\ntimeout = \"-1s\"",
    ] {
        let _ = problems(text);
        assert!(
            !codes(text).is_empty() || text.contains("description = \"x\""),
            "{text:?} has problems"
        );
    }
}

#[test]
fn a_bad_enumeration_value_does_not_hide_the_problems_after_it() {
    let text = "name = \"r\"\n[[rules]]\nid = \"broken\"\npriority = \"P9\"\nwhen = \"system.memory.availble_mb < 500\"\nmessage = \"x\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\nneeds = [\"b\"]\n";
    let found = problems(text);
    let summary: Vec<(usize, &str)> = found.iter().map(|p| (p.0, p.3.as_str())).collect();
    assert_eq!(summary.len(), 3, "{summary:?}");
    assert_eq!(
        summary[0],
        (
            4,
            "`priority` in [[rules]] \"broken\" must be one of \"P0\", \"P1\", \"P2\", \"P3\", \"P4\", \"info\", not \"P9\""
        )
    );
    assert_eq!(
        summary[1].0, 5,
        "the rule's CEL is still checked: {summary:?}"
    );
    assert!(
        summary[1].1.contains("system.memory.availble_mb"),
        "{summary:?}"
    );
    assert_eq!(summary[2].0, 10, "and the DAG: {summary:?}");
}

#[test]
fn agent_readiness_settings_are_checked() {
    let text = "name = \"n\"\n[agent]\nready = \"  \"\nready_timeout = \"soon\"\nsubmit_delay = \"300ms\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\n";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    // serde stops at the first bad value; fix it and the blank text shows.
    assert_eq!((found[0].0, found[0].1), (4, 17), "{found:?}");
    assert!(found[0].3.contains("`soon` is not a duration"), "{found:?}");

    let text = text.replace("\"soon\"", "\"90s\"");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, column, code, message, help) = &found[0];
    assert_eq!((*line, *column), (3, 9));
    assert_eq!(code, "retort::bad_value");
    assert_eq!(
        message,
        "`ready` in [agent] is blank, so every screen would show it"
    );
    assert!(
        help.contains("the text the agent shows when it waits for input"),
        "{help}"
    );
}

#[test]
fn terminal_settings_of_a_headless_agent_are_warned_about() {
    let text = "name = \"n\"\n[agent]\nbackend = \"headless\"\nready = \"agent>\"\nsubmit_delay = \"1s\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\n";
    let found: Vec<(usize, usize, String)> = problems(text)
        .into_iter()
        .map(|(line, column, code, ..)| (line, column, code))
        .collect();
    let warning = "retort::unused_agent_setting".to_string();
    assert_eq!(found, [(4, 9, warning.clone()), (5, 16, warning)]);
    let message = &problems(text)[0].3;
    assert_eq!(
        message,
        "`ready` in [agent] does nothing with backend = \"headless\""
    );
    // With the tmux backend they are used.
    assert!(problems(&text.replace("headless", "tmux")).is_empty());
}
