//! What a run's `run.json` (written by the runner at the end of each run,
//! `STATE/runs/RUN_ID/run.json`) says, read tolerantly: only the fields the
//! history does not keep (the formula file, each step's outcome and
//! duration, tokens and cost when the agent reported them), each optional,
//! so that a summary written by an older or newer retort still reads.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of a run's summary in its run directory.
pub const SUMMARY_FILE: &str = "run.json";

/// The parts of `run.json` that looking back needs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct RunSummary {
    /// The formula file the run was given (absolute), when recorded.
    #[serde(default)]
    pub formula_path: Option<PathBuf>,
    /// How long the run took, in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Each step of the run, in the order run (none when the gate stayed
    /// closed).
    #[serde(default)]
    pub steps: Vec<StepSummary>,
    /// The run's tokens and cost, when its agent reported them.
    #[serde(default)]
    pub usage: Option<UsageSummary>,
    /// The tmux sessions the run used.
    #[serde(default)]
    pub sessions: Vec<String>,
    /// Bookkeeping that failed after the run.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One step of `run.json`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct StepSummary {
    /// The step id.
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// `done`, `failed`, `escalated`, `rate-limited` or `skipped`.
    #[serde(default)]
    pub outcome: String,
    /// How long it took, in milliseconds; none when skipped.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Why it failed or escalated.
    #[serde(default)]
    pub reason: Option<String>,
    /// Its tokens and cost, when the agent reported them.
    #[serde(default)]
    pub usage: Option<UsageSummary>,
}

/// Tokens and cost of model use, as `run.json` records them (the fields of
/// `retort_agent::usage::Usage`, whose figures come from Claude Code's own
/// reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
pub struct UsageSummary {
    /// Input tokens not read from or written to the prompt cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// The cost in US dollars, when known.
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

impl UsageSummary {
    /// Every token counted, cached or not.
    pub fn tokens(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
    }

    /// `self` and `other` added up; the cost is known when both knew it.
    pub fn add(&self, other: &UsageSummary) -> UsageSummary {
        UsageSummary {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens
                + other.cache_creation_input_tokens,
            cache_read_input_tokens: self.cache_read_input_tokens + other.cache_read_input_tokens,
            cost_usd: self.cost_usd.zip(other.cost_usd).map(|(a, b)| a + b),
        }
    }
}

impl RunSummary {
    /// The summary of run `run_id` under `runs_dir` (`STATE/runs`); `None`
    /// when it has none (a run still going, one that crashed, or one whose
    /// directory retention removed) or it is not JSON of this shape.
    pub fn read(runs_dir: &Path, run_id: &str) -> Option<RunSummary> {
        let text = std::fs::read(runs_dir.join(run_id).join(SUMMARY_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The run's usage: its own total, else its steps' added up; none
    /// when nothing reported any.
    pub fn total_usage(&self) -> Option<UsageSummary> {
        self.usage.or_else(|| {
            self.steps
                .iter()
                .filter_map(|s| s.usage)
                .reduce(|sum, usage| sum.add(&usage))
        })
    }
}
