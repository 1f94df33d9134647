//! Notifications: telling a human what a run found, without telling them
//! twice.
//!
//! This crate owns the `[[notify]]` tables of a formula ([`config`]), the
//! targets they describe (a Matrix room, a webhook: [`Target`]),
//! Alertmanager-style deduplication ([`dedup`]: one message per (formula,
//! event kind, fingerprint, target) until `repeat` passes, a resolved notice
//! once, undelivered messages retried), and delivery over HTTP ([`Notifier`],
//! on `ureq` with rustls, every request bounded by a timeout and the
//! caller's deadline).
//!
//! What crosses its border:
//! - in: [`NotifyConfig`] tables (parsed by the formula crate with `toml`),
//!   the environment through a lookup function (tokens, header values), the
//!   run's [`Event`]s, its time and a deadline, and the [`DeliveryRecord`]s
//!   kept so far through a [`DeliveryLog`] (the run history implements it);
//! - out: HTTP requests to the configured homeservers and webhooks only,
//!   updated [`DeliveryRecord`]s saved through the [`DeliveryLog`], and a
//!   [`Report`] of what was sent, suppressed and left pending.
//!
//! Secrets (access tokens, header values) are [`Secret`]s: never in an
//! error, a record, a `Debug` output or a URL; a webhook URL is shown as its
//! origin only. `docs/notifications.md` is the user's reference.

#![warn(missing_docs)]

pub mod config;
pub mod dedup;
mod event;
mod http;
pub mod log;
mod matrix;
pub mod message;
mod notifier;
mod secret;
mod target;
pub mod webhook;

pub use config::{ConfigProblem, NotifyConfig, TargetKind};
pub use dedup::{DeliveryRecord, Outcome, PENDING_EXPIRY, Plan, Status, Suppressed, plan};
pub use event::{Event, EventKind, Priority};
pub use http::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};
pub use log::{DeliveryLog, MemoryLog};
pub use notifier::{Attempt, Notifier, Report};
pub use secret::{Secret, redact_url, url_origin};
pub use target::{DEFAULT_REPEAT, Destination, MatrixRoom, Policy, Target, TargetId, Webhook};
