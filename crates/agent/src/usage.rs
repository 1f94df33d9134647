//! What an agent's model use cost: tokens and US dollars, per step.
//!
//! Claude Code reports both in print mode (the `result` frame's `usage`
//! and `total_cost_usd`). In a terminal it writes each reply's token counts
//! to its transcript (`~/.claude/projects/…/SESSION.jsonl`, an `assistant`
//! line's `message.usage`) but no cost; [`Usage::priced`] prices them as
//! the CLI does.

use serde::{Deserialize, Serialize};

/// Tokens and cost of some model use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the prompt cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// The cost in US dollars, as the agent reported it or as
    /// [`Usage::priced`] computed it; `None` when neither could say (a model
    /// with no known price).
    pub cost_usd: Option<f64>,
}

/// A model's prices in US dollars per million tokens: input, output,
/// cache write, cache read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cache writes.
    pub cache_write: f64,
    /// Cache reads.
    pub cache_read: f64,
}

/// Prices by model family, the first whose name the model id contains.
/// Source: the figures Claude Code 2.1.197 itself computes
/// `total_cost_usd` with (for `claude-opus-4-8`: 4000 input, 150 output,
/// 2000 cache-write and 10000 cache-read tokens cost exactly $0.04125,
/// `crates/testkit/tests/print_mode.rs`), and Anthropic's published
/// per-family prices for the others.
pub const PRICES: &[(&str, Prices)] = &[
    (
        "opus",
        Prices {
            input: 5.0,
            output: 25.0,
            cache_write: 6.25,
            cache_read: 0.5,
        },
    ),
    (
        "sonnet",
        Prices {
            input: 3.0,
            output: 15.0,
            cache_write: 3.75,
            cache_read: 0.3,
        },
    ),
    (
        "haiku",
        Prices {
            input: 1.0,
            output: 5.0,
            cache_write: 1.25,
            cache_read: 0.1,
        },
    ),
];

impl std::ops::Add for Usage {
    type Output = Usage;

    /// The sum of two uses; the cost is known only when both are.
    fn add(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens
                + other.cache_creation_input_tokens,
            cache_read_input_tokens: self.cache_read_input_tokens + other.cache_read_input_tokens,
            cost_usd: match (self.cost_usd, other.cost_usd) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            },
        }
    }
}

impl Usage {
    /// These tokens with their cost on `model` (a model id such as
    /// `claude-opus-4-8`) at [`PRICES`]; the cost stays `None` for a model
    /// of no known family.
    pub fn priced(self, model: &str) -> Usage {
        let prices = PRICES
            .iter()
            .find(|(family, _)| model.contains(family))
            .map(|(_, prices)| prices);
        let cost_usd = prices.map(|p| {
            let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
            per(self.input_tokens, p.input)
                + per(self.output_tokens, p.output)
                + per(self.cache_creation_input_tokens, p.cache_write)
                + per(self.cache_read_input_tokens, p.cache_read)
        });
        Usage { cost_usd, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_tokens_cost_what_claude_code_says() {
        let usage = Usage {
            input_tokens: 4000,
            output_tokens: 150,
            cache_creation_input_tokens: 2000,
            cache_read_input_tokens: 10000,
            cost_usd: None,
        }
        .priced("claude-opus-4-8");
        let cost = usage.cost_usd.unwrap();
        assert!((cost - 0.04125).abs() < 1e-12, "{cost}");
        assert_eq!(Usage::default().priced("gpt-9").cost_usd, None);
    }

    #[test]
    fn uses_add_up() {
        let a = Usage {
            input_tokens: 1,
            output_tokens: 2,
            cache_creation_input_tokens: 3,
            cache_read_input_tokens: 4,
            cost_usd: Some(0.5),
        };
        let sum = a + a;
        assert_eq!(sum.output_tokens, 4);
        assert_eq!(sum.cost_usd, Some(1.0));
        assert_eq!((a + Usage::default()).cost_usd, None);
    }
}
