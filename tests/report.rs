//! `retort report` on a state directory of real runs (made with `retort
//! run` and the scripted agent), as markdown and JSON: outcomes, sessions
//! started and avoided by the gate, step durations, findings by priority,
//! a fingerprint recurring in more than 5 runs flagged, proposals approved.

mod support;

use serde_json::{Value, json};
use support::{Sandbox, scripted_agent, stderr};

const NOISY: &str = r#"
name = "noisy"
description = "A memory rule that keeps firing"

[gate]
agent = "on-new-findings"

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500"
message = "RAM {{ system.memory.available_mb }} MB available"
repeat = "30d"
action = "drop-caches"

[[actions]]
id = "drop-caches"
mode = "propose"
run = ["true"]

[[steps]]
id = "look"
title = "Look"
description = "Look at the factory."
"#;

#[test]
fn a_report_of_real_runs_counts_outcomes_sessions_steps_and_flags_a_recurring_fingerprint() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("noisy.toml");
    std::fs::write(&formula, NOISY).unwrap();
    let low = sandbox.path("low.json");
    let snapshot = support::snapshot_json(json!({
        "collected_at": chrono::Utc::now().to_rfc3339(),
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": 300, "total_mb": 16000 },
            "swap": { "used_mb": 0, "total_mb": 4096 }
        }
    }));
    std::fs::write(&low, serde_json::to_vec(&snapshot).unwrap()).unwrap();
    let agent = scripted_agent();
    // The first run opens the gate (a new finding); the six after stay
    // closed (nothing new), though the finding still fires.
    for _ in 0..7 {
        let output = sandbox
            .retort(&[
                "run",
                formula.to_str().unwrap(),
                "--backend",
                "headless",
                "--agent",
                &agent,
                "--snapshot",
                low.to_str().unwrap(),
                "--state-dir",
                sandbox.state().to_str().unwrap(),
                "--quiet",
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    sandbox.ok(&["approve", "1"]);

    let report: Value = serde_json::from_str(&sandbox.ok(&["report", "--format", "json"])).unwrap();
    let noisy = &report["formulas"][0];
    assert_eq!(noisy["formula"], "noisy");
    assert_eq!(noisy["runs"], 7);
    assert_eq!(noisy["outcomes"], json!({"done": 7}));
    assert_eq!(noisy["sessions_started"], 1);
    assert_eq!(noisy["sessions_avoided"], 6);
    assert_eq!(noisy["steps"][0]["id"], "look");
    assert_eq!(noisy["steps"][0]["ran"], 1);
    assert_eq!(noisy["steps"][0]["median_ms"], noisy["steps"][0]["p95_ms"]);
    assert_eq!(noisy["findings_by_priority"], json!({"P0": 1}));
    let recurring = &noisy["recurring"][0];
    assert_eq!(recurring["fingerprint"], "memory-crisis");
    assert_eq!(recurring["runs"], 7);
    assert_eq!(recurring["runs_last_7d"], 7);
    assert_eq!(recurring["flagged"], true);
    assert_eq!(noisy["actions"]["runs"], json!({"ok": 1}));
    assert_eq!(noisy["actions"]["proposed"], 1);
    assert_eq!(noisy["actions"]["approved"], 1);
    assert_eq!(noisy["actions"]["pending"], 0);
    assert_eq!(
        noisy["usage"],
        Value::Null,
        "the scripted agent reports no usage"
    );

    let text = sandbox.ok(&["report", "--since", "1d"]);
    assert!(text.starts_with("# retort report: "), "{text}");
    assert!(text.contains("## noisy"), "{text}");
    assert!(text.contains("- runs: 7 (done 7)"), "{text}");
    assert!(
        text.contains("- agent sessions: 1 started, 6 avoided by the gate"),
        "{text}"
    );
    assert!(text.contains("- actions run: ok 1"), "{text}");
    assert!(
        text.contains("- proposals: 1 proposed, 1 approved, 0 rejected, 0 expired, 0 pending"),
        "{text}"
    );
    assert!(text.contains("| look | 1 | done 1 |"), "{text}");
    assert!(
        text.contains("| memory-crisis | P0 | 7 | 7 | **yes** | RAM 300 MB available |"),
        "{text}"
    );
    assert!(text.contains("- tokens and cost: not recorded"), "{text}");
}
