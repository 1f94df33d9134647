//! The run-history store, against real SQLite files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use retort_journal::history::{
    ActionRunRecord, FindingRecord, FindingStatus, History, HistoryError, NewProposal,
    ProposalStatus, RunFindingRecord, RunRecord, SCHEMA_VERSION, history_file,
};

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 11, minute, 0).unwrap()
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    history_file(&dir.path().join("state"))
}

fn run(seq: i64, run_id: &str, findings: Vec<RunFindingRecord>) -> RunRecord {
    RunRecord {
        seq,
        formula: "supervisor".into(),
        run_id: run_id.into(),
        at: at(0),
        gate_open: !findings.is_empty(),
        gate_reason: "test".into(),
        phase: None,
        reason: None,
        finished_at: None,
        findings,
    }
}

fn finding(fingerprint: &str, status: FindingStatus, last_run: i64) -> FindingRecord {
    FindingRecord {
        fingerprint: fingerprint.into(),
        rule: fingerprint.split('[').next().unwrap().into(),
        label: None,
        priority: "P0".into(),
        message: "RAM 300 MB available".into(),
        status,
        first_seen: at(0),
        last_seen: at(0),
        consecutive: 1,
        last_run,
        fired_at: Some(at(0)),
        reported_at: Some(at(0)),
        resolved_at: None,
    }
}

fn proposal(fingerprint: &str, created: DateTime<Utc>) -> NewProposal {
    NewProposal {
        formula: "supervisor".into(),
        action: "prune-docker".into(),
        fingerprint: fingerprint.into(),
        priority: "P1".into(),
        message: "Disk / 91% used".into(),
        argv: vec![
            "docker".into(),
            "system".into(),
            "prune".into(),
            "-f".into(),
        ],
        env: vec![("RETORT_FINGERPRINT".into(), fingerprint.into())],
        cwd: PathBuf::from("/srv/factory"),
        timeout_ms: 60_000,
        created_at: created,
        created_run: "20261121-112000-0001".into(),
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_new_database_is_created_at_the_current_schema_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let history = History::open(&path).unwrap();
    drop(history);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(mode, "wal");
    drop(conn);

    // Opening again migrates nothing and loses nothing.
    let history = History::open(&path).unwrap();
    assert_eq!(history.state("supervisor").unwrap().next_seq, 1);
}

#[test]
fn a_database_from_a_newer_retort_is_refused_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(History::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();

    let error = History::open(&path).unwrap_err();
    assert!(
        matches!(error, HistoryError::TooNew { found: 99, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("schema version 99 is newer"),
        "{error}"
    );
    let error = History::open_read_only(&path).unwrap_err();
    assert!(matches!(error, HistoryError::TooNew { .. }), "{error}");
}

#[test]
fn a_run_its_findings_and_the_previous_run_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let mut history = History::open(&path).unwrap();
        let tx = history.transaction().unwrap();
        let state = tx.state("supervisor").unwrap();
        assert_eq!(state.next_seq, 1);
        assert_eq!(state.previous, None);
        tx.insert_run(&run(
            1,
            "r1",
            vec![RunFindingRecord {
                fingerprint: "memory-crisis".into(),
                rule: "memory-crisis".into(),
                label: None,
                priority: "P0".into(),
                message: "RAM 300 MB available".into(),
                state: "new".into(),
            }],
        ))
        .unwrap();
        tx.put_finding(
            "supervisor",
            &finding("memory-crisis", FindingStatus::Firing, 1),
        )
        .unwrap();
        tx.put_finding(
            "other",
            &finding("memory-crisis", FindingStatus::Pending, 1),
        )
        .unwrap();
        tx.commit().unwrap();
        history.finish_run("r1", "done", None, at(5)).unwrap();
    }

    let history = History::open(&path).unwrap();
    let state = history.state("supervisor").unwrap();
    assert_eq!(state.next_seq, 2);
    let previous = state.previous.unwrap();
    assert_eq!(previous.run_id, "r1");
    assert_eq!(previous.phase.as_deref(), Some("done"));
    assert_eq!(previous.finished_at, Some(at(5)));
    assert_eq!(previous.findings.len(), 1);
    assert_eq!(previous.findings[0].state, "new");
    assert_eq!(
        state.findings,
        vec![finding("memory-crisis", FindingStatus::Firing, 1)]
    );
    // Formulas keep separate findings.
    assert_eq!(
        history.state("other").unwrap().findings[0].status,
        FindingStatus::Pending
    );
}

#[test]
fn a_transaction_dropped_without_commit_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut history = History::open(&path).unwrap();
    {
        let tx = history.transaction().unwrap();
        tx.insert_run(&run(1, "r1", vec![])).unwrap();
        tx.put_finding(
            "supervisor",
            &finding("memory-crisis", FindingStatus::Firing, 1),
        )
        .unwrap();
    }
    let state = history.state("supervisor").unwrap();
    assert_eq!(state.next_seq, 1);
    assert!(state.findings.is_empty());
}

#[test]
fn proposals_are_decided_once_and_count_towards_cooldowns() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut history = History::open(&path).unwrap();
    let tx = history.transaction().unwrap();
    let first = tx
        .add_proposal(&proposal("disk-pressure[/]", at(0)))
        .unwrap();
    let second = tx
        .add_proposal(&proposal("disk-pressure[/data]", at(20)))
        .unwrap();
    tx.commit().unwrap();

    let state = history.state("supervisor").unwrap();
    assert_eq!(state.pending_proposals.len(), 2);
    assert_eq!(
        state
            .pending_proposal("prune-docker", "disk-pressure[/]")
            .map(|p| p.id),
        Some(first)
    );
    assert_eq!(
        state.last_attempt("prune-docker", "disk-pressure[/data]"),
        Some(at(20))
    );

    assert!(
        history
            .decide_proposal(first, ProposalStatus::Approved, "ops", None, at(30))
            .unwrap()
    );
    assert!(
        !history
            .decide_proposal(
                first,
                ProposalStatus::Rejected,
                "ops",
                Some("too late"),
                at(31)
            )
            .unwrap(),
        "an approved proposal cannot be rejected"
    );
    history
        .record_action_run(&ActionRunRecord {
            formula: "supervisor".into(),
            action: "prune-docker".into(),
            fingerprint: "disk-pressure[/]".into(),
            run_id: None,
            proposal: Some(first),
            argv: vec!["docker".into()],
            at: at(40),
            duration_ms: 1200,
            exit_code: Some(0),
            outcome: "ok".into(),
            error: None,
            stdout: "Total reclaimed space: 2GB\n".into(),
            stderr: String::new(),
            truncated: false,
        })
        .unwrap();

    let approved = history.proposal(first).unwrap().unwrap();
    assert_eq!(approved.status, ProposalStatus::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("ops"));
    assert_eq!(approved.proposal, proposal("disk-pressure[/]", at(0)));
    let runs = history.action_runs_of_proposal(first).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].stdout, "Total reclaimed space: 2GB\n");

    let state = history.state("supervisor").unwrap();
    assert_eq!(
        state
            .pending_proposals
            .iter()
            .map(|p| p.id)
            .collect::<Vec<_>>(),
        vec![second]
    );
    assert_eq!(
        state.last_attempt("prune-docker", "disk-pressure[/]"),
        Some(at(40))
    );
    assert_eq!(history.proposals(None).unwrap().len(), 2);
    assert_eq!(
        history.proposals(Some(ProposalStatus::Approved)).unwrap()[0].id,
        first
    );
    assert_eq!(history.proposal(999).unwrap(), None);
}

#[test]
fn reading_without_writing_creates_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    assert!(History::open_read_only(&path).unwrap().is_none());
    assert!(!path.exists(), "no database is created for a read");

    {
        let mut history = History::open(&path).unwrap();
        let tx = history.transaction().unwrap();
        tx.insert_run(&run(1, "r1", vec![])).unwrap();
        tx.commit().unwrap();
    }
    let state_dir = path.parent().unwrap();
    let before = files(state_dir);
    assert_eq!(
        before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["history.sqlite"],
        "a cleanly closed database is one file"
    );

    let history = History::open_read_only(&path).unwrap().unwrap();
    let state = history.state("supervisor").unwrap();
    assert_eq!(state.previous.unwrap().run_id, "r1");
    drop(history);
    assert_eq!(
        files(state_dir),
        before,
        "not a byte written, no -wal or -shm"
    );
}

#[test]
fn a_second_writer_waits_for_the_first_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(History::open(&path).unwrap());

    let (held, release) = std::sync::mpsc::channel::<()>();
    let first_path = path.clone();
    let first = std::thread::spawn(move || {
        let mut history = History::open(&first_path).unwrap();
        let tx = history.transaction().unwrap();
        tx.insert_run(&run(1, "r1", vec![])).unwrap();
        held.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        tx.commit().unwrap();
    });
    release.recv().unwrap();

    let started = Instant::now();
    let mut history = History::open(&path).unwrap();
    let tx = history.transaction().unwrap();
    let waited = started.elapsed();
    let state = tx.state("supervisor").unwrap();
    tx.insert_run(&run(state.next_seq, "r2", vec![])).unwrap();
    tx.commit().unwrap();
    first.join().unwrap();

    assert!(waited >= Duration::from_millis(150), "waited {waited:?}");
    assert_eq!(state.next_seq, 2, "the second writer saw the first's run");
    let runs = history.runs("supervisor").unwrap();
    assert_eq!(
        runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["r1", "r2"]
    );
}

#[test]
fn a_read_only_view_beside_a_live_writer_sees_its_commits_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut writer = History::open(&path).unwrap();
    let tx = writer.transaction().unwrap();
    tx.insert_run(&run(1, "r1", vec![])).unwrap();
    tx.commit().unwrap();
    let state_dir = path.parent().unwrap();
    let before = files(state_dir);
    assert!(
        before.iter().any(|(name, _)| name == "history.sqlite-wal"),
        "the writer's WAL is there"
    );

    let view = History::open_read_only(&path).unwrap().unwrap();
    assert_eq!(
        view.state("supervisor").unwrap().previous.unwrap().run_id,
        "r1"
    );
    drop(view);
    assert!(
        files(state_dir) == before,
        "not a byte written beside the writer"
    );
    drop(writer);
}

#[test]
fn old_runs_lose_their_findings_but_not_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut history = History::open(&path).unwrap();
    let kept = retort_journal::history::RUN_FINDINGS_KEPT;
    let tx = history.transaction().unwrap();
    for seq in 1..=kept + 2 {
        tx.insert_run(&run(
            seq,
            &format!("r{seq}"),
            vec![RunFindingRecord {
                fingerprint: "memory-crisis".into(),
                rule: "memory-crisis".into(),
                label: None,
                priority: "P0".into(),
                message: "m".into(),
                state: "firing".into(),
            }],
        ))
        .unwrap();
    }
    tx.prune_run_findings("supervisor").unwrap();
    tx.commit().unwrap();
    let runs = history.runs("supervisor").unwrap();
    assert_eq!(runs.len() as i64, kept + 2);
    assert!(runs[0].findings.is_empty() && runs[1].findings.is_empty());
    assert_eq!(runs[2].findings.len(), 1);
    assert_eq!(runs.last().unwrap().findings.len(), 1);
}
