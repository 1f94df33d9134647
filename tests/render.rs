//! `retort render` and `retort run --dry-run`: the prompts and the plan,
//! with no side effects; and how bad formulas and invocations are refused.

mod support;

use support::{Sandbox, seed_formula, stderr, stdout, tree};

fn meminfo_mb(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024
}

#[test]
fn render_prints_five_prompts_in_order_with_this_machines_figures() {
    let sandbox = Sandbox::new();
    let state = sandbox.path("never-created");
    let formula = seed_formula();

    let output = sandbox
        .retort(&["render", formula.to_str().unwrap()])
        .env("RETORT_STATE_DIR", &state)
        .output()
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr:\n{}",
        stderr(&output)
    );
    let text = stdout(&output);
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("==> step "))
        .collect();
    assert_eq!(
        headers,
        [
            "==> step preflight: Review pre-collected metrics",
            "==> step health-assessment: Evaluate health of each subsystem",
            "==> step decide-actions: Fix what you can, escalate what you cannot",
            "==> step report: Post health summary to Matrix",
            "==> step journal: Write health journal entry",
        ]
    );
    // The snapshot's total memory is this machine's.
    let total = meminfo_mb("MemTotal:");
    assert!(
        text.contains(&format!("MB available of {total} MB")),
        "no `of {total} MB` in:\n{text}"
    );
    assert!(text.contains("- Disk /: "), "{text}");
    assert!(text.contains("- Load: "), "{text}");
    // A missing context file is a warning, not an error.
    assert!(
        stderr(&output).contains("warning: context file `AGENTS.md` is left out of the prompt"),
        "{}",
        stderr(&output)
    );
    assert!(!state.exists(), "render wrote to the state directory");
    assert_eq!(
        tree(&sandbox.work()),
        Vec::<String>::new(),
        "render wrote to the working directory"
    );
    assert_eq!(sandbox.tmux_sessions(), Vec::<String>::new());
}

#[test]
fn render_one_step_prints_only_that_prompt() {
    let sandbox = Sandbox::new();
    let formula = seed_formula();

    let output = sandbox
        .retort(&["render", formula.to_str().unwrap(), "--step", "report"])
        .output()
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr:\n{}",
        stderr(&output)
    );
    let text = stdout(&output);
    assert!(
        text.starts_with("==> step report: Post health summary to Matrix\n## Step 4 of 5"),
        "{text}"
    );
    assert_eq!(text.matches("==> step ").count(), 1);

    let output = sandbox
        .retort(&["render", formula.to_str().unwrap(), "--step", "reprot"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("has no step `reprot`; its steps are: preflight, health-assessment, decide-actions, report, journal"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn descriptions_are_templates_over_the_snapshot() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("templated.toml");
    std::fs::write(
        &formula,
        r#"
name = "templated"
model = "opus"
[[steps]]
id = "look"
title = "Look at memory"
description = """
Total memory: {{ preflight.system.memory.total_mb }} MB.
Model: {{ model }}. Step {{ step.number }} of {{ step.count }}.
{% if preflight.system.memory.total_mb > 0 %}The machine has memory.{% endif %}
"""
"#,
    )
    .unwrap();

    let output = sandbox
        .retort(&["render", formula.to_str().unwrap()])
        .output()
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr:\n{}",
        stderr(&output)
    );
    let text = stdout(&output);
    let total = meminfo_mb("MemTotal:");
    assert!(
        text.contains(&format!("Total memory: {total} MB.")),
        "{text}"
    );
    assert!(text.contains("Model: opus. Step 1 of 1."), "{text}");
    assert!(text.contains("The machine has memory."), "{text}");
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let sandbox = Sandbox::new();
    let formula = seed_formula();

    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--dry-run",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr:\n{}",
        stderr(&output)
    );
    let text = stdout(&output);
    assert!(text.starts_with("Plan for run-supervisor ("), "{text}");
    assert!(
        text.contains("  agent       claude --model sonnet\n"),
        "{text}"
    );
    assert!(
        text.contains("  session     retort-run-supervisor-"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  phase file  {}\n",
            sandbox.state().join("run-supervisor.phase").display()
        )),
        "{text}"
    );
    let steps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("    ") && l.contains(". ") && l.contains(" — "))
        .collect();
    assert_eq!(steps.len(), 5, "{text}");
    assert!(steps[0].starts_with("    1. preflight — "), "{text}");
    assert!(steps[1].ends_with(", needs preflight)"), "{text}");
    assert_eq!(
        tree(&sandbox.state()),
        Vec::<String>::new(),
        "dry run wrote state"
    );
    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "dry run started tmux"
    );
}

#[test]
fn state_dir_defaults_to_retort_state_dir_then_xdg_state_home() {
    let sandbox = Sandbox::new();
    let formula = seed_formula();
    let dry_run = |envs: &[(&str, &std::path::Path)]| {
        let mut command = sandbox.retort(&["run", formula.to_str().unwrap(), "--dry-run"]);
        command.env_remove("XDG_STATE_HOME");
        for (key, value) in envs {
            command.env(key, value);
        }
        stdout(&command.output().unwrap())
    };

    let explicit = sandbox.path("explicit");
    let xdg = sandbox.path("xdg");
    let home = sandbox.path("home");
    let both = dry_run(&[("RETORT_STATE_DIR", &explicit), ("XDG_STATE_HOME", &xdg)]);
    assert!(
        both.contains(&format!("  state dir   {}\n", explicit.display())),
        "{both}"
    );
    let xdg_only = dry_run(&[("XDG_STATE_HOME", &xdg)]);
    assert!(
        xdg_only.contains(&format!("  state dir   {}/retort\n", xdg.display())),
        "{xdg_only}"
    );
    let home_only = dry_run(&[("HOME", &home)]);
    assert!(
        home_only.contains(&format!(
            "  state dir   {}/.local/state/retort\n",
            home.display()
        )),
        "{home_only}"
    );
}

#[test]
fn an_invalid_formula_is_refused_with_status_2_naming_every_problem() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("broken.toml");
    std::fs::write(
        &formula,
        r#"name = "broken"
[[steps]]
id = "a"
description = "A"
needs = ["c"]
[[steps]]
id = "b"
description = "B"
needs = ["a"]
[[steps]]
id = "c"
description = "C"
needs = ["b"]
[[steps]]
id = "d"
description = "D"
needs = ["aa", "d"]
[[steps]]
id = "a"
description = "again"
"#,
    )
    .unwrap();

    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let report = stderr(&output);
    assert!(report.contains("broken.toml: 4 errors"), "{report}");
    assert!(report.contains("duplicate step id `a`"), "{report}");
    assert!(
        report.contains("step `d` needs `aa`, which is not a step of this formula"),
        "{report}"
    );
    assert!(report.contains("did you mean `a`?"), "{report}");
    assert!(report.contains("step `d` needs itself"), "{report}");
    assert!(
        report.contains("steps form a cycle: a → c → b → a"),
        "{report}"
    );
    assert!(
        report.contains("broken.toml:5:"),
        "located at the needs entry: {report}"
    );
    // The DAG is checked beside the preflight, after the run claimed its
    // formula: the phase file says why the run failed (no earlier
    // `PHASE:done` stands for it), and nothing else of a run is written.
    let phase = std::fs::read_to_string(sandbox.state().join("broken.phase")).unwrap();
    assert!(phase.starts_with("PHASE:failed\n"), "{phase}");
    assert!(
        phase.contains("broken.toml: 4 errors") && phase.contains("retort check"),
        "{phase}"
    );
    let runs = sandbox.state().join("runs");
    assert!(!runs.read_dir().unwrap().any(|_| true), "no run directory");
    assert!(
        !sandbox.state().join("journal/broken").exists(),
        "no journal entry"
    );
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("typo.toml");
    std::fs::write(
        &formula,
        "name = \"typo\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\nneed = [\"b\"]\n",
    )
    .unwrap();

    let output = sandbox
        .retort(&["render", formula.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let report = stderr(&output);
    assert!(
        report.contains("unknown key `need` in [[steps]] \"a\""),
        "{report}"
    );
    assert!(report.contains("did you mean `needs`?"), "{report}");
    assert!(report.contains("typo.toml:5:1"), "{report}");
}

#[test]
fn signal_outside_a_run_is_refused() {
    let sandbox = Sandbox::new();
    let output = sandbox.retort(&["signal", "done"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("RETORT_RUN_DIR is not set"),
        "{}",
        stderr(&output)
    );
}
