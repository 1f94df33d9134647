//! `retort hook`: what Claude Code's hooks run (see
//! `retort_agent::events`). Hidden from `--help`: only the settings retort
//! writes for a session call it.

use std::path::PathBuf;

use retort_agent::events;
use retort_runner::state::{EVENTS_FILE_ENV, RUN_DIR_ENV};

/// Appends the hook's JSON object (standard input, at most 1 MiB) as one
/// line to its session's events file: `$RETORT_EVENTS_FILE`, which retort
/// sets in every agent session (`RUN/agent-events.jsonl`,
/// `agent-events-2.jsonl`, … for sessions that run at once), else
/// `$RETORT_RUN_DIR/agent-events.jsonl`. Prints nothing and always exits 0,
/// so that it never stands in the agent's way; with neither set (not in a
/// retort session) it does nothing.
pub fn hook() -> u8 {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let file = var(EVENTS_FILE_ENV)
        .map(PathBuf::from)
        .or_else(|| var(RUN_DIR_ENV).map(|dir| events::events_file(&PathBuf::from(dir))));
    if let Some(file) = file {
        let _ = events::record(&file, std::io::stdin().lock());
    }
    0
}
