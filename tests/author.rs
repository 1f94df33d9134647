//! The authoring tools, end to end: `retort check`, `graph`, `schema`,
//! `--var`, and steps on another model running in their own session.

mod support;

use support::{Sandbox, scripted_agent, seed_formula, stderr, stdout};

fn write(sandbox: &Sandbox, name: &str, text: &str) -> std::path::PathBuf {
    let path = sandbox.work().join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn broken_formulas(sandbox: &Sandbox) {
    write(
        sandbox,
        "formulas/typos.toml",
        "name = \"typos\"\n[[steps]]\nid = \"a\"\ndescription = \"RAM {{ preflight.system.memroy }}\"\nneed = [\"b\"]\n",
    );
    write(
        sandbox,
        "formulas/nested/cycle.toml",
        "name = \"cycle\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\nneeds = [\"b\"]\n[[steps]]\nid = \"b\"\ndescription = \"B\"\nneeds = [\"a\"]\n",
    );
    write(
        sandbox,
        "formulas/fine.toml",
        "name = \"fine\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\n",
    );
    write(sandbox, "formulas/notes.md", "not a formula");
}

#[test]
fn check_reports_every_problem_of_every_file_in_a_directory() {
    let sandbox = Sandbox::new();
    broken_formulas(&sandbox);

    let output = sandbox
        .retort(&["check", "formulas"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    let report = stderr(&output);
    for expected in [
        "[formulas/typos.toml:4:23]",
        "uses `preflight.system.memroy`, which is not in its template context",
        "did you mean `memory`?",
        "[formulas/typos.toml:5:1]",
        "unknown key `need` in [[steps]] \"a\"",
        "did you mean `needs`?",
        "[formulas/nested/cycle.toml:5:10]",
        "steps form a cycle: a → b → a",
        "checked 3 formulas: 3 errors, 0 warnings",
    ] {
        assert!(report.contains(expected), "no {expected:?} in:\n{report}");
    }
    assert!(
        !report.contains("notes.md"),
        "only *.toml files are formulas"
    );
}

#[test]
fn check_json_carries_the_same_diagnostics() {
    let sandbox = Sandbox::new();
    broken_formulas(&sandbox);

    let diagnostics = sandbox.check_json(&["formulas"]);
    let rows: Vec<(String, u64, u64, String, String)> = diagnostics
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["severity"].as_str().unwrap().to_string(),
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = |file: &str, line, column, code: &str| {
        (
            file.to_string(),
            line,
            column,
            "error".to_string(),
            code.to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            expect(
                "formulas/nested/cycle.toml",
                5,
                10,
                "retort::formula::cycle"
            ),
            expect("formulas/typos.toml", 4, 23, "retort::unknown_variable"),
            expect("formulas/typos.toml", 5, 1, "retort::unknown_key"),
        ]
    );
    assert_eq!(diagnostics[2]["help"], "did you mean `needs`?");
    assert_eq!(
        diagnostics[2]["message"],
        "unknown key `need` in [[steps]] \"a\""
    );
}

#[test]
fn check_json_locates_a_misspelt_path_in_a_rule_message() {
    let sandbox = Sandbox::new();
    write(
        &sandbox,
        "disks.toml",
        r#"name = "disks"
[[steps]]
id = "look"
description = "Look."

[[rules]]
id = "disk-pressure"
priority = "P1"
each = "system.disks"
label = "item.mount"
when = "item.used_percent > 80"
message = """
Disk {{ item.mout }} at {{ item.used_percent }}%"""
"#,
    );

    let diagnostics = sandbox.check_json(&["disks.toml"]);
    assert_eq!(
        diagnostics,
        serde_json::json!([{
            "file": "disks.toml",
            "line": 13,
            "column": 9,
            "end_line": 13,
            "end_column": 18,
            "severity": "error",
            "code": "retort::unknown_variable",
            "message": "the message of rule `disk-pressure` uses `item.mout`, which is not in its template context",
            "help": "did you mean `mount`?",
            "labels": [{"line": 13, "column": 9, "end_line": 13, "end_column": 18, "message": "unknown"}],
        }])
    );
}

#[test]
fn check_json_locates_a_misspelt_item_field_in_an_action_command() {
    let sandbox = Sandbox::new();
    write(
        &sandbox,
        "panes.toml",
        r#"name = "panes"
[[steps]]
id = "look"
description = "Look."

[[rules]]
id = "dead-pane"
priority = "P2"
each = "tmux.sessions.filter(s, s.panes.exists(p, p.dead))"
label = "item.name"
when = "true"
message = "tmux session {{ item.name }} has a dead pane"
action = "kill-session"

[[actions]]
id = "kill-session"
run = [
  "tmux", "kill-session",
  "-t", "={{ item.nmae }}",
]
mode = "auto"
"#,
    );

    let diagnostics = sandbox.check_json(&["panes.toml"]);
    assert_eq!(
        diagnostics,
        serde_json::json!([{
            "file": "panes.toml",
            "line": 19,
            "column": 14,
            "end_line": 19,
            "end_column": 23,
            "severity": "error",
            "code": "retort::unknown_variable",
            "message": "the `run` of action `kill-session` uses `item.nmae`, which the items of rule `dead-pane` (`tmux.sessions.filter(s, s.panes.exists(p, p.dead))`) do not have",
            "help": "did you mean `name`?",
            "labels": [{"line": 19, "column": 14, "end_line": 19, "end_column": 23, "message": "unknown"}],
        }])
    );
}

#[test]
fn check_reports_the_problems_of_a_large_formula_at_their_lines() {
    // 1,200 steps, about 400 KiB: parsed in parts and checked on every
    // core. The problems sit far down the file, in different parts.
    let sandbox = Sandbox::new();
    let mut text = String::from("name = \"large\"\n");
    let mut lines = std::collections::BTreeMap::new();
    for i in 0..1_200 {
        let description = match i {
            700 => "RAM {{ preflight.system.memroy }}".to_string(),
            _ => format!(
                "Step {i}: {}",
                "check the journal and the locks. ".repeat(8)
            ),
        };
        text.push_str(&format!(
            "\n[[steps]]\nid = \"s{i}\"\ndescription = \"{description}\"\n"
        ));
        lines.insert(i, text.lines().count());
        match i {
            333 => text.push_str("need = [\"s1\"]\n"),
            1_100 => text.push_str("needs = [\"s1101\"]\n"),
            1_101 => text.push_str("needs = [\"s1100\"]\n"),
            _ if i > 0 => text.push_str(&format!("needs = [\"s{}\"]\n", i - 1)),
            _ => {}
        }
    }
    assert!(text.len() > 256 * 1024);
    write(&sandbox, "large.toml", &text);

    let diagnostics = sandbox.check_json(&["large.toml"]);
    let rows: Vec<(u64, String)> = diagnostics
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let line = |step: usize| lines[&step] as u64;
    assert_eq!(
        rows,
        [
            (line(333) + 1, "retort::unknown_key".to_string()),
            (line(700), "retort::unknown_variable".to_string()),
            (line(1_100) + 1, "retort::formula::cycle".to_string()),
        ],
        "{diagnostics:#}"
    );
    assert!(
        diagnostics[2]["message"]
            .as_str()
            .unwrap()
            .contains("s1100 → s1101 → s1100"),
        "{diagnostics:#}"
    );
}

#[test]
fn check_passes_a_good_formula_and_takes_vars() {
    let sandbox = Sandbox::new();
    let formula = seed_formula();
    let output = sandbox
        .retort(&["check", formula.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("checked 1 formula: 0 errors, 1 warning"),
        "{}",
        stderr(&output)
    );

    let vars = write(
        &sandbox,
        "vars.toml",
        "name = \"v\"\n[vars]\nROOM = { required = true }\n[[steps]]\nid = \"a\"\ndescription = \"Post to {{ vars.ROOM }}\"\n",
    );
    let output = sandbox
        .retort(&["check", vars.to_str().unwrap(), "--var", "ROM=x"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--var ROM: the formula declares no var `ROM`"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("did you mean --var ROOM=…?"),
        "{}",
        stderr(&output)
    );

    let output = sandbox.retort(&["check", "no-such-dir"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read no-such-dir"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn render_takes_vars_and_refuses_a_missing_required_one() {
    let sandbox = Sandbox::new();
    let formula = write(
        &sandbox,
        "vars.toml",
        "name = \"v\"\n[vars]\nROOM = { required = true }\nFLOOR = 500\n[[steps]]\nid = \"a\"\ndescription = \"Post to {{ vars.ROOM }} when RAM < {{ vars.FLOOR }} MB\"\n",
    );
    let output = sandbox
        .retort(&[
            "render",
            formula.to_str().unwrap(),
            "--var",
            "ROOM=!ops:example.org",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Post to !ops:example.org when RAM < 500 MB"),
        "{}",
        stdout(&output)
    );

    let output = sandbox
        .retort(&["render", formula.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("required var `ROOM` has no value"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("--var ROOM=VALUE"),
        "{}",
        stderr(&output)
    );

    let output = sandbox
        .retort(&["render", formula.to_str().unwrap(), "--var", "ROOM"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap refuses a malformed --var"
    );
    assert!(
        stderr(&output).contains("`ROOM` is not NAME=VALUE"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn graph_draws_layers_dot_and_mermaid() {
    let sandbox = Sandbox::new();
    let formula = write(
        &sandbox,
        "diamond.toml",
        "name = \"diamond\"\n[[steps]]\nid = \"look\"\ntitle = \"Look \\\"around\\\"\"\ndescription = \"x\"\n[[steps]]\nid = \"fix\"\ndescription = \"x\"\nneeds = [\"look\"]\n[[steps]]\nid = \"tell\"\ndescription = \"x\"\nneeds = [\"look\"]\n[[steps]]\nid = \"write\"\ndescription = \"x\"\nneeds = [\"fix\", \"tell\"]\n",
    );
    let path = formula.to_str().unwrap();
    let text = stdout(&sandbox.retort(&["graph", path]).output().unwrap());
    assert_eq!(
        text,
        "diamond: 4 steps in 3 layers, up to 4 at once, 2 sessions, on_failure = stop\n\nlayer 1  look  Look \"around\"  [session 1]\nlayer 2  fix  fix  (needs look)  [session 1]\n         tell  tell  (needs look)  [session 2]\nlayer 3  write  write  (needs fix, tell)  [session 1]\n"
    );
    let dot = stdout(
        &sandbox
            .retort(&["graph", path, "--format", "dot"])
            .output()
            .unwrap(),
    );
    assert!(dot.starts_with("digraph \"diamond\" {\n"), "{dot}");
    assert!(
        dot.contains("  \"look\" [label=\"look\\nLook \\\"around\\\"\\nsession 1\"];\n"),
        "{dot}"
    );
    assert!(
        dot.contains("  \"fix\" -> \"write\";\n  \"tell\" -> \"write\";\n"),
        "{dot}"
    );
    let mermaid = stdout(
        &sandbox
            .retort(&["graph", path, "--format", "mermaid"])
            .output()
            .unwrap(),
    );
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    assert!(
        mermaid.contains("  s0[\"look<br/>Look #quot;around#quot;<br/>session 1\"]\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("  s0 --> s1\n  s0 --> s2\n  s1 --> s3\n  s2 --> s3\n"),
        "{mermaid}"
    );
}

#[test]
fn graph_boxes_show_each_steps_session_condition_and_retries() {
    let sandbox = Sandbox::new();
    let formula = write(
        &sandbox,
        "fan.toml",
        r#"
name = "fan"
[[steps]]
id = "triage"
description = "x"
[[steps]]
id = "fix-disk"
description = "x"
needs = ["triage"]
when = """steps.triage.output.contains("disk")
  && system.disks.exists(d, d.used_percent > 90)"""
retries = 2
[[steps]]
id = "report"
description = "x"
needs = ["triage"]
session = "reporter"
"#,
    );
    let path = formula.to_str().unwrap();
    let dot = stdout(
        &sandbox
            .retort(&["graph", path, "--format", "dot"])
            .output()
            .unwrap(),
    );
    assert!(
        dot.contains(r#"  "triage" [label="triage\ntriage\nsession 1"];"#),
        "{dot}"
    );
    assert!(
        dot.contains(r#"  "fix-disk" [label="fix-disk\nfix-disk\nsession 1\nwhen steps.triage.output.contains(\"disk\") && system.disks.exists(d, d.used_percent > 90)\nretries 2", style=dashed];"#),
        "{dot}"
    );
    assert!(
        dot.contains(r#"  "report" [label="report\nreport\nsession reporter, 2"];"#),
        "{dot}"
    );
    let mermaid = stdout(
        &sandbox
            .retort(&["graph", path, "--format", "mermaid"])
            .output()
            .unwrap(),
    );
    assert!(
        mermaid.contains(r#"  s1["fix-disk<br/>fix-disk<br/>session 1<br/>when steps.triage.output.contains(#quot;disk#quot;) #amp;#amp; system.disks.exists(d, d.used_percent #gt; 90)<br/>retries 2"]"#),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(r#"  s2["report<br/>report<br/>session reporter, 2"]"#),
        "{mermaid}"
    );
    assert!(
        mermaid.ends_with("  classDef when stroke-dasharray: 5 5\n  class s1 when\n"),
        "{mermaid}"
    );
}

#[test]
fn schema_is_json_schema_of_the_formula_format() {
    let sandbox = Sandbox::new();
    let output = sandbox.retort(&["schema"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], "retort formula");
    let top: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "name",
        "description",
        "version",
        "model",
        "raw",
        "vars",
        "context",
        "agent",
        "steps",
    ] {
        assert!(top.contains(&key), "{key} missing from {top:?}");
    }
    let step = &schema["$defs"]["Step"]["properties"];
    for key in [
        "id",
        "title",
        "description",
        "needs",
        "timeout",
        "model",
        "raw",
    ] {
        assert!(
            step[key]["description"].is_string(),
            "step.{key} is documented"
        );
    }
}

#[test]
fn a_step_on_another_model_runs_in_its_own_session() {
    let sandbox = Sandbox::new();
    let formula = write(
        &sandbox,
        "models.toml",
        "name = \"models\"\nmodel = \"sonnet\"\n[agent]\ncommand = \"MODEL={{ model }} bash AGENT\"\n[[steps]]\nid = \"gather\"\ndescription = \"Model {{ model }}\"\n[[steps]]\nid = \"think\"\nmodel = \"opus\"\ndescription = \"Model {{ model }}\"\nneeds = [\"gather\"]\n[[steps]]\nid = \"report\"\ndescription = \"Model {{ model }}\"\nneeds = [\"think\"]\n"
            .replace("bash AGENT", &scripted_agent())
            .as_str(),
    );
    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let received = sandbox.received();
    let names: Vec<&str> = received.iter().map(|(n, _)| n.as_str()).collect();
    // Three sessions, in run order (the agent numbers prompts across them).
    assert_eq!(names, ["1-gather.txt", "2-think.txt", "3-report.txt"]);
    let by_step = |id: &str| {
        &received
            .iter()
            .find(|(n, _)| n.ends_with(&format!("-{id}.txt")))
            .unwrap()
            .1
    };
    assert!(by_step("gather").contains("Model sonnet"));
    assert!(by_step("think").contains("Model opus"));
    assert!(by_step("report").contains("Model sonnet"));
    for id in ["gather", "think", "report"] {
        assert!(
            by_step(id).starts_with("# models\n"),
            "{id} opens a session:\n{}",
            by_step(id)
        );
    }
    let run_dir = sandbox.run_dir();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    let sessions = summary["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert!(sessions[1].as_str().unwrap().ends_with("-2"));
    for file in ["agent-pane.txt", "agent-pane-2.txt", "agent-pane-3.txt"] {
        assert!(run_dir.join(file).exists(), "{file}");
    }
    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "tmux is left clean"
    );
}
