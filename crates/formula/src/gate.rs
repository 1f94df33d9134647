//! The gate: whether a run starts the agent at all, decided from its
//! findings.
//!
//! ```toml
//! [gate]
//! agent = "on-findings"     # "always" | "on-findings" | "on-new-findings"
//! open_on_resolved = true   # also open in the run where a finding resolves
//! ```
//!
//! | `agent`           | the gate opens when …                                   |
//! |-------------------|---------------------------------------------------------|
//! | `always`          | always (every run starts the agent)                      |
//! | `on-findings`     | a finding of priority P0–P4 fires                        |
//! | `on-new-findings` | a finding of priority P0–P4 fires for the first time, or again after its rule's `repeat` |
//!
//! and, with `open_on_resolved` (the default), when a finding resolved in
//! this run, so that the agent can report the all-clear. `info` findings
//! and pending findings (whose rule's `for` is not yet met) never open it.
//! The default is `on-findings` for a formula with rules and `always` for
//! one without, so formulas written before rules existed run as before.

//!
//! This module is the table's TOML shape; the decision is `retort-decide`'s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `[gate]` table.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    /// When to start the agent. Default: `on-findings` when the formula
    /// has rules, else `always`.
    #[serde(default)]
    pub agent: Option<GateMode>,
    /// Whether a finding resolving opens the gate too. Default `true`.
    #[serde(default)]
    pub open_on_resolved: Option<bool>,
}

/// When the agent starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GateMode {
    /// Every run.
    Always,
    /// When a P0–P4 finding fires.
    OnFindings,
    /// When a P0–P4 finding is new (first firing, or again after `repeat`).
    OnNewFindings,
}

impl GateMode {
    /// `always`, `on-findings` or `on-new-findings`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateMode::Always => "always",
            GateMode::OnFindings => "on-findings",
            GateMode::OnNewFindings => "on-new-findings",
        }
    }
}

impl GateSection {
    /// The mode in force for a formula with (`has_rules`) or without rules.
    pub fn mode(&self, has_rules: bool) -> GateMode {
        self.agent.unwrap_or(if has_rules {
            GateMode::OnFindings
        } else {
            GateMode::Always
        })
    }
}
