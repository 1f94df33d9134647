//! Scenarios: the rules that choose the scripted model's reply to each request.
//!
//! A [`Scenario`] is an ordered list of [`Rule`]s. For each `POST /v1/messages`
//! the first rule whose [`When`] matches (and whose `times` budget is not
//! spent) gives the [`Reply`]; when none matches, the server answers with
//! [`FALLBACK_TEXT`] (for a main request) or [`SIDE_FALLBACK_TEXT`] (for a side
//! request). Scenarios are built in code with the builder methods or read
//! from TOML (the `scripted-model` binary):
//!
//! ```toml
//! [usage]                 # every reply's usage unless its rule says otherwise
//! input_tokens = 100
//! output_tokens = 20
//!
//! [[rules]]
//! when = { prompt_contains = "Step 2" }
//! reply = { bash = "retort signal done" }
//!
//! [[rules]]
//! when = "after_tool_result"
//! reply = { text = "Step done." }
//!
//! [[rules]]
//! when = { prompt_contains = "busy" }
//! reply = { rate_limited = { retry_after_s = 3600 } }
//! times = 1               # then the next rule that matches answers
//! ```

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::request::MessagesRequest;

/// The text of the reply to a main request that no rule matched.
pub const FALLBACK_TEXT: &str = "scripted-model: no rule matched this request";

/// The text of the reply to a side request (no tools) that no rule matched:
/// short, like a generated session title.
pub const SIDE_FALLBACK_TEXT: &str = "Scripted session";

/// Token counts reported for one reply; they are what Claude Code sums into
/// `usage` and prices into `total_cost_usd`.
///
/// On the wire (streaming): `message_start` carries `input_tokens`, both cache
/// figures and `output_tokens: 1`, and `message_delta` carries all four with
/// the full `output_tokens`, as the Messages API does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

impl Usage {
    /// `input` uncached input tokens and `output` output tokens, no cache.
    pub const fn new(input: u64, output: u64) -> Self {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
        }
    }

    /// The same usage with cache writes and reads (tokens).
    pub const fn with_cache(self, creation: u64, read: u64) -> Self {
        Usage {
            cache_creation_input_tokens: creation,
            cache_read_input_tokens: read,
            ..self
        }
    }

    /// The usage object of the Messages API: the four counts by name.
    pub fn to_json(self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        })
    }
}

impl Default for Usage {
    /// 100 input tokens, 20 output tokens, no cache.
    fn default() -> Self {
        Usage::new(100, 20)
    }
}

/// Which requests a [`Rule`] answers.
///
/// A *main* request is one that offers tools (Claude Code's agent loop); a
/// *side* request offers none (session titles and other small asks, which
/// quote the user's prompt, so they must not trigger the prompt's rules).
/// "The prompt" is the text blocks of the last `user` entry of `messages`
/// (the list may end with other roles), joined with newlines.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// A main request whose prompt contains this text.
    PromptContains(String),
    /// A main request whose last `user` entry carries a `tool_result` block.
    AfterToolResult,
    /// A main request carrying, after its last `user` entry, a prompt typed
    /// while the turn ran that contains this text
    /// ([`MessagesRequest::queued_text`]).
    QueuedPromptContains(String),
    /// A side request (no tools).
    SideRequest,
    /// Any request.
    Any,
}

impl When {
    /// [`When::PromptContains`] with `text`.
    pub fn prompt_contains(text: impl Into<String>) -> Self {
        When::PromptContains(text.into())
    }

    /// Whether `request` is one this condition answers.
    pub fn matches(&self, request: &MessagesRequest<'_>) -> bool {
        match self {
            When::PromptContains(text) => {
                !request.is_side() && request.last_user_text().contains(text.as_str())
            }
            When::AfterToolResult => !request.is_side() && request.last_user_has_tool_result(),
            When::QueuedPromptContains(text) => {
                !request.is_side() && request.queued_text().contains(text.as_str())
            }
            When::SideRequest => request.is_side(),
            When::Any => true,
        }
    }
}

/// What the scripted model answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// One text block; `stop_reason: "end_turn"`.
    Text(String),
    /// A `Bash` tool call with this command (and the description
    /// "Scripted command"); `stop_reason: "tool_use"`.
    Bash(String),
    /// A call of any tool with this input object; `stop_reason: "tool_use"`.
    ToolUse {
        /// The tool's name as Claude Code offers it (`Bash`, `Read`, …).
        name: String,
        /// The tool's input, a JSON object.
        input: Value,
    },
    /// HTTP 429, `rate_limit_error`, with a `retry-after` header (seconds).
    RateLimited {
        /// The `retry-after` header's value, in seconds.
        retry_after_s: u64,
    },
    /// HTTP 529, `overloaded_error`.
    Overloaded,
    /// HTTP 401, `authentication_error`.
    Unauthorized,
}

impl Reply {
    /// [`Reply::Text`].
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text(text.into())
    }

    /// [`Reply::Bash`].
    pub fn bash(command: impl Into<String>) -> Self {
        Reply::Bash(command.into())
    }

    /// [`Reply::ToolUse`].
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        Reply::ToolUse {
            name: name.into(),
            input,
        }
    }

    /// [`Reply::RateLimited`] with `retry-after: retry_after_s`.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        Reply::RateLimited { retry_after_s }
    }
}

/// One rule of a [`Scenario`]: when it applies, what it answers, and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Which requests it answers.
    pub when: When,
    /// Its answer.
    pub reply: Reply,
    /// The usage reported with the reply; default: the scenario's.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// How long to wait before answering, in ms (to see a busy screen).
    #[serde(default)]
    pub delay_ms: u64,
    /// How many requests it may answer; `None`: any number.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Rule {
    /// A rule answering `when` with `reply`, any number of times, at once.
    pub fn new(when: When, reply: Reply) -> Self {
        Rule {
            when,
            reply,
            usage: None,
            delay_ms: 0,
            times: None,
        }
    }

    /// The same rule answering at most `n` requests.
    pub fn times(self, n: u32) -> Self {
        Rule {
            times: Some(n),
            ..self
        }
    }

    /// The same rule reporting `usage` with its reply.
    pub fn usage(self, usage: Usage) -> Self {
        Rule {
            usage: Some(usage),
            ..self
        }
    }

    /// The same rule answering after `delay` (ms precision).
    pub fn delay(self, delay: Duration) -> Self {
        Rule {
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            ..self
        }
    }
}

/// An ordered list of rules and the usage every reply reports by default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The rules, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Usage of replies whose rule sets none; default [`Usage::default`].
    #[serde(default)]
    pub usage: Usage,
}

impl Scenario {
    /// An empty scenario: every request gets a fallback text.
    pub fn new() -> Self {
        Scenario::default()
    }

    /// Appends a rule answering `when` with `reply`.
    pub fn when(self, when: When, reply: Reply) -> Self {
        self.rule(Rule::new(when, reply))
    }

    /// Appends `rule`.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets the default usage of every reply.
    pub fn usage(self, usage: Usage) -> Self {
        Scenario { usage, ..self }
    }

    /// Reads a scenario from TOML text (the format in this module's docs).
    ///
    /// # Errors
    /// The TOML parser's error (line, column, what was expected).
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_scenario_file_reads_into_rules() {
        let text = include_str!("../scenarios/signal.toml");
        let scenario = Scenario::from_toml(text).unwrap();
        assert_eq!(scenario.usage, Usage::new(1000, 50));
        assert_eq!(scenario.rules.len(), 4);
        assert_eq!(scenario.rules[0].reply, Reply::rate_limited(3600));
        assert_eq!(scenario.rules[0].times, Some(1));
        assert_eq!(scenario.rules[1].when, When::prompt_contains("Step"));
        assert_eq!(scenario.rules[2].when, When::AfterToolResult);
        assert_eq!(
            scenario.rules[2].usage,
            Some(Usage::new(1200, 20).with_cache(0, 800))
        );
        assert_eq!(scenario.rules[3].when, When::SideRequest);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let error =
            Scenario::from_toml("[[rules]]\nwhen = \"any\"\nreply = { text = \"x\" }\ndelay = 3\n")
                .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `delay`"),
            "{error}"
        );
    }
}
