//! How long checking a formula takes as it grows: random DAG formulas of
//! 100, 1,000, 10,000 and 100,000 steps (each needing about two earlier
//! steps, with descriptions of realistic length, one in five a template),
//! put through everything `retort check` does to a file: TOML parse,
//! structure check, typed model, DAG (cycles, topological order), template
//! checks, vars.
//!
//! Run with `cargo bench -p retort-check --bench check`. Prints, for each
//! size, the median time of the TOML parse alone, on one core (the `toml`
//! crate's own parse, the baseline) and on every core (retort's
//! `document::parse`), and of the whole check, the spread, and the growth
//! ratios; the target is 10,000 steps under 50 ms and 100,000 steps at
//! most about 12 times that.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use retort_check::check::{CheckOptions, Purpose, check_source};
use retort_formula::document;

/// A small deterministic generator (xorshift64*), so every run measures
/// the same formulas.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "check",
    "the",
    "memory",
    "disk",
    "agent",
    "session",
    "journal",
    "escalate",
    "pipeline",
    "stale",
    "worktree",
    "lock",
    "branch",
    "review",
    "report",
    "findings",
    "priority",
    "if",
    "then",
    "and",
    "restart",
    "prune",
    "logs",
    "threshold",
    "available",
    "swap",
    "load",
];

fn formula(steps: usize, rng: &mut Rng) -> String {
    let mut text = String::with_capacity(steps * 700);
    text.push_str("name = \"bench\"\ndescription = \"Generated\"\nmodel = \"sonnet\"\n[vars]\nFLOOR = \"500\"\n");
    for i in 0..steps {
        text.push_str(&format!(
            "\n[[steps]]\nid = \"step-{i}\"\ntitle = \"Step number {i}\"\n"
        ));
        text.push_str("description = \"\"\"\n");
        let words = 60 + rng.below(80);
        for w in 0..words {
            text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
            text.push(if w % 12 == 11 { '\n' } else { ' ' });
        }
        if rng.below(5) == 0 {
            text.push_str(
                "\nRAM {{ preflight.system.memory.available_mb }} MB, floor {{ vars.FLOOR }}.\n",
            );
        }
        text.push_str("\"\"\"\n");
        if i > 0 {
            let mut needs: Vec<u64> = (0..2).map(|_| rng.below(i as u64)).collect();
            needs.sort_unstable();
            needs.dedup();
            let list: Vec<String> = needs.iter().map(|n| format!("\"step-{n}\"")).collect();
            text.push_str(&format!("needs = [{}]\n", list.join(", ")));
        }
    }
    text
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let options = CheckOptions {
        vars: BTreeMap::new(),
        cwd: ".".into(),
        purpose: Purpose::Authoring,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!("retort check on generated formulas (medians; spread is min..max)");
    println!("  toml  = TOML parse alone, on one core (the toml crate, with spans)");
    println!("  parse = TOML parse alone, on every core (retort_formula::document::parse)");
    println!("  check = everything: TOML parse, structure, model, DAG, templates, vars");
    println!(
        "{:>8} {:>9} {:>10} {:>10} {:>10} {:>21} {:>6}",
        "steps", "MB", "toml", "parse", "check", "check spread", "runs"
    );
    let mut medians = Vec::new();
    for (steps, runs) in [(100, 41), (1_000, 31), (10_000, 21), (100_000, 5)] {
        let text = formula(steps, &mut rng);
        let mut baseline = Vec::with_capacity(runs);
        let mut parse = Vec::with_capacity(runs);
        let mut whole = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let (document, errors) = toml::de::DeTable::parse_recoverable(&text);
            baseline.push(started.elapsed());
            assert!(errors.is_empty() && !document.get_ref().is_empty());
            drop(document);

            let started = Instant::now();
            let (document, errors) = document::parse(&text);
            parse.push(started.elapsed());
            assert!(errors.is_empty() && !document.get_ref().is_empty());
            drop(document);

            let source = text.clone();
            let started = Instant::now();
            let checked = check_source(Path::new("bench.toml"), source, &options);
            whole.push(started.elapsed());
            assert!(!checked.has_errors(), "{:?}", checked.problems.first());
            assert_eq!(checked.dag.as_ref().map(|d| d.order().len()), Some(steps));
        }
        let (min, max) = (
            whole.iter().min().copied().unwrap_or_default(),
            whole.iter().max().copied().unwrap_or_default(),
        );
        let (baseline, parse, check) = (
            median(&mut baseline),
            median(&mut parse),
            median(&mut whole),
        );
        medians.push((steps, check));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{steps:>8} {:>9.1} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>9.1}..{:<8.1}ms {runs:>5}",
            text.len() as f64 / 1e6,
            ms(baseline),
            ms(parse),
            ms(check),
            ms(min),
            ms(max),
        );
    }
    for pair in medians.windows(2) {
        let ((a, ta), (b, tb)) = (pair[0], pair[1]);
        println!(
            "check, {b} vs {a} steps: {:.1}x the time for {}x the steps",
            tb.as_secs_f64() / ta.as_secs_f64(),
            b / a
        );
    }
}
