//! The shipped `formulas/supervisor.toml`: quiet when healthy, the agent
//! with its findings when not, safe fixes run and destructive ones proposed.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Sandbox, scripted_agent, stderr, stdout};

fn supervisor() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("formulas/supervisor.toml")
}

const NOW: &str = "2026-11-21T11:20:00Z";

fn ago(seconds: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(NOW).unwrap() - chrono::Duration::seconds(seconds))
        .to_rfc3339()
}

/// What can go wrong on the factory, one knob each.
#[derive(Clone, Copy)]
struct Factory<'a> {
    disk_percent: u32,
    /// Seconds since `dev-7` was last active.
    dev_idle: i64,
    /// A lock file whose process has died.
    dead_lock: Option<(&'a Path, u32)>,
    /// Seconds since PR #12 was updated.
    pr_idle: i64,
    /// Whether pipeline #301 is stuck.
    ci_stuck: bool,
}

const HEALTHY: Factory<'static> = Factory {
    disk_percent: 31,
    dev_idle: 60,
    dead_lock: None,
    pr_idle: 300,
    ci_stuck: false,
};

fn pane(dead: bool) -> Value {
    json!({ "id": "%1", "window_index": 0, "pane_index": 0, "pid": 4242,
            "current_command": "claude", "dead": dead, "exit_status": null, "exit_signal": null })
}

fn session(name: &str, idle: i64, attached: bool) -> Value {
    json!({ "name": name, "windows": 1, "attached": attached,
            "created": ago(idle + 3600), "last_activity": ago(idle), "idle_seconds": idle,
            "panes": [pane(false)] })
}

/// A whole snapshot, every section collected.
fn snapshot(f: Factory<'_>) -> Value {
    let mut locks = vec![
        json!({ "path": "/tmp/review-poll.lock", "pid": std::process::id(),
        "alive": true, "content": std::process::id().to_string(), "modified": ago(30), "age_seconds": 30 }),
    ];
    if let Some((path, pid)) = f.dead_lock {
        locks.push(
            json!({ "path": path, "pid": pid, "alive": false, "content": pid.to_string(),
            "modified": ago(900), "age_seconds": 900 }),
        );
    }
    let ok = |extra: Value| {
        let mut section = json!({ "status": "ok", "reason": null, "duration_ms": 1 });
        for (key, value) in extra.as_object().unwrap() {
            section[key] = value.clone();
        }
        section
    };
    support::snapshot_json(json!({
        "collected_at": NOW,
        "hostname": "factory-1",
        "system": ok(json!({
            "memory": { "available_mb": 9000, "total_mb": 16000 },
            "swap": { "used_mb": 10, "total_mb": 4096 },
            "disks": [ { "mount": "/", "used_percent": f.disk_percent, "used_mb": 910, "total_mb": 1000 } ],
            "load": { "one": 0.5, "five": 0.4, "fifteen": 0.3 },
            "uptime_seconds": 86400, "cpus": 2,
            "top_processes": [ { "pid": 77, "name": "claude", "command": "claude -p fix issue 9",
                                 "rss_mb": 800, "age_seconds": 600 } ]
        })),
        "docker": ok(json!({ "containers": [] })),
        "tmux": ok(json!({ "sessions": [
            session("dev-7", f.dev_idle, false),
            session("ops", 20000, true),
            session("retort-supervisor-x", 30000, false)
        ] })),
        "phase_files": ok(json!({ "globs": ["/tmp/*-session-*.phase"], "omitted": 0, "files": [
            { "path": "/tmp/dev-session-9.phase", "first_line": "PHASE:escalate", "modified": ago(3600), "age_seconds": 3600 }
        ] })),
        "locks": ok(json!({ "globs": ["/tmp/*-poll.lock"], "omitted": 0, "files": locks })),
        "logs": ok(json!({ "globs": [], "omitted": 0, "files": [] })),
        "git": ok(json!({ "repos": [ {
            "path": "/srv/factory/app", "status": "ok", "reason": null, "root": "/srv/factory/app",
            "branch": "main", "expected_branch": "main", "detached": false, "head": "abc",
            "rebase_in_progress": false, "merge_in_progress": false, "changed_files": 0,
            "conflicted_files": 0, "untracked_files": 0, "upstream": "origin/main",
            "ahead": 0, "behind": 0, "worktrees": []
        } ], "worktree_globs": ["/tmp/*-worktree-*"], "worktree_dirs": [] })),
        "escalations": ok(json!({ "globs": [], "omitted": 0, "files": [] })),
        "forge": ok(json!({
            "url": "https://forge.example", "repo": "factory/app", "open_pull_requests": 1,
            "pull_requests": [ { "number": 12, "title": "Fix the poller", "head_branch": "fix/poller",
                "author": "dev-agent", "draft": false, "updated_at": ago(f.pr_idle),
                "idle_seconds": f.pr_idle, "url": "https://forge.example/factory/app/pulls/12" } ],
            "labels": [ { "name": "backlog", "open_issues": 3 } ],
            "blocked_label": "blocked", "blocked": []
        })),
        "ci": ok(json!({
            "url": "https://ci.example", "repo_id": 1, "window_seconds": 86400,
            "pipelines": [ { "number": 301, "status": "running", "event": "push", "branch": "main",
                "created": ago(2400), "started": ago(2400), "finished": null,
                "duration_seconds": 2400, "pending_seconds": null, "stuck": f.ci_stuck } ],
            "status_counts": { "running": 1 },
            "running_limit_seconds": 1200, "pending_limit_seconds": 1800,
            "running_too_long": u32::from(f.ci_stuck), "pending_too_long": 0
        })),
        "commands": ok(json!({ "results": [] }))
    }))
}

fn run(sandbox: &Sandbox, factory: Factory<'_>, vars: &[&str]) -> std::process::Output {
    let file = sandbox.path("snapshot.json");
    std::fs::write(&file, serde_json::to_vec(&snapshot(factory)).unwrap()).unwrap();
    let mut args = vec![
        "run".to_string(),
        supervisor().display().to_string(),
        "--snapshot".to_string(),
        file.display().to_string(),
        "--agent".to_string(),
        scripted_agent(),
        "--state-dir".to_string(),
        sandbox.state().display().to_string(),
    ];
    for var in vars {
        args.push("--var".to_string());
        args.push((*var).to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.retort(&args).output().unwrap()
}

fn journal(sandbox: &Sandbox) -> String {
    let dir = sandbox.state().join("journal/supervisor");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn the_shipped_formula_and_its_runbooks_are_whole() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .retort(&["check", supervisor().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let formula = std::fs::read_to_string(supervisor()).unwrap();
    for runbook in ["memory", "disk", "ci", "dev-agent", "git"] {
        let path = format!("best-practices/{runbook}.md");
        assert!(formula.contains(&path), "the formula points to {path}");
        let text = std::fs::read_to_string(root.join(&path)).unwrap();
        assert!(text.contains("## Escalate"), "{path} says what to escalate");
    }
}

#[test]
fn a_healthy_factory_starts_no_agent_and_journals_healthy() {
    let sandbox = Sandbox::new();
    let output = run(&sandbox, HEALTHY, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(sandbox.received().is_empty(), "no agent");
    // No prompt goes out, so the missing AGENTS.md is no one's concern.
    assert!(
        !sandbox.work().join("AGENTS.md").exists() && !stderr(&output).contains("AGENTS.md"),
        "{}",
        stderr(&output)
    );
    assert_eq!(sandbox.tmux_sessions(), Vec::<String>::new());
    assert_eq!(sandbox.phase("supervisor"), "PHASE:done\n");
    let journal = journal(&sandbox);
    assert!(
        journal.contains("- Gate: closed (on-findings): healthy — no agent started\n"),
        "{journal}"
    );
    assert!(
        journal.contains("### Findings\n- None: healthy\n"),
        "{journal}"
    );
    assert!(
        !journal.contains("Rules not evaluated"),
        "every section was collected, so every rule was evaluated: {journal}"
    );
}

#[test]
fn a_threshold_moved_with_var_fires_and_the_agent_gets_the_finding_first() {
    let sandbox = Sandbox::new();
    let output = run(&sandbox, HEALTHY, &["disk_ceiling_percent=20"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let received = sandbox.received();
    assert_eq!(received.len(), 5, "all five steps");
    let first = &received[0].1;
    assert!(
        first.contains("## Findings\n\nretort evaluated the formula's rules"),
        "{first}"
    );
    assert!(
        first.contains("- [P1] disk-pressure[/]: Disk / 31% used (910 MB of 1000 MB) — new"),
        "{first}"
    );
    assert!(
        received[1].1.contains("- Disk usage > 20 %"),
        "the steps see the var too"
    );
}

#[test]
fn a_troubled_factory_gets_its_safe_fixes_run_and_its_destructive_ones_proposed() {
    let sandbox = Sandbox::new();
    // A lock file naming a process that has exited.
    let lock = sandbox.path("dev-poll.lock");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&lock, format!("{dead}\n")).unwrap();

    let troubled = Factory {
        disk_percent: 91,
        dev_idle: 5 * 3600,
        dead_lock: Some((&lock, dead)),
        pr_idle: 3600,
        ci_stuck: true,
    };
    let output = run(&sandbox, troubled, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    assert!(
        !lock.exists(),
        "the dead lock was removed before the agent started"
    );
    let received = sandbox.received();
    assert_eq!(received.len(), 5, "all five steps");
    let first = &received[0].1;
    for line in [
        "- [P1] disk-pressure[/]: Disk / 91% used (910 MB of 1000 MB) — new",
        "- [P2] ci-stuck[301]: CI pipeline #301 on main is running for 2400 s — new",
        &format!(
            "- [P2] dead-lock[{}]: Lock file {} names PID {dead}, which is not running — new",
            lock.display(),
            lock.display()
        ),
        "- [P3] stale-pr[12]: PR #12 (fix/poller) has not been updated for 3600 s — new",
        "- [P4] idle-session[dev-7]: tmux session dev-7 idle since",
        &format!(
            "- remove-dead-lock for dead-lock[{}]: ran, exit 0 in ",
            lock.display()
        ),
        "- docker-prune for disk-pressure[/]: proposed as #1 (`retort approve 1` runs it)",
        "- kill-idle-session for idle-session[dev-7]: proposed as #2 (`retort approve 2` runs it)",
    ] {
        assert!(
            first.contains(line),
            "first prompt lacks {line:?}:\n{first}"
        );
    }
    assert!(
        !first.contains("idle-session[retort-") && !first.contains("idle-session[ops]"),
        "retort's own and attached sessions are not idle agents: {first}"
    );
    assert!(
        !first.contains("escalation-timeout"),
        "an hour-old escalation is within the 24 h: {first}"
    );
    let decide = &received[2].1;
    assert!(
        decide.contains("retort already ran these fixes"),
        "{decide}"
    );
    assert!(
        decide.contains("These destructive fixes wait for a human's approval"),
        "{decide}"
    );
    let report = &received[3].1;
    assert!(
        report.contains("Post a summary grouped by priority"),
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
    let listed = stdout(&proposals);
    assert!(
        listed.contains("    command:  docker system prune -f\n"),
        "{listed}"
    );
    assert!(
        listed.contains("    command:  tmux kill-session -t =dev-7\n"),
        "{listed}"
    );
    assert!(
        first.contains(&format!("stdout: removed {}", lock.display())),
        "the agent sees the action's output: {first}"
    );
    let journal = journal(&sandbox);
    assert!(
        journal.contains("- Gate: open (on-findings): 5 findings firing: "),
        "{journal}"
    );
}
