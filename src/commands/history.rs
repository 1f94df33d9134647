//! `retort history`: past runs, newest first. Also what `status`, `show`
//! and `report` share: opening the history without writing, and how runs
//! and times are shown.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use retort_journal::history::{History, RunRecord, history_file};
use retort_runner::state::StateDir;

use super::state_dir;
use crate::EXIT_FAILED;
use crate::cli::OutputFormat;

/// The state directory and a read-only view of its history (none when no
/// run has written one yet), or the exit status after an error.
pub fn open(state: Option<PathBuf>) -> Result<(StateDir, Option<History>), u8> {
    let state = state_dir(state.as_deref())?;
    match History::open_read_only(&history_file(state.path())) {
        Ok(history) => Ok((state, history)),
        Err(error) => {
            eprintln!("error: {error}");
            Err(EXIT_FAILED)
        }
    }
}

/// `2026-11-21 11:20 UTC`.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How long before `now` `at` was: `12m ago`; `just now` for the future.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    match (now - at).to_std() {
        Ok(age) if age >= Duration::from_secs(1) => {
            format!("{} ago", retort_os::duration::compact(age))
        }
        _ => "just now".to_string(),
    }
}

/// A run as JSON: its history row and findings.
pub fn run_json(run: &RunRecord) -> Value {
    json!({
        "run_id": run.run_id,
        "formula": run.formula,
        "at": run.at,
        "finished_at": run.finished_at,
        "phase": run.phase,
        "reason": run.reason,
        "gate_open": run.gate_open,
        "gate_reason": run.gate_reason,
        "findings": run.findings.iter().map(|f| json!({
            "fingerprint": f.fingerprint,
            "rule": f.rule,
            "label": f.label,
            "priority": f.priority,
            "message": f.message,
            "state": f.state,
        })).collect::<Vec<_>>(),
    })
}

/// Prints `value` as pretty JSON and returns 0.
pub fn print_json(value: &Value) -> u8 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            crate::out(&format!("{text}\n"));
            0
        }
        Err(error) => {
            eprintln!("error: cannot write JSON: {error}");
            EXIT_FAILED
        }
    }
}

/// One line of a run: `RUN_ID  FORMULA  WHEN (AGE)  PHASE  GATE  FINDINGS  REASON`.
pub fn run_line(run: &RunRecord, now: DateTime<Utc>) -> String {
    let firing = run
        .findings
        .iter()
        .filter(|f| f.state == "new" || f.state == "firing")
        .count();
    let new = run.findings.iter().filter(|f| f.state == "new").count();
    let mut line = format!(
        "{}  {}  {} ({})  {}  gate {}  findings {}{}",
        run.run_id,
        run.formula,
        when(run.at),
        ago(run.at, now),
        run.phase.as_deref().unwrap_or("unfinished"),
        if run.gate_open { "open" } else { "closed" },
        firing,
        if new > 0 {
            format!(" ({new} new)")
        } else {
            String::new()
        },
    );
    if let Some(reason) = &run.reason {
        line.push_str(&format!(
            "  — {}",
            reason.lines().next().unwrap_or_default()
        ));
    }
    line
}

/// Lists runs newest first: of `formula` when given, of the last `since`,
/// at most `limit`, each with how many of its steps' attempts were retried
/// (`retried_attempts` in JSON; `(N retried attempts)` on a line, when
/// any). Writes nothing. Returns the exit status: 0, or 1 when
/// the history cannot be read.
pub fn history(
    formula: Option<String>,
    since: Option<Duration>,
    limit: Option<usize>,
    state: Option<PathBuf>,
    format: OutputFormat,
) -> u8 {
    let (_, history) = match open(state) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let now = Utc::now();
    let since = since.and_then(|period| chrono::Duration::from_std(period).ok().map(|p| now - p));
    let runs = match history
        .as_ref()
        .map(|h| h.recent_runs(formula.as_deref(), since, limit))
    {
        None => Vec::new(),
        Some(Ok(runs)) => runs,
        Some(Err(error)) => {
            eprintln!("error: {error}");
            return EXIT_FAILED;
        }
    };
    // How many attempts of each run's steps were retried (the history's
    // `step_attempts`; 0 when it cannot say).
    let retried = |run: &RunRecord| {
        history
            .as_ref()
            .and_then(|h| h.retried_attempts(&run.run_id).ok())
            .unwrap_or(0)
    };
    if format == OutputFormat::Json {
        let runs = runs
            .iter()
            .map(|run| {
                let mut json = run_json(run);
                json["retried_attempts"] = json!(retried(run));
                json
            })
            .collect();
        return print_json(&Value::Array(runs));
    }
    if runs.is_empty() {
        crate::out("No runs.\n");
        return 0;
    }
    let mut out = String::new();
    for run in &runs {
        out.push_str(&run_line(run, now));
        match retried(run) {
            0 => {}
            n => out.push_str(&format!("  ({n} retried attempt{})", plural(n))),
        }
        out.push('\n');
    }
    crate::out(&out);
    0
}

/// `s` for a count other than 1.
fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
