//! The shipped `formulas/supervisor.toml`: quiet when healthy, the agent
//! with its findings when not.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Sandbox, scripted_agent, stderr};

fn supervisor() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("formulas/supervisor.toml")
}

fn snapshot(disk_percent: u32, idle_hours: i64) -> Value {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T11:20:00Z").unwrap();
    let ago = |hours| (now - chrono::Duration::hours(hours)).to_rfc3339();
    json!({
        "collected_at": now.to_rfc3339(),
        "hostname": "factory-1",
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": 9000, "total_mb": 16000 },
            "swap": { "used_mb": 10, "total_mb": 4096 },
            "disks": [ { "mount": "/", "used_percent": disk_percent, "used_mb": 910, "total_mb": 1000 } ],
            "load": { "one": 0.5, "five": 0.4, "fifteen": 0.3 }
        },
        "tmux": {
            "status": "ok", "reason": null,
            "sessions": [
                { "name": "dev-7", "windows": 1, "attached": false,
                  "created": ago(idle_hours + 1), "last_activity": ago(idle_hours) },
                { "name": "retort-supervisor-x", "windows": 1, "attached": false,
                  "created": ago(9), "last_activity": ago(9) }
            ]
        }
    })
}

fn run(sandbox: &Sandbox, snapshot: &Value) -> std::process::Output {
    let file = sandbox.path("snapshot.json");
    std::fs::write(&file, serde_json::to_vec(snapshot).unwrap()).unwrap();
    sandbox
        .retort(&[
            "run",
            supervisor().to_str().unwrap(),
            "--snapshot",
            file.to_str().unwrap(),
            "--agent",
            &scripted_agent(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

fn journal(sandbox: &Sandbox) -> String {
    let dir = sandbox.state().join("journal/supervisor");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn a_healthy_machine_starts_no_agent_and_journals_healthy() {
    let sandbox = Sandbox::new();
    let output = run(&sandbox, &snapshot(31, 1));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(sandbox.received().is_empty(), "no agent");
    assert_eq!(sandbox.tmux_sessions(), Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(sandbox.state().join("supervisor.phase")).unwrap(),
        "PHASE:done\n"
    );
    let journal = journal(&sandbox);
    assert!(
        journal.contains("- Gate: closed (on-findings): healthy — no agent started\n"),
        "{journal}"
    );
    assert!(
        journal.contains("### Findings\n- None: healthy\n"),
        "{journal}"
    );
}

#[test]
fn disk_pressure_and_an_idle_session_start_the_agent_with_the_findings_and_proposals() {
    let sandbox = Sandbox::new();
    let output = run(&sandbox, &snapshot(91, 5));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let received = sandbox.received();
    assert_eq!(received.len(), 5, "all five steps");
    let first = &received[0].1;
    assert!(first.contains("## Findings"), "{first}");
    assert!(
        first.contains("- [P1] disk-pressure[/]: Disk / 91% used (910 MB of 1000 MB) — new"),
        "{first}"
    );
    assert!(
        first.contains("- [P4] idle-session[dev-7]: tmux session dev-7 idle since"),
        "{first}"
    );
    assert!(
        !first.contains("idle-session[retort-"),
        "retort's own sessions are not idle agents: {first}"
    );
    assert!(
        first.contains(
            "- docker-prune for disk-pressure[/]: proposed as #1 (`retort approve 1` runs it)"
        ),
        "{first}"
    );
    let decide = &received[2].1;
    assert!(
        decide.contains("These destructive fixes wait for a human's approval"),
        "{decide}"
    );
    assert!(
        decide.contains(
            "- kill-idle-session for idle-session[dev-7]: proposed as #2 (`retort approve 2` runs it)"
        ),
        "{decide}"
    );
    let report = &received[3].1;
    assert!(
        report.contains("Post a summary grouped by priority"),
        "{report}"
    );
    assert!(
        report.contains("and these\nare new: disk-pressure[/], idle-session[dev-7]."),
        "{report}"
    );

    let proposals = sandbox
        .retort(&[
            "proposals",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let listed = support::stdout(&proposals);
    assert!(
        listed.contains("    command:  docker system prune -f\n"),
        "{listed}"
    );
    assert!(
        listed.contains("    command:  tmux kill-session -t =dev-7\n"),
        "{listed}"
    );
}
