//! The agent's hook events: what Claude Code's hooks tell of a session.
//!
//! retort's settings for Claude Code ([`crate::profile::Profile::claude_settings`])
//! run `retort hook` on the `Stop` hook (a turn ended) and the
//! `Notification` hook (it waits on a permission, ~6 s after the dialog
//! shows, as `crates/testkit/README.md` measured). `retort hook` appends the
//! hook's JSON object, on one line, to its session's events file
//! ([`record`]): the file `$RETORT_EVENTS_FILE` names
//! ([`crate::run_dir::EVENTS_FILE_ENV`]; `RUN/agent-events.jsonl` for the
//! first session, `agent-events-2.jsonl`, … for sessions that run beside
//! it, [`crate::run_dir::RunDir::events_file`]). The run reads the new
//! lines as they come ([`EventReader`]).
//!
//! A `Stop` object (Claude Code 2.1.197) holds `hook_event_name: "Stop"`,
//! `session_id`, `transcript_path` (the session's JSONL transcript, see
//! [`crate::transcript`]), `last_assistant_message`, `cwd`, …; a
//! `Notification` object `hook_event_name: "Notification"`, `message`,
//! `notification_type: "permission_prompt"`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The events file's name in the run directory.
pub const EVENTS_FILE: &str = "agent-events.jsonl";

/// The most `retort hook` reads of its standard input: 1 MiB. A longer
/// object is not recorded.
pub const MAX_HOOK_INPUT: u64 = 1024 * 1024;

/// `RUN/agent-events.jsonl`: the first session's events file, where
/// `retort hook` writes when its session names no other.
pub fn events_file(run_dir: &Path) -> PathBuf {
    run_dir.join(EVENTS_FILE)
}

/// What `retort hook` does: reads one JSON object from `input` (at most
/// [`MAX_HOOK_INPUT`] bytes) and appends it, as one line, to the events
/// file `file` in a single `O_APPEND` write (mode 0600 when created).
/// Input that is not a JSON object, or too long, is dropped.
///
/// # Errors
/// The I/O error reading the input or writing the file.
pub fn record(file: &Path, input: impl Read) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = Vec::new();
    input.take(MAX_HOOK_INPUT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_HOOK_INPUT {
        return Ok(());
    }
    let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(());
    };
    let mut line = serde_json::to_vec(&value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)?;
    file.write_all(&line)
}

/// One hook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    /// A turn ended.
    Stop {
        /// The session's transcript, when given.
        transcript_path: Option<PathBuf>,
    },
    /// The agent waits on the user; `permission` when it asks for a
    /// permission (`notification_type: "permission_prompt"`).
    Notification {
        /// Whether it is a permission request.
        permission: bool,
        /// Its message ("Claude needs your permission").
        message: String,
    },
    /// Any other hook.
    Other,
}

impl HookEvent {
    /// The event a hook's JSON object tells of.
    pub fn from_json(value: &Value) -> HookEvent {
        let text = |key: &str| value.get(key).and_then(Value::as_str);
        match text("hook_event_name") {
            Some("Stop") => HookEvent::Stop {
                transcript_path: text("transcript_path").map(PathBuf::from),
            },
            Some("Notification") => HookEvent::Notification {
                permission: text("notification_type") == Some("permission_prompt"),
                message: text("message").unwrap_or_default().to_string(),
            },
            _ => HookEvent::Other,
        }
    }
}

/// Reads the events appended to an events file since the reader was made.
#[derive(Debug)]
pub struct EventReader {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl EventReader {
    /// A reader of `path` that skips what the file holds now (the events of
    /// earlier sessions of the run).
    pub fn new(path: PathBuf) -> EventReader {
        let offset = std::fs::metadata(&path).map_or(0, |m| m.len());
        EventReader {
            path,
            offset,
            partial: Vec::new(),
        }
    }

    /// The events appended since the last call, in order; none when the
    /// file is missing or unreadable. A line still being written waits for
    /// the next call.
    pub fn read_new(&mut self) -> Vec<HookEvent> {
        use std::io::{Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        complete
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
            .map(|value| HookEvent::from_json(&value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_recorded_one_line_each_and_read_back_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = events_file(dir.path());
        let earlier = r#"{"hook_event_name":"Stop","transcript_path":"/old.jsonl"}"#;
        record(&file, earlier.as_bytes()).unwrap();
        let mut reader = EventReader::new(file.clone());
        assert_eq!(reader.read_new(), []);

        let stop = "{\n  \"hook_event_name\": \"Stop\",\n  \"transcript_path\": \"/t.jsonl\"\n}\n";
        record(&file, stop.as_bytes()).unwrap();
        record(&file, "not json".as_bytes()).unwrap();
        let notification = r#"{"hook_event_name":"Notification","message":"Claude needs your permission","notification_type":"permission_prompt"}"#;
        record(&file, notification.as_bytes()).unwrap();
        assert_eq!(
            reader.read_new(),
            [
                HookEvent::Stop {
                    transcript_path: Some(PathBuf::from("/t.jsonl"))
                },
                HookEvent::Notification {
                    permission: true,
                    message: "Claude needs your permission".to_string()
                }
            ]
        );
        assert_eq!(reader.read_new(), []);
        let text = std::fs::read_to_string(events_file(dir.path())).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn oversized_input_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_HOOK_INPUT as usize));
        record(&events_file(dir.path()), big.as_bytes()).unwrap();
        assert!(!events_file(dir.path()).exists());
    }
}
