//! What happened: the [`Event`]s a run hands to the notifier, their
//! [`EventKind`]s and [`Priority`].

use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Something a human should hear about, as the runner reports it.
///
/// The `(formula, kind, fingerprint)` triple names the condition: two events
/// with the same triple are the same news, and are notified once per target
/// until the target's `repeat` passes (see [`crate::dedup`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// The formula's `name`: `run-supervisor`.
    pub formula: String,
    /// What kind of news it is.
    pub kind: EventKind,
    /// What the news is about, stable across runs: the finding's fingerprint
    /// (`disk-pressure[/data]`) for findings and resolutions, the step id for
    /// an escalation or a failure, the proposal's id for a proposal.
    pub fingerprint: String,
    /// `P0` … `P4` for a finding (and its resolution); `None` when the news
    /// has no priority (a finding of priority `info`, an escalation).
    pub priority: Option<Priority>,
    /// One line: `Disk /data at 93%`.
    pub title: String,
    /// More lines, plain text (an escalation's reason, a finding's message);
    /// may be empty.
    pub body: String,
    /// The run that saw it: the run directory's name under `STATE/runs/`.
    pub run_id: String,
    /// When the run saw it (UTC).
    pub at: DateTime<Utc>,
}

/// The kinds of news, as the `on` key of a `[[notify]]` table spells them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A step escalated (`retort signal escalate`): a human must decide.
    Escalate,
    /// A step failed, or the run could not start.
    Failed,
    /// A rule's finding fired.
    Finding,
    /// A finding that was notified has resolved.
    Resolved,
    /// An action was proposed and waits for `retort approve`.
    Proposal,
}

impl EventKind {
    /// Every kind, in the order of the documentation.
    pub const ALL: [EventKind; 5] = [
        EventKind::Escalate,
        EventKind::Failed,
        EventKind::Finding,
        EventKind::Resolved,
        EventKind::Proposal,
    ];

    /// `escalate`, `failed`, `finding`, `resolved` or `proposal`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Escalate => "escalate",
            EventKind::Failed => "failed",
            EventKind::Finding => "finding",
            EventKind::Resolved => "resolved",
            EventKind::Proposal => "proposal",
        }
    }

    /// Reads [`EventKind::as_str`]'s words back; `None` for anything else.
    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a finding is, `P0` (act now) to `P4` (housekeeping), the
/// scale of the supervisor formula's rules. A smaller number is more urgent:
/// `P0 < P1` in this type's order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Priority {
    /// Memory crisis and the like: act now.
    P0,
    /// Disk pressure and the like: act soon.
    P1,
    /// The factory has stopped.
    P2,
    /// The factory is degraded.
    P3,
    /// Housekeeping.
    P4,
}

impl Priority {
    /// `P0` … `P4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }

    /// Reads [`Priority::as_str`]'s words back; `None` for anything else
    /// (`info` included).
    pub fn parse(text: &str) -> Option<Priority> {
        [
            Priority::P0,
            Priority::P1,
            Priority::P2,
            Priority::P3,
            Priority::P4,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_priorities_read_back_their_words() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("escalated"), None);
        assert_eq!(Priority::parse("P3"), Some(Priority::P3));
        assert_eq!(Priority::parse("info"), None);
        assert!(Priority::P0 < Priority::P4, "P0 is the most urgent");
    }
}
