//! Benchmark: a full local preflight (every collector but the forge and CI,
//! against realistic fixtures) against the same facts gathered by a plain
//! bash script (`benches/preflight-baseline.sh`), measured in the same run.
//!
//! Run with `cargo bench --bench preflight` (optionally `-- ROUNDS`,
//! default 40). Prints, for each of
//!
//! - `retort (in-process)`: `retort_preflight::collect` in this process,
//! - `retort preflight --json`: the binary, as cron would start it,
//! - `bash baseline`: the script,
//!
//! the median, the 10th and 90th percentiles and min/max of wall time, and
//! the peak resident memory (for the two processes: `ru_maxrss` from
//! `wait4`, i.e. the largest single process of the tree), then the ratios
//! of the medians. The three are interleaved round by round, so machine
//! noise hits them alike.
//!
//! Fixtures (in a temporary directory, removed at the end): 12 phase files,
//! 8 lock files (half with live PIDs), 6 logs of 5000 lines, 5 escalation
//! notes, a git repository with 2 linked worktrees and local changes, a
//! private tmux server with 4 sessions, and one formula command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use retort_preflight::{CollectorStatus, CommandConfig, Config, RepoConfig, collect};

mod support;
use support::{Stats, git, ms, write};

fn main() {
    // `cargo bench` passes `--bench`; a plain number is the round count.
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(40);
    let fixture = Fixture::create();
    let config = fixture.config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    // Check that every collector does real work before timing anything.
    let snapshot = runtime.block_on(collect(&config));
    for (name, status, reason) in [
        ("system", snapshot.system.status, &snapshot.system.reason),
        ("tmux", snapshot.tmux.status, &snapshot.tmux.reason),
        (
            "phase_files",
            snapshot.phase_files.status,
            &snapshot.phase_files.reason,
        ),
        ("locks", snapshot.locks.status, &snapshot.locks.reason),
        ("logs", snapshot.logs.status, &snapshot.logs.reason),
        ("git", snapshot.git.status, &snapshot.git.reason),
        (
            "escalations",
            snapshot.escalations.status,
            &snapshot.escalations.reason,
        ),
        (
            "commands",
            snapshot.commands.status,
            &snapshot.commands.reason,
        ),
    ] {
        assert_eq!(status, CollectorStatus::Ok, "{name}: {reason:?}");
    }
    assert_eq!(snapshot.phase_files.files.len(), 12);
    assert_eq!(snapshot.locks.files.len(), 8);
    assert_eq!(snapshot.logs.files.len(), 6);
    assert_eq!(snapshot.git.repos[0].worktrees.len(), 3);
    assert_eq!(snapshot.tmux.sessions.len(), 4);
    println!(
        "docker: {} ({})",
        snapshot.docker.status,
        snapshot.docker.reason.as_deref().unwrap_or("-")
    );

    let binary = env!("CARGO_BIN_EXE_retort");
    let formula = fixture.dir.join("bench.toml");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/preflight-baseline.sh");
    let retort_cmd = || {
        let mut command = Command::new(binary);
        command
            .args(["preflight", "--json", "--formula"])
            .arg(&formula)
            .current_dir(&fixture.dir);
        command
    };
    let bash_cmd = || {
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .arg(&fixture.dir)
            .arg(&fixture.socket)
            .current_dir(&fixture.dir);
        command
    };

    // Warm up caches (page cache, dynamic loader) for all three.
    for _ in 0..3 {
        runtime.block_on(collect(&config));
        run_measured(&mut retort_cmd());
        run_measured(&mut bash_cmd());
    }

    let mut in_process = Vec::with_capacity(rounds);
    let mut per_collector: Vec<Vec<(&str, u64)>> = Vec::with_capacity(rounds);
    let mut binary_runs = Vec::with_capacity(rounds);
    let mut bash_runs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let snapshot = runtime.block_on(collect(&config));
        in_process.push(started.elapsed());
        per_collector.push(vec![
            ("system", snapshot.system.duration_ms),
            ("docker", snapshot.docker.duration_ms),
            ("tmux", snapshot.tmux.duration_ms),
            ("phase_files", snapshot.phase_files.duration_ms),
            ("locks", snapshot.locks.duration_ms),
            ("logs", snapshot.logs.duration_ms),
            ("git", snapshot.git.duration_ms),
            ("escalations", snapshot.escalations.duration_ms),
            ("commands", snapshot.commands.duration_ms),
        ]);
        std::hint::black_box(snapshot);
        binary_runs.push(run_measured(&mut retort_cmd()));
        bash_runs.push(run_measured(&mut bash_cmd()));
    }

    println!(
        "\npreflight benchmark: {rounds} rounds, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "", "median", "p10", "p90", "min", "max", "peak RSS"
    );
    let in_stats = Stats::of(&in_process);
    print(&in_stats, "retort (in-process)", None);
    let bin_stats = Stats::of(&binary_runs.iter().map(|r| r.0).collect::<Vec<_>>());
    print(
        &bin_stats,
        "retort preflight --json",
        binary_runs.iter().map(|r| r.1).max(),
    );
    let bash_stats = Stats::of(&bash_runs.iter().map(|r| r.0).collect::<Vec<_>>());
    print(
        &bash_stats,
        "bash baseline",
        bash_runs.iter().map(|r| r.1).max(),
    );
    let breakdown: Vec<String> = (0..per_collector[0].len())
        .map(|i| {
            let mut ms: Vec<u64> = per_collector.iter().map(|round| round[i].1).collect();
            ms.sort_unstable();
            format!("{} {}", per_collector[0][i].0, ms[ms.len() / 2])
        })
        .collect();
    println!(
        "\nin-process median per collector (ms, concurrent): {}",
        breakdown.join(", ")
    );
    println!(
        "bash / retort (in-process): {:.1}x faster",
        bash_stats.median.as_secs_f64() / in_stats.median.as_secs_f64()
    );
    println!(
        "bash / retort preflight --json: {:.1}x faster",
        bash_stats.median.as_secs_f64() / bin_stats.median.as_secs_f64()
    );
    println!(
        "target: in-process median under 15 ms: {}",
        if in_stats.median < Duration::from_millis(15) {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// Runs a command to completion (output discarded) and returns its wall
/// time and peak RSS in KiB (`ru_maxrss` of `wait4`, which reaps the child
/// itself, so std's `wait` is never called).
#[allow(clippy::zombie_processes)]
fn run_measured(command: &mut Command) -> (Duration, u64) {
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for (std's `Child` never
    // waits unless asked); the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed: status {status}"
    );
    (took, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

/// The fixture directory and tmux server; removed and killed on drop.
struct Fixture {
    dir: PathBuf,
    socket: PathBuf,
    _temp: tempfile::TempDir,
    sleepers: Vec<std::process::Child>,
}

impl Fixture {
    fn create() -> Fixture {
        let temp = tempfile::Builder::new()
            .prefix("retort-bench")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let dir = temp.path().to_path_buf();
        for sub in ["phase", "locks", "logs", "escalations", "wt"] {
            std::fs::create_dir_all(dir.join(sub)).expect("fixture dir");
        }
        for i in 0..12 {
            let phase = ["PHASE:done", "PHASE:working", "PHASE:escalate"][i % 3];
            write(
                &dir.join(format!("phase/agent{i}-session-{i}.phase")),
                phase,
            );
        }
        let mut sleepers = Vec::new();
        for i in 0..8 {
            let pid = if i % 2 == 0 {
                let child = Command::new("sleep").arg("600").spawn().expect("sleep");
                let pid = child.id();
                sleepers.push(child);
                pid
            } else {
                // A process that has exited and been reaped: its PID is free.
                let mut child = Command::new("true").spawn().expect("true");
                let pid = child.id();
                child.wait().expect("wait");
                pid
            };
            let kind = if i < 4 { "poll" } else { "run" };
            write(
                &dir.join(format!("locks/agent{i}-{kind}.lock")),
                &format!("{pid}\n"),
            );
        }
        for i in 0..6 {
            let text: String = (0..5000)
                .map(|n| {
                    format!(
                        "2025-01-01T12:00:{:02}Z agent{i} poll {n}: no ready issues\n",
                        n % 60
                    )
                })
                .collect();
            write(&dir.join(format!("logs/agent{i}.log")), &text);
        }
        for i in 0..5 {
            write(
                &dir.join(format!("escalations/esc-{i}.md")),
                &format!(
                    "---\nseverity: P2\n---\n\n# Escalation {i}: CI stuck on main\n\nDetails.\n"
                ),
            );
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
            git(
                &repo,
                &[
                    "worktree",
                    "add",
                    "-q",
                    "-b",
                    &format!("fix-{n}"),
                    wt.to_str().expect("utf-8"),
                ],
            );
        }
        write(&repo.join("src0.txt"), "changed\n");
        write(&repo.join("untracked.txt"), "new\n");

        let socket = dir.join("tmux.sock");
        for name in ["dev-agent", "review-agent", "planner", "supervisor"] {
            let status = Command::new("tmux")
                .arg("-S")
                .arg(&socket)
                .args(["new-session", "-d", "-s", name])
                .env_remove("TMUX")
                .status()
                .expect("tmux");
            assert!(status.success(), "tmux new-session");
        }

        let fixture = Fixture {
            dir,
            socket,
            _temp: temp,
            sleepers,
        };
        write(&fixture.dir.join("bench.toml"), &fixture.formula());
        fixture
    }

    /// The configuration the in-process runs use.
    fn config(&self) -> Config {
        let d = |p: &str| format!("{}/{p}", self.dir.display());
        let mut config = Config {
            cwd: Some(self.dir.clone()),
            ..Config::default()
        };
        config.tmux.socket = Some(self.socket.clone());
        config.phase_files.globs = vec![d("phase/*-session-*.phase")];
        config.locks.globs = vec![d("locks/*-poll.lock"), d("locks/*-run.lock")];
        config.logs.globs = vec![d("logs/*.log")];
        config.escalations.globs = vec![d("escalations/*.md")];
        config.git.repos = Some(vec![RepoConfig {
            path: self.dir.join("repo"),
            branch: Some("main".to_owned()),
        }]);
        config.git.worktree_globs = vec![d("wt/*-worktree-*")];
        config.commands = vec![CommandConfig {
            name: "loadavg".to_owned(),
            run: vec!["cat".to_owned(), "/proc/loadavg".to_owned()],
            timeout: None,
            max_output_bytes: 16 * 1024,
        }];
        config
    }

    /// The same configuration as a formula, for `retort preflight --formula`.
    fn formula(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"name = "bench"
[[steps]]
id = "look"
description = "Look."
[preflight.tmux]
socket = "{socket}"
[preflight.phase_files]
globs = ["{d}/phase/*-session-*.phase"]
[preflight.locks]
globs = ["{d}/locks/*-poll.lock", "{d}/locks/*-run.lock"]
[preflight.logs]
globs = ["{d}/logs/*.log"]
[preflight.escalations]
globs = ["{d}/escalations/*.md"]
[preflight.git]
repos = [{{ path = "{d}/repo", branch = "main" }}]
worktree_globs = ["{d}/wt/*-worktree-*"]
[[preflight.commands]]
name = "loadavg"
run = ["cat", "/proc/loadavg"]
"#,
            socket = self.socket.display()
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
        for sleeper in &mut self.sleepers {
            let _ = sleeper.kill();
            let _ = sleeper.wait();
        }
    }
}

/// One line of the table: median, p10, p90, least, most, peak memory.
fn print(stats: &Stats, label: &str, peak_kib: Option<u64>) {
    println!(
        "{label:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        ms(stats.median),
        ms(stats.p10),
        ms(stats.p90),
        ms(stats.min),
        ms(stats.max),
        peak_kib.map_or("-".to_owned(), |k| format!("{:.1}MB", k as f64 / 1024.0))
    );
}
