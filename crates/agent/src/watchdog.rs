//! The watchdog of a tmux session: what retort does besides waiting for a
//! step's signal, so that an agent that cannot go on ends its step within
//! seconds, with a reason that says what was seen and what to do.
//!
//! For each step, [`TmuxWatch::deliver`] pastes the prompt and, for Claude
//! Code, checks that it arrived: after the paste its input line
//! (`❯ …`; each of the seed formula's prompts shows as `[Pasted text #N
//! +M lines]`, e.g. `[Pasted text #1 +106 lines]` for its first) must show
//! it before Enter, and after Enter the agent must take it (its input line
//! changes, or it turns busy); each is tried twice, then the step fails,
//! "prompt not delivered". [`TmuxWatch::watch_step`] then waits for the
//! signal (`retort signal`, or `PHASE:…` in the agent's `$PHASE_FILE`)
//! while it reads, every [`POLL`]:
//!
//! - the screen: a permission request ends the step as `[agent]
//!   on_permission` says (fail, or escalate), naming the tool and command;
//!   a new rate-limit line (`API Error: Request rejected (429)`, a usage
//!   limit) ends it rate-limited, with the reset time when shown; another
//!   new `API Error:` line fails it with that line. Claude Code's
//!   `Notification` hook comes ~6 s after a permission dialog shows, so
//!   the screen is what tells within a second.
//! - the hook events ([`crate::events`]): `Stop` says a turn ended. A turn
//!   that ends without a signal (or, where there are no hooks, an idle
//!   screen that stays the same for [`IDLE_SETTLE`]) gets one nudge, the
//!   signal commands pasted; if the agent is still idle without
//!   signalling `[agent] idle_timeout` after it, the step fails: "the
//!   agent stopped without signalling".
//!
//! [`TmuxWatch::settle`] waits, after a signalled step, for the agent's
//! turn to end (its `Stop` hook) before the next prompt is pasted: a prompt
//! pasted while Claude Code still finishes its turn would arrive as a
//! queued note, not as a prompt. It then counts the step's usage from the
//! transcript ([`crate::transcript`]).
//!
//! Delivering the prompt ([`TmuxWatch::deliver`]) is in `deliver`.

mod deliver;

use std::path::PathBuf;
use std::time::Duration;

use retort_formula::formula::{AgentKind, OnPermission};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::claude_code::ScreenPatterns;
use crate::events::{EventReader, HookEvent};
use crate::profile::Profile;
use crate::run_dir::RunDir;
use crate::session::{AgentExit, AgentSession};
use crate::signal;
use crate::transcript::UsageCounter;
use crate::usage::Usage;
use crate::wait::{Interrupts, LIVENESS_INTERVAL, StepEnd, StepOutcome};

pub use deliver::{DELIVERY_WAIT, last_line};

/// How often the screen and the hook events are read: every 250 ms.
pub const POLL: Duration = Duration::from_millis(250);

/// How long an idle screen must stay the same to count as a turn ended,
/// where no `Stop` hook says so: 3 s.
pub const IDLE_SETTLE: Duration = Duration::from_secs(3);

/// The watchdog's state for one tmux session.
#[derive(Debug)]
pub struct TmuxWatch {
    patterns: ScreenPatterns,
    idle_timeout: Duration,
    on_permission: OnPermission,
    /// The session's number (from 0): whose phase file it reads.
    session: usize,
    /// The session's own hook events (Claude Code only).
    events: Option<EventReader>,
    /// Whether a prompt was taken and its turn has not ended yet.
    turn_open: bool,
    /// When the screen last changed, and what it was.
    last_screen: Option<(String, Instant)>,
    /// Error lines on the screen before the step's prompt, by text.
    baseline_errors: Vec<String>,
    permission_notified: Option<String>,
    transcripts: Vec<PathBuf>,
    usage: UsageCounter,
}

impl TmuxWatch {
    /// The watchdog of session `session` (from 0) of `profile`'s agent in
    /// `run`: Claude Code's screen and hooks (that session's events file,
    /// [`RunDir::events_file`]), or a generic agent's `[agent.screen]`;
    /// the session's own phase file ([`RunDir::agent_phase_file`]).
    pub fn new(profile: &Profile, run: &RunDir, session: usize) -> TmuxWatch {
        let claude = profile.kind == AgentKind::ClaudeCode;
        TmuxWatch {
            patterns: match claude {
                true => ScreenPatterns::claude_code(),
                false => ScreenPatterns::generic(&profile.screen),
            },
            idle_timeout: profile.idle_timeout,
            on_permission: profile.on_permission,
            session,
            events: claude.then(|| EventReader::new(run.events_file(session))),
            turn_open: false,
            last_screen: None,
            baseline_errors: Vec::new(),
            permission_notified: None,
            transcripts: Vec::new(),
            usage: UsageCounter::new(),
        }
    }

    /// The screen patterns it reads.
    pub fn patterns(&self) -> &ScreenPatterns {
        &self.patterns
    }

    /// Reads the new hook events: a `Stop` ends the open turn.
    fn drain(&mut self) -> bool {
        let Some(events) = &mut self.events else {
            return false;
        };
        let mut stopped = false;
        for event in events.read_new() {
            match event {
                HookEvent::Stop { transcript_path } => {
                    self.turn_open = false;
                    stopped = true;
                    if let Some(path) = transcript_path
                        && !self.transcripts.contains(&path)
                    {
                        self.transcripts.push(path);
                    }
                }
                HookEvent::Notification {
                    permission: true,
                    message,
                } => self.permission_notified = Some(message),
                _ => {}
            }
        }
        stopped
    }

    /// Waits for `step`'s end: its signal (or `PHASE:…` in the agent's phase
    /// file), the agent's exit, the session's disappearance, the deadline,
    /// an interrupt, or what the watchdog sees (see the module
    /// documentation). The reminder ([`nudge_text`]) is written to the
    /// session's `RUN/nudge.md` ([`RunDir::nudge_file`]) and pasted through tmux buffer `buffer`.
    #[allow(clippy::too_many_arguments)]
    pub async fn watch_step(
        &mut self,
        run: &RunDir,
        step: &str,
        session: &AgentSession,
        buffer: &str,
        wakes: &mut mpsc::UnboundedReceiver<()>,
        deadline: Instant,
        interrupts: &mut Interrupts,
    ) -> StepEnd {
        let mut ticks = tokio::time::interval(POLL);
        let mut liveness = tokio::time::interval(LIVENESS_INTERVAL);
        liveness.tick().await;
        let mut nudged_at: Option<Instant> = None;
        loop {
            match signal::read_step_end(run, self.session, step) {
                Ok(Some(record)) => return StepEnd::Signalled(record),
                Ok(None) => {}
                Err(error) => return StepEnd::Broken(format!("step `{step}`: {error}")),
            }
            if let Some(exit) = session.agent_exit() {
                return StepEnd::AgentEnded(exit);
            }
            self.drain();
            let screen = session.screen().await;
            if let Some(end) = screen.as_deref().and_then(|s| self.judge(step, s)) {
                return end;
            }
            if let Some(message) = &self.permission_notified {
                // A dialog whose question the patterns do not know: name
                // the last tool call the screen shows.
                let lines: Vec<&str> = screen.as_deref().unwrap_or_default().lines().collect();
                let call = crate::claude_code::last_tool_call(&lines).map_or_else(
                    || format!("a tool (Claude Code said \"{message}\")"),
                    |(_, call)| call,
                );
                return self.permission_end(step, &call);
            }
            let now = Instant::now();
            let idle = !self.turn_open || self.settled_idle(screen.as_deref(), now);
            if idle {
                match nudged_at {
                    None => {
                        if let Ok(Some(record)) = signal::read_step_end(run, self.session, step) {
                            return StepEnd::Signalled(record);
                        }
                        // One reminder; a failed paste leaves the idle
                        // timeout to end the step.
                        let nudge = run.nudge_file(self.session);
                        if retort_os::atomic::write_atomic(&nudge, nudge_text(step).as_bytes())
                            .is_ok()
                        {
                            let _ = self
                                .deliver(session, &nudge, buffer, Duration::from_millis(300))
                                .await;
                        }
                        nudged_at = Some(Instant::now());
                    }
                    Some(at) if now.duration_since(at) >= self.idle_timeout => {
                        return StepEnd::Watchdog {
                            outcome: StepOutcome::Failed,
                            reason: format!(
                                "step `{step}`: the agent stopped without signalling: its turn ended without `retort signal`, it was reminded once, and it was still idle {} later (`[agent] idle_timeout`); its last screen is saved in the run directory's agent-pane.txt",
                                humantime::format_duration(self.idle_timeout)
                            ),
                        };
                    }
                    Some(_) => {}
                }
            }
            tokio::select! {
                Some(()) = wakes.recv() => {}
                _ = ticks.tick() => {}
                () = session.gone() => {}
                () = tokio::time::sleep_until(deadline) => return StepEnd::TimedOut,
                _ = liveness.tick() => {
                    if !session.exists().await {
                        return StepEnd::AgentEnded(AgentExit::Gone);
                    }
                }
                name = interrupts.recv() => return StepEnd::Interrupted(name),
            }
        }
    }

    /// Whether the screen is idle and has stayed the same for
    /// [`IDLE_SETTLE`] (for agents whose turn's end no hook tells).
    fn settled_idle(&mut self, screen: Option<&str>, now: Instant) -> bool {
        let Some(screen) = screen else {
            return false;
        };
        let changed = match &self.last_screen {
            Some((last, _)) => last != screen,
            None => true,
        };
        if changed {
            self.last_screen = Some((screen.to_string(), now));
            return false;
        }
        let since = self.last_screen.as_ref().map_or(now, |(_, at)| *at);
        self.patterns.idle(screen) && now.duration_since(since) >= IDLE_SETTLE
    }

    /// What the screen says of the step, when it ends it.
    fn judge(&self, step: &str, screen: &str) -> Option<StepEnd> {
        if let Some(asked) = self.patterns.permission(screen) {
            return Some(self.permission_end(step, &asked.call));
        }
        // A line counts when the screen shows it more often than before the
        // prompt: errors of earlier steps stay on the screen.
        let new = |lines: Vec<&str>| -> Option<String> {
            lines
                .iter()
                .find(|line| {
                    let now = lines.iter().filter(|l| l == line).count();
                    let before = self.baseline_errors.iter().filter(|b| b == *line).count();
                    now > before
                })
                .map(|line| line.to_string())
        };
        if let Some(line) = new(self.patterns.rate_limit_lines(screen)) {
            let until = crate::claude_code::reset_time(&line)
                .map(|t| format!(" It resets {t}."))
                .unwrap_or_default();
            return Some(StepEnd::Watchdog {
                outcome: StepOutcome::RateLimited,
                reason: format!(
                    "step `{step}`: the agent was rate-limited by its model API: `{line}`.{until} Run again once the limit has reset."
                ),
            });
        }
        if let Some(line) = new(self.patterns.error_lines(screen)) {
            return Some(StepEnd::Watchdog {
                outcome: StepOutcome::Failed,
                reason: format!(
                    "step `{step}`: the agent's model API failed: `{line}`; check the API's status and the agent's credentials, then run again"
                ),
            });
        }
        None
    }

    fn permission_end(&self, step: &str, call: &str) -> StepEnd {
        let outcome = match self.on_permission {
            OnPermission::Fail => StepOutcome::Failed,
            OnPermission::Escalate => StepOutcome::Escalated,
        };
        StepEnd::Watchdog {
            outcome,
            reason: format!(
                "step `{step}`: the agent asked for permission to run {call}, and retort never answers permission requests. To allow it, add the rule to `[agent] allowed_tools` (or the step's `allowed_tools`), e.g. \"{call}\", or a prefix rule such as \"Bash(git status:*)\"; `[agent] on_permission = \"escalate\"` escalates such a step instead of failing it"
            ),
        }
    }

    /// After a signalled step: waits (at most `limit`) for the agent's turn
    /// to end, so that the next prompt is not pasted into a turn still
    /// running. Returns at once for an agent with no hooks.
    pub async fn settle(&mut self, session: &AgentSession, limit: Duration) {
        if self.events.is_none() {
            return;
        }
        let deadline = Instant::now() + limit;
        loop {
            self.drain();
            if !self.turn_open || session.agent_exit().is_some() || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The usage of the turns since the last call, from the session's
    /// transcripts (Claude Code). After a turn that ended (`turn_over`),
    /// its closing reply is waited for, up to 3 s: the `Stop` hook can come
    /// before the transcript's last line is written.
    pub async fn take_usage(&mut self, turn_over: bool) -> Option<Usage> {
        let last = self.transcripts.last()?.clone();
        if turn_over && !self.turn_open {
            for _ in 0..30 {
                if crate::transcript::turn_written(&last) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut total: Option<Usage> = None;
        for path in &self.transcripts {
            if let Some(usage) = self.usage.count_new(path) {
                total = Some(match total {
                    Some(sum) => sum + usage,
                    None => usage,
                });
            }
        }
        total
    }
}

/// The reminder pasted once when the agent's turn ends without a signal.
pub fn nudge_text(step: &str) -> String {
    format!(
        "You ended your turn without signalling step `{step}`. When the step is done, run `retort signal done`; if it cannot be done, `retort signal failed --reason \"why\"`; if it needs a human, `retort signal escalate --reason \"why\"`.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use retort_formula::formula::AgentSection;

    fn watch(agent: &str, command: &str) -> TmuxWatch {
        let agent: AgentSection = toml::from_str(agent).unwrap();
        let profile = Profile::new(&agent, command, &[]);
        TmuxWatch::new(&profile, &RunDir::new(PathBuf::from("/nonexistent")), 0)
    }

    fn watchdog_end(end: Option<StepEnd>) -> (StepOutcome, String) {
        match end {
            Some(StepEnd::Watchdog { outcome, reason }) => (outcome, reason),
            _ => panic!("no watchdog end"),
        }
    }

    const IDLE: &str = "❯\u{a0}\n  ? for shortcuts";

    #[test]
    fn an_api_error_counts_only_when_it_is_new() {
        let mut tmux = watch("", "claude");
        let error = "● API Error: Request rejected (429) · slow down\n✻ Worked for 0s\n";
        tmux.baseline_errors = tmux
            .patterns
            .error_lines(&format!("{error}{IDLE}"))
            .into_iter()
            .map(str::to_string)
            .collect();
        assert!(tmux.judge("s", &format!("{error}{IDLE}")).is_none());
        let (outcome, reason) = watchdog_end(tmux.judge("s", &format!("{error}{error}{IDLE}")));
        assert_eq!(outcome, StepOutcome::RateLimited);
        assert!(
            reason.contains("`API Error: Request rejected (429) · slow down`"),
            "{reason}"
        );

        let other = "● API Error: 500 Internal server error\n";
        let (outcome, reason) = watchdog_end(tmux.judge("s", &format!("{error}{other}{IDLE}")));
        assert_eq!(outcome, StepOutcome::Failed);
        assert!(
            reason.contains("`API Error: 500 Internal server error`"),
            "{reason}"
        );
    }

    #[test]
    fn a_permission_request_escalates_when_the_formula_says_so() {
        let tmux = watch("on_permission = \"escalate\"", "claude");
        let screen = "● Bash(git push)\n  ⎿ \u{a0}Waiting…\n Bash command\n   git push\n Do you want to proceed?\n ❯ 1. Yes\n";
        let (outcome, reason) = watchdog_end(tmux.judge("push", screen));
        assert_eq!(outcome, StepOutcome::Escalated);
        assert!(
            reason.starts_with("step `push`: the agent asked for permission to run Bash(git push)"),
            "{reason}"
        );
    }

    #[test]
    fn a_generic_agent_without_screen_patterns_is_never_judged() {
        let tmux = watch("", "bash agent.sh");
        assert!(
            tmux.judge("s", "API Error: 429\nDo you want to proceed?")
                .is_none()
        );
        assert!(tmux.events.is_none());
    }
}
