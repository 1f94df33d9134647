//! `schedule = "…"` and `retort schedule`, end to end: the key checked
//! with a located error; a crontab block whose entry, run as cron runs it,
//! runs the formula quietly in its working directory with the env file's
//! secrets; systemd units that `systemd-analyze verify` accepts; Nomad jobs;
//! and `retort schedule list`, on the formulas retort ships too.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{Sandbox, retort, stderr, stdout};

/// A scheduled formula whose gate stays closed while the machine has any
/// memory at all; its one preflight command reports the directory it ran in
/// and a secret from the environment.
const NIGHTLY: &str = r#"
name = "nightly"
description = "A scheduled formula"
schedule = "*/20 * * * *"

[[preflight.commands]]
name = "where"
run = ["sh", "-c", "pwd; printf '%s' \"$FORGE_TOKEN\""]

[[rules]]
id = "no-memory"
priority = "P0"
when = "system.memory.total_mb < 1"
message = "no memory"

[[steps]]
id = "look"
description = "Look at the factory."
"#;

/// A formula run by hand only.
const MANUAL: &str = r#"
name = "manual"
[[steps]]
id = "look"
description = "Look."
"#;

/// A sandbox whose `work/formulas` holds NIGHTLY, MANUAL and a TOML file
/// that is no formula, plus an env file; returns the formulas directory.
fn factory(sandbox: &Sandbox) -> PathBuf {
    let formulas = sandbox.work().join("formulas");
    std::fs::create_dir_all(&formulas).unwrap();
    std::fs::write(formulas.join("nightly.toml"), NIGHTLY).unwrap();
    std::fs::write(formulas.join("manual.toml"), MANUAL).unwrap();
    std::fs::write(
        formulas.join("Cargo.toml"),
        "[package]\nname = \"x\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(sandbox.path("secrets.env"), "FORGE_TOKEN='s3cr3t value'\n").unwrap();
    formulas
}

/// `retort schedule ARGS --state-dir STATE --env-file ENV` in the sandbox.
fn schedule(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut all = vec!["schedule"];
    all.extend_from_slice(args);
    let state = sandbox.state();
    let env = sandbox.path("secrets.env");
    all.extend_from_slice(&[
        "--state-dir",
        state.to_str().unwrap(),
        "--env-file",
        env.to_str().unwrap(),
    ]);
    sandbox.retort(&all).output().unwrap()
}

fn ok(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    stdout(output)
}

#[test]
fn check_underlines_the_bad_part_of_a_schedule() {
    let sandbox = Sandbox::new();
    let bad =
        "name = \"bad\"\nschedule = \"0 25 * * *\"\n[[steps]]\nid = \"a\"\ndescription = \"x\"\n";
    std::fs::write(sandbox.work().join("bad.toml"), bad).unwrap();

    let diagnostics = sandbox.check_json(&["bad.toml"]);

    let all = diagnostics.as_array().unwrap();
    assert_eq!(all.len(), 1, "{diagnostics:#}");
    let d = &all[0];
    let message = d["message"].as_str().unwrap();
    assert!(message.starts_with("`schedule`: "), "{message}");
    assert!(message.contains("25"), "{message}");
    assert_eq!(d["severity"], "error");
    // Line 2, at the `25` inside the string.
    assert_eq!(d["line"], 2);
    let column = "schedule = \"0 25".find("25").unwrap() + 1;
    assert_eq!(d["column"], column, "{d:#}");
    assert!(d["help"].as_str().unwrap().contains("*/20 * * * *"));

    // The text report underlines it, and `retort schedule` refuses it.
    let output = sandbox.retort(&["check", "bad.toml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("`schedule`: "),
        "{}",
        stderr(&output)
    );
    let output = sandbox.retort(&["schedule", "bad.toml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`schedule`: "),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");
}

/// The one crontab entry of `block`, split into its schedule and command.
fn crontab_entry(block: &str) -> (String, String) {
    let entries: Vec<&str> = block
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(entries.len(), 1, "one entry, for nightly only:\n{block}");
    let fields: Vec<&str> = entries[0].splitn(6, ' ').collect();
    (fields[..5].join(" "), fields[5].to_string())
}

#[test]
fn crontab_entry_runs_the_formula_as_cron_would_quietly_with_its_secrets() {
    let sandbox = Sandbox::new();
    let formulas = factory(&sandbox);

    let block = ok(&schedule(&sandbox, &["formulas"]));

    assert!(block.starts_with("# BEGIN retort schedule"), "{block}");
    assert!(block.ends_with("# END retort schedule\n"), "{block}");
    assert!(
        !block.contains("manual"),
        "unscheduled formulas are left out:\n{block}"
    );
    assert!(
        !block.contains("s3cr3t"),
        "no secret in the crontab:\n{block}"
    );
    let (when, command) = crontab_entry(&block);
    assert_eq!(when, "*/20 * * * *");
    for path in [
        retort().to_string(),
        formulas.join("nightly.toml").display().to_string(),
        sandbox.state().display().to_string(),
        sandbox.path("secrets.env").display().to_string(),
        sandbox.work().display().to_string(),
    ] {
        assert!(
            command.contains(&format!("'{path}'")),
            "absolute `{path}` in:\n{command}"
        );
    }
    assert!(
        command.contains(" run ") && command.contains(" --quiet "),
        "{command}"
    );

    // Run it as cron does: `/bin/sh -c`, a minimal environment, in `/`.
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(command.replace(r"\%", "%"))
        .current_dir("/")
        .env_clear()
        .env("HOME", sandbox.root.path())
        .env("PATH", "/usr/bin:/bin")
        .env("SHELL", "/bin/sh")
        .env("TMUX_TMPDIR", sandbox.path("tmux"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        (stdout(&output), stderr(&output)),
        (String::new(), String::new())
    );
    assert_eq!(sandbox.phase("nightly"), "PHASE:done\n");
    let snapshot: Value =
        serde_json::from_slice(&std::fs::read(sandbox.run_dir().join("snapshot.json")).unwrap())
            .unwrap();
    let result = &snapshot["commands"]["results"][0];
    assert_eq!(
        result["stdout"].as_str().unwrap(),
        format!("{}\n[redacted]", sandbox.work().display()),
        "the run started in the working directory with the env file's variables (a secret's \
         value redacted in the snapshot): {result:#}"
    );
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let sandbox = Sandbox::new();
    factory(&sandbox);
    let units = sandbox.path("units");

    let listed = ok(&schedule(
        &sandbox,
        &[
            "formulas",
            "--format",
            "systemd",
            "--output",
            units.to_str().unwrap(),
        ],
    ));

    let service = units.join("retort-nightly.service");
    let timer = units.join("retort-nightly.timer");
    assert_eq!(
        listed,
        format!("{}\n{}\n", service.display(), timer.display())
    );
    let service_text = std::fs::read_to_string(&service).unwrap();
    assert!(
        service_text.contains(&format!(
            "ExecStart=\"{}\" run \"{}\" --quiet --state-dir \"{}\"\n",
            retort(),
            sandbox.work().join("formulas/nightly.toml").display(),
            sandbox.state().display()
        )),
        "{service_text}"
    );
    assert!(
        service_text.contains(&format!("WorkingDirectory={}\n", sandbox.work().display())),
        "{service_text}"
    );
    assert!(
        service_text.contains(&format!(
            "EnvironmentFile={}\n",
            sandbox.path("secrets.env").display()
        )),
        "{service_text}"
    );
    let timer_text = std::fs::read_to_string(&timer).unwrap();
    assert!(
        timer_text.contains("OnCalendar=*-*-* *:00/20:00\n"),
        "{timer_text}"
    );
    assert!(timer_text.contains("Persistent=true\n"), "{timer_text}");

    if let Some(analyze) = which("systemd-analyze") {
        let output = Command::new(analyze)
            .arg("verify")
            .args([&service, &timer])
            .output()
            .unwrap();
        assert!(output.status.success(), "verify: {}", stderr(&output));
        assert_eq!(stderr(&output).trim(), "", "verify warned");
    } else {
        eprintln!("note: systemd-analyze not found; units checked by content only");
    }

    // Regenerating over retort's own files is fine; over an operator's own
    // unit it is refused, and nothing is written, unless --force.
    ok(&schedule(
        &sandbox,
        &[
            "formulas",
            "--format",
            "systemd",
            "--output",
            units.to_str().unwrap(),
        ],
    ));
    std::fs::write(&timer, "[Timer]\nOnCalendar=daily\n").unwrap();
    let refused = schedule(
        &sandbox,
        &[
            "formulas",
            "--format",
            "systemd",
            "--output",
            units.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert_eq!(
        std::fs::read_to_string(&timer).unwrap(),
        "[Timer]\nOnCalendar=daily\n"
    );
    ok(&schedule(
        &sandbox,
        &[
            "formulas",
            "--format",
            "systemd",
            "--output",
            units.to_str().unwrap(),
            "--force",
        ],
    ));
    assert_eq!(std::fs::read_to_string(&timer).unwrap(), timer_text);
}

#[test]
fn nomad_jobs_run_retort_periodically_without_overlap() {
    let sandbox = Sandbox::new();
    let formulas = factory(&sandbox);

    let job = ok(&schedule(&sandbox, &["formulas", "--format", "nomad"]));

    assert!(
        job.contains("job \"retort-nightly\" {\n  type = \"batch\""),
        "{job}"
    );
    assert!(
        job.contains("crons            = [\"*/20 * * * *\"]"),
        "{job}"
    );
    assert!(job.contains("prohibit_overlap = true"), "{job}");
    assert!(job.contains("driver = \"raw_exec\""), "{job}");
    let args = format!(
        "\"{}\", \"{}\", \"{}\", \"run\", \"{}\", \"--quiet\", \"--state-dir\", \"{}\"]",
        sandbox.work().display(),
        sandbox.path("secrets.env").display(),
        retort(),
        formulas.join("nightly.toml").display(),
        sandbox.state().display()
    );
    assert!(job.contains(&args), "{args}\nnot in:\n{job}");

    let sysbatch = ok(&schedule(
        &sandbox,
        &["formulas", "--format", "nomad-sysbatch"],
    ));
    assert!(sysbatch.contains("type = \"sysbatch\""), "{sysbatch}");
    assert!(!sysbatch.contains("reschedule"), "{sysbatch}");
}

#[test]
fn schedule_list_prints_next_run_times() {
    let sandbox = Sandbox::new();
    factory(&sandbox);

    let json = ok(&sandbox
        .retort(&[
            "schedule", "list", "formulas", "--format", "json", "--count", "3",
        ])
        .env("TZ", "UTC")
        .output()
        .unwrap());

    let listed: Value = serde_json::from_str(&json).unwrap();
    let items = listed.as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed:#}");
    assert_eq!(items[0]["name"], "nightly");
    assert_eq!(items[0]["schedule"], "*/20 * * * *");
    let now = chrono::Utc::now();
    let next: Vec<chrono::DateTime<chrono::FixedOffset>> = items[0]["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(next.len(), 3);
    assert!(
        next[0] > now && next[0] <= now + chrono::Duration::minutes(20),
        "{next:?}"
    );
    for pair in next.windows(2) {
        assert_eq!(pair[1] - pair[0], chrono::Duration::minutes(20));
    }
    assert!(
        next.iter()
            .all(|t| t.format("%M:%S").to_string().ends_with("0:00"))
    );

    let text = ok(&sandbox
        .retort(&["schedule", "list", "formulas", "--count", "2"])
        .env("TZ", "UTC")
        .output()
        .unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("nightly  `*/20 * * * *`  /"), "{text}");
    assert!(lines[1].contains("+00:00  (in "), "{text}");
}

#[test]
fn the_shipped_supervisor_runs_every_20_minutes_and_the_seed_copy_has_no_schedule() {
    let formulas = Path::new(env!("CARGO_MANIFEST_DIR")).join("formulas");
    let output = Command::new(retort())
        .args(["schedule", "list", "--format", "json", "--count", "1"])
        .arg(&formulas)
        .output()
        .unwrap();
    let listed: Value = serde_json::from_str(&ok(&output)).unwrap();
    let names: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["schedule"].as_str().unwrap()))
        .collect();
    // The routines (weekly-report, daily-update, …) have their own.
    assert!(names.contains(&("supervisor", "*/20 * * * *")), "{names:?}");
    assert!(
        !names.iter().any(|(name, _)| *name == "run-supervisor"),
        "{names:?}"
    );
}

#[test]
fn no_scheduled_formula_is_an_error_that_says_how_to_add_one() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.work().join("manual.toml"), MANUAL).unwrap();

    let output = sandbox
        .retort(&["schedule", "manual.toml"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("manual.toml has no top-level `schedule`"),
        "{err}"
    );
    assert!(err.contains("no formula with a `schedule`"), "{err}");
}

fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
