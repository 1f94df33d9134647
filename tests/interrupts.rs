//! SIGINT, SIGTERM and SIGHUP in every phase of a run, and SIGKILL with
//! process groups left behind: what the run records, what it ends, what
//! the next run does. Real retort processes, real signals, real files;
//! preflight commands, actions and agents are small shell scripts.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{Sandbox, stderr};

/// Whether process `pid` is alive (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Polls `done` every 50 ms for up to `seconds`.
fn within(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// The pid written in `file`, once it is there.
fn pid_in(file: &Path) -> String {
    assert!(
        within(30, || std::fs::read_to_string(file)
            .is_ok_and(|t| t.ends_with('\n'))),
        "{} never written",
        file.display()
    );
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// A snapshot of a healthy host, for `--snapshot` (no preflight).
fn snapshot(sandbox: &Sandbox) -> PathBuf {
    let snapshot = support::snapshot_json(serde_json::json!({
        "collected_at": chrono::Utc::now().to_rfc3339(),
        "hostname": "factory-1",
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": 6000, "total_mb": 16000 },
            "swap": { "used_mb": 0, "total_mb": 4096 }
        }
    }));
    write(
        &sandbox.path("snapshot.json"),
        &serde_json::to_string(&snapshot).unwrap(),
    )
}

fn journal(sandbox: &Sandbox, formula: &str) -> String {
    std::fs::read_dir(sandbox.state().join("journal").join(formula))
        .map(|entries| {
            entries
                .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

fn history(sandbox: &Sandbox) -> Vec<serde_json::Value> {
    let output = sandbox
        .retort(&[
            "history",
            "--format",
            "json",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// An agent script; `body` is bash.
fn agent(sandbox: &Sandbox, name: &str, body: &str) -> String {
    let path = write(&sandbox.path(&format!("{name}.sh")), body);
    format!("bash {}", path.display())
}

fn run(sandbox: &Sandbox, formula: &Path, extra: &[&str]) -> std::process::Command {
    let state = sandbox.state();
    let mut args = vec![
        "run",
        formula.to_str().unwrap(),
        "--backend",
        "headless",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut command = sandbox.retort(&args);
    command.stdout(Stdio::null());
    command
}

/// Formula `pre`, whose preflight command ignores SIGTERM and hangs, with
/// a child (their pids in `marks/command.pid` and `marks/child.pid`),
/// until `marks/second` exists: then it returns at once.
fn slow_preflight(sandbox: &Sandbox, marks: &Path) -> PathBuf {
    write(
        &sandbox.work().join("pre.toml"),
        &format!(
            r#"name = "pre"
[[preflight.commands]]
name = "slow"
run = ["sh", "-c", "test -e {m}/second && exit 0; trap '' TERM; sleep 300 & echo $! > {m}/child.pid; echo $$ > {m}/command.pid; wait"]
timeout = "5m"

[[steps]]
id = "look"
description = "Look."
"#,
            m = marks.display()
        ),
    )
}

#[test]
fn sigint_during_the_preflight_ends_its_command_and_records_where_the_run_stopped() {
    let sandbox = Sandbox::new();
    let marks = sandbox.transcript();
    let formula = slow_preflight(&sandbox, &marks);
    let first = run(&sandbox, &formula, &["--agent", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let command = pid_in(&marks.join("command.pid"));
    let child = pid_in(&marks.join("child.pid"));

    signal(&first, libc::SIGINT);
    let output = first.wait_with_output().unwrap();

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "128 + SIGINT: {err}");
    let reason =
        "retort was interrupted by SIGINT during the preflight; nothing was decided or started";
    assert_eq!(
        sandbox.phase("pre"),
        format!("PHASE:failed\nReason: {reason}\n")
    );
    assert!(err.contains(reason), "{err}");
    // The command ignores SIGTERM: SIGKILL ended it, and its child with it.
    assert!(
        within(5, || !alive(&command) && !alive(&child)),
        "left running: command {}, child {}",
        alive(&command),
        alive(&child)
    );
    assert!(journal(&sandbox, "pre").contains(reason));
    let rows = history(&sandbox);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["phase"], "failed");
    assert_eq!(rows[0]["reason"], reason);
}

/// A formula whose rule always fires an auto action `nap` (cooldown 1h)
/// that appends its pid to `marks/action.pids` and sleeps, with a child.
fn napping(sandbox: &Sandbox, name: &str) -> PathBuf {
    write(
        &sandbox.work().join(format!("{name}.toml")),
        &format!(
            r#"name = "{name}"

[[rules]]
id = "always"
priority = "P3"
when = "true"
message = "always"
action = "nap"

[[actions]]
id = "nap"
run = ["sh", "-c", "sleep 300 & echo $! > {m}/child.pid; echo $$ >> {m}/action.pids; wait"]
mode = "auto"
timeout = "10m"
cooldown = "1h"

[[steps]]
id = "look"
description = "Look at the factory."
"#,
            m = sandbox.transcript().display()
        ),
    )
}

fn action_starts(sandbox: &Sandbox) -> usize {
    std::fs::read_to_string(sandbox.transcript().join("action.pids"))
        .map_or(0, |t| t.lines().count())
}

#[test]
fn sigterm_during_an_auto_action_ends_it_the_agent_never_starts_and_its_cooldown_holds() {
    let sandbox = Sandbox::new();
    let formula = napping(&sandbox, "napper");
    let snapshot = snapshot(&sandbox);
    let marks = sandbox.transcript();
    let never = agent(
        &sandbox,
        "never",
        &format!("cat > /dev/null; touch {}/agent-started", marks.display()),
    );
    let snap = ["--snapshot", snapshot.to_str().unwrap(), "--agent", &never];
    let first = run(&sandbox, &formula, &snap)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let action = pid_in(&marks.join("action.pids"));
    let child = pid_in(&marks.join("child.pid"));

    signal(&first, libc::SIGTERM);
    let output = first.wait_with_output().unwrap();

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(143), "128 + SIGTERM: {err}");
    assert_eq!(
        sandbox.phase("napper"),
        "PHASE:failed\nReason: retort was interrupted by SIGTERM during the auto actions\n"
    );
    assert!(
        within(5, || !alive(&action) && !alive(&child)),
        "the action's group is left running"
    );
    assert!(!marks.join("agent-started").exists(), "the agent started");
    let text = journal(&sandbox, "napper");
    assert!(
        text.contains("interrupted by SIGTERM during the auto actions"),
        "{text}"
    );
    let rows = history(&sandbox);
    assert_eq!(rows[0]["phase"], "failed", "{rows:?}");

    // The next run: the action is within its cooldown, so it does not
    // start again; the agent does.
    let quick = agent(&sandbox, "quick", "cat > /dev/null; retort signal done");
    let next = run(
        &sandbox,
        &formula,
        &["--snapshot", snapshot.to_str().unwrap(), "--agent", &quick],
    )
    .output()
    .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert_eq!(action_starts(&sandbox), 1, "the action ran twice");
}

#[test]
fn a_sigkilled_run_leaves_its_action_to_the_next_run_which_ends_it_and_holds_its_cooldown() {
    let sandbox = Sandbox::new();
    let formula = napping(&sandbox, "killed");
    let snapshot = snapshot(&sandbox);
    let marks = sandbox.transcript();
    let quick = agent(&sandbox, "quick", "cat > /dev/null; retort signal done");
    let snap = ["--snapshot", snapshot.to_str().unwrap(), "--agent", &quick];
    let mut first = run(&sandbox, &formula, &snap)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let action = pid_in(&marks.join("action.pids"));
    let child = pid_in(&marks.join("child.pid"));

    first.kill().unwrap(); // SIGKILL: nothing of retort's own runs.
    first.wait().unwrap();
    assert!(alive(&action), "the action outlives a SIGKILLed retort");

    // `retort status` tells the dead run from a running one.
    let status = sandbox.ok(&["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["formulas"][0]["last_run"]["phase"], "abandoned",
        "{status}"
    );

    let next = run(&sandbox, &formula, &snap).output().unwrap();

    let err = stderr(&next);
    assert_eq!(next.status.code(), Some(0), "{err}");
    assert!(err.contains("was abandoned"), "{err}");
    assert!(
        within(5, || !alive(&action) && !alive(&child)),
        "the next run left the action's group running"
    );
    assert_eq!(action_starts(&sandbox), 1, "the action ran twice");
    let rows = history(&sandbox);
    assert!(
        rows.iter().any(|row| row["phase"] == "abandoned"),
        "{rows:?}"
    );
}

#[test]
fn a_headless_agent_that_ignores_sighup_is_ended_by_the_run_after_a_sigkill() {
    let sandbox = Sandbox::new();
    let marks = sandbox.transcript();
    let formula = write(
        &sandbox.work().join("headless.toml"),
        "name = \"headless\"\n[[steps]]\nid = \"one\"\ndescription = \"First.\"\ntimeout = \"5m\"\n",
    );
    let stubborn = agent(
        &sandbox,
        "stubborn",
        &format!(
            "trap '' HUP TERM\nsleep 300 &\necho $! > {m}/child.pid\necho $$ > {m}/agent.pid\nwait",
            m = marks.display()
        ),
    );
    let mut first = run(&sandbox, &formula, &["--agent", &stubborn])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent_pid = pid_in(&marks.join("agent.pid"));
    let child = pid_in(&marks.join("child.pid"));
    first.kill().unwrap();
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(&agent_pid), "a headless agent outlives its retort");

    let quick = agent(&sandbox, "quick", "cat > /dev/null; retort signal done");
    let next = run(&sandbox, &formula, &["--agent", &quick])
        .output()
        .unwrap();

    let err = stderr(&next);
    assert_eq!(next.status.code(), Some(0), "{err}");
    assert!(err.contains("was abandoned"), "{err}");
    assert!(
        within(5, || !alive(&agent_pid) && !alive(&child)),
        "left running: agent {}, child {}",
        alive(&agent_pid),
        alive(&child)
    );
    let rows = history(&sandbox);
    assert!(
        rows.iter().any(|row| row["phase"] == "abandoned"),
        "{rows:?}"
    );
}

/// A webhook on loopback that takes each connection and never answers;
/// `marks/webhook.called` appears once retort has connected.
fn silent_webhook(marks: &Path) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let called = marks.join("webhook.called");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            std::fs::write(&called, "yes\n").unwrap();
            held.push(stream);
        }
    });
    format!("http://127.0.0.1:{port}/hook")
}

#[test]
fn sigterm_while_a_notification_hangs_ends_the_run_at_once_with_its_records_written() {
    let sandbox = Sandbox::new();
    let marks = sandbox.transcript();
    let url = silent_webhook(&marks);
    let formula = write(
        &sandbox.work().join("fin.toml"),
        &format!(
            r#"name = "fin"

[[notify]]
kind = "webhook"
url = "{url}"
on = ["failed"]

[[steps]]
id = "look"
description = "Look."
"#
        ),
    );
    let snapshot = snapshot(&sandbox);
    // The agent exits without signalling: the step fails, the run tells the
    // webhook, which never answers.
    let first = run(
        &sandbox,
        &formula,
        &["--agent", "true", "--snapshot", snapshot.to_str().unwrap()],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    assert!(
        within(30, || marks.join("webhook.called").exists()),
        "the run never called the webhook"
    );
    let signalled = Instant::now();
    signal(&first, libc::SIGTERM);
    let output = first.wait_with_output().unwrap();
    let err = stderr(&output);

    assert_eq!(output.status.code(), Some(143), "128 + SIGTERM: {err}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "the run waited for the webhook's timeout: {:?}",
        signalled.elapsed()
    );
    let phase = sandbox.phase("fin");
    assert!(phase.starts_with("PHASE:failed\n"), "{phase}");
    assert!(phase.contains("`look`"), "the step's own failure: {phase}");
    let journal = journal(&sandbox, "fin");
    assert!(
        journal.contains("notifications not sent: retort was interrupted by SIGTERM"),
        "{journal}"
    );
    let rows = history(&sandbox);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["phase"], "failed");
    assert!(rows[0]["finished_at"].is_string(), "{:?}", rows[0]);
}

#[test]
fn a_preflight_command_left_by_a_sigkilled_run_is_ended_by_the_next_run() {
    let sandbox = Sandbox::new();
    let marks = sandbox.transcript();
    // The first run's command hangs; the next run's returns at once.
    let formula = slow_preflight(&sandbox, &marks);
    let mut first = run(&sandbox, &formula, &["--agent", "true"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let command = pid_in(&marks.join("command.pid"));
    let child = pid_in(&marks.join("child.pid"));
    first.kill().unwrap(); // SIGKILL: retort ends nothing itself.
    first.wait().unwrap();
    assert!(alive(&command), "the command outlives a SIGKILLed retort");

    write(&marks.join("second"), "");
    let next = run(&sandbox, &formula, &["--agent", "true"])
        .output()
        .unwrap();
    let err = stderr(&next);
    assert!(err.contains("was abandoned"), "{err}");
    assert!(
        within(5, || !alive(&command) && !alive(&child)),
        "the next run left the first one's preflight command running: command {}, child {}",
        alive(&command),
        alive(&child)
    );
    assert!(journal(&sandbox, "pre").contains("was abandoned"));
}
