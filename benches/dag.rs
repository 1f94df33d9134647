//! Benchmark: what the DAG scheduler costs a run per step, against the
//! sequential loop runs of one chain use, measured in the same run.
//!
//! Run with `cargo bench --bench dag` (optionally `-- ROUNDS`, default 3;
//! `DAG_BENCH_STEPS=N` for another size than 1,000 steps). Each round runs
//! the `retort` binary, headless, with a no-op agent (`retort signal done`,
//! one process per step), on three formulas of the same size:
//!
//! - `sequential loop`: a chain, `max_parallel = 1`: the loop every run of
//!   one chain has always used (`retort_runner` without the scheduler);
//! - `scheduler, chain`: the same chain with every step in one named
//!   `session`, which puts the run through the scheduler with nothing else
//!   changed (same order, same one agent session);
//! - `scheduler, DAG`: 1,000 steps in layers of 10 (each step needs two of
//!   the layer before), `max_parallel = 4`.
//!
//! It prints each one's median wall time (and min/max), the median per
//! step, and the scheduler's cost per step: the chain through the
//! scheduler minus the sequential loop, divided by the number of steps
//! (the target: at most 5 ms more per step). The formulas are interleaved
//! round by round, so machine noise hits them alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let steps: usize = std::env::var("DAG_BENCH_STEPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let variants = [
        ("sequential loop", chain(steps, false)),
        ("scheduler, chain", chain(steps, true)),
        ("scheduler, DAG", layers(steps, 10)),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (k, (name, text)) in variants.iter().enumerate() {
            let took = run(dir.path(), &format!("{round}-{k}"), text);
            eprintln!("round {}: {name}: {:.2} s", round + 1, took.as_secs_f64());
            times[k].push(took);
        }
    }
    println!(
        "DAG scheduler, {steps} headless steps of a no-op agent (`retort signal done`), {rounds} rounds"
    );
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>12}",
        "", "median", "min", "max", "per step"
    );
    let mut medians = Vec::new();
    for ((name, _), times) in variants.iter().zip(&mut times) {
        times.sort();
        let median = times[times.len() / 2];
        medians.push(median);
        println!(
            "{name:<18} {:>8.2} s {:>8.2} s {:>8.2} s {:>9.2} ms",
            median.as_secs_f64(),
            times[0].as_secs_f64(),
            times[times.len() - 1].as_secs_f64(),
            median.as_secs_f64() * 1000.0 / steps as f64
        );
    }
    let extra = (medians[1].as_secs_f64() - medians[0].as_secs_f64()) * 1000.0 / steps as f64;
    println!(
        "scheduler cost: {extra:+.2} ms per step (chain through the scheduler − sequential loop; target ≤ 5 ms)"
    );
}

/// Runs `formula` once with the no-op agent; the wall time of the whole
/// `retort run`. Panics unless the run ends done (a benchmark of a broken
/// run would measure nothing).
fn run(dir: &Path, name: &str, formula: &str) -> Duration {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, formula).expect("formula written");
    let state = dir.join(format!("state-{name}"));
    let binary = env!("CARGO_BIN_EXE_retort");
    let bin_dir = PathBuf::from(binary);
    let path_env = format!(
        "{}:{}",
        bin_dir
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        std::env::var("PATH").unwrap_or_default()
    );
    let clock = Instant::now();
    let output = Command::new(binary)
        .args([
            "run",
            path.to_str().unwrap_or_default(),
            "--quiet",
            "--backend",
            "headless",
        ])
        .args(["--agent", "retort signal done", "--state-dir"])
        .arg(&state)
        .current_dir(dir)
        .env("PATH", path_env)
        .env_remove("RETORT_RUN_DIR")
        .output()
        .expect("retort runs");
    let took = clock.elapsed();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    took
}

/// A chain of `n` steps; `session`: each in the named session `main`.
fn chain(n: usize, session: bool) -> String {
    let mut text = String::from("name = \"chain\"\nmax_parallel = 1\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\ndescription = \"Step {i}.\"\n"
        ));
        if i > 0 {
            text.push_str(&format!("needs = [\"s{}\"]\n", i - 1));
        }
        if session {
            text.push_str("session = \"main\"\n");
        }
    }
    text
}

/// `n` steps in layers of `width`, each step after the first layer needing
/// two steps of the layer before; four at once.
fn layers(n: usize, width: usize) -> String {
    let mut text = String::from("name = \"layers\"\nmax_parallel = 4\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\ndescription = \"Step {i}.\"\n"
        ));
        if i >= width {
            let layer = i / width - 1;
            let a = layer * width + i % width;
            let b = layer * width + (i + 1) % width;
            text.push_str(&format!("needs = [\"s{a}\", \"s{b}\"]\n"));
        }
    }
    text
}
