//! The history's rows as Rust values: runs, findings, proposals, action
//! runs, and what the decide phase reads of a formula.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

#[cfg(doc)]
use super::History;

/// A finding's state across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingStatus {
    /// The rule's condition holds, but not yet for the rule's `for` runs.
    Pending,
    /// The finding fired and its condition still held at the last run.
    Firing,
    /// The finding fired and its condition has since stopped holding.
    Resolved,
}

impl FindingStatus {
    /// `pending`, `firing` or `resolved`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Pending => "pending",
            FindingStatus::Firing => "firing",
            FindingStatus::Resolved => "resolved",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(FindingStatus::Pending),
            "firing" => Some(FindingStatus::Firing),
            "resolved" => Some(FindingStatus::Resolved),
            _ => None,
        }
    }
}

/// One fingerprint's row in `findings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    /// The rule id, plus `[label]` for a rule over a list: `disk-pressure[/]`.
    pub fingerprint: String,
    /// The rule's id.
    pub rule: String,
    /// The list item's label, for a rule over a list.
    pub label: Option<String>,
    /// `P0` … `P4` or `info`.
    pub priority: String,
    /// The message as last rendered.
    pub message: String,
    /// Where it stands.
    pub status: FindingStatus,
    /// When its condition started to hold (this episode).
    pub first_seen: DateTime<Utc>,
    /// When its condition last held.
    pub last_seen: DateTime<Utc>,
    /// For how many consecutive runs of its formula the condition has held.
    pub consecutive: u32,
    /// The `seq` of the last run that evaluated it.
    pub last_run: i64,
    /// When it fired (this episode).
    pub fired_at: Option<DateTime<Utc>>,
    /// When it was last reported as new (at firing, and again after each `repeat`).
    pub reported_at: Option<DateTime<Utc>>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A finding as one run saw it, in `run_findings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFindingRecord {
    /// As [`FindingRecord::fingerprint`].
    pub fingerprint: String,
    /// The rule's id.
    pub rule: String,
    /// The list item's label.
    pub label: Option<String>,
    /// `P0` … `P4` or `info`.
    pub priority: String,
    /// The rendered message.
    pub message: String,
    /// `new`, `firing`, `pending` or `resolved`.
    pub state: String,
}

/// A run's row in `runs`, with the findings it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's position in the history (all formulas share the sequence).
    pub seq: i64,
    /// The formula's name.
    pub formula: String,
    /// The run id.
    pub run_id: String,
    /// The time the run decided at (its snapshot's `collected_at`).
    pub at: DateTime<Utc>,
    /// Whether the gate let the agent start.
    pub gate_open: bool,
    /// Why the gate opened or stayed closed.
    pub gate_reason: String,
    /// `done`, `failed` or `escalate`; none when the run has not ended (or crashed).
    pub phase: Option<String>,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The findings it saw.
    pub findings: Vec<RunFindingRecord>,
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Waiting for `retort approve` or `retort reject`.
    Pending,
    /// Approved and run.
    Approved,
    /// Rejected.
    Rejected,
    /// Closed by retort because its finding resolved first.
    Expired,
}

impl ProposalStatus {
    /// `pending`, `approved`, `rejected` or `expired`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Approved => "approved",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::Expired => "expired",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(ProposalStatus::Pending),
            "approved" => Some(ProposalStatus::Approved),
            "rejected" => Some(ProposalStatus::Rejected),
            "expired" => Some(ProposalStatus::Expired),
            _ => None,
        }
    }
}

impl std::fmt::Display for ProposalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A proposed action to store: everything needed to run it later without
/// the formula.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProposal {
    /// The formula's name.
    pub formula: String,
    /// The action's id.
    pub action: String,
    /// The finding it answers.
    pub fingerprint: String,
    /// The finding's priority.
    pub priority: String,
    /// The finding's message.
    pub message: String,
    /// The command, rendered: program and arguments, run without a shell.
    pub argv: Vec<String>,
    /// Environment variables to add when it runs.
    pub env: Vec<(String, String)>,
    /// The directory to run it in.
    pub cwd: PathBuf,
    /// How long it may run, in milliseconds.
    pub timeout_ms: u64,
    /// When it was proposed.
    pub created_at: DateTime<Utc>,
    /// The run that proposed it.
    pub created_run: String,
}

/// A stored proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRecord {
    /// Its id, as `retort approve ID` takes it.
    pub id: i64,
    /// What was proposed.
    pub proposal: NewProposal,
    /// Where it stands.
    pub status: ProposalStatus,
    /// When it was approved, rejected or expired.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided (`$USER`), or `retort` for an expiry.
    pub decided_by: Option<String>,
    /// The reason given, or why it expired.
    pub note: Option<String>,
}

/// An action that was started (or could not be), for `action_runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRunRecord {
    /// The formula's name.
    pub formula: String,
    /// The action's id.
    pub action: String,
    /// The finding it answered.
    pub fingerprint: String,
    /// The run that started it (automatic actions).
    pub run_id: Option<String>,
    /// The proposal it carried out (`retort approve`).
    pub proposal: Option<i64>,
    /// The command as run.
    pub argv: Vec<String>,
    /// When it started.
    pub at: DateTime<Utc>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// Its exit status, when it exited normally.
    pub exit_code: Option<i32>,
    /// `ok`, `failed`, `timed-out` or `not-started`.
    pub outcome: String,
    /// Why it failed to start, was killed, or timed out.
    pub error: Option<String>,
    /// Its standard output (size-capped).
    pub stdout: String,
    /// Its standard error (size-capped).
    pub stderr: String,
    /// Whether output was cut at the cap.
    pub truncated: bool,
}

/// What the history says of one formula, as the decide phase needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormulaState {
    /// The `seq` the next run of any formula gets.
    pub next_seq: i64,
    /// The formula's last run, with its findings.
    pub previous: Option<RunRecord>,
    /// Every finding row of the formula (pending, firing and resolved).
    pub findings: Vec<FindingRecord>,
    /// Pending proposals of the formula, oldest first.
    pub pending_proposals: Vec<ProposalRecord>,
    /// For each (action, fingerprint) of the formula, the last time the
    /// action was run or proposed for it: what cooldowns count from.
    pub last_attempts: Vec<(String, String, DateTime<Utc>)>,
}

impl FormulaState {
    /// The last time `action` was run or proposed for `fingerprint`.
    pub fn last_attempt(&self, action: &str, fingerprint: &str) -> Option<DateTime<Utc>> {
        self.last_attempts
            .iter()
            .find(|(a, f, _)| a == action && f == fingerprint)
            .map(|(_, _, at)| *at)
    }

    /// The pending proposal of `action` for `fingerprint`, if there is one.
    pub fn pending_proposal(&self, action: &str, fingerprint: &str) -> Option<&ProposalRecord> {
        self.pending_proposals
            .iter()
            .find(|p| p.proposal.action == action && p.proposal.fingerprint == fingerprint)
    }
}

/// What [`History::prune`] removed, in rows of each table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrunedRows {
    /// Rows of `runs`.
    pub runs: u64,
    /// Rows of `run_findings` (of the runs removed).
    pub run_findings: u64,
    /// Rows of `step_attempts` (of the runs removed).
    pub step_attempts: u64,
    /// Rows of `action_runs`.
    pub action_runs: u64,
    /// Rows of `proposals` (approved, rejected or expired).
    pub proposals: u64,
    /// Rows of `deliveries` (notifications delivered, failed or closed).
    pub deliveries: u64,
}

impl PrunedRows {
    /// All the rows removed.
    pub fn total(&self) -> u64 {
        self.runs
            + self.run_findings
            + self.step_attempts
            + self.action_runs
            + self.proposals
            + self.deliveries
    }
}
