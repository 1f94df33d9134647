//! Stable substrings of Claude Code 2.1.197's screen in tmux (200×50,
//! `capture-pane -p`), as measured by this crate's tests. An agent profile
//! can match on these; the tests fail when a new version changes them.

/// The input line's prompt: `❯` then U+00A0 (no-break space), at the start of
/// a line. Shown on the ready screen, while busy and when idle.
pub const INPUT_PROMPT: &str = "\n❯\u{a0}";

/// The footer under the input box when nothing is typed and no turn runs.
pub const SHORTCUTS_FOOTER: &str = "? for shortcuts";

/// The footer while a turn runs: `  esc to interrupt · ← for agents`. The
/// most reliable busy marker. Above the input box a spinner line shows
/// `<glyph> <Verb>…` (e.g. `✻ Mulling… (0s · ↓ 16 tokens)`); its glyph cycles
/// (`✻`, `✽`, `✶`, …) and its verb is random, so do not match on either.
pub const BUSY_FOOTER: &str = "esc to interrupt";

/// The first character of the line that ends a turn, `✻ <Verb> for <N>s`
/// (e.g. `✻ Cogitated for 3s`; the verb is random). The busy spinner can
/// show the same glyph, so a turn is over when a line starts with it, holds
/// `" for "`, ends with `s` and has no `…`, and the busy footer is gone.
pub const TURN_DONE_MARK: char = '✻';

/// The folder-trust dialog's question.
pub const TRUST_QUESTION: &str = "Is this a project you created or one you trust?";
/// The folder-trust dialog's first (selected) option.
pub const TRUST_YES: &str = "❯ 1. Yes, I trust this folder";
/// The folder-trust dialog's heading (followed by the folder on the next line).
pub const TRUST_HEADING: &str = "Accessing workspace:";

/// The API-key dialog's heading.
pub const API_KEY_HEADING: &str = "Detected a custom API key in your environment";
/// The API-key dialog's question.
pub const API_KEY_QUESTION: &str = "Do you want to use this API key?";
/// The API-key dialog's default (selected) option: Enter REJECTS the key.
pub const API_KEY_DEFAULT_NO: &str = "❯ 2. No (recommended)";
/// The footer after the key was rejected.
pub const NOT_LOGGED_IN: &str = "Not logged in · Run /login";

/// The permission dialog's question for a tool call.
pub const PERMISSION_QUESTION: &str = "Do you want to proceed?";
/// The permission dialog's line before the question.
pub const PERMISSION_REQUIRED: &str = "This command requires approval";
/// The permission dialog's heading for Bash.
pub const PERMISSION_BASH_HEADING: &str = "Bash command";
/// The permission dialog's first (selected) option.
pub const PERMISSION_YES: &str = "❯ 1. Yes";

/// The start of the line shown for a failed API call (then the status in
/// parentheses and the server's message): `● API Error: Request rejected (429) · <message>`.
pub const API_ERROR: &str = "API Error:";
