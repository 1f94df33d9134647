//! What `[history] keep` costs a run: removing a formula's old run
//! directories and run-history rows.
//!
//! Run with `cargo bench -p retort-runner --bench retention [-- ROUNDS]`
//! (default 3 rounds). Two cases, each timed in the same process as a
//! baseline:
//!
//! - **the first run after an upgrade**: 10,000 run directories of the
//!   formula older than `keep` (30 days) beside 2,160 recent ones, each a
//!   copy of a real run's directory (one in five with an agent's prompts,
//!   signals and pane), and a run history of 30,000 rows (20,000 runs,
//!   5,000 of their findings, 4,000 action runs, 1,000 proposals), of
//!   which about 26,000 are older than `keep`. Baseline: `rm -rf` of the
//!   10,000 old directories, built the same way.
//! - **every run after that**: the 2,160 recent directories and one old
//!   one, and a run history of 2,160 runs with one old run to remove.
//!   Baseline: starting one process (`/bin/true`).
//!
//! The files are freshly written, so in the page cache; on a host whose
//! old run directories have left the cache, the first prune reads more
//! from disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use retort_agent::session::TmuxServer;
use retort_formula::history::DEFAULT_KEEP;
use retort_journal::history::{
    ActionRunRecord, History, NewProposal, ProposalStatus, RunFindingRecord, RunRecord,
};
use retort_runner::retention::prune_run_dirs;
use retort_runner::run::{RunOptions, execute, prepare};
use retort_runner::state::{StateDir, new_run_id};

const OLD_DIRS: usize = 10_000;
/// 30 days of runs every 20 minutes.
const RECENT_DIRS: usize = 2_160;
const RUNS: i64 = 20_000;
const RUN_FINDINGS_EVERY: i64 = 4;
const ACTION_RUNS: i64 = 4_000;
const PROPOSALS: i64 = 1_000;
const FORMULA: &str = "bench";

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().expect("temp dir");
    let template = real_run(work.path());
    let now = Utc::now();
    let keep = chrono::Duration::from_std(DEFAULT_KEEP).expect("30 days");
    let before = now - keep;
    let history_template = work.path().join("template.sqlite");
    let rows = build_history(&history_template, now, RUNS);
    let steady_history = work.path().join("steady.sqlite");
    build_history(&steady_history, now, RECENT_DIRS as i64 + 1);

    println!(
        "retention: keep 30 days; {OLD_DIRS} old and {RECENT_DIRS} recent run directories of {} files in all; a history of {rows} rows; {rounds} rounds",
        files_per_dirs(&template, OLD_DIRS + RECENT_DIRS)
    );
    let mut dirs = Vec::new();
    let mut rows_pruned = Vec::new();
    let mut rm = Vec::new();
    let mut removed = (0, 0);
    for round in 0..rounds {
        let root = work.path().join(format!("round-{round}"));
        let runs = root.join("runs");
        fill(&runs, &template, now, OLD_DIRS, RECENT_DIRS);
        let baseline = root.join("baseline");
        fill(&baseline, &template, now, OLD_DIRS, 0);
        let database = root.join("history.sqlite");
        std::fs::copy(&history_template, &database).expect("copy history");
        sync();

        let start = Instant::now();
        let pruned = prune_run_dirs(&runs, FORMULA, "current", before);
        dirs.push(start.elapsed());
        assert_eq!(pruned.removed as usize, OLD_DIRS, "{:?}", pruned.warnings);

        let start = Instant::now();
        let mut history = History::open(&database).expect("history");
        let pruned_rows = history.prune(FORMULA, before).expect("prune");
        drop(history);
        rows_pruned.push(start.elapsed());
        removed = (pruned.removed, pruned_rows.total());

        let start = Instant::now();
        let status = Command::new("rm")
            .arg("-rf")
            .arg(&baseline)
            .status()
            .expect("rm runs");
        rm.push(start.elapsed());
        assert!(status.success());
        std::fs::remove_dir_all(&root).expect("clean up");
    }
    println!("{:<66} {:>10} {:>10} {:>10}", "", "median", "min", "max");
    row(
        &format!(
            "first run: remove {} old run directories (of {})",
            removed.0,
            OLD_DIRS + RECENT_DIRS
        ),
        &dirs,
    );
    row(
        &format!(
            "first run: open history, remove {} of its {rows} rows, close",
            removed.1
        ),
        &rows_pruned,
    );
    row(&format!("baseline: rm -rf {OLD_DIRS} run directories"), &rm);
    println!(
        "first run, directories: {:.2}x rm -rf",
        median(&dirs).as_secs_f64() / median(&rm).as_secs_f64()
    );

    // Every run after that: one old directory and one old run a run.
    let runs = work.path().join("steady").join("runs");
    fill(&runs, &template, now, 0, RECENT_DIRS);
    let samples = 20;
    let mut steady_dirs = Vec::new();
    let mut steady_rows = Vec::new();
    for sample in 0..samples {
        let old = runs.join(new_run_id(now - keep - chrono::Duration::hours(1)));
        copy_dir(&template, &old, &summary(&template, &old));
        let start = Instant::now();
        let pruned = prune_run_dirs(&runs, FORMULA, "current", before);
        steady_dirs.push(start.elapsed());
        assert_eq!(pruned.removed, 1, "{:?}", pruned.warnings);

        let database = work.path().join(format!("steady-{sample}.sqlite"));
        std::fs::copy(&steady_history, &database).expect("copy history");
        let start = Instant::now();
        let mut history = History::open(&database).expect("history");
        let pruned = history.prune(FORMULA, before).expect("prune");
        drop(history);
        steady_rows.push(start.elapsed());
        assert_eq!(pruned.runs, 1);
    }
    let spawn: Vec<Duration> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            Command::new("/bin/true").status().expect("/bin/true runs");
            start.elapsed()
        })
        .collect();
    row(
        &format!("every run: list {RECENT_DIRS} recent run directories, remove 1 old"),
        &steady_dirs,
    );
    row(
        "every run: open history, remove 1 old run, close",
        &steady_rows,
    );
    row("baseline: start one process (/bin/true)", &spawn);
}

/// A real run of a formula whose gate stays closed, on a live preflight
/// snapshot of this machine; then, beside its files, what a run with an
/// agent leaves (five prompts, their signals, the pane). Returns its
/// directory.
fn real_run(root: &Path) -> PathBuf {
    let formula = root.join("bench.toml");
    std::fs::write(
        &formula,
        "name = \"bench\"\n[[rules]]\nid = \"low\"\npriority = \"P0\"\n\
         when = \"system.memory.available_mb < 1\"\nmessage = \"low\"\n\
         [[steps]]\nid = \"look\"\ndescription = \"Look.\"\n",
    )
    .expect("formula");
    let options = RunOptions {
        formula,
        agent: None,
        ready: None,
        backend: None,
        vars: BTreeMap::new(),
        state: StateDir::resolve(Some(&root.join("state"))).expect("state"),
        phase_file: None,
        cwd: root.to_path_buf(),
        tmux: TmuxServer::default(),
        preflight: retort_preflight::Config::default(),
        bin_dir: None,
        snapshot: None,
        rerun: None,
        interrupt: retort_os::interrupt::Interrupt::never(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(async {
        let plan = prepare(&options, false).await.expect("plan");
        execute(&plan, &options, &mut |_| {}).await.expect("run")
    });
    let dir = report.run_dir;
    let agent = root.join("agent");
    std::fs::create_dir_all(agent.join("prompts")).expect("prompts");
    std::fs::create_dir_all(agent.join("steps")).expect("steps");
    for step in ["preflight", "assess", "decide", "report", "journal"] {
        let prompt = format!("## Step: {step}\n{}\n", "Check the factory. ".repeat(200));
        std::fs::write(agent.join(format!("prompts/{step}.md")), prompt).expect("prompt");
        std::fs::write(
            agent.join(format!("steps/{step}.signal")),
            format!(
                r#"{{"step":"{step}","signal":"done","reason":null,"at":"2026-11-21T11:20:05Z"}}"#
            ),
        )
        .expect("signal");
    }
    std::fs::write(agent.join("agent-pane.txt"), "> working\n".repeat(200)).expect("pane");
    std::fs::write(agent.join("agent.exit"), "0\n").expect("exit");
    std::fs::write(agent.join("current_step"), "journal\n").expect("step");
    dir
}

/// `run.json` of `template`, as the run at `to` would have written it.
fn summary(template: &Path, to: &Path) -> Vec<u8> {
    let text = std::fs::read(template.join("run.json")).expect("run.json");
    let mut value: serde_json::Value = serde_json::from_slice(&text).expect("run.json");
    value["run_id"] = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .into();
    value["run_dir"] = to.display().to_string().into();
    serde_json::to_vec_pretty(&value).expect("json")
}

/// Copies the files of `template` (and, for every fifth directory, an
/// agent's) into `to`, with `run.json` as given.
fn copy_dir(template: &Path, to: &Path, summary: &[u8]) {
    std::fs::create_dir_all(to).expect("run dir");
    for entry in std::fs::read_dir(template).expect("template") {
        let entry = entry.expect("entry");
        if entry.file_name() != "run.json" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
    std::fs::write(to.join("run.json"), summary).expect("run.json");
}

/// `old` run directories started 31 days ago and before, every 20
/// minutes, and `recent` ones from the last 30 days, in `runs`.
fn fill(runs: &Path, template: &Path, now: DateTime<Utc>, old: usize, recent: usize) {
    let agent = template
        .ancestors()
        .nth(3)
        .map(|root| root.join("agent"))
        .expect("agent files");
    let step = chrono::Duration::minutes(20);
    let starts = (0..recent)
        .map(|i| now - step * i as i32)
        .chain((0..old).map(|i| now - chrono::Duration::days(31) - step * i as i32));
    for (i, started) in starts.enumerate() {
        let dir = runs.join(format!(
            "{}-{:04x}",
            started.format("%Y%m%d-%H%M%S"),
            i % 0xffff
        ));
        copy_dir(template, &dir, &summary(template, &dir));
        if i % 5 == 0 {
            for sub in ["prompts", "steps"] {
                let to = dir.join(sub);
                std::fs::create_dir_all(&to).expect("sub dir");
                for entry in std::fs::read_dir(agent.join(sub)).expect("agent files") {
                    let entry = entry.expect("entry");
                    std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
                }
            }
            for name in ["agent-pane.txt", "agent.exit", "current_step"] {
                std::fs::copy(agent.join(name), dir.join(name)).expect("copy");
            }
        }
    }
}

fn files_per_dirs(template: &Path, dirs: usize) -> usize {
    let plain = std::fs::read_dir(template).map_or(0, Iterator::count);
    // One in five also has 5 prompts, 5 signals, 3 files and 2 directories.
    dirs * plain + dirs.div_ceil(5) * 15
}

/// A history of `runs` runs of the formula, every 20 minutes up to `now`
/// (one in [`RUN_FINDINGS_EVERY`] with a finding), and, when it is the
/// big one, [`ACTION_RUNS`] action runs over 10 actions and fingerprints
/// and [`PROPOSALS`] proposals (9 in 10 decided). Returns its row count.
fn build_history(path: &Path, now: DateTime<Utc>, runs: i64) -> i64 {
    let big = runs == RUNS;
    let mut history = History::open(path).expect("history");
    let tx = history.transaction().expect("transaction");
    let every = chrono::Duration::minutes(20);
    // The oldest is a little older than `keep` when `runs` is 2,161.
    let at = |i: i64| now - every * i32::try_from(runs - i + 1).unwrap_or(i32::MAX);
    let mut rows = 0;
    for seq in 1..=runs {
        let findings: Vec<RunFindingRecord> = (seq % RUN_FINDINGS_EVERY == 0 && big)
            .then(|| RunFindingRecord {
                fingerprint: "disk-pressure[/]".into(),
                rule: "disk-pressure".into(),
                label: Some("/".into()),
                priority: "P1".into(),
                message: "Disk / at 91%".into(),
                state: "firing".into(),
            })
            .into_iter()
            .collect();
        rows += 1 + findings.len() as i64;
        tx.insert_run(&RunRecord {
            seq,
            formula: FORMULA.into(),
            run_id: new_run_id(at(seq)),
            at: at(seq),
            gate_open: !findings.is_empty(),
            gate_reason: "bench".into(),
            phase: Some("done".into()),
            reason: None,
            finished_at: Some(at(seq)),
            findings,
        })
        .expect("run");
    }
    if big {
        for i in 0..PROPOSALS {
            let created = at(i * (RUNS / PROPOSALS) + 1);
            let id = tx
                .add_proposal(&NewProposal {
                    formula: FORMULA.into(),
                    action: "prune-docker".into(),
                    fingerprint: format!("disk-pressure[/d{}]", i % 10),
                    priority: "P1".into(),
                    message: "Disk at 91%".into(),
                    argv: vec!["docker".into(), "system".into(), "prune".into()],
                    env: Vec::new(),
                    cwd: PathBuf::from("/srv"),
                    timeout_ms: 60_000,
                    created_at: created,
                    created_run: new_run_id(created),
                })
                .expect("proposal");
            let status = match i % 10 {
                9 => continue,
                0..=4 => ProposalStatus::Approved,
                5..=7 => ProposalStatus::Rejected,
                _ => ProposalStatus::Expired,
            };
            tx.decide_proposal(id, status, "ops", None, created)
                .expect("decide");
        }
        for i in 0..ACTION_RUNS {
            let started = at(i * (RUNS / ACTION_RUNS) + 1);
            tx.record_action_run(&ActionRunRecord {
                formula: FORMULA.into(),
                action: format!("free-memory-{}", i % 2),
                fingerprint: format!("memory-crisis[{}]", i % 5),
                run_id: Some(new_run_id(started)),
                proposal: None,
                argv: vec!["sync".into()],
                at: started,
                duration_ms: 12,
                exit_code: Some(0),
                outcome: "ok".into(),
                error: None,
                stdout: "freed 512 MB\n".repeat(20),
                stderr: String::new(),
                truncated: false,
            })
            .expect("action run");
        }
        rows += PROPOSALS + ACTION_RUNS;
    }
    tx.commit().expect("commit");
    rows
}

/// Writes what the file system holds dirty, so that building the next
/// case is not what is timed.
fn sync() {
    let _ = Command::new("sync").status();
}

fn row(label: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    println!(
        "{label:<66} {:>10} {:>10} {:>10}",
        ms(median(samples)),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1])
    );
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
