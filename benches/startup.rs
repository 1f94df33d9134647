//! Benchmark: what a process pays to start, as cron starts retort.
//!
//! Run with `cargo bench --bench startup` (optionally `-- ROUNDS`, default
//! 40). In one run, interleaved round by round so that machine noise hits
//! them alike, it times whole processes (wall time, spawn to exit):
//!
//! - `retort --version`: the floor, a process that only starts;
//! - `retort run formulas/supervisor.toml --state-dir DIR`: a healthy run
//!   whose gate stays closed (check, preflight, rules, decide, phase file,
//!   history, journal), from this repository's checkout, with the disk and
//!   memory thresholds out of reach so that the machine cannot open it;
//! - `retort check formulas/run-supervisor.toml`: a small formula checked;
//! - `retort preflight --json`, inside a git checkout (a fixture
//!   repository with two linked worktrees and local changes) and outside
//!   one, against `benches/preflight-baseline.sh` over the same fixture;
//! - the durability floor: `sh` making durable what a run must (a phase
//!   file and its directory, a WAL: three fsyncs) in the same state
//!   directory, the part of a run's wall time that is the disk's;
//!
//! and prints each one's median, 10th and 90th percentiles, then the
//! ratios of the medians and the load average (before and after).
//! Medians, not means: a 2-core machine shared with builds has long tails.
//! `RETORT_BENCH_BIN=PATH` times another `retort` binary instead of this
//! build's (to compare with an older one in the same conditions).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{Stats, git, ms, write};

fn main() {
    // `cargo bench` passes `--bench`; a plain number is the round count.
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(40);
    let load_before = load_average();
    let fixture = Fixture::create();
    // `RETORT_BENCH_BIN` times another build (an older one, to compare).
    let binary = std::env::var("RETORT_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_retort").to_owned());
    let binary = binary.as_str();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let state = fixture.dir.join("state");
    let script = root.join("benches/preflight-baseline.sh");
    let no_tmux = fixture.dir.join("no-tmux.sock");

    let version = || {
        let mut command = Command::new(binary);
        command.arg("--version");
        command
    };
    let run = || {
        let mut command = Command::new(binary);
        command
            .args(["run", "formulas/supervisor.toml", "--state-dir"])
            .arg(&state)
            // Healthy whatever the build machine's disks and memory: a
            // full disk would open the gate and time an agent instead.
            .args([
                "--var",
                "disk_ceiling_percent=100",
                "--var",
                "ram_floor_mb=0",
            ])
            .current_dir(root);
        command
    };
    let check = || {
        let mut command = Command::new(binary);
        command
            .args(["check", "formulas/run-supervisor.toml"])
            .current_dir(root);
        command
    };
    let preflight = |dir: &Path| {
        let mut command = Command::new(binary);
        command.args(["preflight", "--json"]).current_dir(dir);
        command
    };
    let bash = || {
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .arg(&fixture.dir)
            .arg(&no_tmux)
            .current_dir(&fixture.dir);
        command
    };
    let outside = fixture.dir.join("outside");
    // The floor under a healthy run's wall time that no code can lower: a
    // process that makes durable what a run must (its phase file, the file
    // and its directory; the history's WAL), written into the run's state
    // directory: three small writes, three fsyncs (coreutils `sync`).
    let floor = || {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("echo x > phase.tmp && echo y >> wal && sync phase.tmp . && sync -d wal")
            .current_dir(&state);
        command
    };

    // The run must be a healthy one: its gate stays closed.
    let first = run().output().expect("retort run");
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        first.status.success() && said.contains("gate closed"),
        "not a healthy gated run:\n{said}"
    );
    let snapshot = preflight(&fixture.repo).output().expect("preflight");
    let json: serde_json::Value = serde_json::from_slice(&snapshot.stdout).expect("json");
    assert_eq!(
        json["git"]["repos"][0]["worktrees"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(json["git"]["repos"][0]["changed_files"], 2);

    let mut samples: Vec<(&str, Vec<Duration>)> = [
        "retort --version",
        "healthy gated run",
        "check (run-supervisor)",
        "preflight --json, checkout",
        "preflight --json, outside",
        "bash baseline",
        "durability floor",
    ]
    .into_iter()
    .map(|label| (label, Vec::with_capacity(rounds)))
    .collect();
    for round in 0..rounds + 3 {
        let times = [
            time(&mut version()),
            time(&mut run()),
            time(&mut check()),
            time(&mut preflight(&fixture.repo)),
            time(&mut preflight(&outside)),
            time(&mut bash()),
            time(&mut floor()),
        ];
        // The first three rounds warm the page cache and the loader.
        if round >= 3 {
            for (sample, took) in samples.iter_mut().zip(times) {
                sample.1.push(took);
            }
        }
    }

    println!(
        "\nstartup benchmark: {rounds} rounds, {} CPUs, load average before {load_before}, after {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!("{:<28} {:>9} {:>9} {:>9}", "", "median", "p10", "p90");
    let medians: Vec<Duration> = samples
        .iter()
        .map(|(label, times)| {
            let stats = Stats::of(times);
            print(&stats, label);
            stats.median
        })
        .collect();
    let ratio = |a: usize, b: usize| medians[a].as_secs_f64() / medians[b].as_secs_f64();
    println!(
        "\nhealthy gated run / retort --version: {:.2}x (target: at most 5x)",
        ratio(1, 0)
    );
    println!(
        "durability floor (3 fsyncs in a process) / retort --version: {:.2}x",
        ratio(6, 0)
    );
    println!(
        "healthy gated run - durability floor: {:.2} ms",
        (medians[1].as_secs_f64() - medians[6].as_secs_f64()) * 1000.0
    );
    println!("check / retort --version: {:.2}x", ratio(2, 0));
    println!(
        "preflight --json in a git checkout / bash baseline: {:.2}x (target: at most 0.2x)",
        ratio(3, 5)
    );
    println!(
        "preflight --json outside a checkout / bash baseline: {:.2}x",
        ratio(4, 5)
    );
}

/// `/proc/loadavg`'s first three fields.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs a command to completion, output discarded, and returns its wall
/// time; panics when it fails.
fn time(command: &mut Command) -> Duration {
    let started = Instant::now();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    let took = started.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    took
}

/// A fixture for the bash baseline (phase files, locks, logs, escalation
/// notes, worktree directories) around a git repository with two linked
/// worktrees and local changes; removed on drop.
struct Fixture {
    dir: PathBuf,
    repo: PathBuf,
    _temp: tempfile::TempDir,
}

impl Fixture {
    fn create() -> Fixture {
        let temp = tempfile::Builder::new()
            .prefix("retort-startup")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let dir = temp.path().to_path_buf();
        for sub in ["phase", "locks", "logs", "escalations", "wt", "outside"] {
            std::fs::create_dir_all(dir.join(sub)).expect("fixture dir");
        }
        for i in 0..4 {
            write(
                &dir.join(format!("phase/agent{i}-session-{i}.phase")),
                "PHASE:done",
            );
            write(&dir.join(format!("locks/agent{i}-poll.lock")), "1\n");
            let log: String = (0..500).map(|n| format!("agent{i} poll {n}\n")).collect();
            write(&dir.join(format!("logs/agent{i}.log")), &log);
            write(&dir.join(format!("escalations/esc-{i}.md")), "# CI stuck\n");
        }
        let repo = dir.join("repo");
        std::fs::create_dir_all(&repo).expect("repo dir");
        git(&repo, &["init", "-q", "-b", "main"]);
        for n in 0..20 {
            write(&repo.join(format!("src{n}.txt")), &format!("file {n}\n"));
        }
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "initial"]);
        for n in 1..=2 {
            let wt = dir.join(format!("wt/agent{n}-worktree-{n}"));
            let branch = format!("fix-{n}");
            let wt = wt.to_str().expect("utf-8");
            git(&repo, &["worktree", "add", "-q", "-b", &branch, wt]);
        }
        write(&repo.join("src0.txt"), "changed\n");
        write(&repo.join("untracked.txt"), "new\n");
        Fixture {
            dir,
            repo,
            _temp: temp,
        }
    }
}

/// One line of the table: median, p10, p90.
fn print(stats: &Stats, label: &str) {
    println!(
        "{label:<28} {:>9} {:>9} {:>9}",
        ms(stats.median),
        ms(stats.p10),
        ms(stats.p90)
    );
}
