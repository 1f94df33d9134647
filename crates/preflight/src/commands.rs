//! The commands collector: the formula's own `[[preflight.commands]]`, run
//! concurrently without a shell, each under its own timeout, with its
//! standard output captured (size-capped) and its exit status recorded.
//!
//! Each command runs in its own process group with standard input closed,
//! in the working directory, with retort's environment. On timeout the whole
//! group is killed, so a command's own children cannot keep it alive. Output
//! past the cap is read and discarded (so the command never blocks on a full
//! pipe) and counted.

use retort_os::interrupt::Interrupt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::CommandConfig;
use crate::snapshot::{CollectorStatus, impl_section, plural};

/// Bytes of standard error kept per command.
const MAX_STDERR_BYTES: usize = 2048;

/// The formula's commands and what they printed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct CommandsSection {
    /// How the collector fared: `error` when a command could not be started
    /// or timed out (a non-zero exit status is data, not an error).
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// One entry per declared command, in the formula's order.
    pub results: Vec<CommandResult>,
}

impl_section!(CommandsSection);

/// What one command did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct CommandResult {
    /// Its name, as declared.
    pub name: String,
    /// The program and its arguments, as declared.
    pub run: Vec<String>,
    /// `ok` when it ran to the end (whatever its exit status), `error` when it
    /// could not be started, timed out or was a duplicate.
    pub status: CollectorStatus,
    /// Why it is `error` (`null` when `ok`).
    pub reason: Option<String>,
    /// Its exit status, when it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did (e.g. 9 after a timeout).
    pub signal: Option<i32>,
    /// Its standard output (the first `max_output_bytes`, default 16 KiB;
    /// invalid UTF-8 replaced).
    pub stdout: String,
    /// How many bytes it wrote to standard output in all.
    pub stdout_bytes: u64,
    /// Whether `stdout` was cut at `max_output_bytes`.
    pub stdout_truncated: bool,
    /// The first 2 KiB of its standard error.
    pub stderr: String,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

pub(crate) async fn collect(
    commands: Vec<CommandConfig>,
    default_timeout: Duration,
    (cwd, group_log): (PathBuf, Option<PathBuf>),
    interrupt: Interrupt,
) -> CommandsSection {
    let mut seen = std::collections::HashSet::new();
    let mut futures = Vec::new();
    let mut duplicates = Vec::new();
    for (index, command) in commands.into_iter().enumerate() {
        if seen.insert(command.name.clone()) {
            let limit = command.timeout.unwrap_or(default_timeout);
            futures.push(run(
                command,
                limit,
                (cwd.clone(), group_log.clone()),
                interrupt.clone(),
            ));
        } else {
            duplicates.push((
                index,
                CommandResult {
                    reason: Some(format!(
                        "another command is already named `{}`; names must be unique",
                        command.name
                    )),
                    name: command.name,
                    run: command.run,
                    status: CollectorStatus::Error,
                    ..CommandResult::default()
                },
            ));
        }
    }
    let mut results: Vec<CommandResult> = crate::join_all(futures)
        .await
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|reason| CommandResult {
                status: CollectorStatus::Error,
                reason: Some(reason),
                ..CommandResult::default()
            })
        })
        .collect();
    for (index, duplicate) in duplicates {
        results.insert(index.min(results.len()), duplicate);
    }
    let problems: Vec<String> = results
        .iter()
        .filter_map(|r| r.reason.as_ref().map(|why| format!("{}: {why}", r.name)))
        .collect();
    let (status, reason) = crate::snapshot::status_from(problems);
    CommandsSection {
        status,
        reason,
        duration_ms: 0,
        results,
    }
}

/// Appends process group `group` to `log` ([`crate::Config::group_log`]).
/// Best effort: a log that cannot be written loses only the chance to end
/// the group after a SIGKILL of retort, never the command.
fn log_group(log: &std::path::Path, group: u32) {
    use std::io::Write;
    let opened = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().create(true).append(true),
        0o600,
    )
    .open(log);
    if let Ok(mut file) = opened {
        let _ = file.write_all(format!("{group}\n").as_bytes());
    }
}

/// How long a command interrupted by SIGINT, SIGTERM or SIGHUP of retort
/// has, after its process group's SIGTERM, before SIGKILL: 2 seconds.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// Runs one command to completion, until `limit`, or until `interrupt`.
async fn run(
    command: CommandConfig,
    limit: Duration,
    (cwd, group_log): (PathBuf, Option<PathBuf>),
    interrupt: Interrupt,
) -> CommandResult {
    let mut result = CommandResult {
        name: command.name.clone(),
        run: command.run.clone(),
        ..CommandResult::default()
    };
    let Some((program, args)) = command.run.split_first() else {
        result.status = CollectorStatus::Error;
        result.reason = Some("`run` is empty: give the program and its arguments".to_owned());
        return result;
    };
    let started = Instant::now();
    let spawned = tokio::process::Command::new(program)
        .args(args)
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            result.status = CollectorStatus::Error;
            result.reason = Some(format!("cannot start `{program}`: {err}"));
            return result;
        }
    };
    let group = child.id();
    if let (Some(log), Some(group)) = (&group_log, group) {
        log_group(log, group);
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let (out, err, status) = tokio::join!(
            read_capped(stdout, command.max_output_bytes),
            read_capped(stderr, MAX_STDERR_BYTES),
            child.wait()
        );
        (out, err, status)
    };
    let ended = tokio::select! {
        ended = tokio::time::timeout(limit, work) => Ok(ended),
        signal = interrupt.wait() => Err(signal),
    };
    let ended = match ended {
        Ok(ended) => ended,
        Err(signal) => {
            if let Some(group) = retort_os::process::group_of(group) {
                retort_os::process::terminate_group(group, INTERRUPT_GRACE, child.wait()).await;
            }
            let _ = child.kill().await;
            result.status = CollectorStatus::Error;
            result.reason = Some(format!("interrupted by {signal} and ended"));
            result.duration_ms = crate::millis(started.elapsed());
            return result;
        }
    };
    match ended {
        Ok(((out, out_total), (err, _), status)) => {
            result.stdout_truncated = out_total > out.len() as u64;
            result.stdout = String::from_utf8_lossy(&out).into_owned();
            result.stdout_bytes = out_total;
            result.stderr = String::from_utf8_lossy(&err).into_owned();
            match status {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    result.exit_code = status.code();
                    result.signal = status.signal();
                    result.status = CollectorStatus::Ok;
                }
                Err(err) => {
                    result.status = CollectorStatus::Error;
                    result.reason = Some(format!("cannot wait for it: {err}"));
                }
            }
        }
        Err(_) => {
            // A collector that overran its time gets no grace: the
            // preflight waits on it.
            if let Some(group) = retort_os::process::group_of(group) {
                retort_os::process::terminate_group(group, Duration::ZERO, async {}).await;
            }
            let _ = child.kill().await;
            result.signal = Some(9);
            result.status = CollectorStatus::Error;
            result.reason = Some(format!(
                "timed out after {} and was killed",
                humantime::format_duration(limit)
            ));
        }
    }
    result.duration_ms = crate::millis(started.elapsed());
    result
}

/// Reads a pipe to its end: the first `max` bytes, and the total count.
async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>, max: usize) -> (Vec<u8>, u64) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), 0);
    };
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, total)
}

impl CommandsSection {
    /// `2 commands (1 failed)` (for the journal).
    pub(crate) fn summary(&self) -> String {
        let failed = self
            .results
            .iter()
            .filter(|r| r.status != CollectorStatus::Ok || r.exit_code != Some(0))
            .count();
        let mut line = plural(self.results.len(), "command", "commands");
        if failed > 0 {
            line.push_str(&format!(" ({failed} failed or exited non-zero)"));
        }
        line
    }
}
