//! `retort show RUN_ID`: one run in full.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::{Value, json};

use retort_journal::history::{ActionRunRecord, History, RunRecord};
use retort_journal::summary::RunSummary;
use retort_notify::DeliveryRecord;

use super::history::{ago, open, print_json, run_json, when};
use super::proposals::shell_words;
use crate::cli::OutputFormat;
use crate::{EXIT_FAILED, EXIT_INVALID};

/// Prints run `run_id`: when and how it ended, its gate, each step with
/// its duration, outcome and reason, its findings, actions, tokens and
/// cost, notifications, and the paths of its files (prompts, signals,
/// agent output and pane). Writes nothing. Returns the exit status: 0; 1
/// when the history cannot be read; 2 when there is no such run.
pub fn show(run_id: &str, state: Option<PathBuf>, format: OutputFormat) -> u8 {
    let (state, history) = match open(state) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let run_dir = state.runs_dir().join(run_id);
    let found = match history.as_ref().map(|h| read(h, run_id)) {
        None => Ok((None, Vec::new(), Vec::new())),
        Some(found) => found,
    };
    let (run, actions, deliveries) = match found {
        Ok(found) => found,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_FAILED;
        }
    };
    let summary = RunSummary::read(&state.runs_dir(), run_id);
    if run.is_none() && !run_dir.is_dir() {
        eprintln!(
            "error: no run `{run_id}` in {} (`retort history` lists the runs; old ones are removed after their formula's `[history] keep`)",
            state.path().display()
        );
        return EXIT_INVALID;
    }
    let files = files(&run_dir);
    if format == OutputFormat::Json {
        let full: Value = std::fs::read(run_dir.join("run.json"))
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or(Value::Null);
        return print_json(&json!({
            "run_id": run_id,
            "run_dir": run_dir,
            "history": run.as_ref().map(run_json),
            "summary": full,
            "actions": actions.iter().map(action_json).collect::<Vec<_>>(),
            "deliveries": deliveries,
            "files": files,
        }));
    }
    crate::out(&text(
        run_id,
        &run_dir,
        run.as_ref(),
        summary.as_ref(),
        &actions,
        &deliveries,
        &files,
    ));
    0
}

type Found = (Option<RunRecord>, Vec<ActionRunRecord>, Vec<DeliveryRecord>);

fn read(history: &History, run_id: &str) -> Result<Found, retort_journal::HistoryError> {
    Ok((
        history.run(run_id)?,
        history.action_runs_of_run(run_id)?,
        history.deliveries_of_run(run_id)?,
    ))
}

fn action_json(action: &ActionRunRecord) -> Value {
    json!({
        "action": action.action,
        "fingerprint": action.fingerprint,
        "argv": action.argv,
        "at": action.at,
        "duration_ms": action.duration_ms,
        "exit_code": action.exit_code,
        "outcome": action.outcome,
        "error": action.error,
        "stdout": action.stdout,
        "stderr": action.stderr,
    })
}

/// Every file under `dir`, sorted, as paths.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn text(
    run_id: &str,
    run_dir: &Path,
    run: Option<&RunRecord>,
    summary: Option<&RunSummary>,
    actions: &[ActionRunRecord],
    deliveries: &[DeliveryRecord],
    files: &[PathBuf],
) -> String {
    let now = Utc::now();
    let mut out = match run {
        Some(run) => format!("run {run_id} of {}\n", run.formula),
        None => format!("run {run_id} (not in the run history: it ended before deciding)\n"),
    };
    out.push_str(&format!("  run dir    {}\n", run_dir.display()));
    if let Some(run) = run {
        out.push_str(&format!(
            "  decided    {} ({})\n",
            when(run.at),
            ago(run.at, now)
        ));
        out.push_str(&format!(
            "  phase      {}{}\n",
            run.phase.as_deref().unwrap_or("unfinished"),
            run.finished_at
                .map(|at| format!(", ended {}", when(at)))
                .unwrap_or_default()
        ));
        if let Some(reason) = &run.reason {
            out.push_str(&format!("  reason     {reason}\n"));
        }
        out.push_str(&format!(
            "  gate       {}: {}\n",
            if run.gate_open { "open" } else { "closed" },
            run.gate_reason
        ));
    }
    if let Some(summary) = summary {
        if let Some(path) = &summary.formula_path {
            out.push_str(&format!("  formula    {}\n", path.display()));
        }
        if let Some(ms) = summary.duration_ms {
            out.push_str(&format!("  took       {}\n", seconds(ms)));
        }
        match summary.total_usage() {
            Some(usage) => out.push_str(&format!(
                "  usage      {} tokens ({} in, {} out){}\n",
                usage.tokens(),
                usage.input_tokens,
                usage.output_tokens,
                usage
                    .cost_usd
                    .map(|c| format!(", ${c:.4}"))
                    .unwrap_or_default()
            )),
            None => out.push_str("  usage      not recorded\n"),
        }
        if !summary.steps.is_empty() {
            out.push_str("  steps:\n");
        }
        for (number, step) in summary.steps.iter().enumerate() {
            out.push_str(&format!(
                "    {}. {} — {}: {}{}\n",
                number + 1,
                step.id,
                step.title,
                step.outcome,
                step.duration_ms
                    .map(|ms| format!(" in {}", seconds(ms)))
                    .unwrap_or_default()
            ));
            if let Some(reason) = &step.reason {
                out.push_str(&format!("       reason: {reason}\n"));
            }
            let prompt = run_dir.join("prompts").join(format!("{}.md", step.id));
            if prompt.is_file() {
                out.push_str(&format!("       prompt: {}\n", prompt.display()));
            }
        }
    }
    if let Some(run) = run {
        if run.findings.is_empty() {
            out.push_str("  findings   none\n");
        } else {
            out.push_str("  findings:\n");
        }
        for finding in &run.findings {
            out.push_str(&format!(
                "    {} {} {}: {}\n",
                finding.priority, finding.state, finding.fingerprint, finding.message
            ));
        }
    }
    if !actions.is_empty() {
        out.push_str("  actions:\n");
    }
    for action in actions {
        out.push_str(&format!(
            "    {} for {}: {} ({}{}) `{}`\n",
            action.action,
            action.fingerprint,
            action.outcome,
            action
                .exit_code
                .map(|c| format!("exit {c}, "))
                .unwrap_or_default(),
            seconds(action.duration_ms),
            shell_words(&action.argv)
        ));
    }
    if !deliveries.is_empty() {
        out.push_str("  notifications:\n");
    }
    for record in deliveries {
        out.push_str(&format!(
            "    {} `{}` to {}: {} ({} attempt{}){}\n",
            record.event.kind,
            record.event.fingerprint,
            record.target,
            record.status.as_str(),
            record.attempts,
            if record.attempts == 1 { "" } else { "s" },
            record
                .last_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    if !files.is_empty() {
        out.push_str("  files:\n");
    }
    for file in files {
        out.push_str(&format!("    {}\n", file.display()));
    }
    out
}
