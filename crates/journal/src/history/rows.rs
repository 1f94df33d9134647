//! Reading rows into records and writing records into rows: the SQL that
//! the database ([`super::History`]) and its transactions
//! ([`super::HistoryTransaction`]) share, and the stored form of times.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::records::{
    ActionRunRecord, FindingRecord, FindingStatus, FormulaState, NewProposal, ProposalRecord,
    ProposalStatus, RunFindingRecord, RunRecord,
};
use super::{HistoryError, corrupt, sqlite_error};

pub(super) fn read_state(
    conn: &Connection,
    path: &Path,
    formula: &str,
) -> Result<FormulaState, HistoryError> {
    let fail = sqlite_error(path);
    let next_seq: i64 = conn
        .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs", [], |row| {
            row.get(0)
        })
        .map_err(&fail)?;

    let previous = conn
        .query_row(
            &format!("{RUN_COLUMNS} WHERE formula = ?1 ORDER BY seq DESC LIMIT 1"),
            params![formula],
            run_row,
        )
        .optional()
        .map_err(&fail)?
        .map(|r| r.map_err(|what| corrupt(path, what)))
        .transpose()?;
    let previous = match previous {
        Some(mut run) => {
            run.findings = run_findings(conn, path, run.seq)?;
            Some(run)
        }
        None => None,
    };

    let mut statement = conn
        .prepare_cached(
            "SELECT fingerprint, rule, label, priority, message, status, first_seen, last_seen,
                    consecutive, last_run, fired_at, reported_at, resolved_at
             FROM findings WHERE formula = ?1 ORDER BY fingerprint",
        )
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![formula], finding_row)
        .map_err(&fail)?;
    let findings = collect_rows(rows, path)?;

    let mut statement = conn
        .prepare_cached(&format!(
            "{PROPOSAL_COLUMNS} WHERE status = 'pending' AND formula = ?1 ORDER BY id"
        ))
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![formula], proposal_row)
        .map_err(&fail)?;
    let pending_proposals = collect_rows(rows, path)?;

    let mut statement = conn
        .prepare_cached(
            "SELECT action, fingerprint, MAX(at) FROM (
                 SELECT action, fingerprint, at FROM action_runs WHERE formula = ?1
                 UNION ALL
                 SELECT action, fingerprint, created_at FROM proposals WHERE formula = ?1
             ) GROUP BY action, fingerprint",
        )
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![formula], |row| {
            let action: String = row.get(0)?;
            let fingerprint: String = row.get(1)?;
            let at: String = row.get(2)?;
            Ok(parse_time(&at).map(|at| (action, fingerprint, at)))
        })
        .map_err(&fail)?;
    let last_attempts = collect_rows(rows, path)?;

    Ok(FormulaState {
        next_seq,
        previous,
        findings,
        pending_proposals,
        last_attempts,
    })
}

pub(super) fn run_findings(
    conn: &Connection,
    path: &Path,
    seq: i64,
) -> Result<Vec<RunFindingRecord>, HistoryError> {
    let fail = sqlite_error(path);
    let mut statement = conn
        .prepare_cached(
            "SELECT fingerprint, rule, label, priority, message, state
             FROM run_findings WHERE run = ?1 ORDER BY fingerprint",
        )
        .map_err(&fail)?;
    let rows = statement
        .query_map(params![seq], |row| {
            Ok(Ok(RunFindingRecord {
                fingerprint: row.get(0)?,
                rule: row.get(1)?,
                label: row.get(2)?,
                priority: row.get(3)?,
                message: row.get(4)?,
                state: row.get(5)?,
            }))
        })
        .map_err(&fail)?;
    collect_rows(rows, path)
}

pub(super) fn decide_proposal(
    conn: &Connection,
    path: &Path,
    id: i64,
    status: ProposalStatus,
    by: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, HistoryError> {
    let changed = conn
        .execute(
            "UPDATE proposals SET status = ?1, decided_at = ?2, decided_by = ?3, note = ?4
             WHERE id = ?5 AND status = 'pending'",
            params![status.as_str(), time_text(at), by, note, id],
        )
        .map_err(sqlite_error(path))?;
    Ok(changed == 1)
}

pub(super) fn insert_action_run(
    conn: &Connection,
    path: &Path,
    record: &ActionRunRecord,
) -> Result<i64, HistoryError> {
    conn.execute(
        "INSERT INTO action_runs (formula, action, fingerprint, run_id, proposal, argv, at, duration_ms,
             exit_code, outcome, error, stdout, stderr, truncated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            record.formula,
            record.action,
            record.fingerprint,
            record.run_id,
            record.proposal,
            json_text(&record.argv),
            time_text(record.at),
            i64::try_from(record.duration_ms).unwrap_or(i64::MAX),
            record.exit_code,
            record.outcome,
            record.error,
            record.stdout,
            record.stderr,
            record.truncated,
        ],
    )
    .map_err(sqlite_error(path))?;
    Ok(conn.last_insert_rowid())
}

pub(super) const RUN_COLUMNS: &str =
    "SELECT seq, formula, run_id, at, gate_open, gate_reason, phase, reason, finished_at FROM runs";

pub(super) const PROPOSAL_COLUMNS: &str =
    "SELECT id, formula, action, fingerprint, priority, message, argv, env, cwd, timeout_ms,
     created_at, created_run, status, decided_at, decided_by, note FROM proposals";

pub(super) const ACTION_RUN_COLUMNS: &str =
    "SELECT formula, action, fingerprint, run_id, proposal, argv, at, duration_ms, exit_code,
     outcome, error, stdout, stderr, truncated FROM action_runs";

/// A row read with values this build did not write is reported, not unwrapped.
pub(super) type Parsed<T> = Result<T, String>;

pub(super) fn run_row(row: &Row<'_>) -> rusqlite::Result<Parsed<RunRecord>> {
    let at: String = row.get(3)?;
    let finished: Option<String> = row.get(8)?;
    Ok((|| {
        Ok(RunRecord {
            seq: row.get(0).map_err(|e| e.to_string())?,
            formula: row.get(1).map_err(|e| e.to_string())?,
            run_id: row.get(2).map_err(|e| e.to_string())?,
            at: parse_time(&at)?,
            gate_open: row.get(4).map_err(|e| e.to_string())?,
            gate_reason: row.get(5).map_err(|e| e.to_string())?,
            phase: row.get(6).map_err(|e| e.to_string())?,
            reason: row.get(7).map_err(|e| e.to_string())?,
            finished_at: finished.as_deref().map(parse_time).transpose()?,
            findings: Vec::new(),
        })
    })())
}

pub(super) fn finding_row(row: &Row<'_>) -> rusqlite::Result<Parsed<FindingRecord>> {
    let status: String = row.get(5)?;
    let first_seen: String = row.get(6)?;
    let last_seen: String = row.get(7)?;
    let fired_at: Option<String> = row.get(10)?;
    let reported_at: Option<String> = row.get(11)?;
    let resolved_at: Option<String> = row.get(12)?;
    let fingerprint: String = row.get(0)?;
    let rule: String = row.get(1)?;
    let label: Option<String> = row.get(2)?;
    let priority: String = row.get(3)?;
    let message: String = row.get(4)?;
    let consecutive: u32 = row.get(8)?;
    let last_run: i64 = row.get(9)?;
    Ok((|| {
        Ok(FindingRecord {
            status: FindingStatus::parse(&status)
                .ok_or_else(|| format!("finding `{fingerprint}` has unknown status `{status}`"))?,
            first_seen: parse_time(&first_seen)?,
            last_seen: parse_time(&last_seen)?,
            fired_at: fired_at.as_deref().map(parse_time).transpose()?,
            reported_at: reported_at.as_deref().map(parse_time).transpose()?,
            resolved_at: resolved_at.as_deref().map(parse_time).transpose()?,
            fingerprint,
            rule,
            label,
            priority,
            message,
            consecutive,
            last_run,
        })
    })())
}

pub(super) fn proposal_row(row: &Row<'_>) -> rusqlite::Result<Parsed<ProposalRecord>> {
    let id: i64 = row.get(0)?;
    let argv: String = row.get(6)?;
    let env: String = row.get(7)?;
    let cwd: String = row.get(8)?;
    let timeout_ms: i64 = row.get(9)?;
    let created_at: String = row.get(10)?;
    let status: String = row.get(12)?;
    let decided_at: Option<String> = row.get(13)?;
    let proposal = (
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, String>(3)?,
        row.get::<_, String>(4)?,
        row.get::<_, String>(5)?,
        row.get::<_, String>(11)?,
    );
    let decided_by: Option<String> = row.get(14)?;
    let note: Option<String> = row.get(15)?;
    Ok((|| {
        let (formula, action, fingerprint, priority, message, created_run) = proposal;
        Ok(ProposalRecord {
            id,
            proposal: NewProposal {
                formula,
                action,
                fingerprint,
                priority,
                message,
                argv: serde_json::from_str(&argv)
                    .map_err(|e| format!("proposal {id} has a malformed argv: {e}"))?,
                env: serde_json::from_str(&env)
                    .map_err(|e| format!("proposal {id} has a malformed env: {e}"))?,
                cwd: PathBuf::from(cwd),
                timeout_ms: u64::try_from(timeout_ms).unwrap_or(0),
                created_at: parse_time(&created_at)?,
                created_run,
            },
            status: ProposalStatus::parse(&status)
                .ok_or_else(|| format!("proposal {id} has unknown status `{status}`"))?,
            decided_at: decided_at.as_deref().map(parse_time).transpose()?,
            decided_by,
            note,
        })
    })())
}

pub(super) fn action_run_row(row: &Row<'_>) -> rusqlite::Result<Parsed<ActionRunRecord>> {
    let argv: String = row.get(5)?;
    let at: String = row.get(6)?;
    let duration_ms: i64 = row.get(7)?;
    let record = ActionRunRecord {
        formula: row.get(0)?,
        action: row.get(1)?,
        fingerprint: row.get(2)?,
        run_id: row.get(3)?,
        proposal: row.get(4)?,
        argv: Vec::new(),
        at: DateTime::<Utc>::MIN_UTC,
        duration_ms: u64::try_from(duration_ms).unwrap_or(0),
        exit_code: row.get(8)?,
        outcome: row.get(9)?,
        error: row.get(10)?,
        stdout: row.get(11)?,
        stderr: row.get(12)?,
        truncated: row.get(13)?,
    };
    Ok((|| {
        Ok(ActionRunRecord {
            argv: serde_json::from_str(&argv)
                .map_err(|e| format!("an action run has a malformed argv: {e}"))?,
            at: parse_time(&at)?,
            ..record
        })
    })())
}

pub(super) fn collect_rows<T>(
    rows: impl Iterator<Item = rusqlite::Result<Parsed<T>>>,
    path: &Path,
) -> Result<Vec<T>, HistoryError> {
    let mut out = Vec::new();
    for row in rows {
        let parsed = row.map_err(sqlite_error(path))?;
        out.push(parsed.map_err(|what| corrupt(path, what))?);
    }
    Ok(out)
}

/// A time as stored: RFC 3339, UTC, milliseconds.
pub fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))
}

pub(super) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_at_millisecond_precision() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T11:20:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time_text(at), "2026-11-21T11:20:00.123Z");
        assert_eq!(parse_time(&time_text(at)).unwrap(), at);
    }
}
