//! `retort report`: runs, outcomes, step durations, findings, actions and
//! cost over a period, per formula; and the `report` var a formula asks for
//! it with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use retort_journal::history::{History, history_file};
use retort_journal::report::Report;
use retort_runner::state::StateDir;

use super::history::{open, print_json};
use crate::EXIT_FAILED;
use crate::cli::ReportFormat;

/// The var a formula declares to get the report in its prompts:
/// `{{ report }}`.
pub const REPORT_VAR: &str = "report";

/// The var that sets the report's period for a formula that declares it
/// (`"7d"` when it does not, or when it is not a period).
pub const REPORT_SINCE_VAR: &str = "report_since";

/// Prints the report of the last `since`. Writes nothing. Returns the exit
/// status: 0, or 1 when the history cannot be read.
pub fn report(since: Duration, format: ReportFormat, state: Option<PathBuf>) -> u8 {
    let (state, history) = match open(state) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let report = match build(&state, history.as_ref(), since) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_FAILED;
        }
    };
    match format {
        ReportFormat::Markdown => {
            crate::out(&report.to_markdown());
            0
        }
        ReportFormat::Json => match serde_json::to_value(&report) {
            Ok(value) => print_json(&value),
            Err(error) => {
                eprintln!("error: cannot write JSON: {error}");
                EXIT_FAILED
            }
        },
    }
}

fn build(
    state: &StateDir,
    history: Option<&History>,
    since: Duration,
) -> Result<Report, retort_journal::HistoryError> {
    let now = Utc::now();
    let since = now - chrono::Duration::from_std(since).unwrap_or(chrono::Duration::days(7));
    match history {
        Some(history) => Report::build(history, &state.runs_dir(), since, now),
        None => Ok(Report {
            since,
            until: now,
            formulas: Vec::new(),
        }),
    }
}

/// When the formula at `formula` declares the var [`REPORT_VAR`] and
/// `vars` gives it no value, sets it to the markdown report of the state
/// directory over the var [`REPORT_SINCE_VAR`]'s period (its `--var`
/// value, else its default, else 7 days). A formula that cannot be read
/// here is left to the run's own check to report.
pub fn fill_report_var(formula: &Path, state: &StateDir, vars: &mut BTreeMap<String, String>) {
    if vars.contains_key(REPORT_VAR) {
        return;
    }
    let Some(declared) = std::fs::read_to_string(formula)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("vars").and_then(|v| v.as_table()).cloned())
    else {
        return;
    };
    if !declared.contains_key(REPORT_VAR) {
        return;
    }
    let default_since = declared.get(REPORT_SINCE_VAR).and_then(|decl| {
        decl.as_str()
            .or_else(|| decl.get("default").and_then(|d| d.as_str()))
            .map(str::to_string)
    });
    let since = vars
        .get(REPORT_SINCE_VAR)
        .cloned()
        .or(default_since)
        .and_then(|text| humantime::parse_duration(&text).ok())
        .unwrap_or(Duration::from_secs(7 * 24 * 60 * 60));
    let history = History::open_read_only(&history_file(state.path()))
        .ok()
        .flatten();
    let text = match build(state, history.as_ref(), since) {
        Ok(report) => report.to_markdown(),
        Err(error) => format!("(no report: the run history cannot be read: {error})"),
    };
    vars.insert(REPORT_VAR.to_string(), text);
}
