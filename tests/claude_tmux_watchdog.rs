//! The watchdog of `retort run` with the real Claude Code CLI in tmux
//! (tests/claude/mod.rs: the pinned CLI against the testkit's scripted
//! model server on 127.0.0.1, a machine and a tmux server per test): what a
//! step's end is when the agent meets a dialog, asks for a permission,
//! stops without signalling or is rate limited; and the same idle watch
//! for another agent CLI, by its screen.
//!
//! The watchdog's cases end within the issue's limits: a permission
//! request, a start-up dialog and a rate limit under 60 s; an agent idle
//! without signalling under `idle_timeout` + 30 s.

mod claude;
mod support;

use std::time::{Duration, Instant};

use claude::{World, finished, signalling};
use retort_testkit::{Reply, Scenario, Setup, When};
use serde_json::Value;

const ONE_STEP: &str = r#"
name = "one-step"
[agent]
idle_timeout = "5s"
[[steps]]
id = "check"
description = "Look at the machine."
"#;

#[test]
fn a_permission_request_fails_the_step_naming_tool_and_command() {
    let world = World::new(
        Scenario::new()
            .when(When::SideRequest, Reply::text("Title"))
            .when(When::Any, Reply::bash("rm -rf /tmp/retort-not-granted")),
        Setup::used_before(),
    );
    let formula = world.formula(ONE_STEP);
    let started = Instant::now();
    let output = world.run(&formula, &[]).output().unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", finished(&output));
    let summary = world.summary();
    let reason = summary["steps"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("asked for permission to run Bash(rm -rf /tmp/retort-not-granted)"),
        "{reason}"
    );
    assert!(reason.contains("allowed_tools"), "{reason}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    eprintln!("permission request: {took:?}: {reason}");
}

/// Runs `ONE_STEP` with the real CLI on a machine set up as `setup`, whose
/// start-up dialog must end the run: exit 1 within 60 s, no prompt sent to
/// the model. Returns the machine and the step's reason.
fn stopped_by_dialog(setup: Setup) -> (World, String) {
    let world = World::new(signalling("retort signal done"), setup);
    let formula = world.formula(ONE_STEP);
    let started = Instant::now();
    let output = world.run(&formula, &[]).output().unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", finished(&output));
    let reason = world.summary()["steps"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(world.prompts().is_empty(), "no prompt reached the model");
    assert!(took < Duration::from_secs(60), "{took:?}");
    eprintln!("start-up dialog: {took:?}: {reason}");
    (world, reason)
}

#[test]
fn an_untrusted_folder_fails_the_run_naming_the_dialog_and_is_never_trusted() {
    let (world, reason) = stopped_by_dialog(Setup::used_before().without_trust());
    assert!(reason.contains("folder-trust dialog"), "{reason}");
    let folder = world.machine.work_dir().display().to_string();
    assert!(
        reason.contains(&format!(
            "projects[\"{folder}\"].hasTrustDialogAccepted = true"
        )),
        "{reason}"
    );
    // The CLI adds keys of its own as it starts (firstStartTime,
    // machineID, …); the folder stays untrusted.
    let work = world.machine.work_dir().to_string_lossy().into_owned();
    let claude_json = world.machine.claude_json();
    assert_ne!(
        claude_json["projects"][work.as_str()]["hasTrustDialogAccepted"],
        Value::Bool(true),
        "retort trusted the folder: {claude_json}"
    );
}

#[test]
fn an_unapproved_api_key_fails_the_run_naming_the_dialog_and_is_never_approved() {
    let (world, reason) = stopped_by_dialog(Setup::used_before().without_key_approval());
    assert!(reason.contains("API-key dialog"), "{reason}");
    assert!(
        reason.contains("customApiKeyResponses.approved"),
        "the fix is named: {reason}"
    );
    // retort answered nothing: the key is neither approved nor rejected.
    let claude_json = world.machine.claude_json();
    let responses = &claude_json["customApiKeyResponses"];
    for list in ["approved", "rejected"] {
        assert!(
            responses[list].as_array().is_none_or(Vec::is_empty),
            "retort answered the key dialog ({list}): {claude_json}"
        );
    }
}

#[test]
fn an_agent_idle_without_signalling_is_nudged_once_then_fails() {
    let world = World::new(
        Scenario::new()
            .when(When::SideRequest, Reply::text("Title"))
            .when(When::Any, Reply::text("I had a look.")),
        Setup::used_before(),
    );
    let formula = world.formula(ONE_STEP);
    let started = Instant::now();
    let output = world.run(&formula, &[]).output().unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", finished(&output));
    let reason = world.summary()["steps"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("the agent stopped without signalling"),
        "{reason}"
    );
    let prompts = world.prompts();
    assert_eq!(
        prompts
            .iter()
            .filter(|p| p.contains("You ended your turn without signalling step `check`"))
            .count(),
        1,
        "one nudge: {prompts:#?}"
    );
    assert!(took < Duration::from_secs(5 + 30), "{took:?}");
    eprintln!("idle without signal (idle_timeout 5s): {took:?}: {reason}");
}

#[test]
fn a_rate_limited_agent_ends_the_step_rate_limited() {
    let world = World::new(
        Scenario::new()
            .when(When::SideRequest, Reply::text("Title"))
            .when(When::Any, Reply::rate_limited(3600)),
        Setup::used_before(),
    );
    let formula = world.formula(ONE_STEP);
    let started = Instant::now();
    let output = world.run(&formula, &[]).output().unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", finished(&output));
    let summary = world.summary();
    assert_eq!(summary["steps"][0]["outcome"], "rate-limited", "{summary}");
    let reason = summary["steps"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("Request rejected (429)"), "{reason}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    eprintln!("rate limit: {took:?}: {reason}");
}

/// Another agent CLI (`kind = "generic"`): the scripted agent, hung in a
/// step, with `[agent.screen]` saying what its idle screen shows (it draws
/// no prompt marker after a prompt, so the prompt's echoed last line is
/// what a waiting screen shows; its banner has scrolled off by then).
#[test]
fn a_generic_agent_idle_by_its_screen_patterns_is_nudged_then_fails() {
    let sandbox = support::Sandbox::new();
    let formula = sandbox.path("generic.toml");
    std::fs::write(
        &formula,
        format!(
            r#"
name = "generic"
[agent]
command = "{}"
ready = "agent>"
idle_timeout = "2s"
[agent.screen]
idle = ["This is the last step"]
[[steps]]
id = "stuck"
description = "Hang."
"#,
            support::scripted_agent()
        ),
    )
    .unwrap();
    let state = sandbox.state();
    let started = Instant::now();
    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .env("AGENT_HANG_AT", "stuck")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", finished(&output));
    let phase = sandbox.phase("generic");
    assert!(
        phase.contains("step `stuck`: the agent stopped without signalling"),
        "{phase}"
    );
    let pane = std::fs::read_to_string(sandbox.run_dir().join("agent-pane.txt")).unwrap();
    assert!(
        pane.contains("You ended your turn without signalling step `stuck`"),
        "the nudge was pasted: {pane}"
    );
    assert!(took < Duration::from_secs(2 + 30), "{took:?}");
    eprintln!("generic agent idle (idle_timeout 2s): {took:?}");
}
