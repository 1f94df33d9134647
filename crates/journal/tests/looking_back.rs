//! The history's read-only queries and its delivery log, against real
//! SQLite files.

use chrono::{DateTime, Duration, TimeZone, Utc};
use retort_journal::history::{History, RunFindingRecord, RunRecord, history_file};
use retort_notify::{DeliveryLog, DeliveryRecord, Event, EventKind, Status, TargetId};

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, hour, 0, 0).unwrap()
}

fn seen(fingerprint: &str, state: &str) -> RunFindingRecord {
    RunFindingRecord {
        fingerprint: fingerprint.into(),
        rule: fingerprint.split('[').next().unwrap().into(),
        label: None,
        priority: "P1".into(),
        message: format!("{fingerprint} holds"),
        state: state.into(),
    }
}

fn record_run(
    history: &mut History,
    formula: &str,
    run_id: &str,
    when: DateTime<Utc>,
    found: Vec<RunFindingRecord>,
) {
    let tx = history.transaction().unwrap();
    let seq = tx.state(formula).unwrap().next_seq;
    tx.insert_run(&RunRecord {
        seq,
        formula: formula.into(),
        run_id: run_id.into(),
        at: when,
        gate_open: true,
        gate_reason: "findings".into(),
        phase: None,
        reason: None,
        finished_at: None,
        findings: found,
    })
    .unwrap();
    tx.commit().unwrap();
    history
        .finish_run(run_id, "done", None, when + Duration::minutes(1))
        .unwrap();
}

#[test]
fn runs_read_back_newest_first_by_formula_period_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = history_file(dir.path());
    let mut history = History::open(&path).unwrap();
    record_run(
        &mut history,
        "supervisor",
        "r1",
        at(1),
        vec![seen("disk[/]", "new")],
    );
    record_run(&mut history, "report", "r2", at(2), vec![]);
    record_run(
        &mut history,
        "supervisor",
        "r3",
        at(3),
        vec![seen("disk[/]", "firing"), seen("ci", "pending")],
    );
    record_run(
        &mut history,
        "supervisor",
        "r4",
        at(4),
        vec![seen("disk[/]", "resolved")],
    );
    drop(history);

    let history = History::open_read_only(&path).unwrap().unwrap();
    assert_eq!(history.formulas().unwrap(), ["report", "supervisor"]);
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(history.recent_runs(None, None, None).unwrap()),
        ["r4", "r3", "r2", "r1"]
    );
    assert_eq!(
        ids(history
            .recent_runs(Some("supervisor"), Some(at(2)), None)
            .unwrap()),
        ["r4", "r3"]
    );
    assert_eq!(
        ids(history
            .recent_runs(Some("supervisor"), None, Some(1))
            .unwrap()),
        ["r4"]
    );
    let run = history.run("r3").unwrap().unwrap();
    assert_eq!(run.phase.as_deref(), Some("done"));
    assert_eq!(run.findings.len(), 2);
    assert!(history.run("nope").unwrap().is_none());

    // Pending and resolved sightings are not counted; the priority and
    // message are the last run's.
    let counts = history.fingerprint_counts("supervisor", at(0)).unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].fingerprint, "disk[/]");
    assert_eq!(counts[0].runs, 2);
    assert_eq!(counts[0].priority, "P1");
    assert_eq!(
        history.fingerprint_counts("supervisor", at(2)).unwrap()[0].runs,
        1
    );
}

fn delivery(fingerprint: &str, run_id: &str, when: DateTime<Utc>) -> DeliveryRecord {
    let event = Event {
        formula: "supervisor".into(),
        kind: EventKind::Escalate,
        fingerprint: fingerprint.into(),
        priority: None,
        title: "needs a human".into(),
        body: String::new(),
        run_id: run_id.into(),
        at: when,
    };
    DeliveryRecord::new(
        &event,
        TargetId("webhook http://127.0.0.1:1 #00".into()),
        when,
    )
}

#[test]
fn delivery_records_are_kept_replaced_by_id_and_found_by_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = history_file(dir.path());
    let mut history = History::open(&path).unwrap();
    let first = delivery("report", "r1", at(1));
    history.save(&first).unwrap();
    let mut delivered = first.clone();
    delivered.status = Status::Delivered;
    delivered.attempts = 1;
    history.save(&delivered).unwrap();
    history.save(&delivery("report", "r2", at(9))).unwrap();

    let records = DeliveryLog::records(&history, "supervisor").unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0], delivered);
    assert!(DeliveryLog::records(&history, "other").unwrap().is_empty());
    let of_r1 = history.deliveries_of_run("r1").unwrap();
    assert_eq!(of_r1.len(), 1);
    assert_eq!(of_r1[0].status, Status::Delivered);

    // Pruning keeps the latest record of a key.
    assert_eq!(history.prune_deliveries("supervisor", at(12)).unwrap(), 1);
    assert_eq!(history.deliveries("supervisor").unwrap().len(), 1);
}
