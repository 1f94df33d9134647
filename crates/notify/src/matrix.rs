//! Delivery to a Matrix room through the client-server API (spec v1.x,
//! `/_matrix/client/v3`):
//!
//! 1. a room alias (`#ops:example.org`) is resolved once per notifier with
//!    `GET /_matrix/client/v3/directory/room/{roomAlias}` → `{"room_id"}`;
//! 2. the message is sent with
//!    `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`,
//!    body `{"msgtype": "m.text", "body", "format": "org.matrix.custom.html",
//!    "formatted_body"}`, where `txnId` is the message's
//!    [`DeliveryRecord::id`]: a retry of a message that did arrive is
//!    recognised by the homeserver and not posted twice.
//!
//! The access token goes in the `Authorization: Bearer` header, never in
//! the query string. 429 (`M_LIMIT_EXCEEDED`) and 5xx are retried by the
//! next run; 401, 403 and other 4xx are refused for good, with the Matrix
//! `errcode` and `error` and a hint.

use std::collections::HashMap;
use std::time::Instant;

use serde::Deserialize;
use ureq::http;

use crate::dedup::{DeliveryRecord, Outcome};
use crate::http::{Http, encode, phrase, retryable};
use crate::message;
use crate::secret::url_origin;
use crate::target::MatrixRoom;

/// Resolved room aliases: (homeserver, alias) → room id.
pub(crate) type AliasCache = HashMap<(String, String), String>;

/// A Matrix error body: `{"errcode": "M_FORBIDDEN", "error": "…"}`.
#[derive(Deserialize)]
struct MatrixError {
    errcode: Option<String>,
    error: Option<String>,
}

/// Sends `record`'s event to `room`, bounded by `deadline`.
pub(crate) fn deliver(
    http: &Http,
    aliases: &mut AliasCache,
    room: &MatrixRoom,
    record: &DeliveryRecord,
    deadline: Instant,
) -> Outcome {
    let base = room.homeserver.trim_end_matches('/');
    let room_id = match room_id(http, aliases, room, deadline) {
        Ok(id) => id,
        Err(outcome) => return outcome,
    };
    let url = format!(
        "{base}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        encode(&room_id),
        encode(&record.id)
    );
    let content = serde_json::json!({
        "msgtype": "m.text",
        "body": message::plain(&record.event),
        "format": "org.matrix.custom.html",
        "formatted_body": message::html(&record.event),
    });
    let request = http::Request::put(&url)
        .header("Authorization", format!("Bearer {}", room.token.expose()))
        .header("Content-Type", "application/json")
        .body(content.to_string());
    let answer = match http.exchange("Matrix send to", &url, request, deadline) {
        Ok(answer) => answer,
        Err(outcome) => return outcome,
    };
    if (200..300).contains(&answer.status) {
        let receipt = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| {
                v.get("event_id")
                    .and_then(|id| id.as_str())
                    .map(str::to_owned)
            });
        return Outcome::Delivered { receipt };
    }
    failure(
        &format!("Matrix send to {}", room.room),
        room,
        answer.status,
        &answer.body,
    )
}

/// The room id of `room.room`: itself when it is one (`!…`), else the alias
/// resolved through the room directory (and remembered).
fn room_id(
    http: &Http,
    aliases: &mut AliasCache,
    room: &MatrixRoom,
    deadline: Instant,
) -> Result<String, Outcome> {
    if !room.room.starts_with('#') {
        return Ok(room.room.clone());
    }
    let key = (room.homeserver.clone(), room.room.clone());
    if let Some(id) = aliases.get(&key) {
        return Ok(id.clone());
    }
    let base = room.homeserver.trim_end_matches('/');
    let url = format!(
        "{base}/_matrix/client/v3/directory/room/{}",
        encode(&room.room)
    );
    let request = http::Request::get(&url)
        .header("Authorization", format!("Bearer {}", room.token.expose()))
        .body(());
    let answer = http.exchange("Matrix alias lookup at", &url, request, deadline)?;
    let what = format!("Matrix alias {}", room.room);
    if !(200..300).contains(&answer.status) {
        return Err(failure(&what, room, answer.status, &answer.body));
    }
    #[derive(Deserialize)]
    struct Directory {
        room_id: String,
    }
    match serde_json::from_str::<Directory>(&answer.body) {
        Ok(directory) => {
            aliases.insert(key, directory.room_id.clone());
            Ok(directory.room_id)
        }
        Err(_) => Err(Outcome::Retry {
            reason: format!("{what}: the homeserver's answer has no room_id"),
        }),
    }
}

/// A refused or failed request, with the Matrix error and a hint.
fn failure(what: &str, room: &MatrixRoom, status: u16, body: &str) -> Outcome {
    let error = serde_json::from_str::<MatrixError>(body).ok();
    let errcode = error.as_ref().and_then(|e| e.errcode.clone());
    let detail = match &error {
        Some(MatrixError {
            errcode: Some(code),
            error: Some(text),
        }) => format!(" ({code}: {})", shorten(text)),
        Some(MatrixError {
            errcode: Some(code),
            error: None,
        }) => format!(" ({code})"),
        _ => String::new(),
    };
    let hint = match (status, errcode.as_deref()) {
        (401, _) | (_, Some("M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN")) => {
            "; the access token was not accepted: check the variable named by token_env"
        }
        (403, _) => {
            "; the token's user may not post there: invite it to the room and join it with that user"
        }
        (404, _) if room.room.starts_with('#') => {
            "; no room has that alias: check `room`, or give the room id (!…)"
        }
        (404, _) => "; check `room` and `homeserver`",
        (429, _) => "; rate limited: retried by the next run",
        _ => "",
    };
    let reason = format!(
        "{what} at {}: HTTP {status} {}{detail}{hint}",
        url_origin(&room.homeserver),
        phrase(status)
    );
    if retryable(status) {
        Outcome::Retry { reason }
    } else {
        Outcome::Refused { reason }
    }
}

/// `text` cut to 200 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
