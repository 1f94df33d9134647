//! The tmux collector: the sessions of one tmux server, with their panes.
//!
//! Runs one tmux client, `tmux [-S SOCKET] list-sessions -F … ; list-panes -a
//! -F …` (built with `tmux_interface`), as an async child process, with stdin
//! closed and the child killed if the collector is dropped (e.g. on timeout).
//! Without a configured socket, tmux picks its default server exactly as an
//! interactive `tmux ls` would: the server of `$TMUX` when run inside tmux,
//! else `default` under `$TMUX_TMPDIR` (or `/tmp`)`/tmux-UID/`.
//!
//! Only formats are read, never pane contents: reading a dead pane's status
//! this way is safe (writing into a dead pane is what crashes some tmux
//! versions).

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tmux_interface::{ListPanes, ListSessions, StdIO, Tmux};

use crate::files::age_seconds;
use crate::snapshot::{CollectorStatus, impl_section};

/// The sessions of one tmux server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct TmuxSection {
    /// How the tmux collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok`, or a note about skipped
    /// output lines (always serialised; `null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// Sessions in the order tmux lists them (by name).
    pub sessions: Vec<TmuxSession>,
}

impl_section!(TmuxSection);

/// One tmux session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct TmuxSession {
    /// Session name (`#{session_name}`).
    pub name: String,
    /// Number of windows (`#{session_windows}`).
    pub windows: u32,
    /// Whether at least one client is attached (`#{session_attached}` > 0).
    pub attached: bool,
    /// When the session was created (`#{session_created}`), UTC, whole seconds.
    pub created: DateTime<Utc>,
    /// Last activity in the session (`#{session_activity}`), UTC, whole seconds.
    pub last_activity: DateTime<Utc>,
    /// Seconds since the last activity, at `collected_at` (0 when in the future).
    pub idle_seconds: u64,
    /// The panes of all its windows, by window and pane index.
    pub panes: Vec<TmuxPane>,
}

/// One pane of a tmux session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct TmuxPane {
    /// The pane's id (`#{pane_id}`, e.g. `%3`), unique on the server.
    pub id: String,
    /// Its window's index (`#{window_index}`).
    pub window_index: u32,
    /// Its index in the window (`#{pane_index}`).
    pub pane_index: u32,
    /// The pid of the pane's first process (`#{pane_pid}`), usually a shell or the agent.
    pub pid: u32,
    /// The command running in the pane now (`#{pane_current_command}`); for a
    /// dead pane, the last one.
    pub current_command: String,
    /// Whether the pane's process has exited (`#{pane_dead}`): the pane stays
    /// only when `remain-on-exit` is on.
    pub dead: bool,
    /// A dead pane's exit status (`#{pane_dead_status}`), when it exited normally.
    pub exit_status: Option<i32>,
    /// The signal that killed a dead pane's process (`#{pane_dead_signal}`,
    /// tmux 3.3 or newer), when it was killed.
    pub exit_signal: Option<i32>,
}

/// The sessions format: `S`, then five tab-separated fields, the name last
/// (split off with `splitn`, so a name containing a tab still parses). Times
/// are unix seconds.
const SESSION_FORMAT: &str = "S\t#{session_id}\t#{session_windows}\t#{session_attached}\t#{session_created}\t#{session_activity}\t#{session_name}";

/// The panes format: `P`, then eight fields, the current command last.
const PANE_FORMAT: &str = "P\t#{session_id}\t#{window_index}\t#{pane_index}\t#{pane_id}\t#{pane_pid}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}\t#{pane_current_command}";

/// Lists the sessions and panes on the tmux server at `socket` (tmux's
/// default server when `None`). Never fails: problems are reported through
/// `status` and `reason`.
pub(crate) async fn collect(socket: Option<PathBuf>, now: DateTime<Utc>) -> TmuxSection {
    let socket = socket.as_deref();
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
        .add_command(ListSessions::new().format(SESSION_FORMAT))
        .add_command(ListPanes::new().all().format(PANE_FORMAT))
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
    let (sessions, skipped) = parse_output(&stdout, now);
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
        duration_ms: 0,
        sessions,
    }
}

/// A section with no sessions and the given status and reason.
pub(crate) fn section(status: CollectorStatus, reason: String) -> TmuxSection {
    TmuxSection {
        status,
        reason: Some(reason),
        duration_ms: 0,
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
    #[error("expected {expected} tab-separated fields, found {found} in {line:?}")]
    FieldCount {
        expected: usize,
        found: usize,
        line: String,
    },
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
    #[error("a pane of unknown session {session:?} in {line:?}")]
    UnknownSession { session: String, line: String },
}

/// Parses the output of both commands: the sessions (each with its panes),
/// and one message per skipped (unparsable) non-empty line. Lines of the
/// sessions part start with `S\t`, those of the panes part with `P\t`.
fn parse_output(stdout: &str, now: DateTime<Utc>) -> (Vec<TmuxSession>, Vec<String>) {
    let mut sessions: Vec<(String, TmuxSession)> = Vec::new();
    let mut skipped = Vec::new();
    for line in stdout.lines().filter(|line| !line.trim().is_empty()) {
        let parsed = if let Some(rest) = line.strip_prefix("S\t") {
            parse_session(rest, line, now).map(|(id, session)| sessions.push((id, session)))
        } else if let Some(rest) = line.strip_prefix("P\t") {
            parse_pane(rest, line).and_then(|(id, pane)| {
                match sessions.iter_mut().find(|(sid, _)| *sid == id) {
                    Some((_, session)) => {
                        session.panes.push(pane);
                        Ok(())
                    }
                    None => Err(LineError::UnknownSession {
                        session: id,
                        line: line.to_owned(),
                    }),
                }
            })
        } else {
            Err(LineError::FieldCount {
                expected: 7,
                found: line.split('\t').count(),
                line: line.to_owned(),
            })
        };
        if let Err(err) = parsed {
            skipped.push(err.to_string());
        }
    }
    let mut sessions: Vec<TmuxSession> = sessions.into_iter().map(|(_, s)| s).collect();
    for session in &mut sessions {
        session
            .panes
            .sort_by_key(|pane| (pane.window_index, pane.pane_index));
    }
    (sessions, skipped)
}

/// Splits `rest` into exactly `n` tab-separated fields, the last taking the rest.
fn fields<'a>(rest: &'a str, n: usize, line: &str) -> Result<Vec<&'a str>, LineError> {
    let fields: Vec<&str> = rest.splitn(n, '\t').collect();
    if fields.len() == n {
        Ok(fields)
    } else {
        Err(LineError::FieldCount {
            expected: n + 1,
            found: line.split('\t').count(),
            line: line.to_owned(),
        })
    }
}

fn number(field: &'static str, value: &str, line: &str) -> Result<u64, LineError> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| LineError::NotANumber {
            field,
            value: value.to_owned(),
            line: line.to_owned(),
        })
}

fn time(field: &'static str, value: &str, line: &str) -> Result<DateTime<Utc>, LineError> {
    let secs = i64::try_from(number(field, value, line)?).unwrap_or(i64::MAX);
    DateTime::from_timestamp(secs, 0).ok_or_else(|| LineError::BadTime {
        field,
        value: secs,
        line: line.to_owned(),
    })
}

fn small(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Parses `id windows attached created activity name` (after the `S\t`).
fn parse_session(
    rest: &str,
    line: &str,
    now: DateTime<Utc>,
) -> Result<(String, TmuxSession), LineError> {
    let f = fields(rest, 6, line)?;
    let last_activity = time("session_activity", f[4], line)?;
    let session = TmuxSession {
        name: f[5].to_owned(),
        windows: small(number("session_windows", f[1], line)?),
        attached: number("session_attached", f[2], line)? > 0,
        created: time("session_created", f[3], line)?,
        last_activity,
        idle_seconds: age_seconds(now, last_activity),
        panes: Vec::new(),
    };
    Ok((f[0].to_owned(), session))
}

/// Parses `session window pane id pid dead status signal command` (after the `P\t`).
fn parse_pane(rest: &str, line: &str) -> Result<(String, TmuxPane), LineError> {
    let f = fields(rest, 9, line)?;
    let optional = |field: &'static str, value: &str| -> Result<Option<i32>, LineError> {
        if value.trim().is_empty() {
            Ok(None)
        } else {
            Ok(Some(
                i32::try_from(number(field, value, line)?).unwrap_or(i32::MAX),
            ))
        }
    };
    let dead = number("pane_dead", f[5], line)? > 0;
    let pane = TmuxPane {
        id: f[3].to_owned(),
        window_index: small(number("window_index", f[1], line)?),
        pane_index: small(number("pane_index", f[2], line)?),
        pid: small(number("pane_pid", f[4], line)?),
        current_command: f[8].to_owned(),
        dead,
        exit_status: if dead {
            optional("pane_dead_status", f[6])?
        } else {
            None
        },
        exit_signal: if dead {
            optional("pane_dead_signal", f[7])?
        } else {
            None
        },
    };
    Ok((f[0].to_owned(), pane))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    const NOW: i64 = 1_700_001_000;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    #[test]
    fn parses_sessions_and_their_panes() {
        let out = "S\t$1\t3\t2\t1700000000\t1700000600\talpha\n\
                   S\t$2\t1\t0\t1700000000\t1700000000\ta\tb\n\
                   P\t$1\t1\t0\t%1\t4242\t0\t\t\tclaude\n\
                   P\t$1\t0\t0\t%0\t4241\t1\t3\t\tbash\n\
                   P\t$2\t0\t0\t%2\t4243\t1\t\t9\tsleep\n";
        let (sessions, skipped) = parse_output(out, now());
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(sessions.len(), 2);
        let alpha = &sessions[0];
        assert_eq!(alpha.name, "alpha");
        assert_eq!(alpha.windows, 3);
        assert!(alpha.attached);
        assert_eq!(alpha.created.timestamp(), 1_700_000_000);
        assert_eq!(alpha.idle_seconds, 400);
        assert_eq!(alpha.panes.len(), 2);
        assert_eq!(alpha.panes[0].id, "%0");
        assert!(alpha.panes[0].dead);
        assert_eq!(alpha.panes[0].exit_status, Some(3));
        assert_eq!(alpha.panes[0].exit_signal, None);
        assert_eq!(alpha.panes[1].current_command, "claude");
        assert!(!alpha.panes[1].dead);
        assert_eq!(alpha.panes[1].exit_status, None);
        let tabbed = &sessions[1];
        assert_eq!(tabbed.name, "a\tb");
        assert_eq!(tabbed.panes[0].exit_signal, Some(9));
    }

    #[test]
    fn bad_lines_are_skipped_with_messages() {
        let out = "S\t$1\t1\t0\t1700000000\t1700000000\tgood\nbroken line\n\n\
                   S\t$2\tone\t0\t1\t1\tx\nP\t$9\t0\t0\t%5\t1\t0\t\t\tsh\n";
        let (sessions, skipped) = parse_output(out, now());
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].name, "good");
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(skipped[0].contains("expected 7"), "{}", skipped[0]);
        assert!(skipped[1].contains("session_windows"), "{}", skipped[1]);
        assert!(skipped[2].contains("unknown session"), "{}", skipped[2]);
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
