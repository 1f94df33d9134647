//! The end of a run, however it went: the steps' reasons cleaned, the
//! rate-limit holds and the spend recorded, the phase file, the history's
//! end of the run, the journal entry, retention, and `run.json`.

use std::time::Duration;

use chrono::Utc;

use retort_journal::history::History;

use super::{Outcome, RunReport, StepOutcome, StepResult, clean_reason, millis, redactor};
use crate::holds;
use crate::phase::{Phase, write_phase_file};
use crate::plan::Plan;
use crate::recovery;
use crate::retention::{self, Pruned, Retention};
use crate::state::{RunDir, StateDir};
use retort_decide::decide::Decision;
use retort_os::atomic::write_atomic;
use retort_os::redact::Redactor;

/// Writes the steps' attempts to the history, the phase file, the
/// history's end of the run and the journal entry, then removes what the formula's runs left that is older than its
/// `[history] keep` ([`retention::prune`]), then writes `run.json`.
/// Failures here are warnings: they never lose the phase file, nor the
/// history or journal, which are written before anything is removed.
pub(super) fn finish(
    plan: &Plan,
    state: &StateDir,
    run: &RunDir,
    history: &mut History,
    decision: Decision,
    outcome: Outcome,
) -> RunReport {
    let Outcome {
        sessions,
        steps,
        attempts,
        ending,
        holds,
        mut warnings,
        clock,
        interrupted_by,
    } = outcome;
    // Reasons are the agent's words: one line, capped, no secrets, before
    // they reach the phase file, the history, the journal or `run.json`.
    let redactor = redactor(plan);
    let mut steps = steps;
    for step in &mut steps {
        step.reason = step.reason.take().map(|r| clean_reason(&redactor, &r));
    }
    let ending = ending.map(|(phase, reason)| (phase, clean_reason(&redactor, &reason)));
    record_holds(plan, state, holds, &steps, &mut warnings);
    let usage = total_usage(&steps);
    if let Some(usage) = usage
        && let Err(error) = history.record_spend(
            plan.loaded.formula.name(),
            &plan.run_id,
            plan.started_at,
            &spend(&usage),
        )
    {
        warnings.push(format!("could not record the run's spend: {error}"));
    }
    let (mut phase, mut reason) = match ending {
        Some((phase, reason)) => (phase, Some(reason)),
        None => (Phase::Done, None),
    };
    // An outcome nobody can read is a failure, whatever the steps did.
    if let Err(source) = write_phase_file(&plan.phase_file, phase, reason.as_deref()) {
        let why = format!(
            "could not write the phase file {}: {source}",
            plan.phase_file.display()
        );
        reason = Some(match reason {
            Some(was) => format!("{why} (the run ended {phase}: {was})"),
            None => format!("{why} (the run ended {phase})"),
        });
        phase = Phase::Failed;
        warnings.push(why);
    }
    // Every attempt of every step (the scheduler's; none for the sequential
    // loop), synced with the run's other records at its end.
    let attempt_rows: Vec<_> = attempts.iter().map(|a| a.history_row(&redactor)).collect();
    if let Err(error) = history.record_step_attempts(&plan.run_id, &attempt_rows) {
        warnings.push(format!("could not record the steps' attempts: {error}"));
    }
    if let Err(error) = history.finish_run(
        &plan.run_id,
        &phase.to_string(),
        reason.as_deref(),
        Utc::now(),
    ) {
        warnings.push(format!("could not record the end of the run: {error}"));
    }
    if let Some(of) = &plan.rerun_of
        && let Err(error) = history.mark_rerun(&plan.run_id, of)
    {
        warnings.push(format!(
            "could not record the run as a rerun of {of}: {error}"
        ));
    }

    let mut report = RunReport {
        backend: plan.backend,
        formula: plan.loaded.formula.name().to_string(),
        formula_path: std::path::absolute(&plan.loaded.path)
            .unwrap_or_else(|_| plan.loaded.path.clone()),
        rerun_of: plan.rerun_of.clone(),
        run_id: plan.run_id.clone(),
        run_dir: run.path().to_path_buf(),
        sessions,
        started_at: plan.started_at,
        duration_ms: millis(clock.elapsed()),
        phase,
        reason,
        steps,
        usage,
        gate: decision.gate.clone(),
        findings: decision.findings.clone(),
        actions: decision.actions.clone(),
        phase_file: plan.phase_file.clone(),
        journal_file: None,
        pruned: Pruned::default(),
        warnings,
        interrupted_by,
    };
    let mut entry = journal_entry(plan, &report, &attempts, &redactor);
    // A gate closed by a hold is news even for a formula without rules.
    if plan.rules.has_rules() || !decision.gate.open {
        entry.decision = Some(decision.journal());
    }
    match retort_journal::append(&plan.journal_dir, &entry) {
        Ok(path) => report.journal_file = Some(path),
        Err(error) => report.warnings.push(error.to_string()),
    }
    // Under the run lock, which `execute` holds until it returns.
    let (pruned, warnings) = retention::prune(
        &Retention {
            state,
            formula: &report.formula,
            run_id: &report.run_id,
            keep: plan.loaded.formula.history.keep(),
            started_at: plan.started_at,
            decided_at: decision.at,
        },
        history,
    );
    report.pruned = pruned;
    report.warnings.extend(warnings);
    if let Some(cutoff) = chrono::Duration::from_std(plan.loaded.formula.history.keep())
        .ok()
        .and_then(|keep| plan.started_at.checked_sub_signed(keep))
        && let Err(error) = history.prune_spend(&report.formula, cutoff)
    {
        report
            .warnings
            .push(format!("could not prune the runs' spend: {error}"));
    }
    // The run's records survive a crash of the machine, as its phase does.
    if let Err(error) = history.sync_commits() {
        report.warnings.push(error.to_string());
    }
    let mut summary = serde_json::to_value(&report).unwrap_or_default();
    redactor.redact_json(&mut summary);
    let summary = serde_json::to_vec_pretty(&summary).unwrap_or_default();
    match write_atomic(&run.summary_file(), &summary) {
        // The run has recorded its end: nothing to recover from now.
        Ok(()) => {
            let _ = std::fs::remove_file(recovery::owner_file(run));
        }
        Err(source) => report.warnings.push(format!(
            "could not write {}: {source}",
            run.summary_file().display()
        )),
    }
    report
}

/// The run's journal entry; each step's line carries its `attempts`
/// before the last (the retried ones), their reasons cleaned by
/// `redactor`.
fn journal_entry(
    plan: &Plan,
    report: &RunReport,
    attempts: &[crate::parallel::AttemptRecord],
    redactor: &Redactor,
) -> retort_journal::Entry {
    retort_journal::Entry {
        formula: report.formula.clone(),
        run_id: report.run_id.clone(),
        started_at: report.started_at,
        duration: Duration::from_millis(report.duration_ms),
        phase: report.phase.to_string(),
        reason: report.reason.clone(),
        health: plan.snapshot.health_summary(),
        steps: report
            .steps
            .iter()
            .map(|s| retort_journal::StepLine {
                id: s.id.clone(),
                title: s.title.clone(),
                outcome: s.outcome.as_str().to_string(),
                duration: s.duration_ms.map(Duration::from_millis),
                reason: s.reason.clone(),
                cost: s
                    .usage
                    .and_then(|u| u.cost_usd)
                    .map(|cost| format!("${cost:.4}")),
                retried: attempts
                    .iter()
                    .filter(|a| a.step == s.id)
                    .filter_map(|a| a.retried(redactor))
                    .collect(),
            })
            .collect(),
        decision: None,
        usage: report.usage.map(|u| spend(&u).describe()),
        notes: report.warnings.clone(),
    }
}

/// The usage of `steps` added up: none when no step reported any; the
/// cost is known when every step that reported usage knew its own.
pub fn total_usage(steps: &[StepResult]) -> Option<retort_agent::usage::Usage> {
    steps
        .iter()
        .filter_map(|s| s.usage)
        .reduce(|sum, usage| sum + usage)
}

fn spend(usage: &retort_agent::usage::Usage) -> retort_journal::spend::RunSpend {
    retort_journal::spend::RunSpend {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_creation_input_tokens: usage.cache_creation_input_tokens,
        cache_read_input_tokens: usage.cache_read_input_tokens,
        cost_usd: usage.cost_usd,
    }
}

/// Records the run's rate-limit holds in `STATE/holds.json`: those its
/// steps left, and one for every other step that ended rate-limited (a
/// tmux agent's screen), until the time its reason shows, else for
/// [`retort_agent::stream_json::DEFAULT_RATE_LIMIT_HOLD`].
fn record_holds(
    plan: &Plan,
    state: &StateDir,
    mut found: Vec<holds::Hold>,
    steps: &[StepResult],
    warnings: &mut Vec<String>,
) {
    let now = Utc::now();
    for step in steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::RateLimited)
    {
        if found.iter().any(|h| h.run_id == plan.run_id) {
            continue;
        }
        let Some(agent) = holds::agent_of_step(plan, &step.id) else {
            continue;
        };
        let text = step.reason.clone().unwrap_or_default();
        found.push(holds::rate_limit_hold(agent, &text, plan, now, None));
    }
    for hold in found {
        if let Err(error) = holds::add(state.path(), hold) {
            warnings.push(format!(
                "could not record the rate-limit hold in {}: {error}",
                holds::holds_file(state.path()).display()
            ));
        }
    }
}
