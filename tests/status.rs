//! `retort status`, `history` and `show` on a state directory of real runs
//! (made with `retort run` and the scripted agent), in text and JSON.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};
use support::{Sandbox, scripted_agent, stderr, stdout};

const WATCH: &str = r#"
name = "watch"
description = "Watches memory"
schedule = "*/20 * * * *"

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500"
message = "RAM {{ system.memory.available_mb }} MB available"
action = "drop-caches"

[[actions]]
id = "drop-caches"
mode = "propose"
run = ["true"]

[[steps]]
id = "look"
title = "Look"
description = "Look at the factory."

[[steps]]
id = "fix"
title = "Fix"
description = "Fix it."
needs = ["look"]
"#;

fn snapshot(sandbox: &Sandbox, name: &str, available_mb: u64) -> PathBuf {
    let path = sandbox.path(name);
    let snapshot = support::snapshot_json(json!({
        "collected_at": chrono::Utc::now().to_rfc3339(),
        "hostname": "factory-1",
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": available_mb, "total_mb": 16000 },
            "swap": { "used_mb": 0, "total_mb": 4096 }
        }
    }));
    std::fs::write(&path, serde_json::to_vec(&snapshot).unwrap()).unwrap();
    path
}

/// Two runs of `watch`: done with a new P0 finding and a proposal, then
/// escalated at `fix` with it still firing. Their ids, oldest first.
fn two_runs(sandbox: &Sandbox) -> Vec<String> {
    let formula = sandbox.work().join("watch.toml");
    std::fs::write(&formula, WATCH).unwrap();
    let low = snapshot(sandbox, "low.json", 300);
    let state = sandbox.state();
    let agent = scripted_agent();
    let run = |escalate: bool| -> Output {
        let mut command = sandbox.retort(&[
            "run",
            formula.to_str().unwrap(),
            "--backend",
            "headless",
            "--agent",
            &agent,
            "--snapshot",
            low.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--quiet",
        ]);
        if escalate {
            command
                .env("AGENT_ESCALATE_AT", "fix")
                .env("AGENT_REASON", "swap is thrashing");
        }
        command.output().unwrap()
    };
    assert_eq!(run(false).status.code(), Some(0));
    assert_eq!(run(true).status.code(), Some(3));
    // Oldest first (two runs in one second do not sort by their ids).
    let runs: Value = serde_json::from_str(&sandbox.ok(&["history", "--format", "json"])).unwrap();
    let mut ids: Vec<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    ids.reverse();
    ids
}

#[test]
fn status_history_and_show_read_real_runs_in_text_and_json() {
    let sandbox = Sandbox::new();
    let ids = two_runs(&sandbox);
    assert_eq!(ids.len(), 2);

    // status
    let text = sandbox.ok(&["status"]);
    assert!(
        text.contains(&format!("last run   {} escalate", ids[1])),
        "{text}"
    );
    assert!(text.contains("step `fix`: swap is thrashing"), "{text}");
    assert!(text.contains("(schedule `*/20 * * * *`)"), "{text}");
    assert!(
        text.contains("finding    P0 memory-crisis: RAM 300 MB available"),
        "{text}"
    );
    assert!(
        text.contains("proposal   #1 drop-caches for memory-crisis"),
        "{text}"
    );
    let status: Value = serde_json::from_str(&sandbox.ok(&["status", "--format", "json"])).unwrap();
    let watch = &status["formulas"][0];
    assert_eq!(watch["formula"], "watch");
    assert_eq!(watch["last_run"]["phase"], "escalate");
    assert_eq!(watch["schedule"], "*/20 * * * *");
    let next = chrono::DateTime::parse_from_rfc3339(watch["next_run"].as_str().unwrap()).unwrap();
    assert!(
        next > chrono::Utc::now() && next.timestamp() % 1200 == 0,
        "{next}"
    );
    assert!(
        watch["formula_path"]
            .as_str()
            .unwrap()
            .ends_with("work/watch.toml")
    );
    assert_eq!(
        watch["open_findings"]["P0"][0]["fingerprint"],
        "memory-crisis"
    );
    assert_eq!(watch["pending_proposals"][0]["id"], 1);
    assert_eq!(status["holds"], json!([]));

    // history: newest first, filters
    let text = sandbox.ok(&["history"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&ids[1]) && lines[0].contains("escalate  gate open  findings 1"),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&ids[0]) && lines[1].contains("done  gate open  findings 1 (1 new)"),
        "{text}"
    );
    let runs: Value = serde_json::from_str(
        &sandbox.ok(&["history", "watch", "--limit", "1", "--format", "json"]),
    )
    .unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["run_id"], ids[1].as_str());
    assert_eq!(runs[0]["findings"][0]["state"], "firing");
    assert_eq!(sandbox.ok(&["history", "other"]), "No runs.\n");
    let recent: Value =
        serde_json::from_str(&sandbox.ok(&["history", "--since", "1h", "--format", "json"]))
            .unwrap();
    assert_eq!(recent.as_array().unwrap().len(), 2);

    // show
    let text = sandbox.ok(&["show", &ids[1]]);
    assert!(text.contains(&format!("run {} of watch", ids[1])), "{text}");
    assert!(text.contains("1. look — Look: done in"), "{text}");
    assert!(text.contains("2. fix — Fix: escalated in"), "{text}");
    assert!(
        text.contains("reason: step `fix`: swap is thrashing"),
        "{text}"
    );
    assert!(text.contains("prompts/fix.md"), "{text}");
    assert!(
        text.contains("P0 firing memory-crisis: RAM 300 MB available"),
        "{text}"
    );
    assert!(text.contains("agent-output/fix.log"), "{text}");
    let shown: Value =
        serde_json::from_str(&sandbox.ok(&["show", &ids[0], "--format", "json"])).unwrap();
    assert_eq!(shown["history"]["phase"], "done");
    assert_eq!(shown["summary"]["steps"][1]["outcome"], "done");
    assert!(
        shown["summary"]["steps"][0]["duration_ms"]
            .as_u64()
            .is_some()
    );
    assert_eq!(shown["history"]["findings"][0]["state"], "new");
    assert!(
        shown["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().ends_with("prompts/look.md"))
    );

    let output = sandbox
        .retort(&[
            "show",
            "20990101-000000-00000000",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no run `20990101-000000-00000000`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_empty_state_directory_has_no_runs_and_json_spellings_agree() {
    let sandbox = Sandbox::new();
    assert!(sandbox.ok(&["status"]).contains("No runs yet."));
    let status: Value = serde_json::from_str(&sandbox.ok(&["status", "--format", "json"])).unwrap();
    assert_eq!(status["formulas"], json!([]));
    assert_eq!(sandbox.ok(&["history", "--format", "json"]).trim(), "[]");
    assert_eq!(sandbox.ok(&["proposals", "--format", "json"]).trim(), "[]");

    // `preflight --json` is `preflight --format json`.
    for args in [
        &["preflight", "--json"][..],
        &["preflight", "--format", "json"][..],
    ] {
        let output = sandbox.retort(args).output().unwrap();
        let snapshot: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert!(snapshot["system"].is_object(), "{args:?}");
    }
    // `run --dry-run --format json`.
    let formula = sandbox.work().join("watch.toml");
    std::fs::write(&formula, WATCH).unwrap();
    let low = snapshot(&sandbox, "low.json", 300);
    let plan: Value = serde_json::from_str(&sandbox.ok(&[
        "run",
        formula.to_str().unwrap(),
        "--dry-run",
        "--format",
        "json",
        "--snapshot",
        low.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(plan["formula"], "watch");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["gate"]["open"], true);
    assert_eq!(plan["findings"][0]["fingerprint"], "memory-crisis");
    assert_eq!(plan["steps"][1]["needs"], json!(["look"]));
    assert!(
        !sandbox.state().join("runs").exists(),
        "a dry run writes nothing"
    );
}

#[test]
fn status_lists_the_rate_limit_holds_in_force_and_not_the_ended_ones() {
    let sandbox = Sandbox::new();
    let state = sandbox.state();
    std::fs::create_dir_all(&state).unwrap();
    let now = chrono::Utc::now();
    let hold = |agent: &str, until: chrono::DateTime<chrono::Utc>| {
        json!({
            "agent": agent,
            "until": until.to_rfc3339(),
            "reason": "API Error: Request rejected (429)",
            "formula": "watch",
            "run_id": "20261130-120000-0000abcd",
            "at": (now - chrono::Duration::hours(2)).to_rfc3339(),
        })
    };
    let holds = json!([
        hold("claude-code", now + chrono::Duration::hours(1)),
        hold("ended-agent", now - chrono::Duration::hours(1)),
    ]);
    std::fs::write(state.join("holds.json"), holds.to_string()).unwrap();

    let status: Value = serde_json::from_str(&sandbox.ok(&["status", "--format", "json"])).unwrap();
    let agents: Vec<&str> = status["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["claude-code"], "{status}");
    let text = sandbox.ok(&["status"]);
    assert!(text.contains("claude-code"), "{text}");
    assert!(!text.contains("ended-agent"), "{text}");
}
