//! Proposals: actions in `mode = "propose"` that a run stored for a human
//! to approve or reject (`retort proposals`, `retort approve ID`,
//! `retort reject ID`).
//!
//! A proposal holds its command as rendered when it was proposed (program,
//! arguments, environment, working directory, timeout), so approving it
//! runs exactly what was reviewed, without the formula. Only a pending
//! proposal can be approved or rejected, and only once: of two concurrent
//! approvals, one runs the command and the other is told it was already
//! approved. A proposal whose finding resolves before anyone decides is
//! closed by the next run as `expired`.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use thiserror::Error;

use retort_journal::history::{
    ActionRunRecord, History, HistoryError, ProposalRecord, ProposalStatus,
};

use crate::action::{CommandResult, CommandSpec, run_command};

/// A proposal could not be listed, approved or rejected.
#[derive(Debug, Error)]
pub enum ProposalError {
    /// The run history could not be used.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// No proposal has this id.
    #[error("there is no proposal #{0}; `retort proposals` lists the pending ones")]
    NotFound(i64),
    /// The proposal was already decided.
    #[error("proposal #{id} is {status}{}; only a pending proposal can be approved or rejected", describe(.by, .at))]
    NotPending {
        /// Its id.
        id: i64,
        /// Where it stands.
        status: ProposalStatus,
        /// Who decided.
        by: Option<String>,
        /// When, as `YYYY-MM-DD HH:MM UTC`.
        at: Option<String>,
    },
}

fn describe(by: &Option<String>, at: &Option<String>) -> String {
    match (by, at) {
        (Some(by), Some(at)) => format!(" (by {by} at {at})"),
        (None, Some(at)) => format!(" (at {at})"),
        (Some(by), None) => format!(" (by {by})"),
        (None, None) => String::new(),
    }
}

/// Who is deciding: `$USER`, else `$LOGNAME`, else `unknown`.
pub fn who() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The proposals in the history at `path`: the pending ones, or all with
/// `all`, oldest first. Reads without writing; no history means none.
///
/// # Errors
/// [`ProposalError::History`].
pub fn list(path: &Path, all: bool) -> Result<Vec<ProposalRecord>, ProposalError> {
    let Some(history) = History::open_read_only(path)? else {
        return Ok(Vec::new());
    };
    let status = (!all).then_some(ProposalStatus::Pending);
    Ok(history.proposals(status)?)
}

/// Approves proposal `id` as `by` and runs its command, recording the
/// result with the proposal.
///
/// # Errors
/// [`ProposalError::NotFound`], [`ProposalError::NotPending`] (nothing is
/// run then), [`ProposalError::History`].
pub async fn approve(
    path: &Path,
    id: i64,
    by: &str,
) -> Result<(ProposalRecord, CommandResult), ProposalError> {
    let history = History::open(path)?;
    let record = pending(&history, id)?;
    if !history.decide_proposal(id, ProposalStatus::Approved, by, None, Utc::now())? {
        return Err(not_pending(&history, id)?);
    }
    let proposal = &record.proposal;
    let started = Utc::now();
    let result = run_command(&CommandSpec {
        argv: proposal.argv.clone(),
        env: proposal.env.clone(),
        cwd: proposal.cwd.clone(),
        timeout: Duration::from_millis(proposal.timeout_ms),
    })
    .await;
    history.record_action_run(&ActionRunRecord {
        formula: proposal.formula.clone(),
        action: proposal.action.clone(),
        fingerprint: proposal.fingerprint.clone(),
        run_id: None,
        proposal: Some(id),
        argv: proposal.argv.clone(),
        at: started,
        duration_ms: result.duration_ms,
        exit_code: result.exit_code,
        outcome: result.outcome.as_str().to_string(),
        error: result.error.clone(),
        stdout: result.stdout.clone(),
        stderr: result.stderr.clone(),
        truncated: result.truncated,
    })?;
    let record = history.proposal(id)?.ok_or(ProposalError::NotFound(id))?;
    Ok((record, result))
}

/// Rejects proposal `id` as `by`, with an optional reason.
///
/// # Errors
/// As [`approve`].
pub fn reject(
    path: &Path,
    id: i64,
    by: &str,
    reason: Option<&str>,
) -> Result<ProposalRecord, ProposalError> {
    let history = History::open(path)?;
    pending(&history, id)?;
    if !history.decide_proposal(id, ProposalStatus::Rejected, by, reason, Utc::now())? {
        return Err(not_pending(&history, id)?);
    }
    history.proposal(id)?.ok_or(ProposalError::NotFound(id))
}

fn pending(history: &History, id: i64) -> Result<ProposalRecord, ProposalError> {
    let record = history.proposal(id)?.ok_or(ProposalError::NotFound(id))?;
    if record.status != ProposalStatus::Pending {
        return Err(not_pending(history, id)?);
    }
    Ok(record)
}

fn not_pending(history: &History, id: i64) -> Result<ProposalError, ProposalError> {
    let record = history.proposal(id)?.ok_or(ProposalError::NotFound(id))?;
    Ok(ProposalError::NotPending {
        id,
        status: record.status,
        by: record.decided_by,
        at: record
            .decided_at
            .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string()),
    })
}
