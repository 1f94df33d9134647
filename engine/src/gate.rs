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

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, FindingState};

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

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GateDecision {
    /// The mode it decided by.
    pub mode: GateMode,
    /// Whether the agent starts.
    pub open: bool,
    /// Why, in a few words: `2 findings firing: memory-crisis, disk-pressure[/]`, `healthy`.
    pub reason: String,
}

impl GateDecision {
    /// `open (on-findings): 1 finding firing: memory-crisis` or
    /// `closed (on-findings): healthy — no agent started`.
    pub fn describe(&self) -> String {
        if self.open {
            format!("open ({}): {}", self.mode.as_str(), self.reason)
        } else {
            format!(
                "closed ({}): {} — no agent started",
                self.mode.as_str(),
                self.reason
            )
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

    /// Decides from this run's findings.
    pub fn decide(&self, has_rules: bool, findings: &[Finding]) -> GateDecision {
        let mode = self.mode(has_rules);
        let alerts = |f: &&Finding| f.priority.is_alert();
        let firing: Vec<&Finding> = findings
            .iter()
            .filter(alerts)
            .filter(|f| f.state == FindingState::Firing)
            .collect();
        let new: Vec<&Finding> = firing.iter().copied().filter(|f| f.new).collect();
        let resolved: Vec<&Finding> = findings
            .iter()
            .filter(alerts)
            .filter(|f| f.state == FindingState::Resolved)
            .collect();
        let on_resolved = self.open_on_resolved.unwrap_or(true);

        let (open, reason) = match mode {
            GateMode::Always => (true, "every run starts the agent".to_string()),
            GateMode::OnFindings if !firing.is_empty() => (true, count(&firing, "firing")),
            GateMode::OnNewFindings if !new.is_empty() => (true, count(&new, "new")),
            _ if on_resolved && !resolved.is_empty() => (true, count(&resolved, "resolved")),
            GateMode::OnNewFindings if !firing.is_empty() => (
                false,
                format!(
                    "no new findings ({} still firing, reported before)",
                    firing.len()
                ),
            ),
            _ => (false, quiet(findings)),
        };
        GateDecision { mode, open, reason }
    }
}

/// `2 findings firing: a, b`.
fn count(findings: &[&Finding], what: &str) -> String {
    let names: Vec<&str> = findings.iter().map(|f| f.fingerprint.as_str()).collect();
    format!(
        "{} finding{} {what}: {}",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// `healthy`, or what there is besides alerts: `nothing firing (1 pending, 2 info)`.
fn quiet(findings: &[Finding]) -> String {
    let pending = findings
        .iter()
        .filter(|f| f.state == FindingState::Pending)
        .count();
    let info = findings
        .iter()
        .filter(|f| !f.priority.is_alert() && f.state == FindingState::Firing)
        .count();
    let mut parts = Vec::new();
    if pending > 0 {
        parts.push(format!("{pending} pending"));
    }
    if info > 0 {
        parts.push(format!("{info} info"));
    }
    if parts.is_empty() {
        "healthy".to_string()
    } else {
        format!("nothing firing ({})", parts.join(", "))
    }
}
