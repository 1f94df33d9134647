//! The formula's `[[actions]]`: fixes that rules trigger, run by retort
//! itself (`mode = "auto"`) or stored as proposals for a human to approve
//! (`mode = "propose"`), and how a command is run.
//!
//! ```toml
//! [[actions]]
//! id = "free-memory"
//! run = ["supervisor/actions/memory-crisis.sh"]   # argv, no shell
//! mode = "auto"
//! timeout = "60s"
//! cooldown = "30m"
//! ```
//!
//! Each `run` element is a Tera template over the variables of the rule
//! whose finding triggers it (the snapshot's sections, `vars`, `now` and,
//! with `each`, `item` and `label`) plus `finding` ([`FindingContext`]:
//! `{ fingerprint, rule, label, priority, message }`), so an action for a
//! rule over a list can name the item:
//! `run = ["tmux", "kill-session", "-t", "={{ item.name }}"]`. `retort
//! check` checks the variable paths of each element against every rule that
//! names the action ([`crate::ruleset`]), `item` against the items of that
//! rule's `each`. The command
//! runs without a shell, in retort's working directory (a relative program
//! path such as `supervisor/actions/x.sh` is taken from there), in its own
//! process group, with retort's environment plus `RETORT_FORMULA`,
//! `RETORT_ACTION`, `RETORT_FINGERPRINT`, `RETORT_RULE`, `RETORT_LABEL`,
//! `RETORT_PRIORITY` and `RETORT_MESSAGE`. Its standard input is empty; its
//! output is kept up to [`OUTPUT_CAP`] bytes a stream.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use retort_os::interrupt::Interrupt;
use retort_os::process::{group_of, terminate_group};
use schemars::JsonSchema;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::finding::Finding;
use retort_formula::rule::Priority;
use retort_formula::shape::Shape;

/// Output kept of each stream (stdout, stderr) of an action: 16 KiB.
pub const OUTPUT_CAP: usize = 16 * 1024;

/// How long a timed-out action has between SIGTERM and SIGKILL: 2 seconds.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// `finding` as a `run` template sees it: the finding that triggers the
/// action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FindingContext {
    /// `rule` or `rule[label]`: `disk-pressure[/data]`.
    pub fingerprint: String,
    /// The id of the rule that found it.
    pub rule: String,
    /// The list item's label, for a rule with `each`; else null.
    pub label: Option<String>,
    /// `P0` … `P4` or `info`.
    pub priority: Priority,
    /// The rendered message.
    pub message: String,
}

impl FindingContext {
    /// What templates see of `finding`.
    pub fn of(finding: &Finding) -> Self {
        FindingContext {
            fingerprint: finding.fingerprint.clone(),
            rule: finding.rule.clone(),
            label: finding.label.clone(),
            priority: finding.priority,
            message: finding.message.clone(),
        }
    }
}

/// The shape of [`FindingContext`], for checking the `finding.…` paths of
/// `run` templates: its JSON Schema compiled ahead of time into
/// `crates/decide/shapes/finding.json` (see [`Shape::generated`]).
pub fn finding_shape() -> &'static Shape {
    static SHAPE: LazyLock<Shape> = LazyLock::new(|| {
        Shape::generated(include_str!("../shapes/finding.json"), finding_shape_now)
    });
    &SHAPE
}

/// [`finding_shape`] compiled now from its JSON Schema, without
/// descriptions: what `shapes/finding.json` holds.
pub fn finding_shape_now() -> Shape {
    let schema = serde_json::to_value(schemars::schema_for!(FindingContext));
    Shape::from_schema(&schema.unwrap_or_default()).without_descriptions()
}

/// A command ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Variables added to retort's environment.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub cwd: PathBuf,
    /// How long it may run.
    pub timeout: Duration,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandOutcome {
    /// It exited with status 0.
    Ok,
    /// It exited with another status, or was killed by a signal.
    Failed,
    /// It outlived its timeout and was killed.
    TimedOut,
    /// It could not be started (no such program, not executable).
    NotStarted,
    /// retort was interrupted (SIGINT, SIGTERM, SIGHUP) while it ran, and
    /// ended its process group.
    Interrupted,
}

impl CommandOutcome {
    /// `ok`, `failed`, `timed-out`, `not-started` or `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandOutcome::Ok => "ok",
            CommandOutcome::Failed => "failed",
            CommandOutcome::TimedOut => "timed-out",
            CommandOutcome::NotStarted => "not-started",
            CommandOutcome::Interrupted => "interrupted",
        }
    }
}

/// What running a command gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandResult {
    /// How it ended.
    pub outcome: CommandOutcome,
    /// Its exit status, when it exited.
    pub exit_code: Option<i32>,
    /// Why it failed to start, which signal killed it, or the timeout.
    pub error: Option<String>,
    /// Its standard output, at most [`OUTPUT_CAP`] bytes (lossy UTF-8).
    pub stdout: String,
    /// Its standard error, at most [`OUTPUT_CAP`] bytes (lossy UTF-8).
    pub stderr: String,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

impl CommandResult {
    /// `exit 0 in 12ms`, `exit 3 in 1.2s`, `timed out after 60s`, …
    pub fn summary(&self) -> String {
        let took = human_ms(self.duration_ms);
        match (self.outcome, self.exit_code) {
            (CommandOutcome::Ok | CommandOutcome::Failed, Some(code)) => {
                format!("exit {code} in {took}")
            }
            _ => self
                .error
                .clone()
                .unwrap_or_else(|| self.outcome.as_str().to_string()),
        }
    }
}

/// `12ms`, `1.2s`.
fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// Runs `spec` to its end or its timeout. Never fails: a command that
/// cannot start is a [`CommandOutcome::NotStarted`] result.
///
/// On timeout the command's process group gets SIGTERM, then SIGKILL after
/// [`KILL_GRACE`]; output read until then is kept.
pub async fn run_command(spec: &CommandSpec) -> CommandResult {
    run_command_until(spec, &Interrupt::never(), &mut |_| {}).await
}

/// [`run_command`], telling `started` the command's process group (its
/// leader's pid) as soon as it has started, and ending that group when
/// `interrupt` comes (SIGTERM, [`KILL_GRACE`], SIGKILL): a
/// [`CommandOutcome::Interrupted`] result.
pub async fn run_command_until(
    spec: &CommandSpec,
    interrupt: &Interrupt,
    started: &mut dyn FnMut(i32),
) -> CommandResult {
    let clock = Instant::now();
    let Some((program, args)) = spec.argv.split_first() else {
        return not_started("the command is empty".to_string(), clock);
    };
    let program_path = Path::new(program);
    let program_path = if program_path.is_relative() && program.contains('/') {
        spec.cwd.join(program_path)
    } else {
        program_path.to_path_buf()
    };
    let mut command = tokio::process::Command::new(&program_path);
    command
        .args(args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return not_started(format!("cannot start `{program}`: {error}"), clock);
        }
    };
    let group = group_of(child.id());
    if let Some(group) = group {
        started(group.as_raw_nonzero().get());
    }
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return not_started("cannot capture the command's output".to_string(), clock);
    };
    let mut out = Capture::default();
    let mut err = Capture::default();

    let finished = tokio::select! {
        finished = tokio::time::timeout(spec.timeout, async {
            let (status, (), ()) = tokio::join!(child.wait(), out.read(stdout), err.read(stderr));
            status
        }) => Ok(finished),
        signal = interrupt.wait() => Err(signal),
    };
    let (outcome, exit_code, error) = match finished {
        Err(signal) => {
            if let Some(group) = group {
                terminate_group(group, KILL_GRACE, child.wait()).await;
            }
            let _ = child.kill().await;
            (
                CommandOutcome::Interrupted,
                None,
                Some(format!(
                    "retort was interrupted by {signal}; the action was ended"
                )),
            )
        }
        Ok(finished) => match finished {
            Ok(Ok(status)) => match status.code() {
                Some(0) => (CommandOutcome::Ok, Some(0), None),
                Some(code) => (CommandOutcome::Failed, Some(code), None),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    let signal = status.signal().unwrap_or(0);
                    (
                        CommandOutcome::Failed,
                        None,
                        Some(format!("killed by signal {signal}")),
                    )
                }
            },
            Ok(Err(error)) => (
                CommandOutcome::Failed,
                None,
                Some(format!("cannot wait for the command: {error}")),
            ),
            Err(_) => {
                if let Some(group) = group {
                    terminate_group(group, KILL_GRACE, child.wait()).await;
                }
                let _ = child.kill().await;
                (
                    CommandOutcome::TimedOut,
                    None,
                    Some(format!(
                        "timed out after {}",
                        humantime::format_duration(spec.timeout)
                    )),
                )
            }
        },
    };
    CommandResult {
        outcome,
        exit_code,
        error,
        truncated: out.truncated || err.truncated,
        stdout: out.text(),
        stderr: err.text(),
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

fn not_started(error: String, clock: Instant) -> CommandResult {
    CommandResult {
        outcome: CommandOutcome::NotStarted,
        exit_code: None,
        error: Some(error),
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// One output stream, kept up to [`OUTPUT_CAP`] bytes; the rest is read
/// and dropped so that the command never blocks on a full pipe.
#[derive(Debug, Default)]
struct Capture {
    kept: Vec<u8>,
    truncated: bool,
}

impl Capture {
    async fn read(&mut self, mut stream: impl AsyncRead + Unpin) {
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(self.kept.len());
                    if n > room {
                        self.truncated = true;
                    }
                    self.kept.extend_from_slice(&buffer[..n.min(room)]);
                }
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str], timeout: Duration) -> CommandSpec {
        CommandSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("RETORT_FINGERPRINT".into(), "disk-pressure[/]".into())],
            cwd: std::env::temp_dir(),
            timeout,
        }
    }

    #[tokio::test]
    async fn output_and_status_are_captured_without_a_shell() {
        let result = run_command(&spec(
            &[
                "sh",
                "-c",
                "echo \"$RETORT_FINGERPRINT\"; echo oops >&2; exit 3",
            ],
            Duration::from_secs(10),
        ))
        .await;
        assert_eq!(result.outcome, CommandOutcome::Failed);
        assert_eq!(result.exit_code, Some(3));
        assert_eq!(result.stdout, "disk-pressure[/]\n");
        assert_eq!(result.stderr, "oops\n");
        assert!(
            result.summary().starts_with("exit 3 in "),
            "{}",
            result.summary()
        );

        // No shell: a `;` is an argument like any other.
        let result = run_command(&spec(&["echo", "a;", "b"], Duration::from_secs(10))).await;
        assert_eq!(result.stdout, "a; b\n");
        assert_eq!(result.outcome, CommandOutcome::Ok);
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_with_its_children() {
        let started = Instant::now();
        let result = run_command(&spec(
            &["sh", "-c", "echo started; sleep 30 & sleep 30"],
            Duration::from_millis(300),
        ))
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(result.outcome, CommandOutcome::TimedOut);
        assert_eq!(result.stdout, "started\n");
        assert_eq!(result.summary(), "timed out after 300ms");
    }

    #[tokio::test]
    async fn output_beyond_the_cap_is_cut_and_said_to_be() {
        let result = run_command(&spec(
            &["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"],
            Duration::from_secs(10),
        ))
        .await;
        assert_eq!(result.outcome, CommandOutcome::Ok);
        assert_eq!(result.stdout.len(), OUTPUT_CAP);
        assert!(result.truncated);
    }

    #[tokio::test]
    async fn a_missing_program_is_not_started() {
        let result = run_command(&spec(&["./no-such-action.sh"], Duration::from_secs(1))).await;
        assert_eq!(result.outcome, CommandOutcome::NotStarted);
        assert!(
            result
                .error
                .as_deref()
                .unwrap()
                .starts_with("cannot start `./no-such-action.sh`"),
            "{:?}",
            result.error
        );
    }
}
