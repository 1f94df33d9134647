//! Alertmanager-style deduplication, as a pure function: [`plan`] takes
//! this run's events, the targets and the delivery records kept so far, and
//! says which messages to send now; [`DeliveryRecord::after`] turns an
//! attempt's outcome into the record to keep.
//!
//! The rules, for each target and each event the target wants
//! ([`Policy::wants`]), keyed by (formula, event kind, fingerprint, target):
//!
//! - **One message per key until `repeat` passes.** An event whose key was
//!   delivered (or failed for good) less than `repeat` ago is suppressed; so
//!   is one whose key has a message still pending (that message is retried).
//! - **A new firing is news.** A finding whose last notice was followed by a
//!   resolved notice (delivered or pending) is sent again at once, `repeat`
//!   or not.
//! - **A resolved notice once, and only after a notice.** A `resolved`
//!   event is sent when the fingerprint's last `finding` message to that
//!   target was delivered and no resolved notice followed it. When that
//!   finding message is still pending, it is superseded (closed unsent) and
//!   nothing is sent: the human never heard of it.
//! - **Undelivered messages stay pending** and are retried by every later
//!   plan, with the same message id (so a Matrix homeserver drops a second
//!   copy of a message that did arrive), until delivered, failed for good,
//!   superseded, or older than [`PENDING_EXPIRY`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};
use crate::target::{FNV_OFFSET, Policy, Target, TargetId, fnv1a64};

/// How long an undelivered message is retried: 24 hours. Past that it is
/// closed as [`Status::Expired`]; news still current is planned afresh by
/// the run that reports it.
pub const PENDING_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not delivered yet: retried by the next plan.
    Pending,
    /// The target accepted it (HTTP 2xx).
    Delivered,
    /// The target refused it for good (a 4xx other than 429, a body template
    /// that does not render): not retried; counts as sent for `repeat`.
    Failed,
    /// Closed unsent: its finding resolved before it was delivered.
    Superseded,
    /// Closed unsent: pending longer than [`PENDING_EXPIRY`].
    Expired,
}

impl Status {
    /// `pending`, `delivered`, `failed`, `superseded` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Superseded => "superseded",
            Status::Expired => "expired",
        }
    }
}

/// One message to one target, and what became of it: what the caller keeps
/// between runs (the run history will store them). Serialisable as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The message id: `retort-` and 32 hex digits, derived from (formula,
    /// kind, fingerprint, target, `planned_at` in whole seconds), so it is
    /// the same for every retry of one message and differs between two
    /// messages. Sent to Matrix as the transaction id.
    pub id: String,
    /// The target it goes to.
    pub target: TargetId,
    /// The event as it was when the message was planned (the formula, kind
    /// and fingerprint of the key are its fields).
    pub event: Event,
    /// When the message was planned (the run's time).
    pub planned_at: DateTime<Utc>,
    /// Where it stands.
    pub status: Status,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the target accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt did not deliver it (no secret in it).
    pub last_error: Option<String>,
    /// What the target answered with: the Matrix event id (`$…`); `None` for
    /// webhooks.
    pub receipt: Option<String>,
}

impl DeliveryRecord {
    /// A new pending message for `event` to `target`, planned at `now`.
    pub fn new(event: &Event, target: TargetId, now: DateTime<Utc>) -> DeliveryRecord {
        DeliveryRecord {
            id: message_id(event, &target, now),
            target,
            event: event.clone(),
            planned_at: now,
            status: Status::Pending,
            attempts: 0,
            last_attempt_at: None,
            delivered_at: None,
            last_error: None,
            receipt: None,
        }
    }

    /// Whether `self` is about the same (formula, kind, fingerprint, target)
    /// as `event` to `target` with kind `kind`.
    fn is_key(&self, event: &Event, kind: EventKind, target: &TargetId) -> bool {
        self.event.kind == kind
            && &self.target == target
            && self.event.fingerprint == event.fingerprint
            && self.event.formula == event.formula
    }

    /// The record after an attempt at `now` with `outcome`.
    pub fn after(&self, outcome: &Outcome, now: DateTime<Utc>) -> DeliveryRecord {
        let mut next = self.clone();
        next.attempts = self.attempts.saturating_add(1);
        next.last_attempt_at = Some(now);
        match outcome {
            Outcome::Delivered { receipt } => {
                next.status = Status::Delivered;
                next.delivered_at = Some(now);
                next.last_error = None;
                next.receipt = receipt.clone();
            }
            Outcome::Retry { reason } => {
                next.status = Status::Pending;
                next.last_error = Some(reason.clone());
            }
            Outcome::Refused { reason } => {
                next.status = Status::Failed;
                next.last_error = Some(reason.clone());
            }
        }
        next
    }

    /// When it last counted as sent: delivered, else (failed for good) last
    /// tried, else planned.
    fn sent_at(&self) -> DateTime<Utc> {
        self.delivered_at
            .or(self.last_attempt_at)
            .unwrap_or(self.planned_at)
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `receipt` is what the target answered with (Matrix event id).
    Delivered {
        /// The target's id for the message, when it gives one.
        receipt: Option<String>,
    },
    /// Not delivered, worth retrying (timeout, refused connection, 429, 5xx,
    /// deadline reached first).
    Retry {
        /// Why, fit to show.
        reason: String,
    },
    /// Refused for good (another 4xx, a template that does not render).
    Refused {
        /// Why, fit to show.
        reason: String,
    },
}

/// What a plan decided about one event for one target, when it sent nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// The index of the event in the `events` given to [`plan`].
    pub event: usize,
    /// The target.
    pub target: TargetId,
    /// Why nothing is sent: `already notified 12m ago; repeats after 4h`.
    pub reason: String,
}

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Messages to attempt now, in order: retries of pending messages first
    /// (oldest first; of one time, in the order of `targets`), then new ones
    /// in the order of the events and targets.
    pub send: Vec<DeliveryRecord>,
    /// Pending records closed unsent, with their new status
    /// ([`Status::Superseded`] or [`Status::Expired`]): save them.
    pub close: Vec<DeliveryRecord>,
    /// Events (per target) that get no message, and why.
    pub suppressed: Vec<Suppressed>,
}

/// Decides which messages to send at `now` for `events`, given the delivery
/// `records` kept so far (any order; records of targets not in `targets`
/// are left alone). Pure: no clock, no I/O.
///
/// Two events with the same (formula, kind, fingerprint) in one call give
/// one message per target: the first.
pub fn plan(
    now: DateTime<Utc>,
    events: &[Event],
    targets: &[Target],
    records: &[DeliveryRecord],
) -> Plan {
    let ids: Vec<(TargetId, &Policy)> = targets.iter().map(|t| (t.id(), &t.policy)).collect();
    let mut out = Plan::default();

    // The records as this plan changes them: what later events see.
    let mut known: Vec<DeliveryRecord> = records
        .iter()
        .filter(|r| ids.iter().any(|(id, _)| *id == r.target))
        .cloned()
        .collect();
    // Oldest first; of one time, in the order of the targets.
    known.sort_by_key(|r| {
        let place = ids.iter().position(|(id, _)| *id == r.target);
        (r.planned_at, place)
    });

    for record in known.iter_mut().filter(|r| r.status == Status::Pending) {
        let age = (now - record.planned_at).to_std().unwrap_or_default();
        if age > PENDING_EXPIRY {
            record.status = Status::Expired;
            record.last_error = Some(format!(
                "undelivered for {}; given up",
                humantime::format_duration(PENDING_EXPIRY)
            ));
            out.close.push(record.clone());
        }
    }

    for (index, event) in events.iter().enumerate() {
        for (target, policy) in &ids {
            if !policy.wants(event) {
                continue;
            }
            let decision = if event.kind == EventKind::Resolved {
                resolved(event, target, &known)
            } else {
                news(now, event, target, policy, &known)
            };
            match decision {
                Decision::Send => known.push(DeliveryRecord::new(event, target.clone(), now)),
                Decision::Supersede(id) => {
                    if let Some(record) = known.iter_mut().find(|r| r.id == id) {
                        record.status = Status::Superseded;
                        record.last_error =
                            Some("its finding resolved before it was delivered".to_owned());
                        out.close.push(record.clone());
                    }
                    out.suppressed.push(Suppressed {
                        event: index,
                        target: target.clone(),
                        reason: "its finding was never delivered; nothing to resolve".to_owned(),
                    });
                }
                Decision::Quiet(reason) => out.suppressed.push(Suppressed {
                    event: index,
                    target: target.clone(),
                    reason,
                }),
            }
        }
    }

    out.send = known
        .into_iter()
        .filter(|r| r.status == Status::Pending)
        .collect();
    out
}

enum Decision {
    Send,
    Supersede(String),
    Quiet(String),
}

/// The latest record of `kind` about `event`'s fingerprint to `target`.
fn latest<'a>(
    known: &'a [DeliveryRecord],
    event: &Event,
    kind: EventKind,
    target: &TargetId,
) -> Option<&'a DeliveryRecord> {
    known
        .iter()
        .filter(|r| r.is_key(event, kind, target))
        .max_by_key(|r| r.planned_at)
}

/// An escalation, failure, finding or proposal.
fn news(
    now: DateTime<Utc>,
    event: &Event,
    target: &TargetId,
    policy: &Policy,
    known: &[DeliveryRecord],
) -> Decision {
    let Some(last) = latest(known, event, event.kind, target) else {
        return Decision::Send;
    };
    match last.status {
        Status::Pending => {
            return Decision::Quiet("a message about it is pending; it is retried".to_owned());
        }
        Status::Superseded | Status::Expired => return Decision::Send,
        Status::Delivered | Status::Failed => {}
    }
    if event.kind == EventKind::Finding
        && latest(known, event, EventKind::Resolved, target).is_some_and(|r| {
            r.planned_at >= last.planned_at
                && !matches!(r.status, Status::Superseded | Status::Expired)
        })
    {
        return Decision::Send;
    }
    let since = (now - last.sent_at()).to_std().unwrap_or_default();
    if since < policy.repeat {
        let verb = if last.status == Status::Failed {
            "refused"
        } else {
            "notified"
        };
        return Decision::Quiet(format!(
            "already {verb} {} ago; repeats after {}",
            humantime::format_duration(Duration::from_secs(since.as_secs())),
            humantime::format_duration(policy.repeat)
        ));
    }
    Decision::Send
}

/// A resolution: once, after a delivered finding notice.
fn resolved(event: &Event, target: &TargetId, known: &[DeliveryRecord]) -> Decision {
    let Some(fired) = latest(known, event, EventKind::Finding, target) else {
        return Decision::Quiet("its finding was never notified".to_owned());
    };
    match fired.status {
        Status::Delivered => {}
        Status::Pending => return Decision::Supersede(fired.id.clone()),
        Status::Failed | Status::Superseded | Status::Expired => {
            return Decision::Quiet("its finding was never delivered".to_owned());
        }
    }
    let already = latest(known, event, EventKind::Resolved, target).is_some_and(|r| {
        r.planned_at >= fired.planned_at
            && !matches!(r.status, Status::Superseded | Status::Expired)
    });
    if already {
        Decision::Quiet("its resolution was already notified".to_owned())
    } else {
        Decision::Send
    }
}

/// The message id of `event` to `target` planned at `now`: `retort-` and 32
/// hex digits, two 64-bit FNV-1a hashes (different bases) of the fields.
fn message_id(event: &Event, target: &TargetId, now: DateTime<Utc>) -> String {
    let text = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        event.formula,
        event.kind,
        event.fingerprint,
        target,
        now.timestamp()
    );
    let first = fnv1a64(FNV_OFFSET, text.as_bytes());
    let second = fnv1a64(first ^ 0x9e37_79b9_7f4a_7c15, text.as_bytes());
    format!("retort-{first:016x}{second:016x}")
}

#[cfg(test)]
#[path = "dedup_tests.rs"]
mod tests;
