//! Fault injection, end to end: bad input, rules that cannot be evaluated,
//! unwritable and stale phase files, a corrupt run history, secrets in the
//! snapshot and the state directory's permissions, each with real files,
//! processes and signals, and each asserting what an operator can rely on.
//!
//! `RETORT_UNDER_TEST=/path/to/retort cargo test --test faults` runs these
//! against another build of retort (how each was seen to fail before it
//! was fixed).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Sandbox, stderr, stdout};

/// The binary under test: `RETORT_UNDER_TEST`, else this build's.
fn bin() -> String {
    std::env::var("RETORT_UNDER_TEST").unwrap_or_else(|_| support::retort().to_string())
}

/// `retort ARGS` in the sandbox's working directory.
fn retort(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .args(args)
        .current_dir(sandbox.work())
        .env("TMUX_TMPDIR", sandbox.path("tmux"))
        .env_remove("TMUX")
        .env_remove("RETORT_RUN_DIR")
        .env_remove("RETORT_STATE_DIR");
    command
}

/// Runs `command` to its end and returns its output and its peak resident
/// memory in KiB (`ru_maxrss` of `wait4`, for this child alone).
fn run_measured(mut command: Command) -> (Output, i64) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (stdout, stderr) = {
        let mut child = child;
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buffer = Vec::new();
            std::io::Read::read_to_end(&mut err, &mut buffer).unwrap();
            buffer
        });
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut buffer).unwrap();
        std::mem::forget(child); // reaped by wait4 below
        (buffer, reader.join().unwrap())
    };
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid);
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (
        Output {
            status,
            stdout,
            stderr,
        },
        usage.ru_maxrss,
    )
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// A log of `lines` lines, none of them TOML.
fn log_lines(lines: usize) -> String {
    let mut text = String::with_capacity(lines * 72);
    for i in 0..lines {
        text.push_str(&format!(
            "2026-11-30 12:00:{:02} INFO worker[{i}] processed job id={i} status=ok\n",
            i % 60
        ));
    }
    text
}

// ---------------------------------------------------------------- bounded input

#[test]
fn check_prints_at_most_100_problems_a_file_unless_all() {
    let sandbox = Sandbox::new();
    let log = write(&sandbox.path("worker.log"), &log_lines(300));
    let output = retort(&sandbox, &["check", log.to_str().unwrap()])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("retort::toml").count(), 100, "{text}");
    assert!(
        text.contains("… and 200 more problems in") && text.contains("--all"),
        "{text}"
    );
    assert!(
        text.contains("300 errors"),
        "the count is of every problem: {text}"
    );

    let all = retort(&sandbox, &["check", "--all", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(stderr(&all).matches("retort::toml").count(), 300);
    assert!(!stderr(&all).contains("more problems"));
}

#[test]
fn a_50_mb_log_passed_to_check_prints_kilobytes_in_bounded_memory() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("big.log");
    let line_count = 50 * 1024 * 1024 / 72;
    write(&log, &log_lines(line_count));
    let (output, peak_kib) = run_measured(retort(&sandbox, &["check", log.to_str().unwrap()]));
    let text = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(
        output.stdout.len() + output.stderr.len() < 100 * 1024,
        "printed {} bytes",
        output.stdout.len() + output.stderr.len()
    );
    assert!(text.contains("the check stopped at line"), "{text}");
    assert!(text.contains("is not read as a formula"), "{text}");
    // The text itself is 50 MB; 1 GB was seen before.
    assert!(peak_kib < 250 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn an_excerpt_of_a_very_long_line_is_its_neighbourhood() {
    let sandbox = Sandbox::new();
    // One line of 1 MB, a problem at its end (past column 65,535, where
    // miette's renderer panicked).
    let mut text = "x".repeat(1024 * 1024);
    text.push('\n');
    let file = write(&sandbox.path("one-line.toml"), &text);
    let output = retort(&sandbox, &["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.contains("one-line.toml:1:1048577"), "{err}");
    assert!(
        output.stderr.len() < 4 * 1024,
        "printed {} bytes",
        output.stderr.len()
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A valid chain of `n` steps, each needing the one before.
fn chain(n: usize) -> String {
    let mut text = String::from("name = \"chain\"\ndescription = \"A long chain\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[steps]]\nid = \"s{i}\"\ntitle = \"Step {i}\"\ndescription = \"Do step {i}.\"\n"
        ));
        if i > 0 {
            text.push_str(&format!("needs = [\"s{}\"]\n", i - 1));
        }
    }
    text
}

#[test]
fn a_valid_chain_of_100000_needs_checks_without_overflowing_the_stack() {
    let sandbox = Sandbox::new();
    let file = write(&sandbox.path("chain.toml"), &chain(100_000));
    let output = retort(&sandbox, &["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("0 errors, 0 warnings"), "{err}");
}

#[test]
fn a_file_that_is_not_utf8_is_located_by_line_and_column() {
    let sandbox = Sandbox::new();
    let file = sandbox.path("latin1.toml");
    std::fs::write(&file, b"name = \"x\"\ndescription = \"caf\xe9\"\n").unwrap();
    let output = retort(&sandbox, &["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("is not UTF-8: line 2, column 19"), "{err}");
    let json = retort(
        &sandbox,
        &["check", file.to_str().unwrap(), "--format", "json"],
    )
    .output()
    .unwrap();
    let diagnostics: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(diagnostics[0]["line"], 2, "{diagnostics}");
    assert_eq!(diagnostics[0]["column"], 19, "{diagnostics}");
}

// ---------------------------------------------------------------- outcomes never lie

/// A healthy snapshot: 6000 MB of memory available.
fn healthy_snapshot(sandbox: &Sandbox) -> PathBuf {
    let snapshot = support::snapshot_json(json!({
        "collected_at": chrono::Utc::now().to_rfc3339(),
        "hostname": "factory-1",
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": 6000, "total_mb": 16000 },
            "swap": { "used_mb": 0, "total_mb": 4096 }
        }
    }));
    let path = sandbox.path("snapshot.json");
    std::fs::write(&path, serde_json::to_vec(&snapshot).unwrap()).unwrap();
    path
}

/// A formula whose threshold comes from a var; `gate` is its `[gate]` body.
fn threshold_formula(sandbox: &Sandbox, gate: &str) -> PathBuf {
    write(
        &sandbox.work().join("floor.toml"),
        &format!(
            r#"
name = "floor"
description = "A memory threshold from a var"

[vars]
floor = "500"

[gate]
{gate}

[[rules]]
id = "memory-low"
priority = "P1"
when = "system.memory.available_mb < int(vars.floor)"
message = "RAM {{{{ system.memory.available_mb }}}} MB available"

[[steps]]
id = "look"
description = "Look at the factory."
"#
        ),
    )
}

#[test]
fn a_rule_that_cannot_be_evaluated_is_a_finding_and_opens_the_gate_by_default() {
    let sandbox = Sandbox::new();
    let formula = threshold_formula(&sandbox, "");
    let snapshot = healthy_snapshot(&sandbox);
    let output = retort(
        &sandbox,
        &[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
            "--var",
            "floor=five hundred",
            "--dry-run",
        ],
    )
    .output()
    .unwrap();
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    assert!(
        out.contains("gate        open (on-findings): 1 rule could not be evaluated: memory-low"),
        "{out}"
    );
    assert!(
        out.contains("[P1] memory-low!error: rule `memory-low` could not be evaluated:"),
        "{out}"
    );
    assert!(!out.contains("healthy"), "{out}");
}

#[test]
fn with_on_error_closed_a_rule_that_cannot_be_evaluated_fails_the_run() {
    let sandbox = Sandbox::new();
    let formula = threshold_formula(&sandbox, "on_error = \"closed\"");
    let snapshot = healthy_snapshot(&sandbox);
    let output = retort(
        &sandbox,
        &[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
            "--var",
            "floor=five hundred",
        ],
    )
    .output()
    .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let phase = std::fs::read_to_string(sandbox.state().join("floor.phase")).unwrap();
    assert!(phase.starts_with("PHASE:failed\n"), "{phase}");
    assert!(phase.contains("memory-low"), "{phase}");
    let journal = journal_text(&sandbox.state(), "floor");
    assert!(journal.contains("PHASE:failed"), "{journal}");
    assert!(journal.contains("could not be evaluated"), "{journal}");
    assert!(!journal.contains("None: healthy"), "{journal}");
}

fn journal_text(state: &Path, formula: &str) -> String {
    let dir = state.join("journal").join(formula);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

/// A formula with no rules whose gate stays closed: no agent starts.
fn closed_formula(sandbox: &Sandbox) -> PathBuf {
    write(
        &sandbox.work().join("quiet.toml"),
        r#"
name = "quiet"
description = "Starts no agent while healthy"

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500"
message = "RAM low"

[[steps]]
id = "look"
description = "Look at the factory."
"#,
    )
}

#[test]
fn an_unwritable_phase_file_fails_the_run() {
    let sandbox = Sandbox::new();
    let formula = closed_formula(&sandbox);
    let snapshot = healthy_snapshot(&sandbox);
    // A path under a regular file cannot be created, even by root.
    let blocker = write(&sandbox.path("not-a-dir"), "");
    let phase_file = blocker.join("quiet.phase");
    let output = retort(
        &sandbox,
        &[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
            "--phase-file",
            phase_file.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let err = stderr(&output);
    assert_ne!(output.status.code(), Some(0), "{err}");
    assert!(err.contains(phase_file.to_str().unwrap()), "{err}");
}

#[test]
fn a_run_killed_mid_way_does_not_leave_the_previous_runs_done_in_place() {
    let sandbox = Sandbox::new();
    let marker = sandbox.path("action-started");
    let formula = write(
        &sandbox.work().join("slow.toml"),
        &format!(
            r#"
name = "slow"
description = "An auto action that takes its time"

[[rules]]
id = "always"
priority = "P3"
when = "true"
message = "always"
action = "nap"

[[actions]]
id = "nap"
run = ["sh", "-c", "echo $$ > '{}'; exec sleep 30"]
mode = "auto"
timeout = "60s"

[[steps]]
id = "look"
description = "Look at the factory."
"#,
            marker.display()
        ),
    );
    let snapshot = healthy_snapshot(&sandbox);
    // The previous run's outcome.
    write(&sandbox.state().join("slow.phase"), "PHASE:done\n");
    let mut child = retort(
        &sandbox,
        &[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .process_group(0)
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&marker).map_or(true, |t| t.trim().is_empty()) {
        assert!(Instant::now() < deadline, "the action never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on the process group of our own child.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // The action outlives the killed run (ending it is the runner's
    // SIGKILL recovery, not tested here): end it.
    if let Ok(pid) = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse::<i32>()
    {
        // SAFETY: kill(2) on the action's process, which this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let phase = std::fs::read_to_string(sandbox.state().join("slow.phase")).unwrap();
    assert!(phase.starts_with("PHASE:running\n"), "{phase}");
}

// ---------------------------------------------------------------- a corrupt history

#[test]
fn a_corrupt_history_is_moved_aside_and_the_run_goes_on() {
    let sandbox = Sandbox::new();
    let formula = closed_formula(&sandbox);
    let snapshot = healthy_snapshot(&sandbox);
    let garbage: Vec<u8> = (0..16384u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(sandbox.state().join("history.sqlite"), &garbage).unwrap();
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "run".to_string(),
            formula.display().to_string(),
            "--snapshot".to_string(),
            snapshot.display().to_string(),
            "--state-dir".to_string(),
            sandbox.state().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    let dry = retort(&sandbox, &[])
        .args(args(&["--dry-run"]))
        .output()
        .unwrap();
    let out = stdout(&dry);
    assert!(
        out.contains("history.sqlite: file is not a database"),
        "{out}"
    );
    assert!(out.contains("a run moves it aside as"), "{out}");

    let run = retort(&sandbox, &[]).args(args(&[])).output().unwrap();
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(0), "{err}");
    let aside: Vec<PathBuf> = std::fs::read_dir(sandbox.state())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("history.sqlite.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
    let journal = journal_text(&sandbox.state(), "quiet");
    assert!(
        journal.contains("- Note: run history") && journal.contains("moved aside as"),
        "{journal}"
    );
    // The new history works: the next run records its findings again.
    let again = retort(&sandbox, &[]).args(args(&[])).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(!stderr(&again).contains("corrupt"), "{}", stderr(&again));
}

// ---------------------------------------------------------------- secrets and permissions

#[test]
fn secrets_never_reach_the_saved_snapshot() {
    let sandbox = Sandbox::new();
    let secret = "s3cr3t-factory-value-91";
    let formula = write(
        &sandbox.work().join("secretive.toml"),
        r#"
name = "secretive"
description = "Reads a forge with a password in its URL"

[secrets]
env = ["FACTORY_AUTH"]

[preflight.system]
top_processes = 100000

[preflight.forge]
url = "http://bot:hunter22pass@127.0.0.1:9"
repo = "factory/app"
timeout = "1s"

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 1"
message = "RAM low"

[[steps]]
id = "look"
description = "Look at the factory."
"#,
    );
    // A process whose command line holds the secret value.
    let mut holder = Command::new("sh")
        .args(["-c", "sleep 120; :", "holder", secret])
        .spawn()
        .unwrap();
    let output = retort(
        &sandbox,
        &[
            "run",
            formula.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ],
    )
    .env("FACTORY_AUTH", secret)
    .output()
    .unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let runs = sandbox.state().join("runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let saved = std::fs::read_to_string(run_dir.join("snapshot.json")).unwrap();
    assert!(
        saved.contains("\"url\": \"http://[redacted]@127.0.0.1:9\""),
        "the forge URL keeps its host: {saved}"
    );
    assert!(
        saved.contains("sh -c sleep 120; : holder [redacted]"),
        "{saved}"
    );
    for file in ["snapshot.json", "decision.json", "run.json"] {
        let text = std::fs::read_to_string(run_dir.join(file)).unwrap();
        assert!(!text.contains("hunter22pass"), "{file}: {text}");
        assert!(!text.contains(secret), "{file}: {text}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_state_directory_is_private() {
    let sandbox = Sandbox::new();
    let formula = closed_formula(&sandbox);
    let snapshot = healthy_snapshot(&sandbox);
    let state = sandbox.path("fresh-state");
    let output = retort(
        &sandbox,
        &[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run_dir = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal_file = std::fs::read_dir(state.join("journal/quiet"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for dir in [
        state.clone(),
        state.join("runs"),
        state.join("journal"),
        run_dir.clone(),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        state.join("history.sqlite"),
        state.join("quiet.phase"),
        journal_file,
        run_dir.join("snapshot.json"),
        run_dir.join("run.json"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // A state directory that exists already (it may be shared: `.`,
    // `/tmp`) keeps its mode; retort's own parts in it are private.
    let shared = sandbox.state();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = retort(
        &sandbox,
        &[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            shared.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(mode(&shared), 0o755);
    assert_eq!(mode(&shared.join("runs")), 0o700);
    assert_eq!(mode(&shared.join("history.sqlite")), 0o600);
}
