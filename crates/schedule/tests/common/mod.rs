//! Helpers shared by the integration tests: formulas to render, and
//! `systemd-analyze calendar` run over many `OnCalendar=` lines at once.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, NaiveDateTime, Utc};
use retort_schedule::{Schedule, ScheduledFormula};

/// A formula named `name` on `schedule`, its paths under `root`.
pub fn formula(root: &Path, name: &str, schedule: &str) -> ScheduledFormula {
    ScheduledFormula {
        name: name.to_string(),
        formula_path: root.join("formulas").join(format!("{name}.toml")),
        schedule: Schedule::parse(schedule).unwrap(),
        retort_path: root.join("bin/retort"),
        state_dir: root.join("state"),
        env_file: Some(root.join("secrets.env")),
        working_dir: None,
        time_zone: None,
    }
}

/// `systemd-analyze` when the machine has it; prints a note and gives
/// `None` when it does not.
pub fn systemd_analyze() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("systemd-analyze"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("note: systemd-analyze not found; skipping this systemd check");
    }
    found
}

/// For each `OnCalendar=` expression, its first `n` elapses after `base`,
/// from one `systemd-analyze calendar` call run with `TZ=UTC`.
pub fn systemd_elapses(
    analyze: &Path,
    expressions: &[String],
    base: DateTime<Utc>,
    n: usize,
) -> Vec<Vec<DateTime<Utc>>> {
    if expressions.is_empty() {
        return Vec::new();
    }
    let out = Command::new(analyze)
        .env("TZ", "UTC")
        .arg("calendar")
        .arg(format!("--base-time=@{}", base.timestamp()))
        .arg(format!("--iterations={n}"))
        .args(expressions)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze calendar refused: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all: Vec<Vec<DateTime<Utc>>> = Vec::new();
    for line in stdout.lines() {
        let line = line.trim();
        if line.starts_with("Normalized form:") {
            all.push(Vec::new());
        } else if line.starts_with("Next elapse:") || line.starts_with("Iter. #") {
            let (_, when) = line.split_once(": ").unwrap();
            if when == "never" {
                continue;
            }
            let naive = NaiveDateTime::parse_from_str(when, "%a %Y-%m-%d %H:%M:%S UTC")
                .unwrap_or_else(|e| panic!("{when}: {e}"));
            all.last_mut().unwrap().push(naive.and_utc());
        }
    }
    assert_eq!(all.len(), expressions.len(), "{stdout}");
    all
}

/// The first `n` of the union of each schedule's elapses, as a timer with
/// those `OnCalendar=` lines fires.
pub fn merged(series: &[Vec<DateTime<Utc>>], n: usize) -> Vec<DateTime<Utc>> {
    let mut all: Vec<DateTime<Utc>> = series.iter().flatten().copied().collect();
    all.sort();
    all.dedup();
    all.truncate(n);
    all
}

/// Checks, with one `systemd-analyze` call per base time, that the
/// `OnCalendar=` lines of each schedule elapse at croner's next runs.
pub fn assert_systemd_matches_croner(
    analyze: &Path,
    schedules: &[Schedule],
    bases: &[DateTime<Utc>],
    n: usize,
) {
    let lines: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| retort_schedule::on_calendar(s, None))
        .collect();
    let flat: Vec<String> = lines.iter().flatten().cloned().collect();
    for &base in bases {
        let elapses = systemd_elapses(analyze, &flat, base, n);
        let mut at = 0;
        for (schedule, own) in schedules.iter().zip(&lines) {
            let systemd = merged(&elapses[at..at + own.len()], n);
            at += own.len();
            let croner = schedule.next_runs(&base, n);
            assert_eq!(
                systemd,
                croner,
                "`{}` → OnCalendar={:?}, after {base}",
                schedule.as_str(),
                own
            );
        }
    }
}
