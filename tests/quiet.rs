//! `retort run --quiet`, end to end, as cron runs it: nothing at all on
//! either stream when a run ends done (the gate closed, or every step
//! done), a summary of a few lines when it does not, and exit status 75
//! (EX_TEMPFAIL) when another run of the formula holds its lock.

mod support;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;
use support::{Sandbox, scripted_agent, seed_formula, stderr, stdout};

/// A formula whose gate stays closed on a healthy snapshot: no agent.
const TIDY: &str = r#"
name = "tidy"
description = "Decides from the snapshot; starts no agent while healthy"

[vars]
spare = "1"   # used nowhere: a warning each run, which --quiet keeps to itself

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500"
message = "RAM {{ system.memory.available_mb }} MB available"

[[steps]]
id = "look"
description = "Look at the factory."
"#;

fn tidy(sandbox: &Sandbox) -> (PathBuf, PathBuf) {
    let formula = sandbox.work().join("tidy.toml");
    std::fs::write(&formula, TIDY).unwrap();
    let snapshot = sandbox.path("snapshot.json");
    let healthy = support::snapshot_json(json!({
        "collected_at": chrono::Utc::now().to_rfc3339(),
        "hostname": "factory-1",
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": 6000, "total_mb": 16000 },
            "swap": { "used_mb": 0, "total_mb": 4096 }
        }
    }));
    std::fs::write(&snapshot, serde_json::to_vec(&healthy).unwrap()).unwrap();
    (formula, snapshot)
}

fn run_tidy(sandbox: &Sandbox, formula: &Path, snapshot: &Path) -> Output {
    sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--quiet",
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

/// The seed formula run by the scripted agent with `--quiet`.
fn run_seed(sandbox: &Sandbox, backend: &str, env: &[(&str, &str)]) -> Output {
    sandbox
        .retort(&[
            "run",
            seed_formula().to_str().unwrap(),
            "--quiet",
            "--agent",
            &scripted_agent(),
            "--backend",
            backend,
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn assert_silent(output: &Output) {
    assert_eq!(
        (stdout(output).as_str(), stderr(output).as_str()),
        ("", ""),
        "a run that ends done prints nothing with --quiet"
    );
}

#[test]
fn a_healthy_quiet_run_whose_gate_stays_closed_prints_nothing() {
    let sandbox = Sandbox::new();
    let (formula, snapshot) = tidy(&sandbox);

    let output = run_tidy(&sandbox, &formula, &snapshot);

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_silent(&output);
    assert_eq!(sandbox.phase("tidy"), "PHASE:done\n");
    // The same run without --quiet does talk (the check above can fail).
    let loud = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(loud.status.code(), Some(0));
    let err = stderr(&loud);
    assert!(err.contains("warning: ") && err.contains("spare"), "{err}");
    assert!(err.contains("PHASE:done"), "{err}");
}

#[test]
fn a_quiet_run_whose_agent_does_every_step_in_tmux_prints_nothing() {
    let sandbox = Sandbox::new();

    let output = run_seed(&sandbox, "tmux", &[]);

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_silent(&output);
    assert_eq!(sandbox.phase("run-supervisor"), "PHASE:done\n");
    assert_eq!(sandbox.received().len(), 5, "every step ran");
}

#[test]
fn a_quiet_run_that_fails_prints_a_short_summary() {
    let sandbox = Sandbox::new();

    let output = run_seed(
        &sandbox,
        "headless",
        &[
            ("AGENT_FAIL_AT", "report"),
            ("AGENT_REASON", "the forge answers 503"),
        ],
    );

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        (3..=5).contains(&lines.len()),
        "a few lines, fit for cron mail:\n{err}"
    );
    assert!(
        lines[0].starts_with("retort: run-supervisor run ")
            && lines[0].contains("PHASE:failed")
            && lines[0].contains("the forge answers 503"),
        "{err}"
    );
    assert!(err.contains("retort: step report ("), "{err}");
    let run_dir = sandbox.run_dir();
    assert!(
        err.contains(&format!("retort: run directory {}\n", run_dir.display())),
        "{err}"
    );
    // No progress lines: those are for a terminal.
    assert!(!err.contains("==> step"), "{err}");
}

#[test]
fn a_run_refused_because_another_holds_the_lock_exits_75() {
    let sandbox = Sandbox::new();
    let (formula, snapshot) = tidy(&sandbox);
    // Hold the formula's run lock as a run in progress does.
    let lock_path = sandbox.state().join("tidy.lock");
    std::fs::write(&lock_path, "pid 4242 since 2026-01-01 00:00:00 UTC\n").unwrap();
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    // SAFETY: flock on a file descriptor this test owns.
    let held = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(held, 0, "the test holds the lock");

    let output = run_tidy(&sandbox, &formula, &snapshot);

    assert_eq!(output.status.code(), Some(75), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(
        err.contains("another run of this formula is in progress (pid 4242 since"),
        "{err}"
    );
    assert!(err.contains("exit status 75"), "{err}");
    // Nothing of the refused run was written.
    assert!(!sandbox.state().join("runs").exists());
    assert!(!sandbox.state().join("tidy.phase").exists());

    // Once the lock is free, the same command runs (and, done, is silent).
    drop(lock);
    let output = run_tidy(&sandbox, &formula, &snapshot);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_silent(&output);
}
