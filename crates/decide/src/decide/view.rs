//! What a decision shows: the template context (`findings`, `actions`,
//! `previous`, `gate`; also what `decision.json` holds), the journal's
//! lines, and the findings and actions as markdown for the first prompt.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use super::{ActionPlan, Decision, PlannedAction};
use crate::finding::{Finding, FindingState};
use crate::gate::GateDecision;
use retort_formula::action::ActionMode;

/// Lines of an action's output the first prompt shows, per stream.
pub const PROMPT_OUTPUT_LINES: usize = 10;

/// What templates see of a decision (and what `decision.json` holds).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DecisionContext {
    /// This run's findings.
    pub findings: FindingsContext,
    /// The actions of firing findings.
    pub actions: ActionsContext,
    /// The formula's last run, or null before its first.
    pub previous: Option<PreviousRun>,
    /// The gate's decision.
    pub gate: GateDecision,
}

/// `findings`: this run's findings, grouped. Each list is most urgent first.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct FindingsContext {
    /// Findings that fire (new or not).
    pub firing: Vec<Finding>,
    /// Firing findings reported as new in this run.
    pub new: Vec<Finding>,
    /// Findings whose rule's `for` is not yet met.
    pub pending: Vec<Finding>,
    /// Findings that resolved in this run.
    pub resolved: Vec<Finding>,
    /// All of the above.
    pub all: Vec<Finding>,
}

/// `actions`: what happened with the actions of firing findings.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ActionsContext {
    /// Auto actions to run (with their result once run).
    pub run: Vec<ActionView>,
    /// Proposals made in this run.
    pub proposed: Vec<ActionView>,
    /// Actions held back by a cooldown or a pending proposal, or broken.
    pub held: Vec<ActionView>,
    /// Every proposal of the formula still waiting for a human.
    pub pending: Vec<ProposalView>,
}

/// One action of one firing finding, as templates see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ActionView {
    /// The action's id.
    pub action: String,
    /// The finding it answers.
    pub fingerprint: String,
    /// `auto` or `propose`.
    pub mode: ActionMode,
    /// What was decided (`kind`: `run`, `propose` with `id`, `cooling-down`
    /// with `until`, `already-proposed` with `id`, `broken` with `error`).
    pub plan: ActionPlan,
    /// The command, rendered.
    pub argv: Vec<String>,
    /// How it went.
    pub result: ResultView,
    /// `ran`, `would run`, `proposed`, `would propose`, `cooling down`, …
    pub status: String,
    /// One line saying all of it, as the journal has it.
    pub summary: String,
}

/// An action's result, as templates see it; before it runs, `outcome` is
/// its status (`would run`) and the rest is empty.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ResultView {
    /// `ok`, `failed`, `timed-out`, `not-started`, or the status.
    pub outcome: String,
    /// The exit status, when it exited.
    pub exit_code: Option<i32>,
    /// Why it failed to start, was killed, or timed out.
    pub error: Option<String>,
    /// Its standard output (size-capped).
    pub stdout: String,
    /// Its standard error (size-capped).
    pub stderr: String,
    /// Whether output was cut at the cap.
    pub truncated: bool,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// A proposal waiting for a human, as templates see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProposalView {
    /// Its id, for `retort approve ID`.
    pub id: i64,
    /// The action's id.
    pub action: String,
    /// The finding it answers.
    pub fingerprint: String,
    /// The command.
    pub argv: Vec<String>,
    /// The finding's message when proposed.
    pub message: String,
    /// When it was proposed.
    pub created_at: DateTime<Utc>,
}

/// `previous`: the formula's last run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviousRun {
    /// Its id.
    pub run_id: String,
    /// The time it decided at.
    pub at: DateTime<Utc>,
    /// `done`, `failed`, `escalate`, or `unknown` (it did not end).
    pub phase: String,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// Whether it started the agent.
    pub gate_open: bool,
    /// The findings it saw.
    pub findings: Vec<PreviousFinding>,
    /// Whether a P0–P4 finding fired in it.
    pub alerts: bool,
}

/// A finding of the previous run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviousFinding {
    /// `rule` or `rule[label]`.
    pub fingerprint: String,
    /// The rule's id.
    pub rule: String,
    /// The item's label.
    pub label: Option<String>,
    /// `P0` … `P4` or `info`.
    pub priority: String,
    /// Its message then.
    pub message: String,
    /// `new`, `firing`, `pending` or `resolved`.
    pub state: String,
}

impl Decision {
    /// Findings in `state`.
    pub fn in_state(&self, state: FindingState) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.state == state)
    }

    /// The journal's lines for this decision.
    pub fn journal(&self) -> retort_journal::Decision {
        let mut actions: Vec<String> = self.actions.iter().map(|a| a.line(self.preview)).collect();
        actions.extend(self.expired.iter().map(|(id, action, fingerprint)| {
            format!("proposal #{id} ({action} for {fingerprint}) expired: its finding resolved")
        }));
        retort_journal::Decision {
            gate: self.gate.describe(),
            findings: self.findings.iter().map(Finding::line).collect(),
            actions,
            problems: self.problems.clone(),
        }
    }

    /// What templates see of this decision: `findings`, `actions`,
    /// `previous` and `gate` (also what `decision.json` holds).
    pub fn context(&self) -> DecisionContext {
        let pick = |keep: &dyn Fn(&Finding) -> bool| -> Vec<Finding> {
            self.findings.iter().filter(|f| keep(f)).cloned().collect()
        };
        let view = |a: &PlannedAction| ActionView {
            action: a.action.clone(),
            fingerprint: a.fingerprint.clone(),
            mode: a.mode,
            plan: a.plan.clone(),
            argv: a.argv.clone(),
            result: match &a.result {
                Some(result) => ResultView {
                    outcome: result.outcome.as_str().to_string(),
                    exit_code: result.exit_code,
                    error: result.error.clone(),
                    stdout: result.stdout.clone(),
                    stderr: result.stderr.clone(),
                    truncated: result.truncated,
                    duration_ms: result.duration_ms,
                },
                // The same shape whether or not it ran, so that templates
                // render alike in a preview and in the run.
                None => ResultView {
                    outcome: a.status(self.preview).to_string(),
                    ..ResultView::default()
                },
            },
            status: a.status(self.preview).to_string(),
            summary: a.line(self.preview),
        };
        let actions = |keep: &dyn Fn(&ActionPlan) -> bool| -> Vec<ActionView> {
            self.actions
                .iter()
                .filter(|a| keep(&a.plan))
                .map(view)
                .collect()
        };
        DecisionContext {
            findings: FindingsContext {
                firing: pick(&|f| f.state == FindingState::Firing),
                new: pick(&|f| f.state == FindingState::Firing && f.new),
                pending: pick(&|f| f.state == FindingState::Pending),
                resolved: pick(&|f| f.state == FindingState::Resolved),
                all: pick(&|_| true),
            },
            actions: ActionsContext {
                run: actions(&|p| matches!(p, ActionPlan::Run)),
                proposed: actions(&|p| matches!(p, ActionPlan::Propose { .. })),
                held: actions(&|p| !matches!(p, ActionPlan::Run | ActionPlan::Propose { .. })),
                pending: self
                    .pending_proposals
                    .iter()
                    .map(|p| ProposalView {
                        id: p.id,
                        action: p.proposal.action.clone(),
                        fingerprint: p.proposal.fingerprint.clone(),
                        argv: p.proposal.argv.clone(),
                        message: p.proposal.message.clone(),
                        created_at: p.proposal.created_at,
                    })
                    .collect(),
            },
            previous: self.previous.as_ref().map(|run| PreviousRun {
                run_id: run.run_id.clone(),
                at: run.at,
                phase: run.phase.clone().unwrap_or_else(|| "unknown".to_string()),
                reason: run.reason.clone(),
                gate_open: run.gate_open,
                alerts: run
                    .findings
                    .iter()
                    .any(|f| f.priority != "info" && matches!(f.state.as_str(), "new" | "firing")),
                findings: run
                    .findings
                    .iter()
                    .map(|f| PreviousFinding {
                        fingerprint: f.fingerprint.clone(),
                        rule: f.rule.clone(),
                        label: f.label.clone(),
                        priority: f.priority.clone(),
                        message: f.message.clone(),
                        state: f.state.clone(),
                    })
                    .collect(),
            }),
            gate: self.gate.clone(),
        }
    }

    /// The findings and actions as markdown, for the first prompt; empty
    /// for a formula without rules.
    pub fn to_markdown(&self) -> String {
        if !self.has_rules {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "retort evaluated the formula's rules against the snapshot ({}).\n",
            self.at.format("%Y-%m-%d %H:%M UTC")
        );
        let section = |out: &mut String, title: &str, items: Vec<String>| {
            if !items.is_empty() {
                let _ = writeln!(out, "{title}:\n");
                for item in items {
                    let _ = writeln!(out, "- {item}");
                }
                out.push('\n');
            }
        };
        let lines = |state| self.in_state(state).map(Finding::line).collect();
        section(&mut out, "Firing", lines(FindingState::Firing));
        section(
            &mut out,
            "Resolved since the last run",
            lines(FindingState::Resolved),
        );
        section(
            &mut out,
            "Pending (not yet for enough runs)",
            lines(FindingState::Pending),
        );
        if self.findings.is_empty() {
            out.push_str("No findings: healthy.\n\n");
        }
        let mut actions = Vec::new();
        for planned in &self.actions {
            let mut line = planned.line(self.preview);
            if let Some(result) = &planned.result {
                for (name, text) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
                    let shown: Vec<&str> = text.lines().take(PROMPT_OUTPUT_LINES).collect();
                    if !shown.is_empty() {
                        let more = text.lines().count().saturating_sub(shown.len());
                        let _ = write!(line, "\n  {name}: {}", shown.join("\n    "));
                        if more > 0 || result.truncated {
                            line.push_str("\n    …");
                        }
                    }
                }
            }
            actions.push(line);
        }
        section(&mut out, "Actions", actions);
        section(
            &mut out,
            "Proposals waiting for a human",
            self.pending_proposals
                .iter()
                .map(|p| {
                    format!(
                        "#{} {} for {}: `{}`",
                        p.id,
                        p.proposal.action,
                        p.proposal.fingerprint,
                        p.proposal.argv.join(" ")
                    )
                })
                .collect(),
        );
        section(&mut out, "Rules not evaluated", self.problems.clone());
        if let Some(previous) = &self.previous {
            let alerts: Vec<&str> = previous
                .findings
                .iter()
                .filter(|f| f.priority != "info" && matches!(f.state.as_str(), "new" | "firing"))
                .map(|f| f.fingerprint.as_str())
                .collect();
            let _ = writeln!(
                out,
                "Previous run: {} at {}, PHASE:{}; {}.",
                previous.run_id,
                previous.at.format("%Y-%m-%d %H:%M UTC"),
                previous.phase.as_deref().unwrap_or("unknown"),
                if alerts.is_empty() {
                    "no alerts".to_string()
                } else {
                    format!("alerts: {}", alerts.join(", "))
                }
            );
        }
        out.trim_end().to_string()
    }
}
