//! The [`Notifier`]: plans with [`crate::dedup::plan`], delivers what the
//! plan says under the caller's deadline, and keeps every record in the
//! caller's [`DeliveryLog`].
//!
//! Order of writes, so that a run killed mid-delivery loses nothing: closed
//! records first, then each message is saved as pending *before* it is
//! attempted and saved again with the attempt's outcome. A message whose
//! outcome was never saved is retried by the next run with the same id.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::dedup::{self, DeliveryRecord, Outcome, Status, Suppressed};
use crate::event::Event;
use crate::http::Http;
use crate::log::DeliveryLog;
use crate::matrix::{self, AliasCache};
use crate::target::{Destination, Target};
use crate::webhook;

/// Sends events to a formula's targets. Blocking (one HTTP request at a
/// time, each bounded by [`crate::REQUEST_TIMEOUT`] and the deadline); an
/// async caller runs it on a blocking thread (`tokio::task::spawn_blocking`).
#[derive(Debug)]
pub struct Notifier {
    targets: Vec<Target>,
    http: Http,
    aliases: AliasCache,
}

/// What one [`Notifier::notify`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Each attempt, in order: the record as saved after it, and how long it
    /// took.
    pub attempts: Vec<Attempt>,
    /// Pending records closed unsent (superseded or expired).
    pub closed: Vec<DeliveryRecord>,
    /// Events (per target) that got no message, and why.
    pub suppressed: Vec<Suppressed>,
}

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The record after the attempt: `status` says what became of it,
    /// `last_error` why it is not delivered.
    pub record: DeliveryRecord,
    /// Wall time the attempt took.
    pub took: Duration,
}

impl Report {
    /// The records delivered by this call.
    pub fn delivered(&self) -> impl Iterator<Item = &DeliveryRecord> {
        self.with_status(Status::Delivered)
    }

    /// The records still pending after this call (retried by the next).
    pub fn pending(&self) -> impl Iterator<Item = &DeliveryRecord> {
        self.with_status(Status::Pending)
    }

    /// The records refused for good by this call.
    pub fn failed(&self) -> impl Iterator<Item = &DeliveryRecord> {
        self.with_status(Status::Failed)
    }

    fn with_status(&self, status: Status) -> impl Iterator<Item = &DeliveryRecord> {
        self.attempts
            .iter()
            .map(|a| &a.record)
            .filter(move |r| r.status == status)
    }
}

impl Notifier {
    /// A notifier for `targets` (a formula's `[[notify]]` tables, resolved).
    pub fn new(targets: Vec<Target>) -> Notifier {
        Notifier {
            targets,
            http: Http::new(),
            aliases: AliasCache::new(),
        }
    }

    /// The targets.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Plans `events` of `formula` at `now` against the records in `log`,
    /// retries its pending messages, and delivers what is due until
    /// `deadline`; messages not tried by then stay pending. Every change is
    /// saved in `log` as it happens.
    ///
    /// Call it the moment a step escalates (with that one event, so it
    /// reaches a human whatever follows) and once at the end of the run
    /// with all its events; the second call does not repeat the first's
    /// messages.
    ///
    /// # Errors
    /// The log's error when it cannot be read or written; deliveries made
    /// before it are saved.
    pub fn notify<L: DeliveryLog>(
        &mut self,
        log: &mut L,
        formula: &str,
        events: &[Event],
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Report, L::Error> {
        let formulas: BTreeSet<&str> = std::iter::once(formula)
            .chain(events.iter().map(|e| e.formula.as_str()))
            .collect();
        let mut records = Vec::new();
        for name in formulas {
            records.extend(log.records(name)?);
        }
        let plan = dedup::plan(now, events, &self.targets, &records);
        for record in &plan.close {
            log.save(record)?;
        }
        let mut report = Report {
            attempts: Vec::with_capacity(plan.send.len()),
            closed: plan.close,
            suppressed: plan.suppressed,
        };
        for record in plan.send {
            if record.attempts == 0 {
                log.save(&record)?;
            }
            let started = Instant::now();
            let outcome = self.deliver(&record, deadline);
            let record = record.after(&outcome, now);
            log.save(&record)?;
            report.attempts.push(Attempt {
                record,
                took: started.elapsed(),
            });
        }
        Ok(report)
    }

    /// One attempt at `record`'s message to its target, bounded by
    /// `deadline`. A record whose target is not among this notifier's is
    /// [`Outcome::Refused`].
    pub fn deliver(&mut self, record: &DeliveryRecord, deadline: Instant) -> Outcome {
        let Some(target) = self.targets.iter().find(|t| t.id() == record.target) else {
            return Outcome::Refused {
                reason: format!("no target {} is configured", record.target),
            };
        };
        match &target.destination {
            Destination::Matrix(room) => {
                matrix::deliver(&self.http, &mut self.aliases, room, record, deadline)
            }
            Destination::Webhook(hook) => webhook::deliver(&self.http, hook, record, deadline),
        }
    }
}
