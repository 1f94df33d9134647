//! How an event reads to a human: the text of a notification, plain and as
//! HTML, shared by every target.
//!
//! ```text
//! Escalation in run-supervisor: Disk /data at 93%
//!
//! The agent could not free space: docker prune needs approval.
//!
//! run 20250301-120000-ab12 · report · 2025-03-01T12:00:00Z
//! ```

use chrono::SecondsFormat;

use crate::event::{Event, EventKind};

/// The first line's opening words: `Escalation`, `Failure`, `P1 finding`,
/// `Resolved`, `Proposal`.
pub fn headline(event: &Event) -> String {
    let what = match event.kind {
        EventKind::Escalate => "Escalation".to_owned(),
        EventKind::Failed => "Failure".to_owned(),
        EventKind::Finding => match event.priority {
            Some(priority) => format!("{priority} finding"),
            None => "Finding".to_owned(),
        },
        EventKind::Resolved => "Resolved".to_owned(),
        EventKind::Proposal => "Proposal".to_owned(),
    };
    format!("{what} in {}", event.formula)
}

/// The footer: `run RUN_ID · FINGERPRINT · AT` (AT in RFC 3339, UTC, seconds).
fn footer(event: &Event) -> String {
    format!(
        "run {} · {} · {}",
        event.run_id,
        event.fingerprint,
        event.at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// The whole message as plain text: headline and title, the body (when
/// there is one), the footer; paragraphs apart by an empty line.
pub fn plain(event: &Event) -> String {
    let mut text = format!("{}: {}", headline(event), event.title);
    if !event.body.trim().is_empty() {
        text.push_str("\n\n");
        text.push_str(event.body.trim());
    }
    text.push_str("\n\n");
    text.push_str(&footer(event));
    text
}

/// The whole message as HTML (the subset Matrix clients render,
/// `org.matrix.custom.html`): every event field escaped, line breaks of the
/// body kept as `<br>`.
pub fn html(event: &Event) -> String {
    let mut text = format!(
        "<p><strong>{}</strong>: {}</p>",
        escape(&headline(event)),
        escape(&event.title)
    );
    if !event.body.trim().is_empty() {
        text.push_str("<p>");
        text.push_str(&escape(event.body.trim()).replace('\n', "<br>"));
        text.push_str("</p>");
    }
    text.push_str(&format!("<p><small>{}</small></p>", escape(&footer(event))));
    text
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Priority;
    use chrono::{TimeZone, Utc};

    fn event() -> Event {
        Event {
            formula: "run-supervisor".into(),
            kind: EventKind::Finding,
            fingerprint: "disk-pressure[/data]".into(),
            priority: Some(Priority::P1),
            title: "Disk /data at 93% <full>".into(),
            body: "line one\nline & two\n".into(),
            run_id: "r1".into(),
            at: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
        }
    }

    #[test]
    fn plain_text_has_headline_body_and_footer() {
        assert_eq!(
            plain(&event()),
            "P1 finding in run-supervisor: Disk /data at 93% <full>\n\nline one\nline & two\n\n\
             run r1 · disk-pressure[/data] · 2025-03-01T12:00:00Z"
        );
    }

    #[test]
    fn html_escapes_every_field() {
        assert_eq!(
            html(&event()),
            "<p><strong>P1 finding in run-supervisor</strong>: Disk /data at 93% &lt;full&gt;</p>\
             <p>line one<br>line &amp; two</p>\
             <p><small>run r1 · disk-pressure[/data] · 2025-03-01T12:00:00Z</small></p>"
        );
    }

    #[test]
    fn an_empty_body_leaves_no_empty_paragraph() {
        let mut quiet = event();
        quiet.body = " \n".into();
        quiet.kind = EventKind::Escalate;
        assert_eq!(
            plain(&quiet),
            "Escalation in run-supervisor: Disk /data at 93% <full>\n\n\
             run r1 · disk-pressure[/data] · 2025-03-01T12:00:00Z"
        );
        assert!(!html(&quiet).contains("<p></p>"));
    }
}
