//! What the model server received: recorded requests and a typed view of a
//! Messages API request body.

use serde_json::Value;

/// How Claude Code 2.1.197 opens the `system` entry that carries a prompt
/// typed while a turn was running (the prompt follows, then a paragraph
/// telling the model to address it after its current task).
pub const QUEUED_PROMPT_PREFIX: &str = "The user sent a new message while you were working:\n";

/// A read-only view of a `POST /v1/messages` body, for matching rules and
/// for assertions.
#[derive(Debug, Clone, Copy)]
pub struct MessagesRequest<'a> {
    body: &'a Value,
}

impl<'a> MessagesRequest<'a> {
    /// A view over `body` (any JSON; missing fields read as absent).
    pub fn new(body: &'a Value) -> Self {
        MessagesRequest { body }
    }

    /// The `model` field, e.g. `claude-opus-4-8`; `""` when absent.
    pub fn model(&self) -> &'a str {
        self.body.get("model").and_then(Value::as_str).unwrap_or("")
    }

    /// Whether the client asked for a streamed (SSE) reply (`stream: true`).
    pub fn stream(&self) -> bool {
        self.body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The names of the tools offered, in order.
    pub fn tool_names(&self) -> Vec<&'a str> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|tool| tool.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether this is a side request: one that offers no tools (Claude Code's
    /// session-title and other small requests).
    pub fn is_side(&self) -> bool {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .is_none_or(|tools| tools.is_empty())
    }

    /// The roles of `messages`, in order (`user`, `assistant`, `system`, …).
    pub fn roles(&self) -> Vec<&'a str> {
        self.messages()
            .iter()
            .map(|message| message.get("role").and_then(Value::as_str).unwrap_or(""))
            .collect()
    }

    /// The content blocks of the last `user` entry of `messages` (a string
    /// content reads as one text block); empty when there is none.
    pub fn last_user_blocks(&self) -> Vec<Value> {
        let Some(entry) = self
            .messages()
            .iter()
            .rev()
            .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
        else {
            return Vec::new();
        };
        match entry.get("content") {
            Some(Value::String(text)) => {
                vec![serde_json::json!({"type": "text", "text": text})]
            }
            Some(Value::Array(blocks)) => blocks.clone(),
            _ => Vec::new(),
        }
    }

    /// The text blocks of the last `user` entry, joined with newlines: the
    /// prompt (Claude Code puts a `<system-reminder>` block before it).
    pub fn last_user_text(&self) -> String {
        self.last_user_blocks()
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the last `user` entry carries a `tool_result` block.
    pub fn last_user_has_tool_result(&self) -> bool {
        self.last_user_blocks()
            .iter()
            .any(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))
    }

    /// Prompts typed while a turn was running and handed to the model in the
    /// same turn: the text after [`QUEUED_PROMPT_PREFIX`] of each `system`
    /// entry after the last `user` entry, joined with newlines (`""` when
    /// none). Claude Code 2.1.197 sends a prompt pasted while a tool runs this
    /// way, right after the tool's result.
    pub fn queued_text(&self) -> String {
        let messages = self.messages();
        let last_user = messages
            .iter()
            .rposition(|message| message.get("role").and_then(Value::as_str) == Some("user"));
        let after = last_user.map_or(messages, |index| &messages[index + 1..]);
        after
            .iter()
            .filter(|message| message.get("role").and_then(Value::as_str) == Some("system"))
            .filter_map(|message| message.get("content").and_then(Value::as_str))
            .filter_map(|content| content.strip_prefix(QUEUED_PROMPT_PREFIX))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn messages(&self) -> &'a [Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// How the server answered a recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A `/v1/messages` request answered by the scenario's rule at this index.
    Rule(usize),
    /// A `/v1/messages` request no rule matched (fallback text).
    Fallback,
    /// Another endpoint (start-up probe, token count, 404…), with its status.
    Endpoint(u16),
    /// A request the server could not read (bad HTTP or JSON), with its status.
    Invalid(u16),
}

/// One HTTP request the model server received, in arrival order.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `HEAD`, `POST`, …
    pub method: String,
    /// The request target, with its query: `/v1/messages?beta=true`.
    pub path: String,
    /// Header names (lower case) and values; `x-api-key` and
    /// `authorization` values are replaced by `<redacted>`.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `Value::Null` when empty or not JSON.
    pub body: Value,
    /// How it was answered.
    pub answer: Answer,
}

impl RecordedRequest {
    /// Whether this is a `POST /v1/messages` (with or without a query).
    pub fn is_messages(&self) -> bool {
        self.method == "POST"
            && (self.path == "/v1/messages" || self.path.starts_with("/v1/messages?"))
    }

    /// The body as a Messages request.
    pub fn messages(&self) -> MessagesRequest<'_> {
        MessagesRequest::new(&self.body)
    }

    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}
