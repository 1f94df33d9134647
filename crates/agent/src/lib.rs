//! retort's agents: starting an LLM agent, handing it prompts, and
//! waiting for each step's signal.
//!
//! Owns: the [`agent::Agent`] a run talks to on either backend, a tmux
//! [`session`] (with [`ready`]ness before the first prompt) or a
//! [`headless`] process per step (or, for Claude Code, one per session
//! speaking [`stream_json`]); the agent's step [`signal`]s; the
//! [`wait`] for a step to end; and the [`run_dir`] layout that the run,
//! its agent and `retort signal` share.
//!
//! It also owns what retort knows of each agent CLI ([`profile`]: Claude
//! Code's permissions, settings and command lines, or a generic CLI's;
//! [`claude_code`]: what its screen shows), the [`watchdog`] of a tmux
//! session (dialogs, permission requests, rate limits and API errors, an
//! agent idle without signalling, prompts not delivered), the hook
//! [`events`] Claude Code reports through `retort hook`, and the usage read
//! from its [`transcript`].
//!
//! In: the formula's `[agent]` table (for the profile), a session spec
//! (command, working directory, environment), prompt files, a step
//! timeout. Out: how each step ended ([`wait::StepEnd`],
//! [`wait::StepOutcome`]) and how the agent exited. The runner decides what
//! to send.

#![warn(missing_docs)]

pub mod agent;
pub mod claude_code;
pub mod events;
pub mod headless;
pub mod output;
pub mod profile;
pub mod ready;
pub mod run_dir;
pub mod session;
pub mod signal;
pub mod stream_json;
pub mod transcript;
pub mod usage;
pub mod wait;
pub mod watchdog;
