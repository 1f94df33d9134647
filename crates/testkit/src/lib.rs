//! retort-testkit: drives the real Claude Code CLI against a scripted model.
//!
//! What it owns: a scripted Anthropic Messages API server on loopback
//! ([`model_server`], replies chosen by a [`scenario`]), the CLI as a fixture
//! ([`claude_code`]: where it is, a private HOME and `~/.claude.json`, the
//! child's whole environment), a private tmux server ([`tmux`]) and the
//! screen substrings measured with the pinned CLI ([`screen`]).
//!
//! In: a [`Scenario`] (built in code or read from TOML), the CLI installed by
//! `tests/claude-code/install.sh` (or `$RETORT_CLAUDE_BIN`).
//! Out: recorded requests ([`RecordedRequest`]), the CLI's output, screens.
//! Nothing here reaches beyond 127.0.0.1. The crate README states the CLI's
//! behaviour as measured.
//!
//! ```no_run
//! use retort_testkit::{ClaudeCode, Machine, ModelServer, Reply, Scenario, Setup, When};
//! let server = ModelServer::start(
//!     Scenario::new()
//!         .when(When::prompt_contains("Step 1"), Reply::bash("retort signal done"))
//!         .when(When::AfterToolResult, Reply::text("Done.")),
//! )?;
//! let machine = Machine::new(Setup::used_before())?;
//! let claude = ClaudeCode::find()?;
//! let output = claude
//!     .command(&machine, &server, ["-p", "--output-format", "stream-json", "--verbose", "Step 1"])
//!     .output()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod claude_code;
mod http;
pub mod model_server;
pub mod request;
pub mod scenario;
pub mod screen;
pub mod tmux;
pub mod wire;

pub use claude_code::{ClaudeCode, FAKE_API_KEY, FindError, Machine, Setup};
pub use model_server::ModelServer;
pub use request::{Answer, MessagesRequest, QUEUED_PROMPT_PREFIX, RecordedRequest};
pub use scenario::{Reply, Rule, Scenario, Usage, When};
pub use tmux::TmuxSession;
