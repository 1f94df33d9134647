//! Where notifications go: a [`Target`] is a [`Destination`] (a Matrix room
//! or a webhook) and the [`Policy`] that chooses what it is sent.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind, Priority};
use crate::secret::{Secret, redact_url, url_origin};

/// How long a target stays quiet about the same news when no `repeat` is
/// given: 4 hours (Alertmanager's default `repeat_interval`).
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 60 * 60);

/// One configured target, ready to send to: secrets already read.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where messages go.
    pub destination: Destination,
    /// What it is sent, and how often.
    pub policy: Policy,
}

impl Target {
    /// The name under which deliveries to this target are recorded (see
    /// [`TargetId`]).
    pub fn id(&self) -> TargetId {
        match &self.destination {
            Destination::Matrix(matrix) => TargetId(format!(
                "matrix {} {}",
                url_origin(&matrix.homeserver),
                matrix.room
            )),
            Destination::Webhook(webhook) => TargetId(format!(
                "webhook {} #{:016x}",
                url_origin(&webhook.url),
                fnv1a64(FNV_OFFSET, webhook.url.as_bytes())
            )),
        }
    }
}

/// Where a target's messages go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A Matrix room.
    Matrix(MatrixRoom),
    /// An HTTP endpoint that takes a POST.
    Webhook(Webhook),
}

/// A Matrix room on a homeserver, and the access token of the user that
/// posts to it (who must have joined the room). Its `Debug` shows the
/// homeserver with any user information redacted, and no token.
#[derive(Clone)]
pub struct MatrixRoom {
    /// The homeserver's client-server API base URL: `https://matrix.example.org`
    /// (trailing `/` ignored).
    pub homeserver: String,
    /// A room id (`!abc:example.org`) or a room alias (`#ops:example.org`),
    /// which is resolved through the room directory before sending.
    pub room: String,
    /// The posting user's access token, sent as `Authorization: Bearer …`.
    pub token: Secret,
}

impl fmt::Debug for MatrixRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixRoom")
            .field("homeserver", &redact_url(&self.homeserver))
            .field("room", &self.room)
            .field("token", &self.token)
            .finish()
    }
}

/// A webhook: an HTTP(S) URL that receives a POST per message.
#[derive(Clone)]
pub struct Webhook {
    /// The URL, posted to as given. Its path and query often hold a secret:
    /// only its origin is ever shown (see [`crate::url_origin`]).
    pub url: String,
    /// A Tera 2 template for the request body, rendered with `event` (the
    /// [`Event`]'s fields, `at` as RFC 3339) and `message` (the plain text);
    /// `None` sends the default JSON object (see
    /// [`crate::webhook::default_body`] and [`crate::webhook`]).
    pub body_template: Option<String>,
    /// Extra request headers, name and value; the values (read from the
    /// environment by the caller) are secrets.
    pub headers: Vec<(String, Secret)>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &format_args!("{}/…", url_origin(&self.url)))
            .field("body_template", &self.body_template)
            .field("headers", &self.headers)
            .finish()
    }
}

/// What a target is sent, and how often the same news is repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The kinds of event it is sent.
    pub on: BTreeSet<EventKind>,
    /// For `finding` events: the least urgent priority still sent (`P1`
    /// sends P0 and P1). A finding without a priority is not sent when this
    /// is set. `None`: every finding.
    pub min_priority: Option<Priority>,
    /// How long the same news (formula, kind, fingerprint) stays quiet
    /// after it was delivered to this target. Default [`DEFAULT_REPEAT`].
    pub repeat: Duration,
}

impl Default for Policy {
    /// Every kind, every priority, every 4 hours.
    fn default() -> Policy {
        Policy {
            on: EventKind::ALL.into_iter().collect(),
            min_priority: None,
            repeat: DEFAULT_REPEAT,
        }
    }
}

impl Policy {
    /// Whether `event` is of a kind this target wants and, for a finding,
    /// urgent enough.
    pub fn wants(&self, event: &Event) -> bool {
        if !self.on.contains(&event.kind) {
            return false;
        }
        match (event.kind, self.min_priority) {
            (EventKind::Finding, Some(least)) => event.priority.is_some_and(|p| p <= least),
            _ => true,
        }
    }
}

/// A target's name in delivery records: `matrix ORIGIN ROOM` for a Matrix
/// room (`matrix https://matrix.example.org #ops:example.org`), `webhook
/// ORIGIN #HASH` for a webhook, where HASH is 16 hex digits of a 64-bit
/// FNV-1a hash of the whole URL, so two webhooks on one host differ and no
/// secret in a URL's path or query is stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetId(pub String);

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 64-bit FNV-1a offset basis (the FNV specification, draft-eastlake-fnv).
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a of `bytes`, starting from `basis`: a stable, dependency-free
/// hash for names (not a cryptographic one).
pub(crate) fn fnv1a64(basis: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(basis, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn event(kind: EventKind, priority: Option<Priority>) -> Event {
        Event {
            formula: "f".into(),
            kind,
            fingerprint: "x".into(),
            priority,
            title: "t".into(),
            body: String::new(),
            run_id: "r".into(),
            at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_priority_threshold_applies_to_findings_only() {
        let policy = Policy {
            min_priority: Some(Priority::P1),
            ..Policy::default()
        };
        assert!(policy.wants(&event(EventKind::Finding, Some(Priority::P0))));
        assert!(policy.wants(&event(EventKind::Finding, Some(Priority::P1))));
        assert!(!policy.wants(&event(EventKind::Finding, Some(Priority::P2))));
        assert!(!policy.wants(&event(EventKind::Finding, None)));
        assert!(policy.wants(&event(EventKind::Escalate, None)));
        assert!(policy.wants(&event(EventKind::Resolved, Some(Priority::P4))));
    }

    #[test]
    fn kinds_not_listed_in_on_are_not_wanted() {
        let policy = Policy {
            on: [EventKind::Escalate].into_iter().collect(),
            ..Policy::default()
        };
        assert!(policy.wants(&event(EventKind::Escalate, None)));
        assert!(!policy.wants(&event(EventKind::Failed, None)));
    }

    #[test]
    fn webhook_ids_and_debug_output_keep_the_url_path_secret() {
        let target = Target {
            destination: Destination::Webhook(Webhook {
                url: "https://hooks.example.org/services/T0/B0/s3cr3t".into(),
                body_template: None,
                headers: vec![("X-Key".into(), Secret::new("k3y"))],
            }),
            policy: Policy::default(),
        };
        let id = target.id().0;
        assert!(
            id.starts_with("webhook https://hooks.example.org #"),
            "{id}"
        );
        assert_eq!(id.len(), "webhook https://hooks.example.org #".len() + 16);
        let debug = format!("{target:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("k3y"),
            "{debug}"
        );
        assert!(debug.contains("https://hooks.example.org/…"), "{debug}");
    }

    #[test]
    fn matrix_debug_output_redacts_the_token_and_user_information() {
        let room = MatrixRoom {
            homeserver: "https://bot:pw@matrix.example.org".into(),
            room: "#ops:example.org".into(),
            token: Secret::new("syt_s3cr3t"),
        };
        assert_eq!(
            format!("{room:?}"),
            "MatrixRoom { homeserver: \"https://[redacted]@matrix.example.org\", \
             room: \"#ops:example.org\", token: [redacted] }"
        );
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // Test vectors from the FNV reference code (draft-eastlake-fnv).
        assert_eq!(fnv1a64(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }
}
