//! `retort status`: every formula of the state directory at a glance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, Utc};
use serde_json::{Value, json};

use retort_journal::history::{FindingStatus, History, ProposalStatus};
use retort_journal::summary::RunSummary;
use retort_runner::holds;
use retort_runner::state::StateDir;
use retort_schedule::Schedule;

use super::history::{ago, open, print_json, when};

use crate::EXIT_FAILED;
use crate::cli::OutputFormat;

/// Prints, for every formula of the state directory: its last run (phase,
/// age), its next scheduled run (from the `schedule` of the formula file
/// its last run recorded), open (firing) findings by priority and pending
/// proposals; then the holds in force. Writes nothing. Returns the exit
/// status: 0, or 1 when the history cannot be read.
pub fn status(state: Option<PathBuf>, format: OutputFormat) -> u8 {
    let (state, history) = match open(state) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let now = Utc::now();
    let formulas = match history.as_ref().map(|h| formulas(h, &state, now)) {
        None => Vec::new(),
        Some(Ok(formulas)) => formulas,
        Some(Err(error)) => {
            eprintln!("error: {error}");
            return EXIT_FAILED;
        }
    };
    let holds = holds(state.path(), now);
    if format == OutputFormat::Json {
        return print_json(&json!({
            "state_dir": state.path(),
            "formulas": formulas,
            "holds": holds,
        }));
    }
    crate::out(&text(&state, &formulas, &holds, now));
    0
}

/// Each formula's status as JSON.
fn formulas(
    history: &History,
    state: &StateDir,
    now: DateTime<Utc>,
) -> Result<Vec<Value>, retort_journal::HistoryError> {
    let pending = history.proposals(Some(ProposalStatus::Pending))?;
    let mut out = Vec::new();
    for formula in history.formulas()? {
        let last = history.recent_runs(Some(&formula), None, Some(1))?.pop();
        let summary = last
            .as_ref()
            .and_then(|run| RunSummary::read(&state.runs_dir(), &run.run_id));
        let formula_path = summary.as_ref().and_then(|s| s.formula_path.clone());
        let table = formula_path.as_deref().and_then(formula_table);
        let schedule = table.as_ref().and_then(schedule_of);
        let day_budget = table
            .as_ref()
            .and_then(day_usd_of)
            .map(|limit| day_budget(history, &formula, limit, now))
            .transpose()?;
        let next = schedule
            .as_ref()
            .and_then(|s| s.next_runs(&now.with_timezone(&Local), 1).pop());
        let mut findings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for finding in history.state(&formula)?.findings {
            if finding.status == FindingStatus::Firing {
                findings
                    .entry(finding.priority.clone())
                    .or_default()
                    .push(json!({
                        "fingerprint": finding.fingerprint,
                        "message": finding.message,
                        "since": finding.fired_at,
                    }));
            }
        }
        let proposals: Vec<Value> = pending
            .iter()
            .filter(|p| p.proposal.formula == formula)
            .map(|p| {
                json!({
                    "id": p.id,
                    "action": p.proposal.action,
                    "fingerprint": p.proposal.fingerprint,
                    "created_at": p.proposal.created_at,
                })
            })
            .collect();
        out.push(json!({
            "formula": formula,
            "formula_path": formula_path,
            "last_run": last.as_ref().map(|run| {
                let (phase, reason) = match &run.phase {
                    Some(phase) => (Some(phase.clone()), run.reason.clone()),
                    None => unfinished(state, &run.run_id),
                };
                json!({
                "run_id": run.run_id,
                "at": run.at,
                "finished_at": run.finished_at,
                "phase": phase,
                "reason": reason,
                "age_seconds": (now - run.at).num_seconds().max(0),
                })
            }),
            "schedule": schedule.as_ref().map(Schedule::as_str),
            "next_run": next.map(|t| t.to_rfc3339()),
            "day_budget": day_budget,
            "open_findings": findings,
            "pending_proposals": proposals,
        }));
    }
    Ok(out)
}

/// What an unfinished run (an open history row) is: `running` while its
/// retort lives (its `owner.json` names a live process), `abandoned` with
/// the reason when that process is gone (SIGKILL, the OOM killer, a
/// crash): the next run of the formula ends what it left and records it so;
/// `retort status` only says it and writes nothing. None (unfinished) when
/// the run directory says nothing of its owner.
fn unfinished(state: &StateDir, run_id: &str) -> (Option<String>, Option<String>) {
    let run = retort_runner::state::RunDir::new(state.runs_dir().join(run_id));
    match retort_runner::recovery::Owner::load(&run) {
        Some(owner) if owner.alive() => (Some("running".to_string()), None),
        Some(owner) => (
            Some("abandoned".to_string()),
            Some(format!(
                "retort (pid {}) is gone without finishing the run; the next run of the formula ends what it left and records it",
                owner.pid
            )),
        ),
        None => (None, None),
    }
}

/// The formula file at `path` as a TOML table, when it can be read.
fn formula_table(path: &Path) -> Option<toml::Table> {
    std::fs::read_to_string(path).ok()?.parse().ok()
}

/// The formula's `schedule`, when it has one that parses.
fn schedule_of(table: &toml::Table) -> Option<Schedule> {
    Schedule::parse(table.get("schedule")?.as_str()?).ok()
}

/// The formula's `[budget] day_usd`, when it has one.
fn day_usd_of(table: &toml::Table) -> Option<f64> {
    let value = table.get("budget")?.get("day_usd")?;
    value
        .as_float()
        .or_else(|| value.as_integer().map(|n| n as f64))
}

/// The formula's spend of the current UTC day (the history's `run_usage`)
/// against its `[budget] day_usd` of `limit`, as the runner judges it
/// ([`holds::DayBudget`]).
fn day_budget(
    history: &History,
    formula: &str,
    limit: f64,
    now: DateTime<Utc>,
) -> Result<holds::DayBudget, retort_journal::HistoryError> {
    let spent = history.spent_since(formula, holds::day_start(now))?;
    Ok(holds::DayBudget::at(limit, spent, now))
}

/// The rate-limit holds of `STATE/holds.json` ([`holds::read`]) still in
/// force at `now`, as JSON objects.
fn holds(state: &Path, now: DateTime<Utc>) -> Vec<Value> {
    holds::read(state)
        .into_iter()
        .filter(|hold| hold.until > now)
        .filter_map(|hold| serde_json::to_value(hold).ok())
        .collect()
}

fn text(state: &StateDir, formulas: &[Value], holds: &[Value], now: DateTime<Utc>) -> String {
    let mut out = format!("State directory {}\n", state.path().display());
    if formulas.is_empty() {
        out.push_str("No runs yet.\n");
    }
    let str_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let time_of = |v: &Value, key: &str| {
        str_of(v, key)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.to_utc())
    };
    for formula in formulas {
        out.push_str(&format!(
            "\n{}\n",
            str_of(formula, "formula").unwrap_or_default()
        ));
        if let Some(run) = formula.get("last_run").filter(|r| !r.is_null()) {
            let at = time_of(run, "at").unwrap_or(now);
            out.push_str(&format!(
                "  last run   {} {}, {} ({})\n",
                str_of(run, "run_id").unwrap_or_default(),
                str_of(run, "phase").unwrap_or_else(|| "unfinished".into()),
                when(at),
                ago(at, now)
            ));
            if let Some(reason) = str_of(run, "reason") {
                out.push_str(&format!(
                    "             {}\n",
                    reason.lines().next().unwrap_or_default()
                ));
            }
        }
        match (time_of(formula, "next_run"), str_of(formula, "schedule")) {
            (Some(next), Some(schedule)) => out.push_str(&format!(
                "  next run   {} (schedule `{schedule}`)\n",
                next.with_timezone(&Local).format("%Y-%m-%d %H:%M %Z")
            )),
            _ => out.push_str("  next run   not scheduled (or its formula file is not known)\n"),
        }
        if let Some(budget) = formula.get("day_budget").filter(|b| !b.is_null()) {
            let amount = |key: &str| budget.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            let spent = format!(
                "{} spent today (UTC) of {}",
                holds::usd(amount("spent_usd")),
                holds::usd(amount("limit_usd"))
            );
            match time_of(budget, "held_until") {
                Some(until) => out.push_str(&format!(
                    "  budget     {spent}: the gate stays closed until {}\n",
                    until.format("%Y-%m-%d %H:%M UTC")
                )),
                None => out.push_str(&format!("  budget     {spent}\n")),
            }
        }
        let findings = formula.get("open_findings").and_then(Value::as_object);
        match findings.filter(|f| !f.is_empty()) {
            None => out.push_str("  findings   none open\n"),
            Some(findings) => {
                for (priority, list) in findings {
                    for finding in list.as_array().into_iter().flatten() {
                        out.push_str(&format!(
                            "  finding    {priority} {}: {}\n",
                            str_of(finding, "fingerprint").unwrap_or_default(),
                            str_of(finding, "message").unwrap_or_default()
                        ));
                    }
                }
            }
        }
        let proposals = formula
            .get("pending_proposals")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if proposals.is_empty() {
            out.push_str("  proposals  none pending\n");
        }
        for proposal in &proposals {
            out.push_str(&format!(
                "  proposal   #{} {} for {} (retort approve {0})\n",
                proposal
                    .get("id")
                    .and_then(Value::as_i64)
                    .unwrap_or_default(),
                str_of(proposal, "action").unwrap_or_default(),
                str_of(proposal, "fingerprint").unwrap_or_default()
            ));
        }
    }
    if !holds.is_empty() {
        out.push_str("\nHolds (gates stay closed until they end):\n");
        for hold in holds {
            out.push_str(&format!(
                "  {} until {}: {}\n",
                str_of(hold, "agent").unwrap_or_default(),
                str_of(hold, "until").unwrap_or_default(),
                str_of(hold, "reason").unwrap_or_default()
            ));
        }
    }
    out
}
