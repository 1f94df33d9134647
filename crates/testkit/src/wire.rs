//! The Messages API's wire format for scripted replies: SSE event streams,
//! non-streaming JSON messages and error bodies.
//!
//! Shapes follow the public Messages API reference (streaming: `message_start`,
//! `content_block_start`, `content_block_delta` with `text_delta` or
//! `input_json_delta`, `content_block_stop`, `message_delta`, `message_stop`;
//! errors: `{"type":"error","error":{"type","message"}}`).

use serde_json::{Value, json};

use crate::scenario::{Reply, Usage};

/// An HTTP response ready to write: status, extra headers, content type, body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `content-type` header value.
    pub content_type: &'static str,
    /// Extra headers (name, value), e.g. `retry-after`.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with `status`.
    pub fn json(status: u16, body: &Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }
}

/// Ids for one reply: the message id (`msg_…`) and the tool-use id
/// (`toolu_…`). Claude Code merges assistant messages that share an id, so
/// every reply needs its own.
#[derive(Debug, Clone)]
pub struct ReplyIds {
    /// The message id.
    pub message: String,
    /// The tool-use id of a tool call.
    pub tool_use: String,
}

impl ReplyIds {
    /// Ids numbered `n` (unique per server).
    pub fn numbered(n: u64) -> Self {
        ReplyIds {
            message: format!("msg_scripted_{n:06}"),
            tool_use: format!("toolu_scripted_{n:06}"),
        }
    }
}

/// A content block of a reply, with its text or JSON input.
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// The response for `reply` to a request for `model`, streamed (SSE) or not.
pub fn render(reply: &Reply, model: &str, stream: bool, usage: Usage, ids: &ReplyIds) -> Response {
    let (block, stop_reason) = match reply {
        Reply::Text(text) => (Block::Text(text.clone()), "end_turn"),
        Reply::Bash(command) => (
            Block::ToolUse {
                id: ids.tool_use.clone(),
                name: "Bash".to_owned(),
                input: json!({"command": command, "description": "Scripted command"}),
            },
            "tool_use",
        ),
        Reply::ToolUse { name, input } => (
            Block::ToolUse {
                id: ids.tool_use.clone(),
                name: name.clone(),
                input: input.clone(),
            },
            "tool_use",
        ),
        Reply::RateLimited { retry_after_s } => {
            let mut response = error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            );
            response
                .headers
                .push(("retry-after".to_owned(), retry_after_s.to_string()));
            return response;
        }
        Reply::Overloaded => return error(529, "overloaded_error", "Overloaded"),
        Reply::Unauthorized => return error(401, "authentication_error", "invalid x-api-key"),
    };
    if stream {
        sse(&block, stop_reason, model, usage, &ids.message)
    } else {
        let content = match &block {
            Block::Text(text) => json!([{"type": "text", "text": text}]),
            Block::ToolUse { id, name, input } => {
                json!([{"type": "tool_use", "id": id, "name": name, "input": input}])
            }
        };
        Response::json(
            200,
            &json!({
                "id": ids.message,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": null,
                "usage": usage.to_json(),
            }),
        )
    }
}

/// An error response: `{"type":"error","error":{"type": kind,"message"}}`.
pub fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn sse(block: &Block, stop_reason: &str, model: &str, usage: Usage, message_id: &str) -> Response {
    let mut events = String::new();
    let mut event = |name: &str, data: Value| {
        events.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    let start_usage = Usage {
        output_tokens: 1,
        ..usage
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": start_usage.to_json(),
        }}),
    );
    match block {
        Block::Text(text) => {
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}),
            );
            // Two deltas, as a real stream splits text.
            let middle = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            for part in [&text[..middle], &text[middle..]] {
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": part}}),
                );
            }
        }
        Block::ToolUse { id, name, input } => {
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            );
            let partial = input.to_string();
            let middle = partial
                .char_indices()
                .nth(partial.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            for part in [&partial[..middle], &partial[middle..]] {
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "input_json_delta", "partial_json": part}}),
                );
            }
        }
    }
    event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    event(
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": usage.to_json()}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    Response {
        status: 200,
        content_type: "text/event-stream",
        headers: vec![("cache-control".to_owned(), "no-cache".to_owned())],
        body: events.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(response: &Response) -> Vec<Value> {
        String::from_utf8(response.body.clone())
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    #[test]
    fn a_streamed_tool_call_reassembles_into_its_input() {
        let response = render(
            &Reply::bash("retort signal done"),
            "m",
            true,
            Usage::new(7, 9),
            &ReplyIds::numbered(3),
        );
        let events = events(&response);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let json: String = events
            .iter()
            .filter_map(|e| e["delta"]["partial_json"].as_str())
            .collect();
        let input: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(input["command"], "retort signal done");
        assert_eq!(events[1]["content_block"]["id"], "toolu_scripted_000003");
        assert_eq!(events[5]["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[5]["usage"]["output_tokens"], 9);
        assert_eq!(events[0]["message"]["usage"]["input_tokens"], 7);
    }

    #[test]
    fn a_rate_limit_carries_retry_after_and_the_error_type() {
        let response = render(
            &Reply::rate_limited(30),
            "m",
            true,
            Usage::default(),
            &ReplyIds::numbered(1),
        );
        assert_eq!(response.status, 429);
        assert_eq!(
            response.headers,
            [("retry-after".to_owned(), "30".to_owned())]
        );
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn a_text_reply_without_stream_is_one_json_message() {
        let response = render(
            &Reply::text("héllo"),
            "m",
            false,
            Usage::new(1, 2),
            &ReplyIds::numbered(1),
        );
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["content"][0]["text"], "héllo");
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["usage"]["output_tokens"], 2);
    }
}
