//! Markdown, health summary and JSON shape of a snapshot.

use chrono::{DateTime, TimeZone, Utc};
use retort_preflight::{
    CollectorStatus, Config, Disk, Load, Memory, Snapshot, Swap, SystemSection, TmuxSection,
    TmuxSession, collect,
};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

const NOW: i64 = 1_735_732_800; // 2025-01-01 12:00:00 UTC

fn session(name: &str, attached: bool) -> TmuxSession {
    TmuxSession {
        name: name.to_owned(),
        windows: 1,
        attached,
        created: at(NOW - 3600),
        last_activity: at(NOW - 1800),
        idle_seconds: 1800,
        panes: vec![],
    }
}

fn sample(sessions: Vec<TmuxSession>) -> Snapshot {
    Snapshot {
        collected_at: at(NOW),
        hostname: "build-01".to_owned(),
        system: SystemSection {
            status: CollectorStatus::Ok,
            reason: None,
            memory: Memory {
                available_mb: 23823,
                total_mb: 24105,
            },
            swap: Swap {
                used_mb: 0,
                total_mb: 0,
            },
            disks: vec![Disk {
                mount: "/".to_owned(),
                used_percent: 13,
                used_mb: 11034,
                total_mb: 257844,
            }],
            load: Load {
                one: 0.1,
                five: 0.2,
                fifteen: 0.3,
            },
            ..SystemSection::default()
        },
        tmux: TmuxSection {
            status: CollectorStatus::Ok,
            sessions,
            ..TmuxSection::default()
        },
        ..Snapshot::default()
    }
}

#[test]
fn markdown_shows_figures_with_units_and_sessions() {
    let snapshot = sample(vec![session("alpha", false), session("beta", true)]);
    let markdown = snapshot.to_markdown();
    let expected = "\
Host `build-01`, collected 2025-01-01 12:00:00 UTC. Sizes in MB are MiB (2^20 bytes).

### System

- RAM: 23823 MB available of 24105 MB
- Swap: 0 MB used of 0 MB
- Disk /: 13% used (11034 MB of 257844 MB)
- Load: 0.10 0.20 0.30 (1, 5, 15 min)

### Docker

**Status: unavailable** — no reason given

### tmux

2 sessions:

- alpha: 1 window, detached, created 2025-01-01 11:00:00 UTC, last activity 2025-01-01 11:30:00 UTC (idle 30m)
- beta: 1 window, attached, created 2025-01-01 11:00:00 UTC, last activity 2025-01-01 11:30:00 UTC (idle 30m)

### Phase files
";
    assert!(markdown.starts_with(expected), "{markdown}");
}

#[test]
fn markdown_caps_long_lists_at_50() {
    let sessions = (0..60)
        .map(|i| session(&format!("s{i:02}"), false))
        .collect();
    let markdown = sample(sessions).to_markdown();
    assert!(markdown.contains("60 sessions:"), "{markdown}");
    let listed = markdown.lines().filter(|l| l.starts_with("- s")).count();
    assert_eq!(listed, 50, "{markdown}");
    assert!(markdown.contains("- s49: "), "{markdown}");
    assert!(!markdown.contains("- s50: "), "{markdown}");
    assert!(markdown.contains("- … and 10 more\n"), "{markdown}");
}

#[test]
fn markdown_reports_failed_sections() {
    let mut snapshot = sample(vec![]);
    snapshot.system.status = CollectorStatus::Error;
    snapshot.system.reason = Some("disk /nope: No such file or directory (os error 2)".to_owned());
    snapshot.tmux = TmuxSection {
        status: CollectorStatus::Unavailable,
        reason: Some("no tmux server is running".to_owned()),
        ..TmuxSection::default()
    };
    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains(
            "### System\n\n**Status: error** — disk /nope: No such file or directory (os error 2)\n\n- RAM: 23823 MB"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "### tmux\n\n**Status: unavailable** — no tmux server is running\n\n### Phase files"
        ),
        "{markdown}"
    );

    // Nothing collected at all (e.g. a timeout): no misleading zeros.
    let timed_out = Snapshot {
        system: SystemSection {
            status: CollectorStatus::Error,
            reason: Some("the system collector timed out after 5s".to_owned()),
            ..SystemSection::default()
        },
        ..sample(vec![])
    };
    let markdown = timed_out.to_markdown();
    assert!(!markdown.contains("RAM:"), "{markdown}");
    assert!(!markdown.contains("Load:"), "{markdown}");
    assert!(
        markdown.contains("No figures were collected."),
        "{markdown}"
    );
}

#[test]
fn health_summary_lines() {
    let snapshot = sample(vec![session("alpha", false), session("beta", false)]);
    assert_eq!(
        snapshot.health_summary(),
        [
            "RAM: 23823 MB available of 24105 MB",
            "Swap: 0 MB used of 0 MB",
            "Disk /: 13% used (11034 MB of 257844 MB)",
            "Load: 0.10 0.20 0.30",
            "tmux: 2 sessions",
        ]
    );

    let mut failed = sample(vec![]);
    failed.system.status = CollectorStatus::Error;
    failed.system.reason = Some("disk /nope: No such file or directory (os error 2)".to_owned());
    failed.tmux.sessions = vec![session("solo", false)];
    assert_eq!(
        failed.health_summary(),
        [
            "System: error: disk /nope: No such file or directory (os error 2)",
            "tmux: 1 session",
        ]
    );
}

#[test]
fn json_round_trips_and_has_the_contract_shape() {
    let snapshot = sample(vec![session("alpha", true)]);
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);

    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value.pointer("/system/memory/available_mb"),
        Some(&serde_json::json!(23823))
    );
    assert_eq!(
        value.pointer("/system/disks/0/used_percent"),
        Some(&serde_json::json!(13))
    );
    assert_eq!(
        value.pointer("/system/status"),
        Some(&serde_json::json!("ok"))
    );
    // `reason` is always present, null when there is nothing to say.
    assert_eq!(
        value.pointer("/system/reason"),
        Some(&serde_json::Value::Null)
    );
    assert_eq!(
        value.pointer("/tmux/sessions/0"),
        Some(&serde_json::json!({
            "name": "alpha",
            "windows": 1,
            "attached": true,
            "created": "2025-01-01T11:00:00Z",
            "last_activity": "2025-01-01T11:30:00Z",
            "idle_seconds": 1800,
            "panes": [],
        }))
    );
    assert_eq!(
        value.pointer("/collected_at"),
        Some(&serde_json::json!("2025-01-01T12:00:00Z"))
    );
    assert_eq!(
        serde_json::to_value(CollectorStatus::Unavailable).unwrap(),
        "unavailable"
    );
    assert_eq!(
        serde_json::to_value(CollectorStatus::Error).unwrap(),
        "error"
    );
}

#[tokio::test]
async fn collected_snapshot_round_trips_and_renders() {
    let snapshot = collect(&Config::default()).await;
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);

    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value.pointer("/system/memory/available_mb"),
        Some(&serde_json::json!(snapshot.system.memory.available_mb))
    );

    let markdown = snapshot.to_markdown();
    let memory = format!(
        "- RAM: {} MB available of {} MB\n",
        snapshot.system.memory.available_mb, snapshot.system.memory.total_mb
    );
    assert!(markdown.contains(&memory), "{markdown}");
    let disk = &snapshot.system.disks[0];
    let disk_line = format!(
        "- Disk /: {}% used ({} MB of {} MB)\n",
        disk.used_percent, disk.used_mb, disk.total_mb
    );
    assert!(markdown.contains(&disk_line), "{markdown}");
}

#[test]
fn the_snapshot_has_a_json_schema_with_its_stable_field_names() {
    let schema = serde_json::to_value(schemars::schema_for!(retort_preflight::Snapshot)).unwrap();
    let defs = &schema["$defs"];
    assert!(
        defs["Memory"]["properties"]["available_mb"].is_object(),
        "{schema}"
    );
    assert!(
        defs["Disk"]["properties"]["used_percent"].is_object(),
        "{schema}"
    );
    assert_eq!(
        defs["SystemSection"]["properties"]["disks"]["type"],
        "array"
    );
    assert!(
        defs["TmuxSession"]["properties"]["name"].is_object(),
        "{schema}"
    );
}
