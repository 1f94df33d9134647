//! `retort preflight`: the snapshot as markdown or JSON, configured by a
//! formula's `[preflight]` table; the same JSON a run saves as `snapshot.json`.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{Sandbox, scripted_agent, seed_formula, stderr, stdout};

const SECTIONS: [&str; 11] = [
    "system",
    "docker",
    "tmux",
    "phase_files",
    "locks",
    "logs",
    "git",
    "escalations",
    "forge",
    "ci",
    "commands",
];

/// Every field path of a JSON value, array elements as `[]`.
fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{prefix}.{key}");
                out.insert(path.clone());
                paths(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn json_has_every_section_each_ok_or_unavailable_with_a_reason() {
    let sandbox = Sandbox::new();
    let output = sandbox.retort(&["preflight", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    for section in SECTIONS {
        let status = json[section]["status"].as_str().unwrap();
        let reason = &json[section]["reason"];
        match status {
            "ok" => {}
            "unavailable" => assert!(reason.is_string(), "{section} has no reason"),
            other => panic!("{section} is {other}: {reason}"),
        }
    }
    assert!(json["system"]["memory"]["total_mb"].as_u64().unwrap() > 0);
    // The sandbox's tmux server is not running, and nothing is configured for the forge.
    assert_eq!(json["tmux"]["status"], "unavailable");
    assert_eq!(json["forge"]["status"], "unavailable");
}

#[test]
fn markdown_follows_the_formulas_preflight_table() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    std::fs::create_dir(work.join("logs")).unwrap();
    std::fs::write(work.join("logs/dev.log"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(
        work.join("check.toml"),
        r#"name = "check"
[[steps]]
id = "look"
description = "Look."
[preflight]
timeout = "3s"
[preflight.docker]
enabled = false
[preflight.logs]
globs = ["logs/*.log"]
lines = 2
[[preflight.commands]]
name = "greeting"
run = ["echo", "hello from a command"]
"#,
    )
    .unwrap();
    let output = sandbox
        .retort(&["preflight", "--formula", "check.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for heading in [
        "### System",
        "### Docker",
        "### tmux",
        "### Phase files",
        "### Lock files",
        "### Logs",
        "### Git",
        "### Escalations",
        "### Forge",
        "### CI",
        "### Commands",
    ] {
        assert!(
            text.contains(&format!("\n{heading}\n")),
            "{heading} missing:\n{text}"
        );
    }
    assert!(
        text.contains("**Status: unavailable** — disabled: the formula's [preflight.docker] table says enabled = false"),
        "{text}"
    );
    assert!(
        text.contains("last 2 lines:\n\n```text\ntwo\nthree\n```"),
        "{text}"
    );
    assert!(
        text.contains("**greeting** (`echo hello from a command`): exit status 0"),
        "{text}"
    );
    assert!(
        text.contains("```text\nhello from a command\n```"),
        "{text}"
    );
}

#[test]
fn an_invalid_preflight_table_is_an_invalid_formula() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.work().join("bad.toml"),
        "name = \"bad\"\n[[steps]]\nid = \"a\"\ndescription = \"A.\"\n[preflight.logs]\nglob = [\"*.log\"]\n",
    )
    .unwrap();
    let output = sandbox
        .retort(&["preflight", "--formula", "bad.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown key `glob` in [preflight.logs]"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn a_runs_snapshot_json_is_what_preflight_json_prints() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.work().join("AGENTS.md"), "# Agents\n").unwrap();
    let formula = seed_formula();
    let state = sandbox.state();
    let run = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--agent",
            &scripted_agent(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.run_dir().join("snapshot.json")).unwrap(),
    )
    .unwrap();
    let printed = sandbox.retort(&["preflight", "--json"]).output().unwrap();
    let printed: Value = serde_json::from_str(&stdout(&printed)).unwrap();

    // Same sections and the same fields (lists may differ in length between
    // the two moments, so compare the fields of their elements).
    let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
    paths(&saved, "", &mut a);
    paths(&printed, "", &mut b);
    // The run's own tmux session existed while its snapshot was taken; panes and all.
    let strip = |set: BTreeSet<String>| -> BTreeSet<String> {
        set.into_iter()
            .filter(|p| !p.starts_with(".tmux.sessions"))
            .collect()
    };
    assert_eq!(strip(a), strip(b));
    for section in SECTIONS {
        assert!(saved[section]["status"].is_string(), "{section}");
    }
    // The journal records the health lines of the new sections too.
    let journal_dir = state.join("journal/run-supervisor");
    let journal = std::fs::read_dir(&journal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = std::fs::read_to_string(journal).unwrap();
    assert!(journal.contains("Phase files: "), "{journal}");
}
