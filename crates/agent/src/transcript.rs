//! Usage from Claude Code's transcript, for a tmux session.
//!
//! Claude Code writes each session's messages to a JSONL transcript,
//! `~/.claude/projects/<cwd, every / as ->/<session_id>.jsonl`, whose path
//! its `Stop` hook gives ([`crate::events`]). Each `assistant` line's
//! `message.usage` holds its reply's final token counts (`input_tokens`,
//! `output_tokens`, `cache_creation_input_tokens`,
//! `cache_read_input_tokens`), `message.id` the model API's message id
//! and `message.model` the model (Claude Code 2.1.197, measured in
//! `crates/testkit/tests/hooks.rs`). A reply of several content blocks is
//! written as several lines with the same id and usage, so replies are
//! counted once by id. Error lines (`model: "<synthetic>"`) cost nothing.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use crate::usage::Usage;

/// Counts each reply of a session's transcripts once: what a step used is
/// the replies not counted before it.
#[derive(Debug, Default)]
pub struct UsageCounter {
    counted: HashSet<String>,
}

impl UsageCounter {
    /// A counter that has counted nothing.
    pub fn new() -> UsageCounter {
        UsageCounter::default()
    }

    /// The usage of the replies in `transcript` not counted before, priced
    /// per reply with [`Usage::priced`] on its model; `None` when there is
    /// none (or the file cannot be read). Marks them counted.
    pub fn count_new(&mut self, transcript: &Path) -> Option<Usage> {
        let text = std::fs::read_to_string(transcript).ok()?;
        let mut total: Option<Usage> = None;
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if value.get("type").and_then(Value::as_str) != Some("assistant") {
                continue;
            }
            let message = &value["message"];
            let model = message["model"].as_str().unwrap_or_default();
            let Some(id) = message["id"].as_str() else {
                continue;
            };
            if model == "<synthetic>" || !self.counted.insert(id.to_string()) {
                continue;
            }
            let tokens = |key: &str| message["usage"][key].as_u64().unwrap_or(0);
            let usage = Usage {
                input_tokens: tokens("input_tokens"),
                output_tokens: tokens("output_tokens"),
                cache_creation_input_tokens: tokens("cache_creation_input_tokens"),
                cache_read_input_tokens: tokens("cache_read_input_tokens"),
                cost_usd: None,
            }
            .priced(model);
            total = Some(match total {
                Some(sum) => sum + usage,
                None => usage,
            });
        }
        total
    }
}

/// Whether the transcript's last message is the model's closing reply:
/// an `assistant` line with no `tool_use` block, after every `user` line.
/// Claude Code can run its `Stop` hook before that line is written
/// (`crates/testkit/README.md`, "Hooks").
pub fn turn_written(transcript: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(transcript) else {
        return false;
    };
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| matches!(value["type"].as_str(), Some("user" | "assistant")))
        .is_some_and(|value| {
            value["type"] == "assistant"
                && !value["message"]["content"]
                    .as_array()
                    .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_use"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assistant(id: &str, input: u64, output: u64) -> String {
        serde_json::json!({
            "type": "assistant",
            "message": {"id": id, "model": "claude-opus-4-8", "usage": {
                "input_tokens": input, "output_tokens": output,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        })
        .to_string()
    }

    #[test]
    fn each_reply_is_counted_once_across_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut lines = vec![
            r#"{"type":"user","message":{"content":"Step 1"}}"#.to_string(),
            assistant("msg_1", 4000, 100),
            assistant("msg_1", 4000, 100),
            assistant("msg_2", 1000, 50),
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let mut counter = UsageCounter::new();
        let first = counter.count_new(&path).unwrap();
        assert_eq!((first.input_tokens, first.output_tokens), (5000, 150));
        let cost = first.cost_usd.unwrap();
        assert!((cost - (5000.0 * 5.0 + 150.0 * 25.0) / 1e6).abs() < 1e-12);

        lines.push(r#"{"type":"assistant","message":{"id":"e","model":"<synthetic>","usage":{"input_tokens":9}}}"#.to_string());
        std::fs::write(&path, lines.join("\n")).unwrap();
        assert_eq!(counter.count_new(&path), None);
        assert!(turn_written(&path));
        lines.push(
            r#"{"type":"assistant","message":{"id":"t","content":[{"type":"tool_use"}]}}"#
                .to_string(),
        );
        std::fs::write(&path, lines.join("\n")).unwrap();
        assert!(!turn_written(&path));
        lines.push(assistant("msg_3", 10, 1));
        std::fs::write(&path, lines.join("\n")).unwrap();
        assert_eq!(counter.count_new(&path).unwrap().input_tokens, 10);
    }
}
