//! What an agent's screen in tmux says: that it is ready, busy or idle,
//! that it shows a dialog, asks for a permission, or printed an API error.
//!
//! For Claude Code the patterns are the ones measured on version 2.1.197
//! (`crates/testkit/README.md`, "The screen in tmux"; the tests of
//! `retort-testkit` pin them): ready and idle `? for shortcuts`, busy
//! `esc to interrupt`, the folder-trust, API-key, login and onboarding
//! dialogs, the permission dialog (`Do you want to proceed?` under
//! `● Bash(COMMAND)`), and `● API Error: Request rejected (429) · …`. For a
//! generic agent they come from the formula's `[agent.screen]`.

use retort_formula::formula::{AgentKind, ScreenSection};

use crate::run_dir::RunDir;

/// Claude Code's footer when it waits for input (ready, or a turn over).
pub const SHORTCUTS_FOOTER: &str = "? for shortcuts";
/// Claude Code's footer while a turn runs.
pub const BUSY_FOOTER: &str = "esc to interrupt";
/// Claude Code's input line starts with `❯` and a no-break space.
pub const INPUT_MARK: &str = "❯\u{a0}";

/// A dialog retort never answers, and how the operator settles it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// A substring of the screen that shows it.
    pub pattern: String,
    /// What it is, for the reason.
    pub name: String,
    /// How to settle it once, so that it does not come back.
    pub remedy: String,
}

/// The patterns of one agent's screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenPatterns {
    /// Which CLI.
    pub kind: AgentKind,
    /// Shown while a turn runs.
    pub busy: Vec<String>,
    /// Shown when it waits for input.
    pub idle: Vec<String>,
    /// Shown when it asks for a permission.
    pub permission: Vec<String>,
    /// Dialogs retort never answers.
    pub dialogs: Vec<Dialog>,
    /// Shown when it is rate-limited.
    pub rate_limit: Vec<String>,
    /// Shown when its model API fails.
    pub error: Vec<String>,
}

/// What the permission dialog asks for: `Bash(rm -rf build)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionAsked {
    /// The tool (`Bash`), when the screen names it.
    pub tool: Option<String>,
    /// The tool call as the screen shows it (`Bash(rm -rf build)`), or the
    /// dialog's matching line.
    pub call: String,
}

impl ScreenPatterns {
    /// Claude Code 2.1.197's patterns.
    pub fn claude_code() -> ScreenPatterns {
        let dialog = |pattern: &str, name: &str, remedy: &str| Dialog {
            pattern: pattern.to_string(),
            name: name.to_string(),
            remedy: remedy.to_string(),
        };
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        ScreenPatterns {
            kind: AgentKind::ClaudeCode,
            busy: strings(&[BUSY_FOOTER]),
            idle: strings(&[SHORTCUTS_FOOTER]),
            permission: strings(&[
                "Do you want to proceed?",
                "Do you want to make this edit",
                "Do you want to create",
            ]),
            dialogs: vec![
                dialog(
                    "Is this a project you created or one you trust?",
                    "Claude Code's folder-trust dialog (\"Quick safety check: Is this a project you created or one you trust?\")",
                    "retort never trusts a folder for you: run `claude` once in the working folder as the user retort runs as, and choose \"Yes, I trust this folder\"; or set `projects[\"<folder>\"].hasTrustDialogAccepted = true` in ~/.claude.json",
                ),
                dialog(
                    "Detected a custom API key in your environment",
                    "Claude Code's API-key dialog (\"Detected a custom API key in your environment · Do you want to use this API key?\")",
                    "retort never answers it: run `claude` once with the same ANTHROPIC_API_KEY and choose \"Yes\"; or add the key's last 20 characters to `customApiKeyResponses.approved` in ~/.claude.json",
                ),
                dialog(
                    "Not logged in",
                    "Claude Code says \"Not logged in\"",
                    "approve the API key (run `claude` once and answer \"Yes\" to \"Do you want to use this API key?\", or move the key's last 20 characters from `customApiKeyResponses.rejected` to `approved` in ~/.claude.json), or run `claude` and `/login`",
                ),
                dialog(
                    "Choose the text style",
                    "Claude Code's first-run onboarding",
                    "run `claude` once as the user retort runs as and finish the onboarding; or set `\"hasCompletedOnboarding\": true` in ~/.claude.json",
                ),
                dialog(
                    "Select login method",
                    "Claude Code's login dialog",
                    "run `claude` once and log in, or set ANTHROPIC_API_KEY and approve it (`customApiKeyResponses.approved` in ~/.claude.json)",
                ),
                dialog(
                    "Unable to connect to Anthropic services",
                    "Claude Code's onboarding could not reach Anthropic",
                    "set `\"hasCompletedOnboarding\": true` in ~/.claude.json (and ANTHROPIC_BASE_URL where the model API is elsewhere)",
                ),
            ],
            rate_limit: strings(&[
                "API Error: Request rejected (429)",
                "usage limit reached",
                "hit your limit",
                "limit reached ∙ resets",
                "limit reached · resets",
            ]),
            error: strings(&["API Error:"]),
        }
    }

    /// A generic agent's patterns, from `[agent.screen]`. Its dialogs are
    /// named by their pattern.
    pub fn generic(section: &ScreenSection) -> ScreenPatterns {
        ScreenPatterns {
            kind: AgentKind::Generic,
            busy: section.busy.clone(),
            idle: section.idle.clone(),
            permission: section.permission.clone(),
            dialogs: section
                .dialog
                .iter()
                .map(|pattern| Dialog {
                    pattern: pattern.clone(),
                    name: format!("a dialog (its screen shows `{pattern}`)"),
                    remedy: "retort never answers dialogs: start the agent by hand once in the working folder and settle it".to_string(),
                })
                .collect(),
            rate_limit: section.rate_limit.clone(),
            error: section.error.clone(),
        }
    }

    /// The dialog `screen` shows, if any. Claude Code's folder-trust
    /// dialog names the folder (the line after `Accessing workspace:`),
    /// which then replaces `<folder>` in its remedy.
    pub fn dialog(&self, screen: &str) -> Option<Dialog> {
        let mut dialog = self
            .dialogs
            .iter()
            .find(|d| screen.contains(&d.pattern))?
            .clone();
        let lines: Vec<&str> = screen.lines().collect();
        let folder = lines
            .iter()
            .position(|line| line.trim() == "Accessing workspace:")
            .and_then(|at| {
                lines[at + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .find(|l| !l.is_empty())
            });
        if let Some(folder) = folder {
            dialog.remedy = dialog.remedy.replace("<folder>", folder);
        }
        Some(dialog)
    }

    /// Whether `screen` shows the agent at work.
    pub fn busy(&self, screen: &str) -> bool {
        self.busy.iter().any(|p| screen.contains(p.as_str()))
    }

    /// Whether `screen` shows the agent waiting for input (and not busy).
    pub fn idle(&self, screen: &str) -> bool {
        !self.busy(screen) && self.idle.iter().any(|p| screen.contains(p.as_str()))
    }

    /// The permission `screen` asks for, if any: for Claude Code the last
    /// `● Tool(…)` line above the question (else the line under the
    /// dialog's heading, `Bash command`); for a generic agent the line
    /// that matched.
    pub fn permission(&self, screen: &str) -> Option<PermissionAsked> {
        let lines: Vec<&str> = screen.lines().collect();
        let at = lines
            .iter()
            .rposition(|line| self.permission.iter().any(|p| line.contains(p.as_str())))?;
        if self.kind == AgentKind::ClaudeCode {
            if let Some((tool, call)) = last_tool_call(&lines[..at]) {
                return Some(PermissionAsked {
                    tool: Some(tool),
                    call,
                });
            }
            if let Some(heading) = lines[..at].iter().rposition(|l| l.trim() == "Bash command")
                && let Some(command) = lines[heading + 1..at].iter().find(|l| !l.trim().is_empty())
            {
                return Some(PermissionAsked {
                    tool: Some("Bash".to_string()),
                    call: format!("Bash({})", command.trim()),
                });
            }
        }
        Some(PermissionAsked {
            tool: None,
            call: lines[at].trim().to_string(),
        })
    }

    /// The lines of `screen` that show a rate limit.
    pub fn rate_limit_lines<'s>(&self, screen: &'s str) -> Vec<&'s str> {
        matching_lines(screen, &self.rate_limit)
    }

    /// The lines of `screen` that show an API error (rate limits among
    /// them).
    pub fn error_lines<'s>(&self, screen: &'s str) -> Vec<&'s str> {
        matching_lines(screen, &self.error)
    }

    /// The text on Claude Code's input line (after `❯ `), trimmed; `None`
    /// when the screen shows no input line (a dialog covers it) or the
    /// agent is not Claude Code.
    pub fn input_line<'s>(&self, screen: &'s str) -> Option<&'s str> {
        if self.kind != AgentKind::ClaudeCode {
            return None;
        }
        screen
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(INPUT_MARK))
            .map(str::trim)
    }
}

/// The last Claude Code tool call among `lines`, `● Tool(arguments)`: the
/// tool's name and the whole call.
pub fn last_tool_call(lines: &[&str]) -> Option<(String, String)> {
    lines.iter().rev().find_map(|line| {
        let call = line.trim().strip_prefix("● ")?;
        let open = call.find('(')?;
        let tool = &call[..open];
        let named = !tool.is_empty() && tool.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        (named && call.ends_with(')')).then(|| (tool.to_string(), call.to_string()))
    })
}

fn matching_lines<'s>(screen: &'s str, patterns: &[String]) -> Vec<&'s str> {
    screen
        .lines()
        .filter(|line| patterns.iter().any(|p| line.contains(p.as_str())))
        .map(|line| line.trim().trim_start_matches("● ").trim())
        .collect()
}

/// When a rate limit ends, as its line says: the text after `resets` or
/// `reset at` / `try again`, when there is one.
pub fn reset_time(line: &str) -> Option<String> {
    let lower = line.to_lowercase();
    ["resets ", "reset at ", "try again at ", "try again in "]
        .iter()
        .find_map(|key| lower.find(key).map(|at| at + key.len()))
        .map(|at| line[at..].trim().trim_end_matches('.').to_string())
        .filter(|text| !text.is_empty())
}

/// The settings file of session `session` (from 0) of a run:
/// `RUN/claude-settings.json`, then `claude-settings-2.json`, ….
pub fn settings_file(run: &RunDir, session: usize) -> std::path::PathBuf {
    run.path().join(match session {
        0 => "claude-settings.json".to_string(),
        n => format!("claude-settings-{}.json", n + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERMISSION: &str = "● I will clean up.\n\n● Bash(rm -rf /tmp/build)\n  ⎿ \u{a0}Waiting…\n\n Bash command\n\n   rm -rf /tmp/build\n   Scripted command\n\n This command requires approval\n\n Do you want to proceed?\n ❯ 1. Yes\n   2. Yes, and don’t ask again for: rm -rf *\n   3. No\n\n Esc to cancel · Tab to amend · ctrl+e to explain";

    #[test]
    fn a_permission_dialog_names_the_tool_and_command() {
        let patterns = ScreenPatterns::claude_code();
        assert_eq!(
            patterns.permission(PERMISSION),
            Some(PermissionAsked {
                tool: Some("Bash".to_string()),
                call: "Bash(rm -rf /tmp/build)".to_string()
            })
        );
        let no_call = PERMISSION.replace("● Bash(rm -rf /tmp/build)", "");
        assert_eq!(
            patterns.permission(&no_call).unwrap().call,
            "Bash(rm -rf /tmp/build)"
        );
        assert_eq!(patterns.permission("❯\u{a0}\n? for shortcuts"), None);
        assert_eq!(patterns.input_line(PERMISSION), None);
    }

    #[test]
    fn dialogs_errors_and_the_input_line_are_read() {
        let patterns = ScreenPatterns::claude_code();
        let trust = " Accessing workspace:\n /w\n Quick safety check: Is this a project you created or one you trust? (Like your own code)\n ❯ 1. Yes, I trust this folder";
        assert!(
            patterns
                .dialog(trust)
                .unwrap()
                .name
                .contains("folder-trust")
        );
        let error = "● API Error: Request rejected (429) · Rate limited, resets 3pm (UTC)\n\n✻ Worked for 0s\n\n❯\u{a0}\n  ? for shortcuts";
        assert_eq!(
            patterns.rate_limit_lines(error),
            ["API Error: Request rejected (429) · Rate limited, resets 3pm (UTC)"]
        );
        assert_eq!(patterns.error_lines(error).len(), 1);
        assert_eq!(
            reset_time(patterns.rate_limit_lines(error)[0]).as_deref(),
            Some("3pm (UTC)")
        );
        assert!(patterns.idle(error));
        assert_eq!(patterns.input_line(error), Some(""));
        assert_eq!(
            patterns.input_line("❯\u{a0}[Pasted text #1 +40 lines]\n  esc to interrupt"),
            Some("[Pasted text #1 +40 lines]")
        );
        assert!(!patterns.idle("❯\u{a0}\n  esc to interrupt · ? for shortcuts"));
    }

    #[test]
    fn a_generic_agents_patterns_come_from_the_formula() {
        let section: ScreenSection =
            toml::from_str("permission = [\"Allow?\"]\ndialog = [\"Log in\"]").unwrap();
        let patterns = ScreenPatterns::generic(&section);
        assert_eq!(
            patterns.permission("x\nAllow? run ls\n").unwrap().call,
            "Allow? run ls"
        );
        assert!(patterns.dialog("Please Log in").is_some());
        assert_eq!(patterns.input_line("❯\u{a0}x"), None);
    }
}
