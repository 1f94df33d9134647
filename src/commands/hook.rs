//! `retort hook`: what Claude Code's hooks run (see
//! `retort_agent::events`). Hidden from `--help`: only the settings retort
//! writes for a session call it.

use std::path::PathBuf;

use retort_agent::events;
use retort_runner::state::RUN_DIR_ENV;

/// Appends the hook's JSON object (standard input, at most 1 MiB) as one
/// line to `$RETORT_RUN_DIR/agent-events.jsonl`. Prints nothing and always
/// exits 0, so that it never stands in the agent's way; without
/// `RETORT_RUN_DIR` (not in a retort session) it does nothing.
pub fn hook() -> u8 {
    if let Some(dir) = std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty()) {
        let _ = events::record(&PathBuf::from(dir), std::io::stdin().lock());
    }
    0
}
