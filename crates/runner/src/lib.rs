//! retort's runner: one run of a formula, from plan to phase file.
//!
//! Owns orchestration only: [`plan`] (everything decided before anything
//! starts: the checked formula, snapshot, decision preview, prompts, agent
//! sessions), [`run`] (carrying it out: decide, start agents, wait on
//! steps, record), the run [`lock`] that keeps runs of one formula from
//! overlapping, the run's [`claim`] on its formula (lock, recovery,
//! `PHASE:running`, before the preflight) and what a run interrupted
//! before deciding records, the [`phase`] file, the [`state`] directory,
//! [`retention`] of what old runs left, the [`recovery`] of runs whose
//! retort died, the [`holds`] (rate limits, the day's budget) that keep a
//! gate closed, the DAG [`scheduler`] (pure: which step starts when,
//! retries, the failure policy) and the [`parallel`] agent phase it drives
//! (branches at once, `when`, retries, outputs, the run's timeout), and
//! [`rerun`]s of past runs. Private: the sequential agent phase of a chain
//! run one step at a time
//! (each session's agent started, each step given and waited for), the
//! start of a tmux session (its command line and Claude Code settings, its
//! readiness) and a headless agent's turns, and when notifications are sent
//! (`notify.rs`: the moment a step escalates, and at the end of a run).
//!
//! In: [`plan::RunOptions`] (formula path, vars, state dir, backend,
//! agent overrides). Out: a [`run::RunReport`], the phase file, `run.json`,
//! a journal entry and the run-history rows. Each stage it drives is a
//! crate of its own: `retort-check`, `retort-preflight`, `retort-decide`,
//! `retort-prompt`, `retort-agent`, `retort-journal`.

#![warn(missing_docs)]

mod agent_phase;
pub mod claim;
pub mod holds;
pub mod lock;
mod notify;
pub mod parallel;
pub mod phase;
pub mod plan;
pub mod recovery;
pub mod rerun;
pub mod retention;
pub mod run;
pub mod scheduler;
pub mod state;
mod tmux_start;
mod turns;
