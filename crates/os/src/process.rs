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
/// that ignore SIGTERM or outlive their leader end too.
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
    let _ = kill_process_group(group, Signal::KILL);
    true
}
