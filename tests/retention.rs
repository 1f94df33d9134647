//! `[history] keep`, end to end: the real binary, replaying snapshots with
//! `--snapshot`, removes what a formula's old runs left in the state
//! directory, and nothing else.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{DateTime, Duration, Utc};
use retort_journal::history::History;
use serde_json::{Value, json};
use support::{Sandbox, stderr, tree};

/// A formula whose gate stays closed on a healthy snapshot: no agent, so
/// no tmux, and runs take milliseconds.
const TIDY: &str = r#"
name = "tidy"
description = "Keeps an hour of runs"

[history]
keep = "1h"

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500"
message = "RAM {{ system.memory.available_mb }} MB available"

[[steps]]
id = "look"
description = "Look at the factory."
"#;

/// A healthy snapshot collected at `at`.
fn snapshot(at: DateTime<Utc>) -> Value {
    support::snapshot_json(json!({
        "collected_at": at.to_rfc3339(),
        "hostname": "factory-1",
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": 6000, "total_mb": 16000 },
            "swap": { "used_mb": 0, "total_mb": 4096 }
        }
    }))
}

/// `retort run tidy.toml --snapshot` with a snapshot collected at `at`.
fn run_tidy(sandbox: &Sandbox, at: DateTime<Utc>) -> Output {
    let formula = sandbox.work().join("tidy.toml");
    std::fs::write(&formula, TIDY).unwrap();
    let file = sandbox.path("snapshot.json");
    std::fs::write(&file, serde_json::to_vec(&snapshot(at)).unwrap()).unwrap();
    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--snapshot",
            file.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    output
}

fn runs_dir(sandbox: &Sandbox) -> PathBuf {
    sandbox.state().join("runs")
}

/// The names in `STATE/runs`, sorted.
fn run_names(sandbox: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(runs_dir(sandbox))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

/// A run id that started `ago` before now.
fn run_id(ago: Duration, suffix: &str) -> String {
    format!("{}-{suffix}", (Utc::now() - ago).format("%Y%m%d-%H%M%S"))
}

/// What a copied run directory's `run.json` is.
#[derive(Clone, Copy)]
enum Summary<'a> {
    /// The real run's, naming this formula, id and directory.
    Of(&'a str),
    /// None: a run that crashed, or is still going.
    Missing,
    /// Whatever this is.
    Text(&'a str),
}

/// A copy of the real run directory `from` at `to`: its files as the run
/// wrote them, and `run.json` as `summary` says.
fn copy_run(from: &Path, to: &Path, summary_of: Summary<'_>) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "run.json" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    let text = match summary_of {
        Summary::Missing => return,
        Summary::Text(text) => text.to_string(),
        Summary::Of(formula) => {
            let mut value = summary(from);
            value["formula"] = json!(formula);
            value["run_id"] = json!(to.file_name().unwrap().to_string_lossy());
            value["run_dir"] = json!(to);
            serde_json::to_string_pretty(&value).unwrap()
        }
    };
    std::fs::write(to.join("run.json"), text).unwrap();
}

/// The run directory (with a readable `run.json`) whose run started last.
fn latest_run(sandbox: &Sandbox) -> PathBuf {
    run_names(sandbox)
        .into_iter()
        .map(|name| runs_dir(sandbox).join(name))
        .filter_map(|dir| {
            let text = std::fs::read(dir.join("run.json")).ok()?;
            let value: Value = serde_json::from_slice(&text).ok()?;
            Some((value["started_at"].as_str()?.to_string(), dir))
        })
        .max()
        .unwrap()
        .1
}

#[test]
fn a_run_whose_gate_stays_closed_leaves_no_empty_prompts_or_steps_directories() {
    let sandbox = Sandbox::new();
    run_tidy(&sandbox, Utc::now());
    assert_eq!(
        tree(&sandbox.run_dir()),
        ["decision.json", "run.json", "snapshot.json"]
    );
}

#[test]
fn a_run_removes_its_formulas_old_run_directories_and_nothing_else() {
    let sandbox = Sandbox::new();
    run_tidy(&sandbox, Utc::now());
    let first = sandbox.run_dir();
    let first_name = first.file_name().unwrap().to_string_lossy().into_owned();
    let runs = runs_dir(&sandbox);

    let hours = Duration::hours;
    let old_own = run_id(Duration::days(400), "0001");
    let just_old_own = run_id(hours(2), "0002");
    let recent_own = run_id(Duration::minutes(10), "0003");
    let old_other = run_id(hours(3), "0004");
    let old_without_summary = run_id(hours(4), "0005");
    let old_garbled_summary = run_id(hours(5), "0006");
    let old_link = run_id(hours(6), "0007");
    for (name, summary_of) in [
        (old_own.as_str(), Summary::Of("tidy")),
        (&just_old_own, Summary::Of("tidy")),
        (&recent_own, Summary::Of("tidy")),
        (&old_other, Summary::Of("other")),
        (&old_without_summary, Summary::Missing),
        (&old_garbled_summary, Summary::Text("{\"formula\": \"ti")),
        ("notes", Summary::Of("tidy")),
    ] {
        copy_run(&first, &runs.join(name), summary_of);
    }
    // A symbolic link named like an old run, to a directory of this
    // formula's elsewhere: neither is touched.
    let elsewhere = sandbox.path("elsewhere");
    copy_run(&first, &elsewhere, Summary::Of("tidy"));
    std::os::unix::fs::symlink(&elsewhere, runs.join(&old_link)).unwrap();
    let journal_before = std::fs::read_dir(sandbox.state().join("journal/tidy"))
        .unwrap()
        .count();

    run_tidy(&sandbox, Utc::now());

    let current = latest_run(&sandbox);
    let current = current.file_name().unwrap().to_string_lossy().into_owned();
    let mut expected = vec![
        first_name.clone(),
        recent_own.clone(),
        old_other.clone(),
        old_without_summary.clone(),
        old_garbled_summary.clone(),
        old_link.clone(),
        "notes".to_string(),
        current.clone(),
    ];
    expected.sort();
    assert_eq!(
        run_names(&sandbox),
        expected,
        "gone: {old_own} and {just_old_own} (this formula's, older than 1h)"
    );
    assert!(
        tree(&elsewhere).contains(&"run.json".to_string()),
        "the link's target is whole"
    );
    assert_eq!(
        tree(&runs.join(&old_other)),
        tree(&first),
        "another formula's run directory is whole"
    );

    let pruned = &summary(&runs.join(&current))["pruned"];
    assert_eq!(pruned["keep"], "1h");
    assert_eq!(pruned["run_dirs"], 2, "{pruned}");
    assert_eq!(pruned["run_dirs_unreadable"], 2, "{pruned}");
    assert_eq!(summary(&runs.join(&current))["warnings"], json!([]));
    assert_eq!(
        std::fs::read_dir(sandbox.state().join("journal/tidy"))
            .unwrap()
            .count(),
        journal_before,
        "journals are never removed"
    );
}

#[test]
fn old_history_rows_go_but_the_latest_run_stays() {
    let sandbox = Sandbox::new();
    // Three runs replaying snapshots from 5 and 3 hours ago, then now.
    run_tidy(&sandbox, Utc::now() - Duration::hours(5));
    run_tidy(&sandbox, Utc::now() - Duration::hours(3));
    let history = sandbox.state().join("history.sqlite");
    let runs = |history: &Path| -> Vec<DateTime<Utc>> {
        History::open_read_only(history)
            .unwrap()
            .unwrap()
            .runs("tidy")
            .unwrap()
            .iter()
            .map(|r| r.at)
            .collect()
    };
    assert_eq!(
        runs(&history).len(),
        1,
        "the second run removed the first's row, older than an hour, but kept its own, the latest"
    );

    let now = Utc::now();
    run_tidy(&sandbox, now);

    let kept = runs(&history);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        kept[0].timestamp(),
        now.timestamp(),
        "the run of now is the one left"
    );
    // The run directories, named by the wall clock, are all recent.
    let names = run_names(&sandbox);
    assert_eq!(names.len(), 3, "{names:?}");
    let latest = latest_run(&sandbox);
    assert_eq!(summary(&latest)["pruned"]["history"]["runs"], 1);
    assert_eq!(summary(&latest)["pruned"]["run_dirs"], 0);
}
