//! The deduplication rules, run after run: each test plays a sequence of
//! runs against the records the previous runs left.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::event::Priority;
use crate::secret::Secret;
use crate::target::{Destination, Webhook};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn minutes(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::minutes(n)
}

fn event(kind: EventKind, fingerprint: &str) -> Event {
    Event {
        formula: "run-supervisor".into(),
        kind,
        fingerprint: fingerprint.into(),
        priority: Some(Priority::P1),
        title: format!("{kind} {fingerprint}"),
        body: String::new(),
        run_id: "run".into(),
        at: t0(),
    }
}

fn target(name: &str, policy: Policy) -> Target {
    Target {
        destination: Destination::Webhook(Webhook {
            url: format!("http://127.0.0.1:9/{name}"),
            body_template: None,
            headers: vec![("X-Key".into(), Secret::new("k"))],
        }),
        policy,
    }
}

fn one() -> Vec<Target> {
    vec![target("a", Policy::default())]
}

/// The kept records, and each run's plan applied with every attempt
/// answering `outcome`.
#[derive(Default)]
struct History {
    records: Vec<DeliveryRecord>,
}

impl History {
    fn run(
        &mut self,
        now: DateTime<Utc>,
        events: &[Event],
        targets: &[Target],
        outcome: Outcome,
    ) -> Plan {
        let plan = plan(now, events, targets, &self.records);
        for record in plan.close.iter().cloned() {
            self.save(record);
        }
        for record in &plan.send {
            self.save(record.after(&outcome, now));
        }
        plan
    }

    fn save(&mut self, record: DeliveryRecord) {
        match self.records.iter_mut().find(|r| r.id == record.id) {
            Some(kept) => *kept = record,
            None => self.records.push(record),
        }
    }
}

fn delivered() -> Outcome {
    Outcome::Delivered { receipt: None }
}

fn retry() -> Outcome {
    Outcome::Retry {
        reason: "HTTP 500".into(),
    }
}

fn sent(plan: &Plan) -> Vec<(EventKind, String)> {
    plan.send
        .iter()
        .map(|r| (r.event.kind, r.event.fingerprint.clone()))
        .collect()
}

#[test]
fn the_same_news_is_sent_once_until_repeat_passes() {
    let mut history = History::default();
    let escalation = [event(EventKind::Escalate, "report")];
    let first = history.run(t0(), &escalation, &one(), delivered());
    assert_eq!(sent(&first), [(EventKind::Escalate, "report".into())]);

    let again = history.run(minutes(20), &escalation, &one(), delivered());
    assert!(again.send.is_empty());
    assert_eq!(
        again.suppressed[0].reason,
        "already notified 20m ago; repeats after 4h"
    );

    let later = history.run(minutes(240), &escalation, &one(), delivered());
    assert_eq!(later.send.len(), 1, "4h after delivery it is news again");
    assert_ne!(later.send[0].id, first.send[0].id);
}

#[test]
fn repeat_counts_from_delivery_not_from_the_first_try() {
    let mut history = History::default();
    let finding = [event(EventKind::Finding, "disk[/data]")];
    history.run(t0(), &finding, &one(), retry());
    history.run(minutes(100), &finding, &one(), delivered());
    let plan = history.run(minutes(260), &finding, &one(), delivered());
    assert!(plan.send.is_empty(), "delivered 160 minutes ago: quiet");
}

#[test]
fn an_undelivered_message_is_retried_with_the_same_id_and_not_duplicated() {
    let mut history = History::default();
    let escalation = [event(EventKind::Escalate, "report")];
    let first = history.run(t0(), &escalation, &one(), retry());
    assert_eq!(history.records[0].status, Status::Pending);
    assert_eq!(history.records[0].last_error.as_deref(), Some("HTTP 500"));

    let second = history.run(minutes(20), &escalation, &one(), delivered());
    assert_eq!(second.send.len(), 1, "the retry, no second message");
    assert_eq!(second.send[0].id, first.send[0].id);
    assert_eq!(
        second.send[0].planned_at,
        t0(),
        "the message keeps its time"
    );
    assert_eq!(
        second.suppressed[0].reason,
        "a message about it is pending; it is retried"
    );
    assert_eq!(history.records.len(), 1);
    assert_eq!(history.records[0].status, Status::Delivered);
    assert_eq!(history.records[0].attempts, 2);

    let third = history.run(minutes(40), &[], &one(), delivered());
    assert!(third.send.is_empty(), "delivered: nothing left to retry");
}

#[test]
fn a_resolved_notice_follows_a_delivered_finding_once() {
    let mut history = History::default();
    let fired = [event(EventKind::Finding, "disk[/data]")];
    let resolved = [event(EventKind::Resolved, "disk[/data]")];
    history.run(t0(), &fired, &one(), delivered());
    let first = history.run(minutes(20), &resolved, &one(), delivered());
    assert_eq!(sent(&first), [(EventKind::Resolved, "disk[/data]".into())]);
    let second = history.run(minutes(40), &resolved, &one(), delivered());
    assert!(second.send.is_empty());
    assert_eq!(
        second.suppressed[0].reason,
        "its resolution was already notified"
    );
}

#[test]
fn no_resolved_notice_for_a_finding_never_notified() {
    let mut history = History::default();
    let plan = history.run(
        t0(),
        &[event(EventKind::Resolved, "disk[/data]")],
        &one(),
        delivered(),
    );
    assert!(plan.send.is_empty());
    assert_eq!(plan.suppressed[0].reason, "its finding was never notified");
}

#[test]
fn a_finding_that_resolves_before_delivery_is_superseded_and_never_sent() {
    let mut history = History::default();
    history.run(
        t0(),
        &[event(EventKind::Finding, "disk[/data]")],
        &one(),
        retry(),
    );
    let plan = history.run(
        minutes(20),
        &[event(EventKind::Resolved, "disk[/data]")],
        &one(),
        delivered(),
    );
    assert!(
        plan.send.is_empty(),
        "neither the stale finding nor its end"
    );
    assert_eq!(plan.close.len(), 1);
    assert_eq!(history.records[0].status, Status::Superseded);
    assert_eq!(history.records.len(), 1);
}

#[test]
fn a_finding_that_fires_again_after_its_resolution_is_news_at_once() {
    let mut history = History::default();
    let fired = [event(EventKind::Finding, "disk[/data]")];
    history.run(t0(), &fired, &one(), delivered());
    history.run(
        minutes(20),
        &[event(EventKind::Resolved, "disk[/data]")],
        &one(),
        delivered(),
    );
    let again = history.run(minutes(40), &fired, &one(), delivered());
    assert_eq!(sent(&again), [(EventKind::Finding, "disk[/data]".into())]);
    let resolved_again = history.run(
        minutes(60),
        &[event(EventKind::Resolved, "disk[/data]")],
        &one(),
        delivered(),
    );
    assert_eq!(
        resolved_again.send.len(),
        1,
        "the second firing resolves too"
    );
}

#[test]
fn a_refused_message_is_not_retried_and_counts_for_repeat() {
    let mut history = History::default();
    let escalation = [event(EventKind::Escalate, "report")];
    let refused = Outcome::Refused {
        reason: "HTTP 404".into(),
    };
    history.run(t0(), &escalation, &one(), refused);
    assert_eq!(history.records[0].status, Status::Failed);
    let plan = history.run(minutes(20), &escalation, &one(), delivered());
    assert!(plan.send.is_empty());
    assert!(
        plan.suppressed[0]
            .reason
            .starts_with("already refused 20m ago")
    );
    let later = history.run(minutes(241), &escalation, &one(), delivered());
    assert_eq!(later.send.len(), 1);
}

#[test]
fn a_message_pending_for_a_day_expires() {
    let mut history = History::default();
    history.run(
        t0(),
        &[event(EventKind::Escalate, "report")],
        &one(),
        retry(),
    );
    let plan = history.run(minutes(24 * 60 + 1), &[], &one(), delivered());
    assert!(plan.send.is_empty());
    assert_eq!(plan.close[0].status, Status::Expired);
    let fresh = history.run(
        minutes(24 * 60 + 2),
        &[event(EventKind::Escalate, "report")],
        &one(),
        delivered(),
    );
    assert_eq!(fresh.send.len(), 1, "current news is planned afresh");
}

#[test]
fn each_target_has_its_own_records_and_filter() {
    let mut history = History::default();
    let quiet = Policy {
        on: [EventKind::Escalate].into_iter().collect(),
        repeat: Duration::from_secs(60 * 60),
        ..Policy::default()
    };
    let targets = vec![target("a", Policy::default()), target("b", quiet)];
    let events = [
        event(EventKind::Escalate, "report"),
        event(EventKind::Finding, "disk[/data]"),
    ];
    let first = history.run(t0(), &events, &targets, delivered());
    assert_eq!(first.send.len(), 3, "a: both; b: the escalation");
    assert_eq!(
        first
            .send
            .iter()
            .filter(|r| r.target == targets[1].id())
            .map(|r| r.event.kind)
            .collect::<Vec<_>>(),
        [EventKind::Escalate]
    );
    let later = history.run(minutes(61), &events, &targets, delivered());
    assert_eq!(later.send.len(), 1, "b's repeat is 1h, a's 4h");
    assert_eq!(later.send[0].target, targets[1].id());
}

#[test]
fn records_of_targets_no_longer_configured_are_left_alone() {
    let mut history = History::default();
    history.run(
        t0(),
        &[event(EventKind::Escalate, "report")],
        &[target("gone", Policy::default())],
        retry(),
    );
    let plan = history.run(minutes(20), &[], &one(), delivered());
    assert!(plan.send.is_empty() && plan.close.is_empty());
    assert_eq!(history.records[0].status, Status::Pending);
}

#[test]
fn identical_events_in_one_call_give_one_message() {
    let escalation = event(EventKind::Escalate, "report");
    let plan = plan(t0(), &[escalation.clone(), escalation], &one(), &[]);
    assert_eq!(plan.send.len(), 1);
    assert_eq!(plan.suppressed.len(), 1);
    assert_eq!(plan.suppressed[0].event, 1);
}

#[test]
fn the_priority_threshold_keeps_minor_findings_out() {
    let policy = Policy {
        min_priority: Some(Priority::P0),
        ..Policy::default()
    };
    let plan = plan(
        t0(),
        &[event(EventKind::Finding, "disk[/data]")],
        &[target("a", policy)],
        &[],
    );
    assert!(plan.send.is_empty() && plan.suppressed.is_empty());
}

#[test]
fn message_ids_name_the_message() {
    let escalation = event(EventKind::Escalate, "report");
    let id = |e: &Event, t: &str, at| DeliveryRecord::new(e, TargetId(t.into()), at).id;
    let base = id(&escalation, "a", t0());
    assert!(base.starts_with("retort-") && base.len() == 39, "{base}");
    assert_eq!(base, id(&escalation, "a", t0()), "deterministic");
    assert_ne!(base, id(&escalation, "b", t0()));
    assert_ne!(base, id(&escalation, "a", minutes(20)));
    assert_ne!(base, id(&event(EventKind::Failed, "report"), "a", t0()));
    assert_ne!(base, id(&event(EventKind::Escalate, "other"), "a", t0()));
}

#[test]
fn records_survive_a_json_round_trip() {
    let mut history = History::default();
    history.run(
        t0(),
        &[event(EventKind::Finding, "disk[/data]")],
        &one(),
        retry(),
    );
    let record = history.records[0].clone();
    let text = serde_json::to_string(&record).unwrap();
    assert!(text.contains("\"status\":\"pending\""), "{text}");
    let back: DeliveryRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back, record);
}
