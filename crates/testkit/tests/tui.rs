//! The interactive CLI in tmux: the screens retort's agent profile reads.

mod support;

use std::time::{Duration, Instant};

use retort_testkit::screen::*;
use retort_testkit::{FAKE_API_KEY, Machine, ModelServer, Reply, Scenario, Setup, When};
use support::claude;

const WAIT: Duration = Duration::from_secs(15);

/// The lines of `screen` that hold text (no blank lines, no rules), right-trimmed.
fn text_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty() && !line.chars().all(|c| c == '─'))
        .collect()
}

/// Ready or idle: the empty input line and the shortcuts footer.
fn is_ready(screen: &str) -> bool {
    screen.contains(INPUT_PROMPT)
        && screen.contains(SHORTCUTS_FOOTER)
        && !screen.contains(BUSY_FOOTER)
}

#[test]
fn a_turn_shows_ready_permission_busy_idle_and_api_error_screens() {
    let server = ModelServer::start(
        Scenario::new()
            .when(
                When::QueuedPromptContains("Also".into()),
                Reply::text("Signalled, and noted."),
            )
            .when(
                When::prompt_contains("Step 1"),
                Reply::bash("retort signal done"),
            )
            .when(When::AfterToolResult, Reply::text("Step 1 finished."))
            .when(When::prompt_contains("Step 2"), Reply::rate_limited(3600))
            .when(When::SideRequest, Reply::text("Title")),
    )
    .unwrap();
    let machine = Machine::new(Setup::used_before()).unwrap();
    let calls = machine.root().join("retort-calls.txt");
    // A slow `retort`, so the turn is busy long enough to type into it,
    // even on a loaded machine.
    machine
        .add_command(
            "retort",
            &format!("#!/bin/sh\necho \"$*\" >> '{}'\nsleep 8\n", calls.display()),
        )
        .unwrap();
    let started = Instant::now();
    let tmux = claude().tmux(&machine, &server, &[]).unwrap();

    let ready = tmux.wait_until("the ready screen", WAIT, is_ready).unwrap();
    eprintln!("ready after {} ms", started.elapsed().as_millis());
    assert!(ready.contains("Claude Code v2.1.197"), "{ready}");
    assert!(
        ready.contains(machine.work_dir().to_str().unwrap()),
        "{ready}"
    );

    tmux.paste("Step 1: signal").unwrap();
    tmux.wait_for_text("❯\u{a0}Step 1: signal", WAIT).unwrap();
    tmux.keys(&["Enter"]).unwrap();
    let dialog = tmux.wait_for_text(PERMISSION_QUESTION, WAIT).unwrap();
    let lines = text_lines(&dialog);
    for expected in [
        "❯ Step 1: signal",
        "● Bash(retort signal done)",
        "  ⎿ \u{a0}Waiting…",
        " Bash command",
        "   retort signal done",
        "   Scripted command",
        " This command requires approval",
        " Do you want to proceed?",
        " ❯ 1. Yes",
        "   2. Yes, and don’t ask again for: retort signal *",
        "   3. No",
        " Esc to cancel · Tab to amend · ctrl+e to explain",
    ] {
        assert!(
            lines.contains(&expected),
            "no line {expected:?} in:\n{dialog}"
        );
    }
    assert!(!std::fs::exists(&calls).unwrap(), "ran before approval");

    // Enter answers "1. Yes"; the tool runs and the turn is busy.
    tmux.keys(&["Enter"]).unwrap();
    let busy = tmux
        .wait_until("the busy screen", WAIT, |s| {
            s.contains("  ⎿ \u{a0}Running…") && s.contains(BUSY_FOOTER)
        })
        .unwrap();
    assert!(
        busy.contains(INPUT_PROMPT),
        "the input line stays while busy:\n{busy}"
    );
    assert!(!busy.contains(SHORTCUTS_FOOTER), "{busy}");
    let spinner = text_lines(&busy)
        .into_iter()
        .find(|line| line.contains('…') && !line.starts_with(' ') && !line.starts_with('❯'))
        .unwrap_or_else(|| panic!("no spinner line in:\n{busy}"));
    eprintln!("spinner line: {spinner:?}");

    // A prompt typed while the tool runs reaches the model with its result.
    tmux.paste("Also: note the time").unwrap();
    tmux.wait_for_text("❯\u{a0}Also: note the time", WAIT)
        .unwrap();
    tmux.keys(&["Enter"]).unwrap();

    let idle = tmux
        .wait_until("the idle screen", WAIT, |s| {
            s.contains("● Signalled, and noted.") && is_ready(s)
        })
        .unwrap();
    assert_eq!(std::fs::read_to_string(&calls).unwrap(), "signal done\n");
    let lines = text_lines(&idle);
    assert!(lines.contains(&"❯ Also: note the time"), "{idle}");
    let done_line = lines
        .iter()
        .find(|line| line.starts_with(TURN_DONE_MARK))
        .unwrap_or_else(|| panic!("no turn-done line in:\n{idle}"));
    assert!(
        done_line.contains(" for ") && done_line.ends_with('s') && !done_line.contains('…'),
        "{done_line}"
    );
    let after_tool = server
        .message_requests()
        .into_iter()
        .find(|r| r.messages().last_user_has_tool_result())
        .unwrap();
    assert_eq!(after_tool.messages().roles().last(), Some(&"system"));
    assert_eq!(
        after_tool.messages().queued_text().lines().next(),
        Some("Also: note the time")
    );

    tmux.paste("Step 2: again").unwrap();
    tmux.keys(&["Enter"]).unwrap();
    let error = tmux.wait_for_text(API_ERROR, WAIT).unwrap();
    assert!(
        text_lines(&error).contains(
            &"● API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit"
        ),
        "{error}"
    );
    tmux.wait_until("the idle screen after the error", WAIT, is_ready)
        .unwrap();
    // retry-after: 3600 is not retried.
    let step_2 = server
        .message_requests()
        .into_iter()
        .filter(|r| !r.messages().is_side() && r.messages().last_user_text().contains("Step 2"));
    assert_eq!(step_2.count(), 1);
}

#[test]
fn a_new_machine_asks_to_trust_the_folder_then_to_use_the_key() {
    let server = ModelServer::start(Scenario::new()).unwrap();
    let machine =
        Machine::new(Setup::used_before().without_trust().without_key_approval()).unwrap();
    let tmux = claude().tmux(&machine, &server, &[]).unwrap();

    let trust = tmux.wait_for_text(TRUST_QUESTION, WAIT).unwrap();
    let lines = text_lines(&trust);
    for expected in [
        " Accessing workspace:",
        " Claude Code'll be able to read, edit, and execute files here.",
        " ❯ 1. Yes, I trust this folder",
        "   2. No, exit",
        " Enter to confirm · Esc to cancel",
    ] {
        assert!(
            lines.contains(&expected),
            "no line {expected:?} in:\n{trust}"
        );
    }
    assert!(
        lines.contains(&format!(" {}", machine.work_dir().display()).as_str()),
        "{trust}"
    );
    tmux.keys(&["Enter"]).unwrap();

    let key = tmux.wait_for_text(API_KEY_QUESTION, WAIT).unwrap();
    let lines = text_lines(&key);
    let shown = format!(
        "  ANTHROPIC_API_KEY: sk-ant-...{}",
        &FAKE_API_KEY[FAKE_API_KEY.len() - 20..]
    );
    for expected in [
        "  Detected a custom API key in your environment",
        shown.as_str(),
        "  Do you want to use this API key?",
        "    1. Yes",
        "  ❯ 2. No (recommended)",
        "  Enter to confirm · Esc to cancel",
    ] {
        assert!(lines.contains(&expected), "no line {expected:?} in:\n{key}");
    }
    assert!(!key.contains(FAKE_API_KEY), "the whole key is never shown");
    // Enter alone would reject the key (the default is "No"): choose "Yes".
    tmux.keys(&["Up"]).unwrap();
    tmux.wait_for_text("❯ 1. Yes", WAIT).unwrap();
    tmux.keys(&["Enter"]).unwrap();
    let ready = tmux.wait_until("the ready screen", WAIT, is_ready).unwrap();
    assert!(!ready.contains(NOT_LOGGED_IN), "{ready}");

    let json = machine.claude_json();
    let work = machine.work_dir().to_str().unwrap();
    assert_eq!(
        json["projects"][work]["hasTrustDialogAccepted"], true,
        "{json:#}"
    );
    assert_eq!(
        json["customApiKeyResponses"]["approved"][0],
        &FAKE_API_KEY[FAKE_API_KEY.len() - 20..],
        "{json:#}"
    );
}
