//! Delivery to a webhook: one `POST` per message.
//!
//! The body is the target's `body` template rendered with Tera 2, or else
//! [`default_body`]'s JSON object; `Content-Type: application/json` unless a
//! configured header sets it. The configured headers are sent as they are
//! (their values never shown). A 2xx answer is delivered; 408, 429 and 5xx
//! are retried by the next run; any other status (a redirect included: none
//! is followed) is refused for good.
//!
//! A body template sees `event` (the [`Event`]'s fields; `at` in RFC 3339,
//! `priority` `"P0"`…`"P4"` or null) and `message` (the plain text a human
//! reads, as Matrix gets it), and has a `json` filter that writes a value
//! as JSON: `{"text": {{ message | json }}}`.

use std::time::Instant;

use tera::{Context, Kwargs, State, Tera, TeraResult, Value};
use ureq::http;

use crate::dedup::{DeliveryRecord, Outcome};
use crate::event::Event;
use crate::http::{Http, phrase, retryable};
use crate::message;
use crate::secret::url_origin;
use crate::target::Webhook;

/// Sends `record`'s event to `webhook`, bounded by `deadline`.
pub(crate) fn deliver(
    http: &Http,
    webhook: &Webhook,
    record: &DeliveryRecord,
    deadline: Instant,
) -> Outcome {
    let body = match &webhook.body_template {
        Some(template) => match render_body(template, &record.event) {
            Ok(body) => body,
            Err(reason) => {
                return Outcome::Refused {
                    reason: format!("webhook body template: {reason}"),
                };
            }
        },
        None => default_body(&record.event).to_string(),
    };
    let mut request = http::Request::post(&webhook.url);
    let typed = webhook
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !typed {
        request = request.header("Content-Type", "application/json");
    }
    for (name, value) in &webhook.headers {
        request = request.header(name.as_str(), value.expose());
    }
    let answer = match http.exchange("webhook", &webhook.url, request.body(body), deadline) {
        Ok(answer) => answer,
        Err(outcome) => return outcome,
    };
    if (200..300).contains(&answer.status) {
        return Outcome::Delivered { receipt: None };
    }
    let status = answer.status;
    let hint = match status {
        300..=399 => "; redirects are not followed: put the new URL in `url`",
        401 | 403 => "; check the headers given in headers_env",
        404 | 410 => "; check `url`",
        _ => "",
    };
    let reason = format!(
        "webhook {}: HTTP {status} {}{hint}",
        url_origin(&webhook.url),
        phrase(status)
    );
    if retryable(status) {
        Outcome::Retry { reason }
    } else {
        Outcome::Refused { reason }
    }
}

/// The body sent when a webhook has no `body` template: a JSON object with
/// the event's fields and `text`, the plain message (which chat services
/// such as Slack and Mattermost show as is):
///
/// ```json
/// {"formula": "run-supervisor", "kind": "escalate", "fingerprint": "report",
///  "priority": null, "title": "…", "body": "…", "run_id": "…",
///  "at": "2025-03-01T12:00:00Z", "text": "Escalation in run-supervisor: …"}
/// ```
pub fn default_body(event: &Event) -> serde_json::Value {
    let mut object = serde_json::to_value(event).unwrap_or_default();
    if let Some(map) = object.as_object_mut() {
        map.insert(
            "text".to_owned(),
            serde_json::Value::String(message::plain(event)),
        );
    }
    object
}

/// `template` rendered for `event` (see the module documentation for what
/// it sees).
///
/// # Errors
/// Tera's description of what does not parse or render, such as an unknown
/// variable.
pub fn render_body(template: &str, event: &Event) -> Result<String, String> {
    let mut tera = Tera::default();
    tera.register_filter("json", json);
    let mut context = Context::new();
    context.insert("event", event);
    context.insert("message", &message::plain(event));
    tera.render_str(template, &context, false)
        .map_err(|err| describe(&err))
}

/// The `json` filter: its input written as JSON; an undefined input (a
/// misspelt field) is an error, not `null`.
fn json(value: Value, _: Kwargs, _: &State) -> TeraResult<String> {
    if value.is_undefined() {
        return Err(tera::Error::message(
            "the `json` filter was given an undefined value: check the variable's spelling",
        ));
    }
    serde_json::to_string(&value).map_err(tera::Error::message)
}

/// A Tera error as one message, with its causes.
fn describe(err: &tera::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Priority};
    use chrono::{TimeZone, Utc};

    fn event() -> Event {
        Event {
            formula: "run-supervisor".into(),
            kind: EventKind::Finding,
            fingerprint: "disk[/data]".into(),
            priority: Some(Priority::P1),
            title: "Disk \"data\" full".into(),
            body: String::new(),
            run_id: "r1".into(),
            at: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_default_body_has_every_field_and_the_text() {
        let body = default_body(&event());
        assert_eq!(body["formula"], "run-supervisor");
        assert_eq!(body["kind"], "finding");
        assert_eq!(body["priority"], "P1");
        assert_eq!(body["at"], "2025-03-01T12:00:00Z");
        assert_eq!(
            body["text"],
            "P1 finding in run-supervisor: Disk \"data\" full\n\nrun r1 · disk[/data] · 2025-03-01T12:00:00Z"
        );
    }

    #[test]
    fn templates_see_the_event_and_write_json_with_the_filter() {
        let body = render_body(
            r#"{"content": {{ event.title | json }}, "p": "{{ event.priority }}", "k": "{{ event.kind }}"}"#,
            &event(),
        )
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["content"], "Disk \"data\" full");
        assert_eq!(parsed["p"], "P1");
        assert_eq!(parsed["k"], "finding");
    }

    #[test]
    fn a_missing_priority_renders_as_nothing_and_as_json_null() {
        let mut escalation = event();
        escalation.priority = None;
        let body = render_body(
            "[{{ event.priority }}] {{ event.priority | json }}",
            &escalation,
        )
        .unwrap();
        assert_eq!(body, "[] null");
    }

    #[test]
    fn an_unknown_variable_is_an_error_that_names_it() {
        let err = render_body("{{ event.titel }}", &event()).unwrap_err();
        assert!(err.contains("titel"), "{err}");
    }
}
