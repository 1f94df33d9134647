//! The start of an agent's tmux session: its command line (with the
//! settings retort writes for Claude Code), how it is known to be ready,
//! and what not being ready means for the session's first step.

use std::path::Path;
use std::time::Duration;

use retort_agent::claude_code::{SHORTCUTS_FOOTER, ScreenPatterns, settings_file};
use retort_agent::profile::{Profile, shell_quote};
use retort_agent::ready::{Readiness, ReadyEnd};
use retort_agent::session::AgentSession;
use retort_agent::wait::{StepEnd, StepOutcome};
use retort_formula::formula::AgentKind;

use crate::plan::{RunOptions, SessionPlan};
use crate::run::{Progress, RunError, millis, write_file};
use crate::state::RunDir;

/// How a session of `profile`'s agent is known to be ready, and the
/// screen patterns (its dialogs) read meanwhile: the plan's rule, except
/// that Claude Code's ready screen is known (`? for shortcuts`).
pub(crate) fn session_readiness(
    planned: &Readiness,
    profile: &Profile,
) -> (Readiness, ScreenPatterns) {
    match (planned, profile.kind) {
        (Readiness::Settled { timeout }, AgentKind::ClaudeCode) => (
            Readiness::Shows {
                text: SHORTCUTS_FOOTER.to_string(),
                timeout: *timeout,
            },
            ScreenPatterns::claude_code(),
        ),
        (readiness, AgentKind::ClaudeCode) => (readiness.clone(), ScreenPatterns::claude_code()),
        (readiness, AgentKind::Generic) => {
            (readiness.clone(), ScreenPatterns::generic(&profile.screen))
        }
    }
}

/// What a session's readiness wait was for: the rule, the session's first
/// step, and where its pane's screen is saved.
pub(crate) struct Waited<'a> {
    pub(crate) readiness: &'a Readiness,
    pub(crate) first: &'a str,
    pub(crate) pane_file: &'a Path,
}

/// What waiting for the agent of a tmux session to be ready means for its
/// first step: nothing (it is ready, or ready enough, which is a warning),
/// or how the step ends before it starts.
pub(crate) fn not_ready_end(
    ready: ReadyEnd,
    session: &AgentSession,
    waited: &Waited<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
    warnings: &mut Vec<String>,
) -> Option<StepEnd> {
    match ready {
        ReadyEnd::Ready(after) => {
            progress(Progress::AgentReady {
                session: session.name(),
                after,
            });
            None
        }
        ReadyEnd::Unsettled(after) => {
            warnings.push(format!(
                "the agent in tmux session {} was still changing its screen after {}; its first prompt was pasted anyway (set `[agent] ready` to the text it shows when it waits for input)",
                session.name(),
                humantime::format_duration(after)
            ));
            None
        }
        ReadyEnd::NotShown { after, screen } => {
            Some(StepEnd::Broken(not_ready_reason(waited, after, &screen)))
        }
        ReadyEnd::AgentEnded(exit) => Some(StepEnd::AgentEnded(exit)),
        ReadyEnd::Interrupted(name) => Some(StepEnd::Interrupted(name)),
        ReadyEnd::Dialog { dialog, after } => Some(StepEnd::Watchdog {
            outcome: StepOutcome::Failed,
            reason: format!(
                "step `{}`: the agent could not start: after {} its screen showed {}, which retort never answers (whole screen in {}). To settle it once: {}",
                waited.first,
                humantime::format_duration(Duration::from_millis(millis(after))),
                dialog.name,
                waited.pane_file.display(),
                dialog.remedy
            ),
        }),
    }
}

/// Why the first step of a session failed when its agent never became
/// ready: what it was waiting for, and the last line its screen showed.
fn not_ready_reason(waited: &Waited<'_>, after: Duration, screen: &str) -> String {
    let waited_for = match waited.readiness {
        Readiness::Shows { text, .. } => format!("show `{text}` (its ready text)"),
        Readiness::Settled { .. } => "settle".to_string(),
    };
    let last = screen
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map_or_else(|| "a blank screen".to_string(), |line| format!("`{line}`"));
    format!(
        "step `{}`: the agent was not ready: its screen did not {waited_for} within {}; it last showed {last} (whole screen in {})",
        waited.first,
        humantime::format_duration(after),
        waited.pane_file.display()
    )
}

/// The command line of session `number`'s agent in tmux: for Claude Code,
/// with the settings file written to the run directory
/// (`claude-settings.json`, `claude-settings-2.json`, …), whose hooks run
/// this retort's `hook` subcommand; a generic agent's as written.
pub(crate) fn tmux_command(
    planned: &SessionPlan,
    options: &RunOptions,
    run: &RunDir,
    number: usize,
) -> Result<String, RunError> {
    let profile = &planned.profile;
    let settings = settings_file(run, number);
    if profile.kind == AgentKind::ClaudeCode {
        let retort = match &options.bin_dir {
            Some(dir) => shell_quote(&dir.join("retort").to_string_lossy()),
            None => "retort".to_string(),
        };
        let json = profile.claude_settings(&format!("{retort} hook"));
        let mut text = serde_json::to_vec_pretty(&json).unwrap_or_default();
        text.push(b'\n');
        write_file(&settings, &text)?;
    }
    Ok(profile.tmux_command(&planned.agent_command, &settings))
}
