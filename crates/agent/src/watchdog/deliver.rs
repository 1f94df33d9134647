//! Delivering a step's prompt to a tmux session: the paste, and for Claude
//! Code the checks that its input line showed the prompt before Enter and
//! that the agent took it after (see the parent module's documentation).

use std::path::Path;
use std::time::Duration;

use retort_formula::formula::AgentKind;
use tokio::time::Instant;

use super::TmuxWatch;
use crate::claude_code::ScreenPatterns;
use crate::session::AgentSession;

/// How long the agent's input line may take to show a pasted prompt, and
/// to take it after Enter, before retort tries once more: 5 s.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(5);

impl TmuxWatch {
    /// Pastes the file `prompt` into the session through tmux buffer
    /// `buffer` and presses Enter after `submit_delay`; for Claude Code,
    /// checks that the prompt showed before Enter and was taken after it
    /// (see the module documentation).
    ///
    /// # Errors
    /// The reason: tmux failed, or the prompt was not delivered.
    pub async fn deliver(
        &mut self,
        session: &AgentSession,
        prompt: &Path,
        buffer: &str,
        submit_delay: Duration,
    ) -> Result<(), String> {
        self.drain();
        let before = session.screen().await.unwrap_or_default();
        self.baseline_errors = self
            .patterns
            .error_lines(&before)
            .into_iter()
            .map(str::to_string)
            .collect();
        self.last_screen = None;
        self.permission_notified = None;
        let tmux_failed = |e| format!("could not paste into tmux session {}: {e}", session.name());
        if self.patterns.kind != AgentKind::ClaudeCode {
            session
                .deliver(prompt, buffer, submit_delay)
                .await
                .map_err(tmux_failed)?;
            self.turn_open = true;
            return Ok(());
        }
        // Pasting into a dialog could answer it: never.
        if let Some(asked) = self.patterns.permission(&before) {
            return Err(format!(
                "the agent still waits on a permission request for {}, so its prompt was not pasted",
                asked.call
            ));
        }
        if let Some(dialog) = self.patterns.dialog(&before) {
            return Err(format!(
                "the agent's screen shows {}, so its prompt was not pasted. To settle it once: {}",
                dialog.name, dialog.remedy
            ));
        }
        let input_before = self.patterns.input_line(&before).map(str::to_string);
        let mut shown: Option<String> = None;
        for _ in 0..2 {
            if session.agent_exit().is_some() {
                return Ok(());
            }
            session.paste(prompt, buffer).await.map_err(tmux_failed)?;
            shown = self
                .poll_screen(session, |patterns, screen| {
                    patterns
                        .input_line(screen)
                        .filter(|text| !text.is_empty() && Some(*text) != input_before.as_deref())
                        .map(str::to_string)
                })
                .await;
            if shown.is_some() {
                break;
            }
        }
        let Some(shown) = shown else {
            let screen = session.screen().await.unwrap_or_default();
            return Err(format!(
                "prompt not delivered: it was pasted twice into tmux session {}, and the agent's input line did not show it within {} either time; the screen ended with {}",
                session.name(),
                humantime::format_duration(DELIVERY_WAIT),
                last_line(&screen)
            ));
        };
        tokio::time::sleep(submit_delay).await;
        for _ in 0..2 {
            if session.agent_exit().is_some() {
                return Ok(());
            }
            session.press_enter().await.map_err(tmux_failed)?;
            self.turn_open = true;
            let taken = self
                .poll_screen(session, |patterns, screen| {
                    (patterns.busy(screen) || patterns.input_line(screen) != Some(shown.as_str()))
                        .then_some(())
                })
                .await;
            if taken.is_some() {
                return Ok(());
            }
        }
        Err(format!(
            "prompt not delivered: the agent's input line showed it (`{shown}`), but after Enter, twice, the agent did not take it within {}",
            humantime::format_duration(DELIVERY_WAIT)
        ))
    }

    /// Reads the screen every 100 ms for [`DELIVERY_WAIT`] until `check`
    /// says something.
    async fn poll_screen<T>(
        &mut self,
        session: &AgentSession,
        check: impl Fn(&ScreenPatterns, &str) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + DELIVERY_WAIT;
        while Instant::now() < deadline {
            if let Some(screen) = session.screen().await
                && let Some(found) = check(&self.patterns, &screen)
            {
                return Some(found);
            }
            if self.drain() {
                // A turn ended: the prompt was taken, and answered.
                if let Some(screen) = session.screen().await
                    && let Some(found) = check(&self.patterns, &screen)
                {
                    return Some(found);
                }
            }
            if session.agent_exit().is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// The last non-blank line of `screen`, quoted, or "a blank screen".
pub fn last_line(screen: &str) -> String {
    screen
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map_or_else(|| "a blank screen".to_string(), |line| format!("`{line}`"))
}
