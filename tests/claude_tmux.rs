//! `retort run` with the real Claude Code CLI in tmux: the pinned CLI
//! (tests/claude-code/install.sh, or `$RETORT_CLAUDE_BIN`) against the
//! testkit's scripted model server on 127.0.0.1. Only the model is a
//! stand-in. Each test has its own machine (HOME, `~/.claude.json`, working
//! folder, `bin/` with `claude` first on PATH) and its own tmux server
//! (tests/claude/mod.rs).
//!
//! Here: whole runs and their sessions (the seed formula, the phase file,
//! `retort hook`, sessions side by side). The watchdog's cases (dialogs,
//! permission requests, idle agents, rate limits) are in
//! tests/claude_tmux_watchdog.rs.

mod claude;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use claude::{World, finished, signalling};
use retort_testkit::{FAKE_API_KEY, Reply, Rule, Scenario, Setup, When};
use support::seed_formula;

/// A secret of the operator's environment, which the agent's session
/// inherits and no command line may show.
const FORGE_TOKEN: &str = "forge-token-retort-test-5f1c2a9e";

/// Scans every process's command line for `secret` until `stop` is set;
/// returns the command lines that held it.
fn scan_cmdlines(
    secret: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut found = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                if let Ok(bytes) = std::fs::read(entry.path().join("cmdline"))
                    && String::from_utf8_lossy(&bytes).contains(secret)
                {
                    found.push(String::from_utf8_lossy(&bytes).replace('\0', " "));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        found
    })
}

#[test]
fn the_seed_formula_reaches_phase_done_with_claude_code_and_no_secret_on_a_command_line() {
    let world = World::new(signalling("retort signal done"), Setup::used_before());
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = scan_cmdlines(FAKE_API_KEY, stop.clone());

    let forge_scanner = scan_cmdlines(FORGE_TOKEN, stop.clone());
    // The scan sees what is on a command line: a canary that is.
    let canary_scanner = scan_cmdlines("retort-canary-on-a-command-line", stop.clone());
    let mut canary = Command::new("sh")
        .args(["-c", "sleep 1", "retort-canary-on-a-command-line"])
        .spawn()
        .unwrap();

    let started = Instant::now();
    let output = world
        .run(&seed_formula(), &[])
        .env("FORGE_TOKEN", FORGE_TOKEN)
        .output()
        .unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    canary.wait().unwrap();
    assert!(!canary_scanner.join().unwrap().is_empty(), "the scan works");
    let mut leaks = scanner.join().unwrap();
    leaks.extend(forge_scanner.join().unwrap());

    assert_eq!(output.status.code(), Some(0), "{}", finished(&output));
    let phase = std::fs::read_to_string(world.state().join("run-supervisor.phase")).unwrap();
    assert_eq!(phase, "PHASE:done\n");
    assert_eq!(leaks, Vec::<String>::new(), "a secret on a command line");
    let summary = world.summary();
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{summary}");
    for step in steps {
        assert_eq!(step["outcome"], "done", "{summary}");
        // Each step: the tool call (3000 in, 60 out) and the reply after it
        // (1200 in, 40 out), read from Claude Code's transcript.
        assert_eq!(step["usage"]["input_tokens"], 4200, "{step}");
        assert_eq!(step["usage"]["output_tokens"], 100, "{step}");
        assert!(step["usage"]["cost_usd"].as_f64().unwrap() > 0.0, "{step}");
    }
    // Five prompts, each its own turn (none queued into a finishing turn).
    let prompts = world.prompts();
    for id in [
        "preflight",
        "health-assessment",
        "decide-actions",
        "report",
        "journal",
    ] {
        assert_eq!(
            prompts
                .iter()
                .filter(|p| p.contains(&format!("(`{id}`)")))
                .count(),
            1,
            "one prompt for {id}: {prompts:#?}"
        );
    }
    let settings = std::fs::read_to_string(
        PathBuf::from(summary["run_dir"].as_str().unwrap()).join("claude-settings.json"),
    )
    .unwrap();
    assert!(settings.contains("Bash(retort signal:*)"), "{settings}");
    let hook = format!("'{}' hook", support::retort());
    assert!(settings.contains(&hook), "{settings}");
    let events = std::fs::read_to_string(
        PathBuf::from(summary["run_dir"].as_str().unwrap()).join("agent-events.jsonl"),
    )
    .unwrap();
    assert!(
        events
            .lines()
            .filter(|l| l.contains(r#""hook_event_name":"Stop""#))
            .count()
            >= 5,
        "a Stop hook per turn: {events}"
    );
    eprintln!("seed formula with Claude Code in tmux: {took:?}");
}

#[test]
fn an_agent_following_the_seeds_phase_file_instruction_completes() {
    let world = World::new(
        signalling(r#"echo 'PHASE:done' > "$PHASE_FILE""#),
        Setup::used_before(),
    );
    let formula = world.formula(
        r#"
name = "two-steps"
[[steps]]
id = "first"
description = "Do the first thing."
[[steps]]
id = "second"
needs = ["first"]
description = "Do the second thing."
"#,
    );
    let output = world.run(&formula, &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", finished(&output));
    let phase = std::fs::read_to_string(world.state().join("two-steps.phase")).unwrap();
    assert_eq!(phase, "PHASE:done\n", "retort's phase file is retort's");
    let summary = world.summary();
    assert_eq!(summary["steps"][1]["outcome"], "done", "{summary}");
}

#[test]
fn retort_hook_appends_one_line_per_hook_and_prints_nothing() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let hook = |env: Option<&Path>, input: &str| {
        let mut command = Command::new(support::retort());
        command
            .arg("hook")
            .env_remove("RETORT_RUN_DIR")
            .env_remove("RETORT_EVENTS_FILE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(dir) = env {
            command.env("RETORT_RUN_DIR", dir);
        }
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let stop = "{\n \"hook_event_name\": \"Stop\",\n \"last_assistant_message\": \"Done.\"\n}\n";
    for output in [
        hook(Some(dir.path()), stop),
        hook(Some(dir.path()), "not json"),
        hook(None, stop),
    ] {
        assert_eq!(output.status.code(), Some(0));
        assert!(
            output.stdout.is_empty() && output.stderr.is_empty(),
            "{}",
            finished(&output)
        );
    }
    let events = std::fs::read_to_string(dir.path().join("agent-events.jsonl")).unwrap();
    assert_eq!(
        events,
        "{\"hook_event_name\":\"Stop\",\"last_assistant_message\":\"Done.\"}\n"
    );
    // A session that runs beside others names its own events file.
    let second = dir.path().join("agent-events-2.jsonl");
    let mut command = Command::new(support::retort());
    let mut child = command
        .arg("hook")
        .env("RETORT_RUN_DIR", dir.path())
        .env("RETORT_EVENTS_FILE", &second)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"hook_event_name\":\"Notification\"}")
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&second).unwrap(),
        "{\"hook_event_name\":\"Notification\"}\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("agent-events.jsonl")).unwrap(),
        events,
        "the first session's file is untouched"
    );
}

/// Three branches with nothing in common: each gets its own Claude Code
/// session, and all three run at once (`max_parallel` 4).
const THREE_BRANCHES: &str = r#"
name = "three-branches"
[agent]
idle_timeout = "20s"
[[steps]]
id = "slow"
description = "Branch SLOW-BRANCH: take your time, then signal done."
[[steps]]
id = "stuck"
description = "Branch STUCK-BRANCH: this one needs a human."
[[steps]]
id = "asks"
description = "Branch ASKS-BRANCH: this one needs a permission."
"#;

#[test]
fn concurrent_sessions_each_have_their_own_phase_and_hook_events() {
    // stuck's model writes PHASE:escalate to its $PHASE_FILE, asks's model
    // runs a command that needs a permission, while slow's model takes 12 s
    // before it signals done: each end is credited to its own step.
    let world = World::new(
        Scenario::new()
            .when(When::SideRequest, Reply::text("Title"))
            .rule(Rule::new(When::AfterToolResult, Reply::text("Step done.")))
            .rule(
                Rule::new(
                    When::prompt_contains("SLOW-BRANCH"),
                    Reply::bash("retort signal done"),
                )
                .delay(Duration::from_secs(12)),
            )
            .when(
                When::prompt_contains("STUCK-BRANCH"),
                Reply::bash(r#"echo 'PHASE:escalate' > "$PHASE_FILE""#),
            )
            .when(
                When::prompt_contains("ASKS-BRANCH"),
                Reply::bash("rm -rf /tmp/retort-not-granted"),
            ),
        Setup::used_before(),
    );
    let formula = world.formula(THREE_BRANCHES);
    let output = world.run(&formula, &[]).output().unwrap();
    let summary = world.summary();
    let ends: Vec<(&str, &str)> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ends,
        [("slow", "done"), ("stuck", "escalated"), ("asks", "failed")],
        "{summary}\n{}",
        finished(&output)
    );
    assert_eq!(output.status.code(), Some(3), "{}", finished(&output));
    let reason = |i: usize| summary["steps"][i]["reason"].as_str().unwrap_or_default();
    assert!(
        reason(1).contains("step `stuck`: the agent signalled escalate"),
        "{summary}"
    );
    assert!(
        reason(2).contains("asked for permission to run Bash(rm -rf /tmp/retort-not-granted)"),
        "{summary}"
    );
    // slow's session heard neither of the others' turns end: it was not
    // nudged while its model was still answering.
    let prompts = world.prompts();
    assert!(
        !prompts
            .iter()
            .any(|p| p.contains("You ended your turn without signalling step `slow`")),
        "{prompts:#?}"
    );
    // Each session's hooks went to its own events file.
    let run_dir = PathBuf::from(summary["run_dir"].as_str().unwrap());
    let sessions = summary["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{summary}");
    let stuck_events = std::fs::read_to_string(run_dir.join("agent-events-2.jsonl")).unwrap();
    assert!(
        stuck_events.contains(r#""hook_event_name":"Stop""#),
        "{stuck_events}"
    );
    let slow_events = std::fs::read_to_string(run_dir.join("agent-events.jsonl")).unwrap();
    assert!(
        !slow_events.contains("Notification"),
        "no other session's permission request in slow's events: {slow_events}"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("agent-2.phase")).unwrap(),
        "PHASE:escalate\n"
    );
}
