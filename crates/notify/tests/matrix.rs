//! Matrix delivery against a real Synapse homeserver (see `synapse/mod.rs`):
//! user and room made through its API, messages read back through
//! `/messages`.

mod synapse;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use retort_notify::{
    DeliveryRecord, Destination, Event, EventKind, MatrixRoom, MemoryLog, Notifier, Outcome,
    Policy, Secret, Status, Target, message,
};
use synapse::{Synapse, unique};

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}

fn escalation(minutes: i64) -> Event {
    Event {
        formula: "run-supervisor".into(),
        kind: EventKind::Escalate,
        fingerprint: "report".into(),
        priority: None,
        title: "Cannot free disk space on /data".into(),
        body: "docker prune needs approval <see the journal>".into(),
        run_id: format!("run-{minutes}"),
        at: at(minutes),
    }
}

fn room_target(synapse: &Synapse, room: &str, token: &str) -> Target {
    Target {
        destination: Destination::Matrix(MatrixRoom {
            homeserver: synapse.base.clone(),
            room: room.to_owned(),
            token: Secret::new(token),
        }),
        policy: Policy::default(),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn two_identical_escalations_within_repeat_give_one_message_in_the_room() {
    let synapse = Synapse::shared();
    let user = synapse.user();
    let alias = unique("ops");
    let room_id = synapse.create_room(user, &alias);
    let target = room_target(synapse, &format!("#{alias}:localhost"), &user.token);
    let mut notifier = Notifier::new(vec![target]);
    let mut log = MemoryLog::new();

    let started = Instant::now();
    let first = notifier
        .notify(&mut log, "run-supervisor", &[escalation(0)], at(0), soon())
        .unwrap();
    eprintln!(
        "matrix: first delivery (alias lookup and send) took {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(first.delivered().count(), 1, "{first:#?}");
    let second = notifier
        .notify(
            &mut log,
            "run-supervisor",
            &[escalation(20)],
            at(20),
            soon(),
        )
        .unwrap();
    assert!(second.attempts.is_empty(), "{second:#?}");
    assert_eq!(
        second.suppressed[0].reason,
        "already notified 20m ago; repeats after 4h"
    );

    let messages = synapse.messages(user, &room_id);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let content = &messages[0]["content"];
    assert_eq!(content["msgtype"], "m.text");
    assert_eq!(content["body"], message::plain(&escalation(0)));
    assert_eq!(content["format"], "org.matrix.custom.html");
    assert_eq!(content["formatted_body"], message::html(&escalation(0)));
    assert!(
        content["formatted_body"]
            .as_str()
            .unwrap()
            .contains("&lt;see the journal&gt;")
    );
    assert_eq!(messages[0]["sender"], user.user_id.as_str());
    let delivered = first.delivered().next().unwrap();
    assert_eq!(
        delivered.receipt.as_deref(),
        messages[0]["event_id"].as_str(),
        "the record keeps the event id"
    );
}

#[test]
fn a_retried_delivery_of_a_message_that_arrived_is_posted_once() {
    let synapse = Synapse::shared();
    let user = synapse.user();
    let room_id = synapse.create_room(user, &unique("retry"));
    let target = room_target(synapse, &room_id, &user.token);
    let record = DeliveryRecord::new(&escalation(0), target.id(), at(0));
    let mut notifier = Notifier::new(vec![target]);

    let started = Instant::now();
    let first = notifier.deliver(&record, soon());
    eprintln!(
        "matrix: a send to a room id took {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    // The answer was lost, say: the next run tries the same record again.
    let again = notifier.deliver(&record, soon());
    let Outcome::Delivered {
        receipt: Some(event_id),
    } = &first
    else {
        panic!("not delivered: {first:?}");
    };
    assert_eq!(first, again, "the homeserver recognised the transaction");
    let messages = synapse.messages(user, &room_id);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["event_id"], event_id.as_str());
}

#[test]
fn a_user_who_has_not_joined_the_room_is_refused_with_a_hint() {
    let synapse = Synapse::shared();
    let owner = synapse.user();
    let stranger = synapse.stranger();
    let room_id = synapse.create_room(owner, &unique("closed"));
    let mut notifier = Notifier::new(vec![room_target(synapse, &room_id, &stranger.token)]);
    let mut log = MemoryLog::new();
    let report = notifier
        .notify(&mut log, "run-supervisor", &[escalation(0)], at(0), soon())
        .unwrap();
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:#?}");
    let error = failed[0].last_error.as_deref().unwrap();
    assert!(
        error.starts_with(&format!(
            "Matrix send to {room_id} at {}: HTTP 403 Forbidden (M_FORBIDDEN",
            synapse.base
        )),
        "{error}"
    );
    assert!(error.ends_with("invite it to the room and join it with that user"));
    assert!(!format!("{report:?}").contains(&stranger.token));
    assert!(synapse.messages(owner, &room_id).is_empty());
}

#[test]
fn a_token_the_homeserver_does_not_know_is_refused_and_not_shown() {
    let synapse = Synapse::shared();
    let owner = synapse.user();
    let alias = unique("tokens");
    synapse.create_room(owner, &alias);
    let forged = "syt_Zm9yZ2Vk_notAtokenAtAll_000000";
    let mut notifier = Notifier::new(vec![room_target(
        synapse,
        &format!("#{alias}:localhost"),
        forged,
    )]);
    let mut log = MemoryLog::new();
    let report = notifier
        .notify(&mut log, "run-supervisor", &[escalation(0)], at(0), soon())
        .unwrap();
    let record = report.attempts[0].record.clone();
    assert_eq!(record.status, Status::Failed, "{report:#?}");
    let error = record.last_error.unwrap();
    assert!(
        error.contains("HTTP 401 Unauthorized (M_UNKNOWN_TOKEN")
            && error.ends_with("check the variable named by token_env"),
        "{error}"
    );
    assert!(!format!("{report:?}{:?}", log.all().collect::<Vec<_>>()).contains(forged));
}
