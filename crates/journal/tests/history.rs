//! The run-history store, against real SQLite files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use retort_journal::history::{
    ActionRunRecord, FindingRecord, FindingStatus, History, HistoryError, NewProposal,
    ProposalStatus, PrunedRows, RunFindingRecord, RunRecord, SCHEMA_VERSION, StepAttemptRecord,
    WAL_CHECKPOINT_BYTES, history_file,
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
        ["history.sqlite", "history.sqlite-shm", "history.sqlite-wal"],
        "closing does not checkpoint: the WAL stays for the next run"
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

/// Midnight (UTC) of 1 November 2026 plus `n` days.
fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + chrono::Duration::days(n)
}

fn run_of(formula: &str, seq: i64, at: DateTime<Utc>) -> RunRecord {
    RunRecord {
        formula: formula.into(),
        at,
        findings: vec![RunFindingRecord {
            fingerprint: "memory-crisis".into(),
            rule: "memory-crisis".into(),
            label: None,
            priority: "P0".into(),
            message: format!("seen by run {seq}"),
            state: "firing".into(),
        }],
        ..run(seq, &format!("{formula}-{seq}"), vec![])
    }
}

fn action_run(
    formula: &str,
    action: &str,
    fingerprint: &str,
    at: DateTime<Utc>,
) -> ActionRunRecord {
    ActionRunRecord {
        formula: formula.into(),
        action: action.into(),
        fingerprint: fingerprint.into(),
        run_id: Some(format!("run at {at}")),
        proposal: None,
        argv: vec![action.into()],
        at,
        duration_ms: 5,
        exit_code: Some(0),
        outcome: "ok".into(),
        error: None,
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
    }
}

/// `(formula, action, fingerprint, at)` of every action run, in id order,
/// read with a connection of its own.
fn action_runs(path: &Path) -> Vec<(String, String, String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT formula, action, fingerprint, at FROM action_runs ORDER BY id")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count(path: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn pruning_removes_old_runs_with_their_findings_but_keeps_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut history = History::open(&path).unwrap();
    let tx = history.transaction().unwrap();
    // supervisor: two old runs and a recent one; other: one old run between.
    tx.insert_run(&run_of("supervisor", 1, day(0))).unwrap();
    tx.insert_run(&run_of("other", 2, day(1))).unwrap();
    tx.insert_run(&run_of("supervisor", 3, day(2))).unwrap();
    tx.insert_run(&run_of("supervisor", 4, day(40))).unwrap();
    // nightly: every run old.
    tx.insert_run(&run_of("nightly", 5, day(3))).unwrap();
    tx.insert_run(&run_of("nightly", 6, day(4))).unwrap();
    tx.commit().unwrap();
    // An attempt of a step in each of supervisor's runs and other's.
    for run_id in ["supervisor-1", "other-2", "supervisor-3", "supervisor-4"] {
        let attempt = StepAttemptRecord {
            step: "check".into(),
            attempt: 1,
            outcome: "done".into(),
            reason: None,
            started_at: day(0),
            ended_at: day(0),
            retry_after_ms: None,
        };
        history.record_step_attempts(run_id, &[attempt]).unwrap();
    }

    let pruned = history.prune("supervisor", day(30)).unwrap();
    assert_eq!(
        pruned,
        PrunedRows {
            runs: 2,
            run_findings: 2,
            step_attempts: 2,
            action_runs: 0,
            proposals: 0,
            deliveries: 0
        }
    );
    assert_eq!(
        count(
            &path,
            "SELECT COUNT(*) FROM step_attempts WHERE run_id IN ('other-2', 'supervisor-4')"
        ),
        2,
        "the attempts of the runs kept stay"
    );
    let ids = |history: &History, formula: &str| -> Vec<String> {
        history
            .runs(formula)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect()
    };
    assert_eq!(ids(&history, "supervisor"), ["supervisor-4"]);
    assert_eq!(
        ids(&history, "other"),
        ["other-2"],
        "other formulas' runs stay"
    );
    assert_eq!(
        count(
            &path,
            "SELECT COUNT(*) FROM run_findings WHERE run IN (1, 3)"
        ),
        0,
        "the old runs' findings went with them"
    );
    assert_eq!(
        count(
            &path,
            "SELECT COUNT(*) FROM run_findings WHERE run IN (2, 4)"
        ),
        2
    );

    // However old, a formula's latest run stays, with its findings: the
    // next run's `previous`.
    let pruned = history.prune("nightly", day(30)).unwrap();
    assert_eq!((pruned.runs, pruned.run_findings), (1, 1));
    assert_eq!(ids(&history, "nightly"), ["nightly-6"]);
    let previous = history.state("nightly").unwrap().previous.unwrap();
    assert_eq!(previous.run_id, "nightly-6");
    assert_eq!(previous.findings[0].message, "seen by run 6");
    // The sequence goes on after the highest seq ever, not the highest left.
    assert_eq!(history.state("supervisor").unwrap().next_seq, 7);

    // Pruning again finds nothing more.
    assert_eq!(
        history.prune("supervisor", day(30)).unwrap(),
        PrunedRows::default()
    );
}

#[test]
fn pruning_keeps_the_latest_action_run_of_each_action_and_fingerprint_however_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut history = History::open(&path).unwrap();
    for record in [
        // Three old runs of one action for one finding: the last stays.
        action_run("supervisor", "free-memory", "memory-crisis", day(0)),
        action_run("supervisor", "free-memory", "memory-crisis", day(1)),
        action_run("supervisor", "free-memory", "memory-crisis", day(2)),
        // The same action for another finding: its only run stays.
        action_run("supervisor", "free-memory", "memory-leak", day(0)),
        // Old runs followed by a recent one: only the recent one stays.
        action_run("supervisor", "remove-lock", "dead-lock[/tmp/a]", day(3)),
        action_run("supervisor", "remove-lock", "dead-lock[/tmp/a]", day(35)),
        // Two at the same time (a replayed snapshot): exactly one stays.
        action_run("supervisor", "restart", "ci-stuck[301]", day(4)),
        action_run("supervisor", "restart", "ci-stuck[301]", day(4)),
        // Another formula's old runs: untouched.
        action_run("other", "free-memory", "memory-crisis", day(0)),
        action_run("other", "free-memory", "memory-crisis", day(1)),
    ] {
        history.record_action_run(&record).unwrap();
    }
    let before = history.state("supervisor").unwrap().last_attempts;

    let pruned = history.prune("supervisor", day(30)).unwrap();

    assert_eq!(pruned.action_runs, 4);
    let text = |at: DateTime<Utc>| retort_journal::history::time_text(at);
    let row = |formula: &str, action: &str, fingerprint: &str, at: DateTime<Utc>| {
        (
            formula.to_string(),
            action.to_string(),
            fingerprint.to_string(),
            text(at),
        )
    };
    assert_eq!(
        action_runs(&path),
        [
            row("supervisor", "free-memory", "memory-crisis", day(2)),
            row("supervisor", "free-memory", "memory-leak", day(0)),
            row("supervisor", "remove-lock", "dead-lock[/tmp/a]", day(35)),
            row("supervisor", "restart", "ci-stuck[301]", day(4)),
            row("other", "free-memory", "memory-crisis", day(0)),
            row("other", "free-memory", "memory-crisis", day(1)),
        ]
    );
    assert_eq!(
        history.state("supervisor").unwrap().last_attempts,
        before,
        "cooldowns count from where they did"
    );
}

#[test]
fn pruning_removes_decided_proposals_and_their_action_runs_but_keeps_pending_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut history = History::open(&path).unwrap();
    let propose = |history: &mut History, formula: &str, fingerprint: &str, created| {
        let tx = history.transaction().unwrap();
        let id = tx
            .add_proposal(&NewProposal {
                formula: formula.into(),
                ..proposal(fingerprint, created)
            })
            .unwrap();
        tx.commit().unwrap();
        id
    };
    let decide = |history: &History, id, status, at| {
        assert!(
            history
                .decide_proposal(id, status, "ops", None, at)
                .unwrap()
        );
    };
    let approved_and_run = |history: &mut History, formula: &str, fingerprint: &str, at| {
        let id = propose(history, formula, fingerprint, at);
        decide(history, id, ProposalStatus::Approved, at);
        history
            .record_action_run(&ActionRunRecord {
                run_id: None,
                proposal: Some(id),
                ..action_run(formula, "prune-docker", fingerprint, at)
            })
            .unwrap();
        id
    };

    // disk[/]: approved (and run), rejected, then rejected again: the
    // first two go, with the first one's action run; the last stays as the
    // latest proposal of its action and fingerprint.
    let approved = approved_and_run(&mut history, "supervisor", "disk[/]", day(0));
    let rejected = propose(&mut history, "supervisor", "disk[/]", day(1));
    decide(&history, rejected, ProposalStatus::Rejected, day(1));
    let latest = propose(&mut history, "supervisor", "disk[/]", day(2));
    decide(&history, latest, ProposalStatus::Rejected, day(2));
    history
        .record_action_run(&action_run("supervisor", "prune-docker", "disk[/]", day(3)))
        .unwrap();
    // disk[/data]: pending since long ago: stays.
    let pending = propose(&mut history, "supervisor", "disk[/data]", day(0));
    // disk[/var]: expired long ago, then proposed again: the expired one goes.
    let expired = propose(&mut history, "supervisor", "disk[/var]", day(1));
    decide(&history, expired, ProposalStatus::Expired, day(2));
    let again = propose(&mut history, "supervisor", "disk[/var]", day(31));
    // disk[/srv]: proposed long ago but approved within `keep`: stays.
    let late = propose(&mut history, "supervisor", "disk[/srv]", day(0));
    decide(&history, late, ProposalStatus::Approved, day(33));
    propose(&mut history, "supervisor", "disk[/srv]", day(1));
    // disk[/home]: approved long ago and run, then proposed and rejected:
    // the rejected one is the latest proposal, and the approved one's
    // action run the latest action run, so both stay.
    let anchored = approved_and_run(&mut history, "supervisor", "disk[/home]", day(0));
    let after = propose(&mut history, "supervisor", "disk[/home]", day(1));
    decide(&history, after, ProposalStatus::Rejected, day(1));
    // Another formula's old decided proposals: untouched.
    let theirs = approved_and_run(&mut history, "other", "disk[/]", day(0));
    let their_latest = propose(&mut history, "other", "disk[/]", day(1));
    decide(&history, their_latest, ProposalStatus::Rejected, day(1));
    let before = history.state("supervisor").unwrap().last_attempts;

    let pruned = history.prune("supervisor", day(30)).unwrap();

    assert_eq!(
        pruned,
        PrunedRows {
            runs: 0,
            run_findings: 0,
            step_attempts: 0,
            action_runs: 1,
            proposals: 3,
            deliveries: 0
        }
    );
    let mut left: Vec<i64> = history
        .proposals(None)
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    left.sort();
    let mut kept = vec![
        latest,
        pending,
        again,
        late,
        late + 1,
        anchored,
        after,
        theirs,
        their_latest,
    ];
    kept.sort();
    assert_eq!(left, kept);
    for gone in [approved, rejected, expired] {
        assert_eq!(history.proposal(gone).unwrap(), None, "#{gone} is gone");
    }
    assert!(
        history
            .action_runs_of_proposal(approved)
            .unwrap()
            .is_empty()
    );
    assert_eq!(history.action_runs_of_proposal(anchored).unwrap().len(), 1);
    assert_eq!(history.action_runs_of_proposal(theirs).unwrap().len(), 1);
    assert_eq!(
        history.state("supervisor").unwrap().pending_proposals[0].id,
        pending
    );
    assert_eq!(
        history.state("supervisor").unwrap().last_attempts,
        before,
        "cooldowns count from where they did"
    );
}

#[test]
fn a_history_of_schema_1_is_read_as_it_is_and_migrated_by_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let mut history = History::open(&path).unwrap();
        let tx = history.transaction().unwrap();
        tx.insert_run(&run(1, "r1", vec![])).unwrap();
        tx.commit().unwrap();
    }
    // What the retort before pruning left: schema 1, without its indexes
    // (nor the tables of later migrations).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX proposals_by_key; DROP INDEX action_runs_by_proposal;
             DROP TABLE deliveries; ALTER TABLE runs DROP COLUMN rerun_of;
             DROP TABLE step_attempts;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    let indexes = |path: &Path| {
        count(
            path,
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'
             AND name IN ('proposals_by_key', 'action_runs_by_proposal')",
        )
    };
    assert_eq!(indexes(&path), 0);

    let view = History::open_read_only(&path).unwrap().unwrap();
    assert_eq!(
        view.state("supervisor").unwrap().previous.unwrap().run_id,
        "r1",
        "`retort proposals` and `render` read it before any run migrates it"
    );
    drop(view);
    assert_eq!(count(&path, "PRAGMA user_version"), 1);

    let history = History::open(&path).unwrap();
    assert_eq!(history.runs("supervisor").unwrap()[0].run_id, "r1");
    drop(history);
    assert_eq!(count(&path, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(indexes(&path), 2);
}

#[test]
fn the_wal_kept_between_runs_stays_bounded_and_every_commit_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let wal = path.with_file_name("history.sqlite-wal");
    let mut largest = 0;
    // Each "run" opens, commits a run with a long reason, and closes, as
    // `retort run` does; far more pages than the checkpoint threshold.
    for seq in 1..=400 {
        let mut history = History::open(&path).unwrap();
        let mut record = run(seq, &format!("r{seq}"), vec![]);
        record.gate_reason = "x".repeat(3000);
        let tx = history.transaction().unwrap();
        tx.insert_run(&record).unwrap();
        tx.commit().unwrap();
        history.sync_commits().unwrap();
        drop(history);
        largest = largest.max(std::fs::metadata(&wal).unwrap().len());
    }
    // What one run adds on top of the threshold.
    let bound = WAL_CHECKPOINT_BYTES + 16 * (4096 + 24);
    assert!(
        largest <= bound,
        "the WAL grew to {largest} bytes, past {bound}: it is never checkpointed"
    );
    let view = History::open_read_only(&path).unwrap().unwrap();
    let runs = view.runs("supervisor").unwrap();
    assert_eq!(runs.len(), 400, "every run is read back");
    assert_eq!(runs.last().unwrap().run_id, "r400");
}

#[test]
fn a_new_history_and_its_wal_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut history = History::open(&path).unwrap();
    let tx = history.transaction().unwrap();
    tx.insert_run(&run(1, "r1", vec![])).unwrap();
    tx.commit().unwrap();
    drop(history);
    let state_dir = path.parent().unwrap();
    let names = files(state_dir);
    assert_eq!(names.len(), 3, "the database, its WAL and its index");
    for (name, _) in names {
        let mode = std::fs::metadata(state_dir.join(&name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is {:o}", mode & 0o777);
    }
}
