//! The file-based collectors (phase files, locks, logs, escalations)
//! against real files and real processes.

mod support;

use std::process::{Command, Stdio};

use retort_preflight::{CollectorStatus, collect};
use support::{age_file, dead_pid, quiet_config};

#[tokio::test]
async fn phase_files_report_their_first_line_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("dev-session-12.phase"),
        "PHASE:escalate\nReason: stuck\n",
    )
    .unwrap();
    std::fs::write(d.join("review-session-3.phase"), "PHASE:done").unwrap();
    std::fs::write(d.join("empty-session-1.phase"), "").unwrap();
    std::fs::write(d.join("not-a-phase.txt"), "PHASE:done").unwrap();
    age_file(&d.join("dev-session-12.phase"), 7200);

    let mut config = quiet_config(d);
    config.phase_files.enabled = true;
    config.phase_files.globs = vec!["*-session-*.phase".to_owned()];
    let snapshot = collect(&config).await;
    let section = &snapshot.phase_files;
    assert_eq!(section.status, CollectorStatus::Ok, "{:?}", section.reason);
    let files: Vec<(String, &str)> = section
        .files
        .iter()
        .map(|f| {
            let name = f.path.rsplit('/').next().unwrap().to_owned();
            (name, f.first_line.as_str())
        })
        .collect();
    assert_eq!(
        files,
        [
            ("dev-session-12.phase".to_owned(), "PHASE:escalate"),
            ("empty-session-1.phase".to_owned(), ""),
            ("review-session-3.phase".to_owned(), "PHASE:done"),
        ]
    );
    let old = &section.files[0];
    assert!((7199..7300).contains(&old.age_seconds), "{old:?}");
    assert!(section.files[2].age_seconds < 60);
    assert!(old.path.starts_with(&d.display().to_string()));

    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains("dev-session-12.phase: `PHASE:escalate` (modified 2h 00m ago)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("empty-session-1.phase: (empty)"),
        "{markdown}"
    );
}

#[tokio::test]
async fn locks_tell_live_dead_and_missing_pids_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let live = sleeper.id();
    let dead = dead_pid();
    // A zombie: exited but not yet reaped; `kill -0` alone would call it alive.
    let mut zombie = Command::new("true").spawn().unwrap();
    let zombie_pid = zombie.id();
    std::thread::sleep(std::time::Duration::from_millis(200));

    std::fs::write(d.join("dev-poll.lock"), format!("{live}\n")).unwrap();
    std::fs::write(d.join("gone-run.lock"), format!("{dead}\n")).unwrap();
    std::fs::write(d.join("zombie-run.lock"), format!("pid={zombie_pid}")).unwrap();
    std::fs::write(d.join("junk-poll.lock"), "locked by nobody\n").unwrap();
    age_file(&d.join("gone-run.lock"), 3 * 86_400);

    let mut config = quiet_config(d);
    config.locks.enabled = true;
    config.locks.globs = vec![
        format!("{}/*-poll.lock", d.display()),
        format!("{}/*-run.lock", d.display()),
    ];
    let snapshot = collect(&config).await;
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    zombie.wait().unwrap();

    let section = &snapshot.locks;
    assert_eq!(section.status, CollectorStatus::Ok, "{:?}", section.reason);
    let by_name = |name: &str| {
        section
            .files
            .iter()
            .find(|f| f.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} missing from {section:?}"))
    };
    let live_lock = by_name("dev-poll.lock");
    assert_eq!((live_lock.pid, live_lock.alive), (Some(live), true));
    let dead_lock = by_name("gone-run.lock");
    assert_eq!((dead_lock.pid, dead_lock.alive), (Some(dead), false));
    assert!(dead_lock.age_seconds >= 3 * 86_400);
    let zombie_lock = by_name("zombie-run.lock");
    assert_eq!(
        (zombie_lock.pid, zombie_lock.alive),
        (Some(zombie_pid), false)
    );
    let junk = by_name("junk-poll.lock");
    assert_eq!((junk.pid, junk.alive), (None, false));
    assert_eq!(junk.content, "locked by nobody");

    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains(&format!("dev-poll.lock: PID {live}, alive")),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!(
            "gone-run.lock: PID {dead}, **dead** (modified 3d 0h ago)"
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains("junk-poll.lock: **no PID** (`locked by nobody`)"),
        "{markdown}"
    );
    assert!(
        snapshot
            .health_summary()
            .contains(&"Locks: 4 files (3 without a live process)".to_owned()),
        "{:?}",
        snapshot.health_summary()
    );
}

#[tokio::test]
async fn logs_keep_the_last_lines_newest_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big: String = (1..=100_000).map(|i| format!("request {i} ok\n")).collect();
    std::fs::write(d.join("dev.log"), &big).unwrap();
    std::fs::write(d.join("old.log"), "started\nstopped").unwrap();
    std::fs::write(d.join("empty.log"), "").unwrap();
    age_file(&d.join("old.log"), 600);
    age_file(&d.join("empty.log"), 1200);

    let mut config = quiet_config(d);
    config.logs.enabled = true;
    config.logs.globs = vec!["*.log".to_owned()];
    config.logs.lines = 3;
    let snapshot = collect(&config).await;
    let section = &snapshot.logs;
    assert_eq!(section.status, CollectorStatus::Ok, "{:?}", section.reason);
    let names: Vec<&str> = section
        .files
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["dev.log", "old.log", "empty.log"]);
    let dev = &section.files[0];
    assert_eq!(dev.size_bytes, big.len() as u64);
    assert_eq!(
        dev.last_lines,
        ["request 99998 ok", "request 99999 ok", "request 100000 ok"]
    );
    assert_eq!(section.files[1].last_lines, ["started", "stopped"]);
    assert!(section.files[2].last_lines.is_empty());

    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains("dev.log** — 1.6 MiB, modified "),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "last 3 lines:\n\n```text\nrequest 99998 ok\nrequest 99999 ok\nrequest 100000 ok\n```\n"
        ),
        "{markdown}"
    );

    // The cap keeps the newest files and counts the rest.
    config.logs.max_files = 1;
    let snapshot = collect(&config).await;
    assert_eq!(snapshot.logs.files.len(), 1);
    assert_eq!(snapshot.logs.omitted, 2);
    assert!(
        snapshot
            .to_markdown()
            .contains("3 files matching `*.log` (1 listed):")
    );
}

#[tokio::test]
async fn escalations_report_their_heading() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("vault");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(
        d.join("2025-01-01-disk.md"),
        "---\nseverity: P1\n---\n\n# Disk /var at 93%\n\nDetails…\n",
    )
    .unwrap();
    std::fs::write(d.join("notes.md"), "just text\n").unwrap();

    let mut config = quiet_config(dir.path());
    config.escalations.enabled = true;
    config.escalations.globs = vec!["vault/*.md".to_owned()];
    let snapshot = collect(&config).await;
    let section = &snapshot.escalations;
    assert_eq!(section.status, CollectorStatus::Ok, "{:?}", section.reason);
    assert_eq!(section.files.len(), 2);
    assert_eq!(
        section.files[0].heading.as_deref(),
        Some("Disk /var at 93%")
    );
    assert_eq!(section.files[1].heading, None);
    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains("2025-01-01-disk.md: \"Disk /var at 93%\" (modified "),
        "{markdown}"
    );
    assert!(markdown.contains("notes.md: (no heading)"), "{markdown}");
}

#[tokio::test]
async fn unconfigured_and_invalid_globs_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.logs.enabled = true;
    config.escalations.enabled = true;
    config.escalations.globs = vec!["[".to_owned()];
    let snapshot = collect(&config).await;
    assert_eq!(snapshot.logs.status, CollectorStatus::Unavailable);
    assert_eq!(
        snapshot.logs.reason.as_deref(),
        Some("no globs configured ([preflight.logs] globs)")
    );
    assert_eq!(snapshot.escalations.status, CollectorStatus::Error);
    assert!(
        snapshot
            .escalations
            .reason
            .as_deref()
            .unwrap()
            .starts_with("invalid glob `[`"),
        "{:?}",
        snapshot.escalations.reason
    );
    // A disabled collector is unavailable and says why.
    assert_eq!(snapshot.locks.status, CollectorStatus::Unavailable);
    assert_eq!(
        snapshot.locks.reason.as_deref(),
        Some("disabled: the formula's [preflight.locks] table says enabled = false")
    );
}
