//! `retort proposals`: the actions waiting for a human.

use std::path::PathBuf;

use retort_decide::decide::history_path;
use retort_decide::proposal;
use retort_journal::history::ProposalStatus;

use super::state_dir;
use crate::EXIT_FAILED;
use crate::cli::OutputFormat;

/// Prints the pending proposals (all of them, with `all`), one block each,
/// or as a JSON array with `format` JSON.
/// Writes nothing. Returns the exit status.
pub fn proposals(all: bool, format: OutputFormat, state: Option<PathBuf>) -> u8 {
    let state = match state_dir(state.as_deref()) {
        Ok(state) => state,
        Err(code) => return code,
    };
    let records = match proposal::list(&history_path(state.path()), all) {
        Ok(records) => records,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_FAILED;
        }
    };
    if format == OutputFormat::Json {
        let list: Vec<serde_json::Value> = records
            .iter()
            .map(|record| {
                let p = &record.proposal;
                serde_json::json!({
                    "id": record.id,
                    "status": record.status.as_str(),
                    "formula": p.formula,
                    "action": p.action,
                    "fingerprint": p.fingerprint,
                    "priority": p.priority,
                    "message": p.message,
                    "argv": p.argv,
                    "cwd": p.cwd,
                    "created_at": p.created_at,
                    "created_run": p.created_run,
                    "decided_at": record.decided_at,
                    "decided_by": record.decided_by,
                    "note": record.note,
                })
            })
            .collect();
        return super::history::print_json(&serde_json::Value::Array(list));
    }
    if records.is_empty() {
        crate::out(&format!(
            "No {}proposals.\n",
            if all { "" } else { "pending " }
        ));
        return 0;
    }
    let mut out = String::new();
    for record in &records {
        let p = &record.proposal;
        out.push_str(&format!(
            "#{} {} — {} for {} [{}]\n",
            record.id, record.status, p.action, p.fingerprint, p.priority
        ));
        out.push_str(&format!("    finding:  {}\n", p.message));
        out.push_str(&format!("    command:  {}\n", shell_words(&p.argv)));
        out.push_str(&format!("    in:       {}\n", p.cwd.display()));
        out.push_str(&format!(
            "    proposed: {} by {} run {}\n",
            p.created_at.format("%Y-%m-%d %H:%M UTC"),
            p.formula,
            p.created_run
        ));
        if record.status != ProposalStatus::Pending {
            out.push_str(&format!(
                "    decided:  {}{}{}\n",
                record
                    .decided_at
                    .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
                record
                    .decided_by
                    .as_ref()
                    .map(|by| format!(" by {by}"))
                    .unwrap_or_default(),
                record
                    .note
                    .as_ref()
                    .map(|note| format!(": {note}"))
                    .unwrap_or_default(),
            ));
        }
    }
    if records.iter().any(|r| r.status == ProposalStatus::Pending) {
        out.push_str("\n`retort approve ID` runs a command; `retort reject ID` closes it.\n");
    }
    crate::out(&out);
    0
}

/// The argv as a reader would type it: arguments with spaces or quotes in
/// single quotes.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,[]".contains(c))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
