//! History files written before the schema's migrations were applied by
//! `rusqlite_migration`: built here, table by table, with the SQL retort's
//! own migration loop ran (schema versions 1 and 2, as released), then
//! opened by today's code, which must migrate them without losing a row.

use std::path::{Path, PathBuf};

use retort_journal::history::{
    FindingStatus, History, ProposalStatus, SCHEMA_VERSION, StepAttemptRecord,
};

/// Schema version 1, as retort's first migration wrote it.
const SCHEMA_V1: &str = r"
CREATE TABLE runs (
    seq         INTEGER PRIMARY KEY,
    formula     TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    at          TEXT NOT NULL,
    gate_open   INTEGER NOT NULL,
    gate_reason TEXT NOT NULL,
    phase       TEXT,
    reason      TEXT,
    finished_at TEXT
);
CREATE INDEX runs_by_formula ON runs (formula, seq);

CREATE TABLE findings (
    formula     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule        TEXT NOT NULL,
    label       TEXT,
    priority    TEXT NOT NULL,
    message     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'firing', 'resolved')),
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    consecutive INTEGER NOT NULL,
    last_run    INTEGER NOT NULL,
    fired_at    TEXT,
    reported_at TEXT,
    resolved_at TEXT,
    PRIMARY KEY (formula, fingerprint)
);

CREATE TABLE run_findings (
    run         INTEGER NOT NULL REFERENCES runs (seq),
    fingerprint TEXT NOT NULL,
    rule        TEXT NOT NULL,
    label       TEXT,
    priority    TEXT NOT NULL,
    message     TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (run, fingerprint)
);

CREATE TABLE proposals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    formula     TEXT NOT NULL,
    action      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    priority    TEXT NOT NULL,
    message     TEXT NOT NULL,
    argv        TEXT NOT NULL,
    env         TEXT NOT NULL,
    cwd         TEXT NOT NULL,
    timeout_ms  INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    created_run TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    decided_at  TEXT,
    decided_by  TEXT,
    note        TEXT
);
CREATE INDEX proposals_by_status ON proposals (status, formula);

CREATE TABLE action_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    formula     TEXT NOT NULL,
    action      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id      TEXT,
    proposal    INTEGER REFERENCES proposals (id),
    argv        TEXT NOT NULL,
    at          TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    exit_code   INTEGER,
    outcome     TEXT NOT NULL,
    error       TEXT,
    stdout      TEXT NOT NULL,
    stderr      TEXT NOT NULL,
    truncated   INTEGER NOT NULL
);
CREATE INDEX action_runs_by_key ON action_runs (formula, action, fingerprint, at);
";

/// What schema version 2 added.
const SCHEMA_V2: &str = r"
CREATE INDEX proposals_by_key ON proposals (formula, action, fingerprint, created_at);
CREATE INDEX action_runs_by_proposal ON action_runs (proposal);
";

/// A run of `supervisor` that saw one firing finding, which has a pending
/// proposal, a decided one and an action run of the decided one.
const ROWS: &str = r#"
INSERT INTO runs VALUES (1, 'supervisor', '20261121-110000-3fa9', '2026-11-21T11:00:00.000Z',
    1, 'open: 1 firing finding', 'done', NULL, '2026-11-21T11:03:12.000Z');
INSERT INTO run_findings VALUES (1, 'disk-full[/]', 'disk-full', '/', 'P1',
    'Disk / 91% used', 'new');
INSERT INTO findings VALUES ('supervisor', 'disk-full[/]', 'disk-full', '/', 'P1',
    'Disk / 91% used', 'firing', '2026-11-21T11:00:00.000Z', '2026-11-21T11:00:00.000Z',
    1, 1, '2026-11-21T11:00:00.000Z', '2026-11-21T11:00:00.000Z', NULL);
INSERT INTO proposals (formula, action, fingerprint, priority, message, argv, env, cwd,
    timeout_ms, created_at, created_run, status, decided_at, decided_by, note)
VALUES ('supervisor', 'prune-docker', 'disk-full[/]', 'P1', 'Disk / 91% used',
    '["docker","system","prune","-f"]', '[["RETORT_RULE","disk-full"]]', '/srv', 60000,
    '2026-11-21T10:40:00.000Z', '20261121-104000-0001', 'approved',
    '2026-11-21T10:45:00.000Z', 'operator', 'go ahead');
INSERT INTO proposals (formula, action, fingerprint, priority, message, argv, env, cwd,
    timeout_ms, created_at, created_run, status)
VALUES ('supervisor', 'prune-docker', 'disk-full[/]', 'P1', 'Disk / 91% used',
    '["docker","system","prune","-f"]', '[]', '/srv', 60000,
    '2026-11-21T11:00:00.000Z', '20261121-110000-3fa9', 'pending');
INSERT INTO action_runs (formula, action, fingerprint, run_id, proposal, argv, at,
    duration_ms, exit_code, outcome, error, stdout, stderr, truncated)
VALUES ('supervisor', 'prune-docker', 'disk-full[/]', NULL, 1,
    '["docker","system","prune","-f"]', '2026-11-21T10:45:01.000Z', 1250, 0, 'ok', NULL,
    'Total reclaimed space: 2GB', '', 0);
"#;

/// A history file as retort wrote it at schema `version` (1 or 2): WAL
/// mode, the tables of each migration, `user_version`, and [`ROWS`].
fn old_history(dir: &Path, version: i64) -> PathBuf {
    let path = dir.join("history.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    if version >= 2 {
        conn.execute_batch(SCHEMA_V2).unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
    conn.execute_batch(ROWS).unwrap();
    path
}

fn scalar(path: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

/// Every row of [`ROWS`] reads back through today's code.
fn assert_rows_kept(history: &History) {
    let state = history.state("supervisor").unwrap();
    assert_eq!(state.next_seq, 2);
    let previous = state.previous.as_ref().unwrap();
    assert_eq!(previous.run_id, "20261121-110000-3fa9");
    assert_eq!(previous.phase.as_deref(), Some("done"));
    assert_eq!(previous.findings.len(), 1);
    assert_eq!(previous.findings[0].fingerprint, "disk-full[/]");
    assert_eq!(previous.findings[0].state, "new");
    assert_eq!(state.findings.len(), 1);
    assert_eq!(state.findings[0].status, FindingStatus::Firing);
    assert_eq!(state.findings[0].label.as_deref(), Some("/"));
    assert_eq!(state.pending_proposals.len(), 1);
    assert_eq!(
        state
            .pending_proposal("prune-docker", "disk-full[/]")
            .unwrap()
            .proposal
            .created_run,
        "20261121-110000-3fa9"
    );

    let decided = history.proposal(1).unwrap().unwrap();
    assert_eq!(decided.status, ProposalStatus::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some("operator"));
    assert_eq!(
        decided.proposal.env,
        [("RETORT_RULE".to_string(), "disk-full".to_string())]
    );
    let runs = history.action_runs_of_proposal(1).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].stdout, "Total reclaimed space: 2GB");
    assert_eq!(runs[0].duration_ms, 1250);
    assert_eq!(history.proposals(None).unwrap().len(), 2);
}

#[test]
fn a_version_1_history_migrates_to_the_current_schema_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_history(dir.path(), 1);

    // Before the migration, a read-only view reads it as it is.
    let view = History::open_read_only(&path).unwrap().unwrap();
    assert_rows_kept(&view);
    drop(view);
    assert_eq!(scalar(&path, "PRAGMA user_version"), 1);

    let history = History::open(&path).unwrap();
    assert_rows_kept(&history);
    drop(history);
    assert_eq!(scalar(&path, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(
        scalar(
            &path,
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'
             AND name IN ('proposals_by_key', 'action_runs_by_proposal')"
        ),
        2,
        "migration 2 added its indexes"
    );
}

#[test]
fn a_version_2_history_migrates_without_redoing_a_step_and_takes_new_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_history(dir.path(), 2);
    let tables = |path: &Path| scalar(path, "SELECT COUNT(*) FROM sqlite_master");
    let before = tables(&path);

    // Were a migration run again, its `CREATE` would fail on the existing
    // table or index.
    let mut history = History::open(&path).unwrap();
    assert_rows_kept(&history);
    let tx = history.transaction().unwrap();
    let state = tx.state("supervisor").unwrap();
    tx.insert_run(&retort_journal::history::RunRecord {
        seq: state.next_seq,
        formula: "supervisor".into(),
        run_id: "20261121-112000-3fa9c1e0".into(),
        at: chrono::DateTime::parse_from_rfc3339("2026-11-21T11:20:00Z")
            .unwrap()
            .to_utc(),
        gate_open: false,
        gate_reason: "closed: healthy".into(),
        phase: None,
        reason: None,
        finished_at: None,
        findings: Vec::new(),
    })
    .unwrap();
    tx.commit().unwrap();
    drop(history);

    // It has what a new database has: its own tables and indexes, and
    // those of the migrations after version 2.
    let fresh = dir.path().join("fresh.sqlite");
    drop(History::open(&fresh).unwrap());
    assert!(tables(&path) >= before);
    assert_eq!(tables(&path), tables(&fresh));
    assert_eq!(scalar(&path, "PRAGMA user_version"), SCHEMA_VERSION);
    let history = History::open(&path).unwrap();
    let runs = history.runs("supervisor").unwrap();
    assert_eq!(
        runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["20261121-110000-3fa9", "20261121-112000-3fa9c1e0"]
    );
}

#[test]
fn a_negative_schema_version_is_reported_not_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = -1")
        .unwrap();
    let error = History::open(&path).unwrap_err();
    assert!(
        error.to_string().contains("cannot migrate its schema"),
        "{error}"
    );
    assert_eq!(scalar(&path, "SELECT COUNT(*) FROM sqlite_master"), 0);
}

#[test]
fn two_processes_opening_a_new_history_at_once_both_succeed() {
    // Each thread has its own connection, as two processes would.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let opened: Vec<bool> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| History::open(&path).is_ok()))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(opened, [true; 4]);
    assert_eq!(scalar(&path, "PRAGMA user_version"), SCHEMA_VERSION);
}

#[test]
fn a_version_5_history_gains_the_step_attempts_table_and_keeps_its_rows() {
    // Version 5 is today's schema without migration 6's table: a history
    // migrated to 5 from the released version 2, with the table dropped.
    let dir = tempfile::tempdir().unwrap();
    let path = old_history(dir.path(), 2);
    drop(History::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE step_attempts; PRAGMA user_version = 5;")
        .unwrap();
    let run_id = "20261121-110000-3fa9";

    // A read-only view of version 5 reads no attempts, and writes nothing.
    let view = History::open_read_only(&path).unwrap().unwrap();
    assert_rows_kept(&view);
    assert_eq!(view.step_attempts(run_id).unwrap(), []);
    assert_eq!(view.retried_attempts(run_id).unwrap(), 0);
    drop(view);
    assert_eq!(scalar(&path, "PRAGMA user_version"), 5);

    let mut history = History::open(&path).unwrap();
    assert_rows_kept(&history);
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
    let attempts = [
        StepAttemptRecord {
            step: "check".into(),
            attempt: 1,
            outcome: "failed".into(),
            reason: Some("step `check` was not signalled: its agent exited with status 7".into()),
            started_at: at("2026-11-21T11:00:01.250Z"),
            ended_at: at("2026-11-21T11:00:02.000Z"),
            retry_after_ms: Some(1000),
        },
        StepAttemptRecord {
            step: "check".into(),
            attempt: 2,
            outcome: "done".into(),
            reason: None,
            started_at: at("2026-11-21T11:00:03.000Z"),
            ended_at: at("2026-11-21T11:00:04.500Z"),
            retry_after_ms: None,
        },
    ];
    history.record_step_attempts(run_id, &attempts).unwrap();
    drop(history);
    assert_eq!(scalar(&path, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 6);
    let history = History::open(&path).unwrap();
    assert_eq!(history.step_attempts(run_id).unwrap(), attempts);
    assert_eq!(history.retried_attempts(run_id).unwrap(), 1);
    assert_eq!(history.step_attempts("another-run").unwrap(), []);
}
