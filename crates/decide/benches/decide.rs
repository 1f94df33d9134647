//! The decide phase's cost per run: 100 rules evaluated against a realistic
//! snapshot, the findings' state updated in a real SQLite history, and the
//! gate decided. Target: under 5 ms a run.
//!
//! Run with `cargo bench -p retort-decide --bench decide`. Prints medians
//! and spreads over many runs, each part on its own, and a baseline
//! measured in the same process: starting one trivial process
//! (`/bin/true`), which is what a shell-script supervisor pays for each
//! check it shells out for.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use retort_check::parse_source;
use retort_decide::decide;
use retort_decide::ruleset::RuleSet;
use retort_journal::history::History;
use retort_preflight::{CollectorStatus, Disk, Snapshot, TmuxSession};

const RUNS: usize = 300;
const WARM_UP: usize = 20;

fn main() {
    let formula = formula();
    let loaded = parse_source(Path::new("bench.toml"), formula).expect("valid formula");
    let parse_check = time(50, || {
        let loaded =
            parse_source(Path::new("bench.toml"), loaded.source.text().to_string()).expect("valid");
        RuleSet::build(&loaded).expect("valid rules");
    });
    let rules = RuleSet::build(&loaded).expect("valid rules");
    let spawn = time(100, || {
        Command::new("/bin/true").status().expect("/bin/true runs");
    });

    let mut out = String::new();
    let _ = writeln!(
        out,
        "decide phase: {} rules, {RUNS} runs each after {WARM_UP} warm-up runs, each run against the history the previous ones left",
        loaded.formula.rules.len(),
    );
    let _ = writeln!(out, "{:<62} {:>9} {:>9} {:>9}", "", "median", "p10", "p90");
    let mut typical = Duration::ZERO;
    for (name, snapshot) in [("typical", snapshot(false)), ("storm", snapshot(true))] {
        let vars = BTreeMap::new();
        let dir = tempfile::tempdir().expect("temp dir");
        let history_path = dir.path().join("history.sqlite");
        let matching = rules.evaluate(&snapshot, &vars).matches.len();
        let evaluate = time(RUNS, || {
            std::hint::black_box(rules.evaluate(&snapshot, &vars));
        });
        let mut n = 0;
        let whole = time(RUNS, || {
            n += 1;
            // What `retort run` does between the snapshot and the prompts.
            let evaluation = rules.evaluate(&snapshot, &vars);
            let mut history = History::open(&history_path).expect("history");
            let decision = decide::commit(
                &mut history,
                &rules,
                &evaluation,
                &format!("run-{n}"),
                "bench",
                Path::new("/tmp"),
            )
            .expect("commit");
            std::hint::black_box(decision.gate.open);
        });
        let preview = time(RUNS / 5, || {
            let evaluation = rules.evaluate(&snapshot, &vars);
            std::hint::black_box(decide::preview(
                &rules,
                &evaluation,
                &history_path,
                "bench",
                Path::new("/tmp"),
            ));
        });
        let _ = writeln!(out, "{name} snapshot ({matching} rule matches):");
        for (label, samples) in [
            ("  rules only (evaluate, render messages)", &evaluate),
            (
                "  whole decide phase (open history, rules, state update, gate)",
                &whole,
            ),
            (
                "  dry-run preview (read-only view of the history)",
                &preview,
            ),
        ] {
            row(&mut out, label, samples);
        }
        if name == "typical" {
            typical = median(&whole);
        }
    }
    row(
        &mut out,
        "the whole formula check (100 rules)",
        &parse_check,
    );
    row(&mut out, "baseline: start one process (/bin/true)", &spawn);
    let _ = writeln!(
        out,
        "typical decide phase = {:.1}x one process start; target < 5 ms: {}",
        typical.as_secs_f64() / median(&spawn).as_secs_f64(),
        if typical < Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        }
    );
    print!("{out}");
}

fn row(out: &mut String, label: &str, samples: &[Duration]) {
    let (p10, p50, p90) = spread(samples);
    let _ = writeln!(
        out,
        "{label:<62} {:>9} {:>9} {:>9}",
        ms(p50),
        ms(p10),
        ms(p90)
    );
}

fn time(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..WARM_UP.min(runs) {
        f();
    }
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn spread(samples: &[Duration]) -> (Duration, Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.1), at(0.5), at(0.9))
}

fn median(samples: &[Duration]) -> Duration {
    spread(samples).1
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A factory host: 4 disks, 30 tmux sessions. Typical: one disk over 80 %,
/// two sessions idle for hours, swap in use: a few findings. Storm: memory
/// short, every disk nearly full, every session idle: most rules match.
fn snapshot(storm: bool) -> Snapshot {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 11, 20, 0).unwrap();
    let mut s = Snapshot {
        collected_at: now,
        hostname: "factory-1".into(),
        ..Default::default()
    };
    s.system.status = CollectorStatus::Ok;
    s.system.memory.available_mb = if storm { 400 } else { 9000 };
    s.system.memory.total_mb = 32000;
    s.system.swap.used_mb = if storm { 3500 } else { 900 };
    s.system.swap.total_mb = 8192;
    s.system.load.one = if storm { 9.5 } else { 2.5 };
    s.system.load.five = 2.0;
    s.system.load.fifteen = 1.5;
    s.system.disks = ["/", "/data", "/var/lib/docker", "/home"]
        .iter()
        .enumerate()
        .map(|(i, mount)| Disk {
            mount: (*mount).into(),
            used_percent: if storm { 97 } else { [55, 83, 61, 40][i] },
            used_mb: 1000 * (i as u64 + 1),
            total_mb: 2000 * (i as u64 + 1),
        })
        .collect();
    s.tmux.status = CollectorStatus::Ok;
    s.tmux.sessions = (0..30)
        .map(|i| TmuxSession {
            name: format!("dev-{i}"),
            windows: 1 + i % 3,
            attached: i % 7 == 0,
            created: now - chrono::Duration::hours(i64::from(i) + 1),
            last_activity: now
                - chrono::Duration::minutes(if storm || i >= 28 {
                    600 + i64::from(i)
                } else {
                    i64::from(i)
                }),
            ..Default::default()
        })
        .collect();
    s
}

/// 100 rules of the kinds a supervisor has: thresholds on memory, swap,
/// load and disks, per-item rules over disks and sessions, a few `for`
/// and `repeat`, some with actions.
fn formula() -> String {
    let mut text = String::from(
        "name = \"bench\"\n[[steps]]\nid = \"look\"\ndescription = \"Look.\"\n\
         [[actions]]\nid = \"note\"\nrun = [\"true\", \"{{ finding.fingerprint }}\"]\nmode = \"propose\"\ncooldown = \"1h\"\n",
    );
    for i in 0..100 {
        let priority = ["P0", "P1", "P2", "P3", "P4", "info"][i % 6];
        let rule = match i % 5 {
            0 => format!(
                "when = \"system.memory.available_mb < {} || (system.swap.used_mb > 3072 && system.memory.available_mb < {})\"\nmessage = \"RAM {{{{ system.memory.available_mb }}}} MB\"",
                500 + i * 10,
                1000 + i * 20
            ),
            1 => format!(
                "each = \"system.disks\"\nlabel = \"item.mount\"\nwhen = \"item.used_percent > {}\"\nmessage = \"Disk {{{{ item.mount }}}} {{{{ item.used_percent }}}}%\"\nfor = 3",
                80 + i % 15
            ),
            2 => format!(
                "each = \"tmux.sessions.filter(s, !s.attached)\"\nlabel = \"item.name\"\nwhen = \"now - item.last_activity > duration('{}m')\"\nmessage = \"{{{{ item.name }}}} idle\"",
                180 + i * 3
            ),
            3 => format!(
                "when = \"system.load.one > {}.0 && system.disks.exists(d, d.used_percent > 90)\"\nmessage = \"load {{{{ system.load.one }}}}\"\nrepeat = \"4h\"",
                4 + i % 4
            ),
            _ => format!(
                "when = \"size(tmux.sessions) > {} && tmux.status == 'ok'\"\nmessage = \"{{{{ tmux.sessions | length }}}} sessions\"\naction = \"note\"",
                25 + i / 10
            ),
        };
        let _ = write!(
            text,
            "[[rules]]\nid = \"rule-{i}\"\npriority = \"{priority}\"\n{rule}\n"
        );
    }
    text
}
