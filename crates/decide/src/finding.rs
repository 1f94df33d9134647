//! Findings and their state across runs: the part of the decide phase
//! that turns "this rule matches now" into "this is new", "this is still
//! firing", "this resolved".
//!
//! A finding is identified by its **fingerprint**: the rule's id, plus the
//! item's label in brackets for a rule over a list (`disk-pressure[/data]`).
//! Per fingerprint, from one run of the formula to the next:
//!
//! | before            | rule matches now                         | rule does not match       |
//! |-------------------|------------------------------------------|---------------------------|
//! | nothing, resolved | pending, or firing (new) when `for` = 1   | —                          |
//! | pending           | pending, or firing (new) at `for` runs    | forgotten (never fired)    |
//! | firing            | firing; new again once `repeat` has passed since it was last reported | resolved (reported in this run only) |
//!
//! A rule that could not be evaluated this run (its section was not
//! collected, or CEL failed) leaves its findings as they were: unknown is
//! neither better nor worse. Findings of rules no longer in the formula are
//! forgotten.
//!
//! [`track`] is pure: it reads the history's [`FormulaState`] and returns
//! the findings and the rows to write, so that `retort run --dry-run` can
//! show a decision without writing it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use retort_journal::history::{FindingRecord, FindingStatus, FormulaState, RunFindingRecord};

use crate::ruleset::{Evaluation, RuleStatus};
use retort_formula::rule::Priority;

/// Where a finding stands in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingState {
    /// Its condition holds, but not yet for its rule's `for` runs.
    Pending,
    /// It fires.
    Firing,
    /// It fired before and its condition no longer holds.
    Resolved,
}

/// One finding of this run.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Finding {
    /// `rule` or `rule[label]`.
    pub fingerprint: String,
    /// The rule's id.
    pub rule: String,
    /// The list item's label, for a rule over a list.
    pub label: Option<String>,
    /// The rule's priority.
    pub priority: Priority,
    /// The rendered message (for a resolved finding, the last one).
    pub message: String,
    /// Where it stands.
    pub state: FindingState,
    /// Firing and reported as new in this run: it just fired, or fired
    /// again after its rule's `repeat`.
    pub new: bool,
    /// For how many consecutive runs its condition has held.
    pub consecutive: u32,
    /// The runs its rule's `for` asks.
    pub needed: u32,
    /// When its condition started to hold.
    pub first_seen: DateTime<Utc>,
    /// When it fired.
    pub fired_at: Option<DateTime<Utc>>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The action its rule names.
    pub action: Option<String>,
    /// The list item, for templates of actions (not serialised).
    #[serde(skip)]
    pub item: Option<serde_json::Value>,
    /// Whether this finding says that its rule could not be evaluated this
    /// run (see [`rule_error_findings`]): not tracked across runs, never
    /// acted on, and the gate's `on_error` decides what it does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rule_error: bool,
}

/// One finding per rule of `evaluation` that could not be evaluated
/// ([`RuleStatus::Failed`]: its CEL failed, or a section it reads was
/// collected with status `error`): fingerprint `RULE!error`, the rule's
/// own priority (a P0 rule that cannot be evaluated may be hiding a P0),
/// message "rule `RULE` could not be evaluated: WHY", firing and new. A
/// rule skipped because its section is `unavailable` (the source does not
/// exist here) gives none.
pub fn rule_error_findings(evaluation: &Evaluation) -> Vec<Finding> {
    evaluation
        .rules
        .iter()
        .filter_map(|rule| match &rule.status {
            RuleStatus::Failed(why) => Some(Finding {
                fingerprint: format!("{}!error", rule.id),
                rule: rule.id.clone(),
                label: None,
                priority: rule.priority,
                message: format!("rule `{}` could not be evaluated: {why}", rule.id),
                state: FindingState::Firing,
                new: true,
                consecutive: 1,
                needed: 1,
                first_seen: evaluation.at,
                fired_at: Some(evaluation.at),
                resolved_at: None,
                action: None,
                item: None,
                rule_error: true,
            }),
            RuleStatus::Evaluated | RuleStatus::Skipped(_) => None,
        })
        .collect()
}

impl Finding {
    /// The state word stored per run: `new`, `firing`, `pending` or `resolved`.
    pub fn run_state(&self) -> &'static str {
        match (self.state, self.new) {
            (FindingState::Firing, true) => "new",
            (FindingState::Firing, false) => "firing",
            (FindingState::Pending, _) => "pending",
            (FindingState::Resolved, _) => "resolved",
        }
    }

    /// `[P0] memory-crisis: RAM 300 MB available — new`, for journals and terminals.
    pub fn line(&self) -> String {
        let state = match self.state {
            FindingState::Firing if self.new => "new".to_string(),
            FindingState::Firing => format!("firing for {} runs", self.consecutive),
            FindingState::Pending => {
                format!("pending, {} of {} runs", self.consecutive, self.needed)
            }
            FindingState::Resolved => "resolved".to_string(),
        };
        format!(
            "[{}] {}: {} — {state}",
            self.priority, self.fingerprint, self.message
        )
    }

    /// The row `run_findings` keeps of it.
    pub fn run_record(&self) -> RunFindingRecord {
        RunFindingRecord {
            fingerprint: self.fingerprint.clone(),
            rule: self.rule.clone(),
            label: self.label.clone(),
            priority: self.priority.as_str().to_string(),
            message: self.message.clone(),
            state: self.run_state().to_string(),
        }
    }
}

/// A change to the `findings` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingWrite {
    /// Insert or replace this row.
    Put(FindingRecord),
    /// Forget this fingerprint.
    Delete(String),
}

/// The findings of a run and the history rows that record them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracked {
    /// Firing, pending and just-resolved findings, most urgent first, then
    /// by fingerprint.
    pub findings: Vec<Finding>,
    /// What to write to the `findings` table.
    pub writes: Vec<FindingWrite>,
}

/// Applies `evaluation` to the history's `state`, as run `seq`.
pub fn track(evaluation: &Evaluation, state: &FormulaState, seq: i64) -> Tracked {
    let at = evaluation.at;
    let previous_seq = state.previous.as_ref().map(|run| run.seq);
    let mut tracked = Tracked::default();
    let records: BTreeMap<&str, &FindingRecord> = state
        .findings
        .iter()
        .map(|r| (r.fingerprint.as_str(), r))
        .collect();
    let mut matched: BTreeSet<&str> = BTreeSet::new();

    for observed in &evaluation.matches {
        let rule = &evaluation.rules[observed.rule];
        if !matched.insert(observed.fingerprint.as_str()) {
            continue;
        }
        let before = records
            .get(observed.fingerprint.as_str())
            .filter(|r| r.status != FindingStatus::Resolved);
        let (consecutive, first_seen) = match before {
            Some(r) if Some(r.last_run) == previous_seq || r.last_run == seq => {
                (r.consecutive.saturating_add(1), r.first_seen)
            }
            _ => (1, at),
        };
        let was_firing = before.is_some_and(|r| r.status == FindingStatus::Firing);
        let firing = was_firing || consecutive >= rule.for_runs;
        let (fired_at, reported_at, new) = match before {
            Some(r) if was_firing => {
                let last = r.reported_at.or(r.fired_at).unwrap_or(r.first_seen);
                let again = rule.repeat.is_some_and(|repeat| {
                    (at - last).to_std().is_ok_and(|elapsed| elapsed >= repeat)
                });
                if again {
                    (r.fired_at, Some(at), true)
                } else {
                    (r.fired_at, Some(last), false)
                }
            }
            _ if firing => (Some(at), Some(at), true),
            _ => (None, None, false),
        };
        let status = if firing {
            FindingStatus::Firing
        } else {
            FindingStatus::Pending
        };
        tracked.writes.push(FindingWrite::Put(FindingRecord {
            fingerprint: observed.fingerprint.clone(),
            rule: rule.id.clone(),
            label: observed.label.clone(),
            priority: rule.priority.as_str().to_string(),
            message: observed.message.clone(),
            status,
            first_seen,
            last_seen: at,
            consecutive,
            last_run: seq,
            fired_at,
            reported_at,
            resolved_at: None,
        }));
        tracked.findings.push(Finding {
            fingerprint: observed.fingerprint.clone(),
            rule: rule.id.clone(),
            label: observed.label.clone(),
            priority: rule.priority,
            message: observed.message.clone(),
            state: if firing {
                FindingState::Firing
            } else {
                FindingState::Pending
            },
            new,
            consecutive,
            needed: rule.for_runs,
            first_seen,
            fired_at,
            resolved_at: None,
            action: rule.action.clone(),
            item: observed.item.clone(),
            rule_error: false,
        });
    }

    for record in &state.findings {
        if matched.contains(record.fingerprint.as_str()) {
            continue;
        }
        let Some(rule) = evaluation.rules.iter().find(|r| r.id == record.rule) else {
            // Its rule is gone from the formula.
            tracked
                .writes
                .push(FindingWrite::Delete(record.fingerprint.clone()));
            continue;
        };
        match (rule.status.evaluated(), record.status) {
            (_, FindingStatus::Resolved) => {}
            (false, _) => {
                // Unknown this run: carry it, without breaking its chain of runs.
                tracked.writes.push(FindingWrite::Put(FindingRecord {
                    last_run: seq,
                    ..record.clone()
                }));
            }
            (true, FindingStatus::Pending) => tracked
                .writes
                .push(FindingWrite::Delete(record.fingerprint.clone())),
            (true, FindingStatus::Firing) => {
                tracked.writes.push(FindingWrite::Put(FindingRecord {
                    status: FindingStatus::Resolved,
                    resolved_at: Some(at),
                    last_run: seq,
                    ..record.clone()
                }));
                tracked.findings.push(Finding {
                    fingerprint: record.fingerprint.clone(),
                    rule: record.rule.clone(),
                    label: record.label.clone(),
                    priority: Priority::parse(&record.priority).unwrap_or(rule.priority),
                    message: record.message.clone(),
                    state: FindingState::Resolved,
                    new: false,
                    consecutive: record.consecutive,
                    needed: rule.for_runs,
                    first_seen: record.first_seen,
                    fired_at: record.fired_at,
                    resolved_at: Some(at),
                    action: rule.action.clone(),
                    item: None,
                    rule_error: false,
                });
            }
        }
    }

    tracked
        .findings
        .sort_by(|a, b| (a.priority, &a.fingerprint).cmp(&(b.priority, &b.fingerprint)));
    tracked
}

impl RuleStatus {
    /// Whether the rule was evaluated (its findings are known this run).
    pub fn evaluated(&self) -> bool {
        matches!(self, RuleStatus::Evaluated)
    }
}
