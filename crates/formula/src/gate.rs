//! The gate: whether a run starts the agent at all, decided from its
//! findings.
//!
//! ```toml
//! [gate]
//! agent = "on-findings"     # "always" | "on-findings" | "on-new-findings"
//! open_on_resolved = true   # also open in the run where a finding resolves
//! on_error = "open"         # "open" | "closed": a rule that could not be evaluated
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
//! A rule that could not be evaluated this run (its CEL failed, e.g. a
//! `--var` that makes a threshold non-numeric, or a section it reads whose
//! collector reported `error`) is never "healthy": it becomes a finding of
//! its own, "rule `X` could not be evaluated: …", with the rule's priority
//! (a P0 rule that cannot be evaluated may be hiding a P0). `on_error`
//! says what the gate does then: `"open"` (the default) starts the agent,
//! which sees the finding and can look for itself (retort cannot tell that
//! the factory is healthy); `"closed"` starts no agent and the run ends
//! `PHASE:failed` (exit status 1) with the rules in its reason, so that
//! cron mails the operator. A section that is `unavailable` (no Docker
//! daemon, no forge configured) is not an error: its rules are skipped.

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
    /// What a rule that could not be evaluated does to the gate. Default
    /// `open`.
    #[serde(default)]
    pub on_error: Option<OnError>,
}

/// What a rule that could not be evaluated does to the gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The gate opens: the agent starts and sees the finding.
    #[default]
    Open,
    /// The gate stays closed and the run ends `PHASE:failed`.
    Closed,
}

impl OnError {
    /// `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Open => "open",
            OnError::Closed => "closed",
        }
    }
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
