//! Claude Code's stream-json, as retort speaks it headless: user turns
//! written to the agent's standard input, and the `result` frame that ends
//! each turn read from its standard output.
//!
//! Format (Claude Code 2.1.197, `-p --input-format stream-json
//! --output-format stream-json --verbose`, measured in
//! `crates/testkit/tests/print_mode.rs` and the testkit README): one JSON
//! object a line. In: `{"type":"user","message":{"role":"user","content":"…"}}`
//! per turn. Out: per turn a `system`/`init` frame, `assistant` and `user`
//! frames, and last a `result` frame:
//!
//! ```json
//! {"type":"result","subtype":"success","is_error":false,"api_error_status":null,
//!  "result":"Step done.","num_turns":2,"total_cost_usd":0.0075,
//!  "usage":{"input_tokens":2000,"output_tokens":100,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},
//!  "modelUsage":{"claude-sonnet-5":{"costUSD":0.0075}},
//!  "permission_denials":[{"tool_name":"Bash","tool_use_id":"…","tool_input":{"command":"rm -rf /x"}}]}
//! ```
//!
//! `usage` and `num_turns` are the turn's; `total_cost_usd` is
//! **cumulative** over the process's session (so a turn's cost is the
//! difference from the turn before). An API error is a result with
//! `is_error: true`: a 429 says `api_error_status: 429` and `result: "API
//! Error: Request rejected (429) · …"`, and the process waits for the next
//! turn. A tool the agent may not use is not an error: the result lists it
//! in `permission_denials`.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{Value, json};

use crate::usage::Usage;

/// How long a rate limit holds when the agent did not say until when: one
/// hour.
pub const DEFAULT_RATE_LIMIT_HOLD: std::time::Duration = std::time::Duration::from_secs(3600);

/// One user turn as a stream-json input line (with its newline).
pub fn user_frame(text: &str) -> String {
    let mut line = json!({
        "type": "user",
        "message": { "role": "user", "content": text },
    })
    .to_string();
    line.push('\n');
    line
}

/// A tool call the agent was not allowed to make (an entry of
/// `permission_denials`).
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    /// The tool, such as `Bash`.
    pub tool: String,
    /// What it was called with: a Bash command, a file path, or the whole
    /// input as JSON.
    pub input: String,
}

impl Denial {
    /// `Bash `rm -rf /x``: the tool and what it was called with.
    pub fn describe(&self) -> String {
        if self.input.is_empty() {
            self.tool.clone()
        } else {
            format!("{} `{}`", self.tool, self.input)
        }
    }

    /// The permission rule that would allow exactly this call, in Claude
    /// Code's syntax: `Bash(rm -rf /x)`, or the tool's name.
    pub fn rule(&self) -> String {
        if self.tool == "Bash" && !self.input.is_empty() {
            format!("{}({})", self.tool, self.input)
        } else {
            self.tool.clone()
        }
    }

    fn from_json(value: &Value) -> Denial {
        let tool = value["tool_name"].as_str().unwrap_or("a tool").to_string();
        let input = &value["tool_input"];
        let input = ["command", "file_path", "path", "url", "pattern"]
            .iter()
            .find_map(|key| input[*key].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| match input {
                Value::Null => String::new(),
                other => other.to_string(),
            });
        Denial { tool, input }
    }
}

/// A `result` frame: how one turn ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnResult {
    /// `is_error`: the turn ended on an API error.
    pub is_error: bool,
    /// `api_error_status`: the API's HTTP status, when it gave one (429).
    pub api_error_status: Option<u16>,
    /// `result`: the agent's last reply, or the error's text.
    pub text: String,
    /// `usage`: the turn's tokens (its cost is not in it).
    pub tokens: Usage,
    /// `total_cost_usd`: what the whole session has cost so far, USD.
    pub total_cost_usd: Option<f64>,
    /// `permission_denials`.
    pub denials: Vec<Denial>,
    /// `num_turns`: model calls in the turn.
    pub num_turns: u64,
}

/// What a turn's result means for the step.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The model API refused for a rate or usage limit: until when (the
    /// time the agent showed, else [`DEFAULT_RATE_LIMIT_HOLD`] from now),
    /// whether that time was shown, and the agent's words.
    RateLimited {
        /// When the limit lifts.
        until: DateTime<Utc>,
        /// Whether the agent said so (else the default hold).
        shown: bool,
        /// The error's text.
        text: String,
    },
    /// Another API error: its text.
    ApiError(String),
    /// The turn completed, but calls were denied.
    Denied(Vec<Denial>),
    /// The turn completed.
    Completed,
}

impl TurnResult {
    /// Reads a `result` frame; `None` for any other line (other frames,
    /// or text that is not JSON).
    pub fn parse(line: &str) -> Option<TurnResult> {
        let frame: Value = serde_json::from_str(line.trim()).ok()?;
        if frame["type"] != "result" {
            return None;
        }
        let usage = &frame["usage"];
        let count = |key: &str| usage[key].as_u64().unwrap_or(0);
        Some(TurnResult {
            is_error: frame["is_error"].as_bool().unwrap_or(false),
            api_error_status: frame["api_error_status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok()),
            text: match &frame["result"] {
                Value::String(text) => text.clone(),
                _ => frame["subtype"].as_str().unwrap_or_default().to_string(),
            },
            tokens: Usage {
                input_tokens: count("input_tokens"),
                output_tokens: count("output_tokens"),
                cache_creation_input_tokens: count("cache_creation_input_tokens"),
                cache_read_input_tokens: count("cache_read_input_tokens"),
                cost_usd: None,
            },
            total_cost_usd: frame["total_cost_usd"].as_f64(),
            denials: frame["permission_denials"]
                .as_array()
                .map(|list| list.iter().map(Denial::from_json).collect())
                .unwrap_or_default(),
            num_turns: frame["num_turns"].as_u64().unwrap_or(0),
        })
    }

    /// What this result means, at `now` (for the end of a rate limit).
    pub fn verdict(&self, now: DateTime<Utc>) -> Verdict {
        if self.is_error {
            if self.api_error_status == Some(429) || names_a_limit(&self.text) {
                let reset = reset_time(&self.text, now);
                return Verdict::RateLimited {
                    until: reset.unwrap_or_else(|| {
                        now + ChronoDuration::from_std(DEFAULT_RATE_LIMIT_HOLD)
                            .unwrap_or(ChronoDuration::hours(1))
                    }),
                    shown: reset.is_some(),
                    text: self.text.clone(),
                };
            }
            return Verdict::ApiError(self.text.clone());
        }
        if self.denials.is_empty() {
            Verdict::Completed
        } else {
            Verdict::Denied(self.denials.clone())
        }
    }

    /// The turn's usage with its cost: the difference between this
    /// result's cumulative `total_cost_usd` and `cost_before`, the
    /// session's cost before the turn (none when either is unknown).
    pub fn usage(&self, cost_before: f64) -> Usage {
        Usage {
            cost_usd: self
                .total_cost_usd
                .map(|total| (total - cost_before).max(0.0)),
            ..self.tokens
        }
    }
}

/// An `assistant` frame: one model reply as it starts, with the reply's
/// message id and its usage priced at its model's [`crate::usage::PRICES`].
/// Its `output_tokens` is `message_start`'s (1): the full count comes only
/// with the turn's result, so this is a lower bound, for stopping a turn
/// that runs past a budget before it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The reply's message id.
    pub id: String,
    /// Its usage so far, priced (cost `None` for a model of no known price,
    /// such as the `<synthetic>` one of an API error).
    pub usage: Usage,
}

impl Reply {
    /// Reads an `assistant` frame; `None` for any other line.
    pub fn parse(line: &str) -> Option<Reply> {
        let frame: Value = serde_json::from_str(line.trim()).ok()?;
        if frame["type"] != "assistant" {
            return None;
        }
        let message = &frame["message"];
        let usage = &message["usage"];
        let count = |key: &str| usage[key].as_u64().unwrap_or(0);
        let tokens = Usage {
            input_tokens: count("input_tokens"),
            output_tokens: count("output_tokens"),
            cache_creation_input_tokens: count("cache_creation_input_tokens"),
            cache_read_input_tokens: count("cache_read_input_tokens"),
            cost_usd: None,
        };
        Some(Reply {
            id: message["id"].as_str().unwrap_or_default().to_string(),
            usage: tokens.priced(message["model"].as_str().unwrap_or_default()),
        })
    }
}

/// Whether an error text is about a rate or usage limit.
fn names_a_limit(text: &str) -> bool {
    let lower = text.to_lowercase();
    ["rate limit", "usage limit", "rate_limit", "(429)"]
        .iter()
        .any(|needle| lower.contains(needle))
}

/// When a rate limit lifts, as an error text shows it: `…|1767225600`
/// (Claude Code's usage-limit message ends with the reset's Unix time),
/// `retry after 120 seconds`, `try again in 2 hours`, `resets in 30
/// minutes`. `None` when the text says nothing of it.
pub fn reset_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some((_, tail)) = text.rsplit_once('|') {
        let digits: String = tail
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(seconds) = digits.parse::<i64>()
            && let Some(at) = Utc.timestamp_opt(seconds, 0).single()
            && at > now
        {
            return Some(at);
        }
    }
    let lower = text.to_lowercase();
    for marker in ["retry after", "retry-after", "try again in", "resets in"] {
        let Some(start) = lower.find(marker) else {
            continue;
        };
        let rest = lower[start + marker.len()..].trim_start_matches([' ', ':']);
        let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(amount) = number.parse::<i64>() else {
            continue;
        };
        let unit = rest[number.len()..].trim_start();
        let seconds = if unit.starts_with("hour") || unit.starts_with('h') {
            amount.checked_mul(3600)
        } else if unit.starts_with("min") || unit.starts_with('m') {
            amount.checked_mul(60)
        } else {
            Some(amount)
        };
        if let Some(at) = seconds.and_then(|s| now.checked_add_signed(ChronoDuration::seconds(s))) {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 11, 20, 0).unwrap()
    }

    #[test]
    fn a_user_turn_is_one_json_line() {
        let line = user_frame("Step 1: \"check\"\nthe disks");
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["type"], "user");
        assert_eq!(value["message"]["role"], "user");
        assert_eq!(value["message"]["content"], "Step 1: \"check\"\nthe disks");
    }

    #[test]
    fn a_result_frame_gives_tokens_cost_and_denials() {
        let line = r#"{"type":"result","subtype":"success","is_error":false,"api_error_status":null,"result":"Step done.","num_turns":2,"total_cost_usd":0.015,"usage":{"input_tokens":2000,"output_tokens":100,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,"service_tier":"standard"},"permission_denials":[{"tool_name":"Bash","tool_use_id":"t3","tool_input":{"command":"rm -rf /x","description":"Scripted command"}}]}"#;
        let result = TurnResult::parse(line).unwrap();
        assert_eq!(result.tokens.input_tokens, 2000);
        assert_eq!(result.tokens.output_tokens, 100);
        assert_eq!(result.tokens.cache_creation_input_tokens, 5);
        assert_eq!(result.tokens.cache_read_input_tokens, 7);
        assert_eq!(result.num_turns, 2);
        let usage = result.usage(0.0075);
        assert!((usage.cost_usd.unwrap() - 0.0075).abs() < 1e-12);
        let Verdict::Denied(denials) = result.verdict(now()) else {
            panic!("not denied");
        };
        assert_eq!(denials[0].describe(), "Bash `rm -rf /x`");
        assert_eq!(denials[0].rule(), "Bash(rm -rf /x)");
        assert!(TurnResult::parse(r#"{"type":"assistant"}"#).is_none());
        assert!(TurnResult::parse("not json").is_none());
    }

    #[test]
    fn a_429_is_a_rate_limit_for_an_hour_unless_the_text_says_until_when() {
        let line = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit","total_cost_usd":0}"#;
        let result = TurnResult::parse(line).unwrap();
        let Verdict::RateLimited { until, shown, text } = result.verdict(now()) else {
            panic!("not rate-limited");
        };
        assert_eq!(until, now() + ChronoDuration::hours(1));
        assert!(!shown);
        assert!(text.contains("(429)"));

        let reset = Utc.with_ymd_and_hms(2026, 11, 21, 15, 0, 0).unwrap();
        let text = format!("Claude AI usage limit reached|{}", reset.timestamp());
        assert_eq!(reset_time(&text, now()), Some(reset));
        assert_eq!(
            reset_time("Rate limited; try again in 30 minutes", now()),
            Some(now() + ChronoDuration::minutes(30))
        );
        assert_eq!(reset_time("overloaded", now()), None);
    }

    #[test]
    fn an_assistant_frame_is_a_priced_lower_bound() {
        let line = r#"{"type":"assistant","message":{"id":"msg_7","model":"claude-sonnet-5","content":[],"usage":{"input_tokens":1000,"output_tokens":1,"cache_read_input_tokens":4000}}}"#;
        let reply = Reply::parse(line).unwrap();
        assert_eq!(reply.id, "msg_7");
        let cost = reply.usage.cost_usd.unwrap();
        assert!((cost - (1000.0 * 3e-6 + 15e-6 + 4000.0 * 0.3e-6)).abs() < 1e-12);
        assert!(Reply::parse(r#"{"type":"result"}"#).is_none());
    }

    #[test]
    fn other_errors_fail_with_their_text() {
        let line = r#"{"type":"result","is_error":true,"api_error_status":401,"result":"Invalid API key · Fix external API key"}"#;
        assert_eq!(
            TurnResult::parse(line).unwrap().verdict(now()),
            Verdict::ApiError("Invalid API key · Fix external API key".into())
        );
    }
}
