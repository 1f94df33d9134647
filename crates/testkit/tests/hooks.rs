//! `--settings FILE` hooks (Stop, Notification) and the session transcript.

mod support;

use std::time::Duration;

use retort_testkit::screen::{PERMISSION_QUESTION, SHORTCUTS_FOOTER};
use retort_testkit::{Machine, ModelServer, Reply, Rule, Scenario, Setup, Usage, When};
use serde_json::{Value, json};
use support::claude;

const WAIT: Duration = Duration::from_secs(15);

/// The JSON objects appended to `path`, one per line.
fn lines_of(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn stop_and_notification_hooks_get_their_payloads_and_the_transcript_has_usage() {
    let server = ModelServer::start(
        Scenario::new()
            .rule(
                Rule::new(
                    When::prompt_contains("Step 1"),
                    Reply::bash("retort signal done"),
                )
                .usage(Usage::new(1200, 30)),
            )
            .rule(
                Rule::new(When::AfterToolResult, Reply::text("Step 1 finished."))
                    .usage(Usage::new(1500, 40)),
            )
            .when(When::SideRequest, Reply::text("Title")),
    )
    .unwrap();
    let machine = Machine::new(Setup::used_before()).unwrap();
    machine
        .add_command("retort", "#!/bin/sh\nexit 0\n")
        .unwrap();
    let (stops, notes) = (
        machine.root().join("stop.jsonl"),
        machine.root().join("notification.jsonl"),
    );
    // Each hook appends its stdin (one JSON object) and a newline.
    let hook = |file: &std::path::Path| json!([{"hooks": [{"type": "command", "command": format!("{{ cat; echo; }} >> '{}'", file.display())}]}]);
    let settings = machine.root().join("settings.json");
    std::fs::write(
        &settings,
        json!({"hooks": {"Stop": hook(&stops), "Notification": hook(&notes)}}).to_string(),
    )
    .unwrap();

    let tmux = claude()
        .tmux(
            &machine,
            &server,
            &["--settings", settings.to_str().unwrap()],
        )
        .unwrap();
    tmux.wait_for_text(SHORTCUTS_FOOTER, WAIT).unwrap();
    tmux.paste("Step 1: signal").unwrap();
    tmux.wait_for_text("❯\u{a0}Step 1: signal", WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    tmux.keys(&["Enter"]).unwrap();
    tmux.wait_for_text(PERMISSION_QUESTION, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));

    // Notification: the permission prompt.
    let deadline = std::time::Instant::now() + WAIT;
    while lines_of(&notes).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let notification = &lines_of(&notes)[0];
    assert_eq!(
        notification["hook_event_name"], "Notification",
        "{notification:#}"
    );
    assert_eq!(notification["notification_type"], "permission_prompt");
    assert_eq!(notification["message"], "Claude needs your permission");
    assert_eq!(notification["cwd"], machine.work_dir().to_str().unwrap());
    assert!(
        lines_of(&stops).is_empty(),
        "no Stop while waiting for permission"
    );

    tmux.keys(&["Enter"]).unwrap();
    tmux.wait_for_text("● Step 1 finished.", WAIT).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while lines_of(&stops).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stop = &lines_of(&stops)[0];
    assert_eq!(stop["hook_event_name"], "Stop", "{stop:#}");
    assert_eq!(stop["last_assistant_message"], "Step 1 finished.");
    assert_eq!(stop["stop_hook_active"], false);
    assert_eq!(stop["permission_mode"], "default");
    assert_eq!(stop["session_id"], notification["session_id"]);
    let transcript = std::path::PathBuf::from(stop["transcript_path"].as_str().unwrap());
    let project = machine.work_dir().to_str().unwrap().replace('/', "-");
    assert_eq!(
        transcript,
        machine
            .home()
            .join(".claude/projects")
            .join(project)
            .join(format!("{}.jsonl", stop["session_id"].as_str().unwrap()))
    );

    // The transcript: one line per message; each assistant line has usage.
    // The Stop hook can run before the last assistant line is written.
    let assistant_lines = || -> Vec<Value> {
        lines_of(&transcript)
            .into_iter()
            .filter(|line| line["type"] == "assistant")
            .collect()
    };
    let at_stop = assistant_lines().len();
    let deadline = std::time::Instant::now() + WAIT;
    while assistant_lines().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("assistant lines when Stop ran: {at_stop}");
    let assistant = assistant_lines();
    let usage: Vec<(u64, u64)> = assistant
        .iter()
        .map(|line| {
            let usage = &line["message"]["usage"];
            (
                usage["input_tokens"].as_u64().unwrap(),
                usage["output_tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(usage, [(1200, 30), (1500, 40)], "{assistant:#?}");
}
