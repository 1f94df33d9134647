//! Ending a process group: SIGTERM, a grace period, then SIGKILL.
//!
//! Every command retort starts (a preflight command, an action, a headless
//! agent) leads a process group of its own, so that what it starts ends
//! with it. [`terminate_group`] is the one way such a group is ended.

use std::future::Future;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};

/// The process group led by the child with operating-system id `pid`, as
/// `tokio::process::Child::id` gives it (`None` once it has been reaped,
/// or for an id that is no process's).
pub fn group_of(pid: Option<u32>) -> Option<Pid> {
    pid.and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw)
}

/// Ends process group `group`: SIGTERM to every member, then up to `grace`
/// for `leader_exit` (a future that completes when the group's leader has
/// exited), then SIGKILL to whatever is left of the group, so that children
/// that ignore SIGTERM or outlive their leader end too; then waits, up to
/// [`KILL_SETTLE`], until no member still runs (SIGKILL is delivered when
/// the member is next scheduled, which on a busy machine is not at once),
/// so that once this returns the group is gone, not only signalled.
///
/// Returns `false`, sending nothing more, when the group had no member
/// left to signal (`ESRCH`), `true` otherwise.
pub async fn terminate_group<F: Future>(group: Pid, grace: Duration, leader_exit: F) -> bool {
    if kill_process_group(group, Signal::TERM).is_err() {
        return false;
    }
    if !grace.is_zero() {
        let _ = tokio::time::timeout(grace, leader_exit).await;
    }
    if kill_process_group(group, Signal::KILL).is_ok() {
        let settled = tokio::time::Instant::now() + KILL_SETTLE;
        while group_runs(group) && tokio::time::Instant::now() < settled {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    true
}

/// The most [`terminate_group`] waits, after SIGKILL, for the group's
/// members to be gone: 1 second.
pub const KILL_SETTLE: Duration = Duration::from_secs(1);

/// Whether a process of `group` still runs: one whose `/proc/PID/stat`
/// (proc(5): state, ppid, pgrp after the command's closing parenthesis)
/// names `group` and a state other than zombie or dead. A zombie has ended;
/// it waits only for its parent to read its status.
fn group_runs(group: Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let group = group.as_raw_nonzero().get();
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(group) && !matches!(state, "Z" | "X" | "x")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[tokio::test]
    async fn a_terminated_group_is_gone_when_terminate_group_returns() {
        // A leader that ignores SIGTERM, and a child of its own.
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 300 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = group_of(Some(leader.id())).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(group_runs(group), "the group runs before");
        assert!(
            terminate_group(
                group,
                Duration::from_millis(100),
                std::future::pending::<()>()
            )
            .await
        );
        assert!(
            !group_runs(group),
            "a member still runs after terminate_group"
        );
        let _ = leader.wait();
    }
}
