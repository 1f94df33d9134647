//! The gate's decision: whether a run starts the agent, from its findings
//! and the formula's `[gate]` ([`retort_formula::gate`] documents the table).

use schemars::JsonSchema;
use serde::Serialize;

use retort_formula::gate::{GateMode, GateSection, OnError};

use crate::finding::{Finding, FindingState};

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

/// Decides from this run's findings, by `section` (the formula's `[gate]`)
/// for a formula with (`has_rules`) or without rules. Findings that say a
/// rule could not be evaluated ([`Finding::rule_error`]) decide first, by
/// `on_error`: open, or closed with a reason that names them (never
/// "healthy").
pub fn decide(section: &GateSection, has_rules: bool, findings: &[Finding]) -> GateDecision {
    let mode = section.mode(has_rules);
    let errors: Vec<&Finding> = findings.iter().filter(|f| f.rule_error).collect();
    if !errors.is_empty() && mode != GateMode::Always {
        let rules: Vec<&str> = errors.iter().map(|f| f.rule.as_str()).collect();
        let reason = format!(
            "{} rule{} could not be evaluated: {} ({})",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            rules.join(", "),
            match section.on_error.unwrap_or_default() {
                OnError::Open => "on_error = \"open\"",
                OnError::Closed => "on_error = \"closed\"",
            }
        );
        let open = section.on_error.unwrap_or_default() == OnError::Open;
        return GateDecision { mode, open, reason };
    }
    let findings: Vec<Finding> = findings.iter().filter(|f| !f.rule_error).cloned().collect();
    let findings = findings.as_slice();
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
    let on_resolved = section.open_on_resolved.unwrap_or(true);

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
