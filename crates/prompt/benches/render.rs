//! How rendering every step's prompt grows with the number of steps:
//! formulas of 1,000, 10,000 and 50,000 steps in one chain (one model, so
//! one session), rendered as `retort run` and `retort render` do
//! ([`render_prompts`]) against an empty snapshot and a first run's
//! decision.
//!
//! Run with `cargo bench -p retort-prompt --bench render`. Prints, for each
//! size, the median time of a whole render, the time per step and the
//! growth ratios against the 1,000-step formula: linear growth keeps the
//! time per step flat (before the fix, 10,000 steps took 1.6 s and 50,000
//! 35 s in `retort run`: each step's context carried the list of every
//! step id, and the snapshot was serialized again for every step).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use retort_check::check::{CheckOptions, Purpose, check_source};
use retort_decide::decide::fresh;
use retort_preflight::Snapshot;
use retort_prompt::prompt::{RunInfo, render_prompts};

fn chain(steps: usize) -> String {
    let mut text = String::with_capacity(steps * 120);
    text.push_str("name = \"bench\"\ndescription = \"Generated\"\nmodel = \"sonnet\"\n");
    for i in 0..steps {
        text.push_str(&format!(
            "\n[[steps]]\nid = \"step-{i}\"\ntitle = \"Step {i}\"\ndescription = \"Check the {{{{ preflight.hostname }}}} part {i}.\"\n"
        ));
        if i > 0 {
            text.push_str(&format!("needs = [\"step-{}\"]\n", i - 1));
        }
    }
    text
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: std::env::temp_dir(),
        purpose: Purpose::Run,
    };
    let snapshot = Snapshot::default();
    let mut baseline_per_step = None;
    println!("steps     median      per step   ratio to 1,000 (per step)");
    for (steps, rounds) in [(1_000, 9), (10_000, 5), (50_000, 3)] {
        let checked = check_source(Path::new("bench.toml"), chain(steps), &options);
        let (Some(formula), Some(dag)) = (checked.formula, checked.dag) else {
            eprintln!("the generated formula does not check");
            return;
        };
        let Ok(decision) = fresh(&formula, &snapshot) else {
            eprintln!("no decision");
            return;
        };
        let mut times = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            let prompts = render_prompts(
                &formula,
                &dag,
                &snapshot,
                &[],
                &RunInfo::placeholder(),
                &BTreeMap::new(),
                &decision,
            );
            times.push(started.elapsed());
            assert_eq!(prompts.map(|p| p.len()).unwrap_or(0), steps);
        }
        let median = median(times);
        let per_step = median.as_secs_f64() / steps as f64;
        let baseline = *baseline_per_step.get_or_insert(per_step);
        println!(
            "{steps:>6}  {:>9.1} ms  {:>7.1} µs   {:.2}",
            median.as_secs_f64() * 1e3,
            per_step * 1e6,
            per_step / baseline
        );
    }
}
