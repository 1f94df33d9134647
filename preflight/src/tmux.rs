//! The tmux collector: lists the sessions of one tmux server.
//!
//! Runs `tmux [-S SOCKET] ls -F FORMAT` (built with `tmux_interface`) as an async
//! child process, with stdin closed and the child killed if the collector is
//! dropped (e.g. on timeout). Without a configured socket, tmux picks its default
//! server exactly as an interactive `tmux ls` would: the server of `$TMUX` when run
//! inside tmux, else `default` under `$TMUX_TMPDIR` (or `/tmp`)`/tmux-UID/`.

use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use tmux_interface::{ListSessions, StdIO, Tmux};

use crate::snapshot::{CollectorStatus, TmuxSection, TmuxSession};

/// The `-F` format: one line per session, five tab-separated fields. The name
/// comes first and is split off from the right, so a name containing a tab still
/// parses. Times are unix seconds.
const FORMAT: &str = "#{session_name}\t#{session_windows}\t#{session_attached}\t#{session_created}\t#{session_activity}";

/// Lists the sessions on the tmux server at `socket` (tmux's default server when
/// `None`). Never fails: problems are reported through `status` and `reason`.
pub(crate) async fn collect(socket: Option<&Path>) -> TmuxSection {
    let mut tmux = Tmux::new();
    if let Some(socket) = socket {
        let Some(socket) = socket.to_str() else {
            return section(
                CollectorStatus::Error,
                format!(
                    "the tmux socket path is not valid UTF-8: {}",
                    socket.display()
                ),
            );
        };
        tmux = tmux.socket_path(socket);
    }
    let std_command = tmux
        .command(ListSessions::new().format(FORMAT))
        .stdin(Some(StdIO::Null))
        .stdout(Some(StdIO::Piped))
        .stderr(Some(StdIO::Piped))
        .into_command();
    let mut command = tokio::process::Command::from(std_command);
    command.kill_on_drop(true);

    let output = match command.output().await {
        Ok(output) => output,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return section(
                CollectorStatus::Unavailable,
                "tmux is not installed (not found on PATH)".to_owned(),
            );
        }
        Err(err) => {
            return section(CollectorStatus::Error, format!("could not run tmux: {err}"));
        }
    };

    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let (status, reason) = classify_failure(stderr.trim(), socket, output.status);
        return section(status, reason);
    }

    let stdout = String::from_utf8_lossy(&output.stdout);
    let (sessions, skipped) = parse_sessions(&stdout);
    let reason = match skipped.as_slice() {
        [] => None,
        [only] => Some(format!("skipped 1 unparsable line of tmux output: {only}")),
        [first, ..] => Some(format!(
            "skipped {} unparsable lines of tmux output; first: {first}",
            skipped.len()
        )),
    };
    TmuxSection {
        status: CollectorStatus::Ok,
        reason,
        sessions,
    }
}

/// A section with no sessions and the given status and reason.
pub(crate) fn section(status: CollectorStatus, reason: String) -> TmuxSection {
    TmuxSection {
        status,
        reason: Some(reason),
        sessions: Vec::new(),
    }
}

/// Maps a failed `tmux ls` to a status and reason.
///
/// - `no server running on …`, or `error connecting to … (No such file or
///   directory | Connection refused)`: no server → `Unavailable`.
/// - any other `error connecting to …` (e.g. `Permission denied`): a server may
///   exist but cannot be reached → `Error` with tmux's message.
/// - anything else → `Error` with tmux's trimmed stderr.
fn classify_failure(
    stderr: &str,
    socket: Option<&Path>,
    exit: std::process::ExitStatus,
) -> (CollectorStatus, String) {
    let no_server = stderr.contains("no server running")
        || (stderr.contains("error connecting to")
            && (stderr.contains("No such file or directory")
                || stderr.contains("Connection refused")));
    if no_server {
        let reason = match socket {
            Some(socket) => format!("no tmux server is running (socket {})", socket.display()),
            None => "no tmux server is running".to_owned(),
        };
        return (CollectorStatus::Unavailable, reason);
    }
    if stderr.contains("error connecting to") {
        return (
            CollectorStatus::Error,
            format!("cannot connect to the tmux server: {stderr}"),
        );
    }
    if stderr.is_empty() {
        (
            CollectorStatus::Error,
            format!("tmux list-sessions failed ({exit}) without an error message"),
        )
    } else {
        (
            CollectorStatus::Error,
            format!("tmux list-sessions failed: {stderr}"),
        )
    }
}

/// Why one output line could not be parsed.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error("expected 5 tab-separated fields, found {found} in {line:?}")]
    FieldCount { found: usize, line: String },
    #[error("{field} is not a non-negative integer: {value:?} in {line:?}")]
    NotANumber {
        field: &'static str,
        value: String,
        line: String,
    },
    #[error("{field} is not a representable unix time: {value} in {line:?}")]
    BadTime {
        field: &'static str,
        value: i64,
        line: String,
    },
}

/// Parses `tmux ls -F FORMAT` output: the sessions, and one message per
/// skipped (unparsable) non-empty line.
fn parse_sessions(stdout: &str) -> (Vec<TmuxSession>, Vec<String>) {
    let mut sessions = Vec::new();
    let mut skipped = Vec::new();
    for line in stdout.lines().filter(|line| !line.trim().is_empty()) {
        match parse_line(line) {
            Ok(session) => sessions.push(session),
            Err(err) => skipped.push(err.to_string()),
        }
    }
    (sessions, skipped)
}

/// Parses one `name\twindows\tattached\tcreated\tactivity` line.
fn parse_line(line: &str) -> Result<TmuxSession, LineError> {
    let mut fields = line.rsplitn(5, '\t');
    let (Some(activity), Some(created), Some(attached), Some(windows), Some(name)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(LineError::FieldCount {
            found: line.split('\t').count(),
            line: line.to_owned(),
        });
    };
    let number = |field: &'static str, value: &str| -> Result<u64, LineError> {
        value
            .trim()
            .parse::<u64>()
            .map_err(|_| LineError::NotANumber {
                field,
                value: value.to_owned(),
                line: line.to_owned(),
            })
    };
    let time = |field: &'static str, value: &str| -> Result<DateTime<Utc>, LineError> {
        let secs = number(field, value)?;
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        DateTime::from_timestamp(secs, 0).ok_or_else(|| LineError::BadTime {
            field,
            value: secs,
            line: line.to_owned(),
        })
    };
    let windows = number("session_windows", windows)?;
    Ok(TmuxSession {
        name: name.to_owned(),
        windows: u32::try_from(windows).unwrap_or(u32::MAX),
        attached: number("session_attached", attached)? > 0,
        created: time("session_created", created)?,
        last_activity: time("session_activity", activity)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn parses_a_line() {
        let s = parse_line("alpha\t3\t2\t1700000000\t1700000600").unwrap();
        assert_eq!(s.name, "alpha");
        assert_eq!(s.windows, 3);
        assert!(s.attached);
        assert_eq!(s.created.timestamp(), 1_700_000_000);
        assert_eq!(s.last_activity.timestamp(), 1_700_000_600);
    }

    #[test]
    fn name_with_tab_survives() {
        let s = parse_line("a\tb\t1\t0\t1700000000\t1700000000").unwrap();
        assert_eq!(s.name, "a\tb");
        assert!(!s.attached);
    }

    #[test]
    fn bad_lines_are_skipped_with_messages() {
        let out = "good\t1\t0\t1700000000\t1700000000\nbroken line\n\nx\tone\t0\t1\t1\n";
        let (sessions, skipped) = parse_sessions(out);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].name, "good");
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].contains("expected 5"), "{}", skipped[0]);
        assert!(skipped[1].contains("session_windows"), "{}", skipped[1]);
    }

    #[test]
    fn classifies_failures() {
        let exit = std::process::ExitStatus::from_raw(1 << 8);
        let (st, why) = classify_failure("no server running on /tmp/x", None, exit);
        assert_eq!(st, CollectorStatus::Unavailable);
        assert_eq!(why, "no tmux server is running");

        let (st, why) = classify_failure(
            "error connecting to /tmp/s (No such file or directory)",
            Some(Path::new("/tmp/s")),
            exit,
        );
        assert_eq!(st, CollectorStatus::Unavailable);
        assert_eq!(why, "no tmux server is running (socket /tmp/s)");

        let (st, why) =
            classify_failure("error connecting to /tmp/s (Permission denied)", None, exit);
        assert_eq!(st, CollectorStatus::Error);
        assert!(why.contains("Permission denied"), "{why}");

        let (st, why) = classify_failure("unknown command: ls", None, exit);
        assert_eq!(st, CollectorStatus::Error);
        assert_eq!(why, "tmux list-sessions failed: unknown command: ls");
    }
}
