//! The report over a period: per formula, what its runs did, found and
//! cost, from the run history and the runs' `run.json` summaries. `retort
//! report` prints it (markdown or JSON), and a formula that declares the
//! var `report` gets its markdown in its prompts (`{{ report }}`), so that
//! a weekly-report formula writes its analysis from facts.
//!
//! Figures:
//! - runs and outcomes: the history's runs that decided in the period, by
//!   phase (`done`, `failed`, `escalate`; `unfinished` for a run that has
//!   not ended or crashed);
//! - agent sessions: runs whose gate opened (an agent started) and runs
//!   whose gate stayed closed (the agent avoided);
//! - step durations: median and 95th percentile (nearest rank: the value at
//!   position ⌈0.95·n⌉ of the n sorted durations), in milliseconds, over
//!   the steps that ran (not skipped), from `run.json`;
//! - findings: distinct fingerprints new or firing in the period, by
//!   priority; recurring fingerprints: how many runs saw each, flagged when
//!   more than [`RECURRING_RUNS`] runs of the last [`RECURRING_WINDOW`] saw
//!   it (the founding documents' "failure signatures repeating more than 5
//!   times in 7 days");
//! - actions: action runs started in the period (automatic, and by
//!   `retort approve`), by outcome; proposals made, approved, rejected and
//!   expired in the period, and pending now;
//! - tokens and cost: summed from `run.json` where the agent reported them.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::history::{FingerprintCount, History, HistoryError, ProposalStatus};
use crate::summary::{RunSummary, UsageSummary};

/// A fingerprint seen in more than this many runs of [`RECURRING_WINDOW`]
/// is flagged as recurring: 5.
pub const RECURRING_RUNS: u64 = 5;

/// The window recurring fingerprints are counted over: 7 days.
pub const RECURRING_WINDOW: Duration = Duration::days(7);

/// The report over a period.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The period's start (UTC).
    pub since: DateTime<Utc>,
    /// Its end: when the report was made (UTC).
    pub until: DateTime<Utc>,
    /// Each formula with a run or a proposal in the history, by name.
    pub formulas: Vec<FormulaReport>,
}

/// One formula's part of a [`Report`].
#[derive(Debug, Clone, Serialize)]
pub struct FormulaReport {
    /// The formula's name.
    pub formula: String,
    /// Runs in the period.
    pub runs: u64,
    /// Runs by phase: `done`, `failed`, `escalate`, `unfinished`.
    pub outcomes: BTreeMap<String, u64>,
    /// Runs whose gate opened: an agent session started.
    pub sessions_started: u64,
    /// Runs whose gate stayed closed: the agent was not needed.
    pub sessions_avoided: u64,
    /// Each step that ran in the period, in the order first seen.
    pub steps: Vec<StepStats>,
    /// Distinct fingerprints new or firing in the period, by priority
    /// (`P0` … `P4`, `info`).
    pub findings_by_priority: BTreeMap<String, u64>,
    /// Fingerprints new or firing in the period, most runs first.
    pub recurring: Vec<Recurring>,
    /// Actions and proposals.
    pub actions: ActionStats,
    /// Tokens and cost of the runs that reported them; none when none did.
    pub usage: Option<UsageSummary>,
    /// Runs whose `run.json` reported usage.
    pub runs_with_usage: u64,
}

/// One step's figures over the period.
#[derive(Debug, Clone, Serialize)]
pub struct StepStats {
    /// The step id.
    pub id: String,
    /// Runs that reached it (skipped ones excluded).
    pub ran: u64,
    /// By outcome: `done`, `failed`, `escalated`, `rate-limited`.
    pub outcomes: BTreeMap<String, u64>,
    /// The median duration, in milliseconds.
    pub median_ms: Option<u64>,
    /// The 95th percentile duration (nearest rank), in milliseconds.
    pub p95_ms: Option<u64>,
}

/// A fingerprint and how often it fired.
#[derive(Debug, Clone, Serialize)]
pub struct Recurring {
    /// The fingerprint, its last priority and message, and the runs of the
    /// period that saw it new or firing.
    #[serde(flatten)]
    pub count: FingerprintCount,
    /// Runs of the last [`RECURRING_WINDOW`] that saw it.
    pub runs_last_7d: u64,
    /// More than [`RECURRING_RUNS`] of them: a recurring failure signature.
    pub flagged: bool,
}

/// Actions run and proposed in the period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActionStats {
    /// Action runs started, by outcome (`ok`, `failed`, `timed-out`,
    /// `not-started`).
    pub runs: BTreeMap<String, u64>,
    /// Proposals made.
    pub proposed: u64,
    /// Proposals approved.
    pub approved: u64,
    /// Proposals rejected.
    pub rejected: u64,
    /// Proposals closed by retort (their finding resolved first).
    pub expired: u64,
    /// Proposals waiting for a human now (made at any time).
    pub pending: u64,
}

impl Report {
    /// The report of what `history` and the run summaries under
    /// `runs_dir` (`STATE/runs`) say of the period from `since` to `now`.
    ///
    /// # Errors
    /// [`HistoryError`] when the history cannot be read.
    pub fn build(
        history: &History,
        runs_dir: &Path,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Report, HistoryError> {
        let proposals = history.proposals(None)?;
        let mut formulas = Vec::new();
        for formula in history.formulas()? {
            let mut report = FormulaReport {
                formula: formula.clone(),
                runs: 0,
                outcomes: BTreeMap::new(),
                sessions_started: 0,
                sessions_avoided: 0,
                steps: Vec::new(),
                findings_by_priority: BTreeMap::new(),
                recurring: Vec::new(),
                actions: ActionStats::default(),
                usage: None,
                runs_with_usage: 0,
            };
            let mut durations: Vec<(String, Vec<u64>, BTreeMap<String, u64>)> = Vec::new();
            let mut runs = history.recent_runs(Some(&formula), Some(since), None)?;
            // Oldest first, so that steps come in the order runs had them.
            runs.reverse();
            for run in runs {
                report.runs += 1;
                let phase = run
                    .phase
                    .clone()
                    .unwrap_or_else(|| "unfinished".to_string());
                *report.outcomes.entry(phase).or_default() += 1;
                if run.gate_open {
                    report.sessions_started += 1;
                } else {
                    report.sessions_avoided += 1;
                }
                let Some(summary) = RunSummary::read(runs_dir, &run.run_id) else {
                    continue;
                };
                if let Some(usage) = summary.total_usage() {
                    report.runs_with_usage += 1;
                    report.usage = Some(match report.usage {
                        Some(sum) => sum.add(&usage),
                        None => usage,
                    });
                }
                for step in summary.steps.iter().filter(|s| s.outcome != "skipped") {
                    let index = match durations.iter().position(|(id, ..)| id == &step.id) {
                        Some(index) => index,
                        None => {
                            durations.push((step.id.clone(), Vec::new(), BTreeMap::new()));
                            durations.len() - 1
                        }
                    };
                    let (_, times, outcomes) = &mut durations[index];
                    times.extend(step.duration_ms);
                    *outcomes.entry(step.outcome.clone()).or_default() += 1;
                }
            }
            report.steps = durations
                .into_iter()
                .map(|(id, mut times, outcomes)| {
                    times.sort_unstable();
                    StepStats {
                        id,
                        ran: outcomes.values().sum(),
                        outcomes,
                        median_ms: median(&times),
                        p95_ms: nearest_rank(&times, 95),
                    }
                })
                .collect();
            let week = history.fingerprint_counts(&formula, now - RECURRING_WINDOW)?;
            for count in history.fingerprint_counts(&formula, since)? {
                *report
                    .findings_by_priority
                    .entry(count.priority.clone())
                    .or_default() += 1;
                let runs_last_7d = week
                    .iter()
                    .find(|w| w.fingerprint == count.fingerprint)
                    .map_or(0, |w| w.runs);
                report.recurring.push(Recurring {
                    count,
                    runs_last_7d,
                    flagged: runs_last_7d > RECURRING_RUNS,
                });
            }
            for action in history.action_runs_since(&formula, since)? {
                *report.actions.runs.entry(action.outcome).or_default() += 1;
            }
            for proposal in proposals.iter().filter(|p| p.proposal.formula == formula) {
                if proposal.proposal.created_at >= since {
                    report.actions.proposed += 1;
                }
                let decided = proposal.decided_at.is_some_and(|at| at >= since);
                match proposal.status {
                    ProposalStatus::Pending => report.actions.pending += 1,
                    ProposalStatus::Approved if decided => report.actions.approved += 1,
                    ProposalStatus::Rejected if decided => report.actions.rejected += 1,
                    ProposalStatus::Expired if decided => report.actions.expired += 1,
                    _ => {}
                }
            }
            formulas.push(report);
        }
        Ok(Report {
            since,
            until: now,
            formulas,
        })
    }

    /// The report as markdown: a section per formula.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# retort report: {} to {}\n",
            self.since.format("%Y-%m-%d %H:%M UTC"),
            self.until.format("%Y-%m-%d %H:%M UTC")
        );
        if self.formulas.is_empty() {
            out.push_str("\nNo runs in the history.\n");
        }
        for formula in &self.formulas {
            formula.markdown(&mut out);
        }
        out
    }
}

impl FormulaReport {
    fn markdown(&self, out: &mut String) {
        out.push_str(&format!("\n## {}\n\n", self.formula));
        let outcomes = counts(&self.outcomes);
        out.push_str(&format!(
            "- runs: {}{}\n- agent sessions: {} started, {} avoided by the gate\n",
            self.runs,
            if outcomes.is_empty() {
                String::new()
            } else {
                format!(" ({outcomes})")
            },
            self.sessions_started,
            self.sessions_avoided
        ));
        match &self.usage {
            Some(usage) => out.push_str(&format!(
                "- tokens: {} ({} in, {} out) over {} runs{}\n",
                usage.tokens(),
                usage.input_tokens,
                usage.output_tokens,
                self.runs_with_usage,
                usage
                    .cost_usd
                    .map(|c| format!("; cost ${c:.4}"))
                    .unwrap_or_default()
            )),
            None => out.push_str("- tokens and cost: not recorded\n"),
        }
        let a = &self.actions;
        out.push_str(&format!(
            "- actions run: {}\n- proposals: {} proposed, {} approved, {} rejected, {} expired, {} pending\n",
            if a.runs.is_empty() { "none".to_string() } else { counts(&a.runs) },
            a.proposed,
            a.approved,
            a.rejected,
            a.expired,
            a.pending
        ));
        out.push_str(&format!(
            "- findings by priority: {}\n",
            if self.findings_by_priority.is_empty() {
                "none".to_string()
            } else {
                counts(&self.findings_by_priority)
            }
        ));
        if !self.steps.is_empty() {
            out.push_str("\n| step | ran | outcomes | median | p95 |\n|---|---|---|---|---|\n");
            for step in &self.steps {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    step.id,
                    step.ran,
                    counts(&step.outcomes),
                    millis(step.median_ms),
                    millis(step.p95_ms)
                ));
            }
        }
        if !self.recurring.is_empty() {
            out.push_str(
                "\n| fingerprint | priority | runs | last 7 days | recurring | message |\n|---|---|---|---|---|---|\n",
            );
            for r in &self.recurring {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    r.count.fingerprint,
                    r.count.priority,
                    r.count.runs,
                    r.runs_last_7d,
                    if r.flagged { "**yes**" } else { "no" },
                    r.count.message.replace('|', "\\|").replace('\n', " ")
                ));
            }
        }
    }
}

/// `done 5, failed 1`.
fn counts(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn millis(ms: Option<u64>) -> String {
    match ms {
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "–".to_string(),
    }
}

/// The median of sorted `values`: the middle one, or the mean of the two
/// middle ones (rounded down).
pub fn median(values: &[u64]) -> Option<u64> {
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}

/// The `percent` percentile of sorted `values` by nearest rank: the value
/// at position ⌈percent/100 · n⌉ (from 1).
pub fn nearest_rank(values: &[u64], percent: u64) -> Option<u64> {
    let n = values.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (percent * n).div_ceil(100).clamp(1, n);
    values.get(usize::try_from(rank - 1).ok()?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_nearest_rank_percentiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5));
        assert_eq!(median(&[1, 3, 10]), Some(3));
        assert_eq!(median(&[1, 3, 5, 10]), Some(4));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 95), Some(95));
        assert_eq!(nearest_rank(&[7, 9], 95), Some(9));
        assert_eq!(nearest_rank(&[7], 95), Some(7));
        assert_eq!(nearest_rank(&[], 95), None);
    }
}
