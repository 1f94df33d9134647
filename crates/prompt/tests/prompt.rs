//! Prompts: what each step's agent receives.

use std::collections::BTreeMap;
use std::path::Path;

use retort_check::parse_source;
use retort_decide::decide;
use retort_formula::dag::StepDag;
use retort_formula::formula::DEFAULT_AGENT_COMMAND;
use retort_preflight::Snapshot;
use retort_prompt::context::read_context_files;
use retort_prompt::prompt::{PromptError, RunInfo, render_agent_command, render_prompts};

const FORMULA: &str = r#"
name = "check"
description = "Checks the machine."
model = "sonnet"
[context]
files = ["AGENTS.md", "missing.md"]
[[steps]]
id = "look"
title = "Look around"
description = "Free memory: {{ preflight.system.memory.available_mb }} MB; run {{ run.id }}."
[[steps]]
id = "tell"
title = "Tell someone"
description = "Say what you saw."
needs = ["look"]
"#;

fn snapshot() -> Snapshot {
    let mut system = retort_preflight::SystemSection {
        status: retort_preflight::CollectorStatus::Ok,
        ..Default::default()
    };
    system.memory.available_mb = 1234;
    system.memory.total_mb = 8000;
    Snapshot {
        hostname: "factory-1".into(),
        system,
        ..Default::default()
    }
}

#[test]
fn the_first_prompt_opens_the_run_and_every_prompt_ends_with_the_signal_footer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("AGENTS.md"), "Use ``` fences freely.\n").unwrap();
    let loaded = parse_source(Path::new("check.toml"), FORMULA.into()).unwrap();
    let dag = StepDag::check(&loaded.formula).unwrap();
    let (files, warnings) = read_context_files(&loaded.formula, dir.path());
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("context file `missing.md` is left out of the prompt"));

    let run = RunInfo {
        id: "20261121-112000-3fa9".into(),
        dir: "/state/runs/x".into(),
        phase_file: "/state/check.phase".into(),
    };
    let prompts = render_prompts(
        &loaded.formula,
        &dag,
        &snapshot(),
        &files,
        &run,
        &BTreeMap::new(),
        &decide::fresh(&loaded.formula, &snapshot()).unwrap(),
    )
    .unwrap();

    assert_eq!(prompts.len(), 2);
    let first = &prompts[0].text;
    assert!(
        first.starts_with("# check\n\nChecks the machine.\n"),
        "{first}"
    );
    assert!(first.contains("in this order: look, tell."), "{first}");
    assert!(
        first.contains("## Context: AGENTS.md\n\n````\nUse ``` fences freely.\n````\n"),
        "{first}"
    );
    assert!(first.contains("## Preflight snapshot"), "{first}");
    assert!(first.contains("1234 MB available of 8000 MB"), "{first}");
    assert!(first.contains("## Step 1 of 2: Look around (`look`)\n\nFree memory: 1234 MB; run 20261121-112000-3fa9.\n"), "{first}");
    assert!(
        first.contains("Then wait: the next step will be sent to you."),
        "{first}"
    );

    let second = &prompts[1].text;
    assert!(
        second.starts_with("## Step 2 of 2: Tell someone (`tell`)\n\nSay what you saw.\n"),
        "{second}"
    );
    assert!(!second.contains("Preflight snapshot"), "{second}");
    assert!(second.contains("When step `tell` is complete"), "{second}");
    assert!(
        second
            .trim_end()
            .ends_with("This is the last step: after signalling, you are finished."),
        "{second}"
    );
    for prompt in &prompts {
        for command in [
            "retort signal done",
            "retort signal failed --reason",
            "retort signal escalate --reason",
        ] {
            assert!(
                prompt.text.contains(command),
                "{} lacks {command}",
                prompt.step
            );
        }
    }
}

#[test]
fn a_description_that_is_not_a_valid_template_names_its_step() {
    let text = FORMULA.replace(
        "Say what you saw.",
        "{{ preflight.system.memory.available_mb ",
    );
    // `retort check` refuses this formula; rendering it anyway names the step.
    let formula = retort_formula::formula::Formula::parse(&text).unwrap();
    let dag = StepDag::check(&formula).unwrap();
    let error = render_prompts(
        &formula,
        &dag,
        &snapshot(),
        &[],
        &RunInfo::placeholder(),
        &BTreeMap::new(),
        &decide::fresh(&formula, &snapshot()).unwrap(),
    )
    .unwrap_err();
    let PromptError::Description { step, .. } = &error else {
        panic!("expected a description error, got {error:?}");
    };
    assert_eq!(step, "tell");
    assert!(
        error
            .to_string()
            .starts_with("cannot render the description of step `tell`")
    );
}

#[test]
fn the_agent_command_is_a_template_over_the_model() {
    let loaded = parse_source(Path::new("check.toml"), FORMULA.into()).unwrap();
    assert_eq!(
        render_agent_command(
            DEFAULT_AGENT_COMMAND,
            &loaded.formula,
            loaded.formula.model.as_deref(),
            &BTreeMap::new()
        )
        .unwrap(),
        "claude --model sonnet"
    );
    let without_model = FORMULA.replace("model = \"sonnet\"\n", "");
    let loaded = parse_source(Path::new("check.toml"), without_model).unwrap();
    assert_eq!(
        render_agent_command(
            DEFAULT_AGENT_COMMAND,
            &loaded.formula,
            loaded.formula.model.as_deref(),
            &BTreeMap::new()
        )
        .unwrap(),
        "claude"
    );
    assert_eq!(
        render_agent_command(
            "my-agent --name {{ formula.name }}",
            &loaded.formula,
            None,
            &BTreeMap::new()
        )
        .unwrap(),
        "my-agent --name check"
    );
}

#[test]
fn vars_are_at_the_top_level_and_meta_is_meta() {
    let text = r#"
name = "endpoint"
[vars.method_name]
default = "get_status"
[vars.route]
default = "/status"
[meta]
owner = "ops"
since = 2026-11-21T11:20:00Z
links = { runbook = "docs/runbook.md" }
[agent]
command = "agent --for {{ method_name }} --owner {{ meta.owner }}"
[[steps]]
id = "write"
description = "Write `{{method_name}}` for {{ vars.route }} ({{ route }}); ask {{ meta.owner }} since {{ meta.since }}, see {{ meta.links.runbook }}."
"#;
    let loaded = parse_source(Path::new("endpoint.toml"), text.into()).unwrap();
    let dag = StepDag::check(&loaded.formula).unwrap();
    let vars: BTreeMap<String, String> = [
        ("method_name".to_string(), "get_health".to_string()),
        ("route".to_string(), "/health".to_string()),
    ]
    .into();
    let prompts = render_prompts(
        &loaded.formula,
        &dag,
        &snapshot(),
        &[],
        &RunInfo::placeholder(),
        &vars,
        &decide::fresh(&loaded.formula, &snapshot()).unwrap(),
    )
    .unwrap();
    assert!(
        prompts[0].text.contains(
            "Write `get_health` for /health (/health); ask ops since 2026-11-21T11:20:00Z, see docs/runbook.md."
        ),
        "{}",
        prompts[0].text
    );
    let command = loaded.formula.agent.command.as_ref().unwrap().get_ref();
    assert_eq!(
        render_agent_command(command, &loaded.formula, None, &vars).unwrap(),
        "agent --for get_health --owner ops"
    );
}

#[test]
fn a_var_with_a_context_name_never_hides_the_context() {
    // `retort check` refuses such a var; rendering it anyway keeps retort's `step`.
    let text = "name = \"n\"\n[vars]\nstep = \"mine\"\nfirst = \"mine\"\n[[steps]]\nid = \"a\"\ndescription = \"{{ step.id }} {{ vars.step }}\"\n";
    let formula = retort_formula::formula::Formula::parse(text).unwrap();
    let dag = StepDag::check(&formula).unwrap();
    let vars: BTreeMap<String, String> = [
        ("step".to_string(), "mine".to_string()),
        ("first".to_string(), "mine".to_string()),
    ]
    .into();
    let prompts = render_prompts(
        &formula,
        &dag,
        &snapshot(),
        &[],
        &RunInfo::placeholder(),
        &vars,
        &decide::fresh(&formula, &snapshot()).unwrap(),
    )
    .unwrap();
    assert!(
        prompts[0].text.contains("\n\na mine\n"),
        "{}",
        prompts[0].text
    );
    assert!(prompts[0].text.starts_with("# n"), "`first` stays retort's");
}

#[test]
fn a_step_with_other_tools_opens_a_session_of_its_own() {
    use retort_prompt::prompt::opens_session;
    let text = r#"
name = "tools"
[[steps]]
id = "a"
description = "A."
[[steps]]
id = "b"
needs = ["a"]
description = "B."
[[steps]]
id = "c"
needs = ["b"]
description = "C."
allowed_tools = ["Bash(df -h)"]
[[steps]]
id = "d"
needs = ["c"]
description = "D."
allowed_tools = ["Bash(df -h)"]
[[steps]]
id = "e"
needs = ["d"]
description = "E."
allowed_tools = ["Bash(df -h)"]
disallowed_tools = ["WebFetch"]
"#;
    let loaded = parse_source(Path::new("tools.toml"), text.into()).unwrap();
    let dag = StepDag::check(&loaded.formula).unwrap();
    let opens: Vec<bool> = (0..5)
        .map(|position| opens_session(&loaded.formula, &dag, position))
        .collect();
    assert_eq!(opens, [true, false, true, false, true]);
}
