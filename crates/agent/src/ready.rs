//! Waiting for a new agent session to be ready for its first prompt.
//!
//! An agent such as Claude Code takes a second or more to start, and what
//! is pasted before it reads its terminal can be lost or misread: before
//! it turns bracketed paste on, each newline of a pasted prompt is an
//! Enter, and some terminal programs discard input typed before they
//! start. So the first prompt of each session waits until the agent is
//! ready, in one of two ways ([`Readiness`]):
//!
//! - **Shows**: the formula says what the agent's screen shows when it
//!   waits for input (`[agent] ready = "❯"`, or `--ready` with `--agent`).
//!   The screen is read every [`POLL`] until it shows that text; if it does
//!   not within the timeout, the run fails, since pasting into an agent
//!   that is not ready (at a login or trust question, say) would only
//!   misfire.
//! - **Settled**: otherwise, the agent is taken to be ready once its
//!   screen has stayed the same for [`QUIET`] after showing something, or
//!   has stayed blank for [`BLANK`] (an agent that prints nothing until
//!   asked). A screen still changing at the timeout (a spinner) gets the
//!   prompt anyway, with a warning: the run does not fail on a guess.
//!
//! The wait ends early when the agent exits or its session goes, and on
//! SIGINT, SIGTERM or SIGHUP; and at once when the screen shows a dialog
//! retort never answers ([`crate::claude_code::ScreenPatterns::dialog`]:
//! Claude Code's folder-trust, API-key, login and onboarding dialogs, or a
//! generic agent's `[agent.screen] dialog`), naming it and how to settle it.
//! For Claude Code the ready text is known: `? for shortcuts` under its
//! input box.

use std::time::Duration;

use tokio::time::Instant;

use crate::claude_code::{Dialog, ScreenPatterns};
use crate::session::{AgentExit, AgentSession};
use crate::wait::Interrupts;

/// How often the agent's screen is read while waiting: every 100 ms.
pub const POLL: Duration = Duration::from_millis(100);

/// How long a screen that shows something must stay the same to count as
/// settled: 500 ms.
pub const QUIET: Duration = Duration::from_millis(500);

/// How long a blank screen must stay blank to count as settled: 2 s.
pub const BLANK: Duration = Duration::from_secs(2);

/// How a run knows that a new agent is ready for its first prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready when the agent's screen shows `text`; the run fails if it has
    /// not after `timeout`.
    Shows {
        /// The text, as the formula's `[agent] ready` or `--ready` gives it.
        text: String,
        /// How long to wait for it.
        timeout: Duration,
    },
    /// Ready when the screen has settled ([`QUIET`], [`BLANK`]); after
    /// `timeout`, ready anyway.
    Settled {
        /// How long to wait at most.
        timeout: Duration,
    },
}

impl Readiness {
    /// One line saying when the agent counts as ready: "when its screen
    /// shows `❯` (at most 60s)".
    pub fn describe(&self) -> String {
        match self {
            Readiness::Shows { text, timeout } => format!(
                "when its screen shows `{text}` (at most {})",
                humantime::format_duration(*timeout)
            ),
            Readiness::Settled { timeout } => format!(
                "when its screen settles (at most {})",
                humantime::format_duration(*timeout)
            ),
        }
    }

    /// The longest the wait can take.
    pub fn timeout(&self) -> Duration {
        match self {
            Readiness::Shows { timeout, .. } | Readiness::Settled { timeout } => *timeout,
        }
    }
}

/// How waiting for readiness ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyEnd {
    /// The agent is ready, after this long.
    Ready(Duration),
    /// The screen was still changing at the timeout; the prompt goes
    /// anyway.
    Unsettled(Duration),
    /// The screen never showed the ready text within the timeout; what it
    /// showed last.
    NotShown {
        /// The timeout.
        after: Duration,
        /// The last screen read, trimmed.
        screen: String,
    },
    /// The agent exited, or its session went, first.
    AgentEnded(AgentExit),
    /// retort was interrupted by this signal first.
    Interrupted(&'static str),
    /// The screen showed a dialog retort never answers.
    Dialog {
        /// The dialog and how to settle it.
        dialog: Dialog,
        /// After this long.
        after: Duration,
    },
}

/// Waits until the agent in `session` is ready, as `readiness` says, or
/// shows one of the dialogs of `patterns`.
pub async fn wait_until_ready(
    session: &AgentSession,
    readiness: &Readiness,
    patterns: &ScreenPatterns,
    interrupts: &mut Interrupts,
) -> ReadyEnd {
    let started = Instant::now();
    let deadline = started + readiness.timeout();
    let mut judge = Judge::new(readiness);
    let mut ticks = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = session.gone() => {}
            name = interrupts.recv() => return ReadyEnd::Interrupted(name),
        }
        if let Some(exit) = session.agent_exit() {
            return ReadyEnd::AgentEnded(exit);
        }
        let now = Instant::now();
        let screen = session.screen().await;
        if let Some(dialog) = screen.as_deref().and_then(|s| patterns.dialog(s)) {
            return ReadyEnd::Dialog {
                dialog,
                after: now - started,
            };
        }
        match judge.look(screen.as_deref(), now - started) {
            Verdict::Ready => return ReadyEnd::Ready(now - started),
            Verdict::Waiting if now < deadline => {}
            Verdict::Waiting => {
                return match readiness {
                    Readiness::Shows { .. } => ReadyEnd::NotShown {
                        after: readiness.timeout(),
                        screen: judge.last.unwrap_or_default(),
                    },
                    Readiness::Settled { .. } => ReadyEnd::Unsettled(now - started),
                };
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ready,
    Waiting,
}

/// Judges successive reads of the screen; time is measured from the
/// session's start.
struct Judge<'a> {
    text: Option<&'a str>,
    last: Option<String>,
    /// When the screen last changed.
    changed: Duration,
}

impl<'a> Judge<'a> {
    fn new(readiness: &'a Readiness) -> Self {
        Judge {
            text: match readiness {
                Readiness::Shows { text, .. } => Some(text.as_str()),
                Readiness::Settled { .. } => None,
            },
            last: None,
            changed: Duration::ZERO,
        }
    }

    /// The verdict on `screen` (`None`: it could not be read), read `at`.
    fn look(&mut self, screen: Option<&str>, at: Duration) -> Verdict {
        let Some(screen) = screen else {
            return Verdict::Waiting;
        };
        // Trailing blanks are no change (a cursor moving over nothing), and
        // blank screens are all alike: whitespace the terminal draws while
        // the agent starts is no sign of life.
        let screen = screen.trim_end();
        if let Some(text) = self.text {
            self.last = Some(screen.to_string());
            return match screen.contains(text) {
                true => Verdict::Ready,
                false => Verdict::Waiting,
            };
        }
        if self.last.as_deref() != Some(screen) {
            self.last = Some(screen.to_string());
            self.changed = at;
        }
        let still = at.saturating_sub(self.changed);
        let settled = match screen.is_empty() {
            true => still >= BLANK,
            false => still >= QUIET,
        };
        match settled {
            true => Verdict::Ready,
            false => Verdict::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_screen_that_shows_something_is_settled_once_it_stays_the_same() {
        let readiness = Readiness::Settled {
            timeout: ms(60_000),
        };
        let mut judge = Judge::new(&readiness);
        assert_eq!(judge.look(Some(""), ms(100)), Verdict::Waiting);
        assert_eq!(judge.look(Some("Welcome"), ms(700)), Verdict::Waiting);
        assert_eq!(judge.look(Some("Welcome\n> "), ms(900)), Verdict::Waiting);
        assert_eq!(judge.look(Some("Welcome\n> "), ms(1_300)), Verdict::Waiting);
        assert_eq!(judge.look(Some("Welcome\n> "), ms(1_400)), Verdict::Ready);
    }

    #[test]
    fn a_blank_screen_is_settled_only_after_longer() {
        let readiness = Readiness::Settled {
            timeout: ms(60_000),
        };
        let mut judge = Judge::new(&readiness);
        assert_eq!(judge.look(Some(""), ms(100)), Verdict::Waiting);
        assert_eq!(judge.look(Some("  \n"), ms(1_000)), Verdict::Waiting);
        assert_eq!(judge.look(Some(""), ms(1_900)), Verdict::Waiting);
        assert_eq!(judge.look(Some(""), ms(2_100)), Verdict::Ready);
    }

    #[test]
    fn a_ready_text_is_waited_for_however_still_the_screen() {
        let readiness = Readiness::Shows {
            text: "❯".to_string(),
            timeout: ms(60_000),
        };
        let mut judge = Judge::new(&readiness);
        assert_eq!(judge.look(Some("Loading…"), ms(100)), Verdict::Waiting);
        assert_eq!(judge.look(Some("Loading…"), ms(5_000)), Verdict::Waiting);
        assert_eq!(judge.look(None, ms(5_100)), Verdict::Waiting);
        assert_eq!(judge.look(Some("╭──╮\n│ ❯ │"), ms(5_200)), Verdict::Ready);
        assert_eq!(judge.last.as_deref(), Some("╭──╮\n│ ❯ │"));
    }
}
