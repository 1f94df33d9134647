//! The formulas for the founding routines (`formulas/`): checked clean, and
//! each run end to end with the scripted agent against a real working
//! directory: the security review finds a credential and a loose
//! permission, the maintenance pass proposes compressing a large log, the
//! daily update reviews, and the weekly report gets the report of those
//! runs in its prompt.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{Sandbox, scripted_agent, stderr, stdout};

fn formula(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("formulas")
        .join(name)
}

fn run(sandbox: &Sandbox, name: &str, vars: &[&str]) -> Output {
    let path = formula(name);
    let agent = scripted_agent();
    let state = sandbox.state();
    let mut args = vec![
        "run",
        path.to_str().unwrap(),
        "--backend",
        "headless",
        "--agent",
        &agent,
        "--state-dir",
        state.to_str().unwrap(),
    ];
    for var in vars {
        args.extend(["--var", var]);
    }
    sandbox.retort(&args).output().unwrap()
}

/// The prompt of `step` in the newest run of `formula`.
fn prompt(sandbox: &Sandbox, formula: &str, step: &str) -> String {
    let output = sandbox
        .retort(&[
            "history",
            formula,
            "--limit",
            "1",
            "--format",
            "json",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let run_id = runs[0]["run_id"].as_str().unwrap();
    let path = sandbox
        .state()
        .join("runs")
        .join(run_id)
        .join("prompts")
        .join(format!("{step}.md"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_routine_formulas_check_clean_and_the_seed_is_unchanged() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.work().join("AGENTS.md"), "# Factory\n").unwrap();
    let dir = formula("");
    let output = sandbox
        .retort(&["check", dir.to_str().unwrap(), "--deny", "warnings"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("checked 6 formulas: 0 errors, 0 warnings"),
        "{}",
        stderr(&output)
    );

    let seed = std::fs::read("/work/shared/formulas/run-supervisor.toml");
    if let Ok(seed) = seed {
        assert_eq!(std::fs::read(formula("run-supervisor.toml")).unwrap(), seed);
    }
    // Every routine says when it runs.
    let output = sandbox
        .retort(&[
            "schedule",
            "list",
            dir.to_str().unwrap(),
            "--format",
            "json",
            "--count",
            "1",
        ])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in [
        "daily-update",
        "maintenance",
        "security-review",
        "supervisor",
        "weekly-report",
    ] {
        assert!(names.contains(&name), "{name} has a schedule: {names:?}");
    }
}

#[test]
fn each_routine_runs_with_the_scripted_agent_and_the_weekly_report_reads_their_runs() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    std::fs::write(work.join("AGENTS.md"), "# Factory\n").unwrap();
    let secret = "Zq8rT2vLx9Kp4mWn";
    std::fs::write(
        work.join("notes.md"),
        format!("deploy notes\napi_key = \"{secret}\"\n"),
    )
    .unwrap();
    std::fs::write(work.join(".env"), "TOKEN=x\n").unwrap();
    std::fs::set_permissions(work.join(".env"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir_all(work.join("logs")).unwrap();
    std::fs::write(work.join("logs/agent.log"), "line\n".repeat(1000)).unwrap();

    // Security review: both scans find something; the agent is told file
    // names, never the secret.
    let output = run(&sandbox, "security-review.toml", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let review = prompt(&sandbox, "security-review", "review");
    assert!(review.contains("credentials-in-files"), "{review}");
    assert!(review.contains("./notes.md"), "{review}");
    assert!(review.contains("loose-permissions"), "{review}");
    assert!(review.contains("./.env"), "{review}");
    assert!(
        !review.contains(secret),
        "the credential itself never reaches a prompt"
    );

    // Maintenance: the log is over a ceiling of 0 MB: compressing it is
    // proposed, not run.
    let output = run(
        &sandbox,
        "maintenance.toml",
        &["log_ceiling_mb=0", "log_quiet_seconds=0"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = sandbox
        .retort(&[
            "proposals",
            "--format",
            "json",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let proposals: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(proposals.as_array().unwrap().len(), 1, "{proposals}");
    assert_eq!(proposals[0]["action"], "compress-log");
    assert_eq!(proposals[0]["argv"][0], "gzip");
    assert!(
        proposals[0]["argv"][2]
            .as_str()
            .unwrap()
            .ends_with("logs/agent.log")
    );
    assert!(
        work.join("logs/agent.log").exists(),
        "nothing ran without a human"
    );

    // Daily update: its gate is always open; every step runs.
    let output = run(&sandbox, "daily-update.toml", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(prompt(&sandbox, "daily-update", "config-review").contains("retort check formulas/"));

    // Weekly report: the report of the three runs above is in its prompt.
    let output = run(&sandbox, "weekly-report.toml", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let analyse = prompt(&sandbox, "weekly-report", "analyse");
    assert!(analyse.contains("# retort report:"), "{analyse}");
    for section in ["## daily-update", "## maintenance", "## security-review"] {
        assert!(analyse.contains(section), "{section} in {analyse}");
    }
    assert!(analyse.contains("proposals: 1 proposed"), "{analyse}");
    assert!(
        analyse.contains("| credentials-in-files[credential-scan] | P1 | 1 |"),
        "{analyse}"
    );
}
